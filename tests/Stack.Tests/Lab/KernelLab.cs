using System.Runtime.InteropServices;
using System.Text.RegularExpressions;
using NetStack.LabSetup;
using NetStack.Link;

namespace NetStack.Tests.Lab;

/// <summary>
/// Two fresh network namespaces joined by a veth pair (docs/lab.md, LAB.md):
/// K holds the Linux kernel's side, k0 = 192.0.2.1/24; U holds u0 with no kernel address, where our stack opens
/// its <see cref="PcapDevice"/> as 192.0.2.2. IPv6 is off on both ends (no noise), TX checksum offload is off on k0
/// (the kernel's frames carry finished checksums). Dispose deletes both namespaces, which removes the veth.
/// The test process never moves: devices are opened from a thread that entered U (see
/// <see cref="PcapDevice.RunInNetworkNamespace{T}"/>), commands run through <c>ip netns exec</c>.
/// </summary>
public sealed partial class KernelLab : IDisposable
{
    public const string KernelInterface = VethLab.KernelInterface;
    public const string StackInterface = VethLab.StackInterface;
    public static readonly Ipv4Address KernelAddress = VethLab.KernelAddress;
    public static readonly Ipv4Address StackAddress = VethLab.StackAddress;
    public static readonly Ipv4Address UnownedAddress = new(192, 0, 2, 99);
    public const int PrefixLength = VethLab.PrefixLength;

    private static int _counter;
    private static readonly object LiveGate = new();
    private static readonly HashSet<KernelLab> Live = new();
    private static int _cleanedLeftovers;
    private static int _exitHooked;
    private static readonly Lazy<string?> Unavailable = new(ComputeWhyUnavailable);

    private readonly List<IDisposable> _owned = new();
    private readonly object _ownedGate = new();
    private int _disposed;

    public string KernelNamespace { get; }
    public string StackNamespace { get; }
    public MacAddress KernelMac { get; }
    /// <summary>u0's own address: the stack's MAC by default.</summary>
    public MacAddress StackMac { get; }

    public KernelLab()
    {
        if (WhyUnavailable() is { } reason) throw new InvalidOperationException("The kernel lab cannot run here: " + reason);
        if (Interlocked.Exchange(ref _cleanedLeftovers, 1) == 0) DeleteLeftovers();
        if (Interlocked.Exchange(ref _exitHooked, 1) == 0) AppDomain.CurrentDomain.ProcessExit += (_, _) => DisposeAllLive();

        var n = Interlocked.Increment(ref _counter);
        var pid = Environment.ProcessId;
        KernelNamespace = $"nsk-{VethLab.TagPrefix()}{pid}-{n}";
        StackNamespace = $"nsu-{VethLab.TagPrefix()}{pid}-{n}";
        lock (LiveGate) Live.Add(this);
        try
        {
            var k = KernelNamespace;
            var u = StackNamespace;
            VethLab.Create(k, u, (file, args) => LabProcess.Run(file, args).EnsureSuccess());
            KernelMac = ReadMac(k, KernelInterface);
            StackMac = ReadMac(u, StackInterface);
        }
        catch
        {
            Dispose();
            throw;
        }
    }

    /// <summary>A fresh name for a further namespace of this process (a crashed run's are deleted like the lab's own).</summary>
    internal static string NewKernelNamespaceName() => $"nsk-{VethLab.TagPrefix()}{Environment.ProcessId}-{Interlocked.Increment(ref _counter)}";

    private static readonly Lazy<string?> NoNetem = new(ProbeNetem);

    /// <summary>Why netem cannot be used here, or null if it can (probed once, in a namespace of our own).</summary>
    public static string? WhyNoNetem() => WhyUnavailable() ?? NoNetem.Value;

    private static string? ProbeNetem()
    {
        if (FindProgram("tc") is null) return "the test needs iproute2's 'tc' for netem (apt-get install iproute2).";
        var ns = $"nsk-{VethLab.TagPrefix()}{Environment.ProcessId}-0"; // counter values start at 1: 0 is the probe's
        try
        {
            if (LabProcess.Run("ip", ["netns", "add", ns]).ExitCode != 0) return "could not create a namespace to probe for netem.";
            var r = LabProcess.Run("ip", ["netns", "exec", ns, "tc", "qdisc", "add", "dev", "lo", "root", "netem", "delay", "1ms"]);
            return r.ExitCode == 0 ? null : $"the kernel has no netem qdisc (sch_netem): '{r.Error.Trim()}'.";
        }
        finally
        {
            LabProcess.Run("ip", ["netns", "del", ns]);
        }
    }

    /// <summary>Why the lab cannot run on this machine, or null if it can.</summary>
    public static string? WhyUnavailable() => Unavailable.Value;

    private static string? ComputeWhyUnavailable()
    {
        if (!OperatingSystem.IsLinux()) return "the kernel lab needs Linux network namespaces.";
        if (LibC.geteuid() != 0) return "the kernel lab needs root (network namespaces and packet capture); run the tests as root.";
        if (MissingCapabilities() is { } missing) return $"the kernel lab needs root with {missing} (a container without them cannot create namespaces or capture).";
        if (FindProgram("ip") is null) return "the kernel lab needs iproute2's 'ip' (apt-get install iproute2).";
        if (FindProgram("ethtool") is null) return "the kernel lab needs 'ethtool' (apt-get install ethtool).";
        foreach (var name in new[] { "libpcap.so.1", "libpcap.so.0.8", "libpcap.so" })
            if (NativeLibrary.TryLoad(name, out _)) return null;
        return "the kernel lab needs libpcap (apt-get install libpcap0.8).";
    }

    /// <summary>Capabilities the lab needs that this process lacks (from /proc/self/status CapEff), or null.</summary>
    private static string? MissingCapabilities()
    {
        try
        {
            var line = File.ReadLines("/proc/self/status").FirstOrDefault(l => l.StartsWith("CapEff:", StringComparison.Ordinal));
            if (line is null) return null;
            var caps = Convert.ToUInt64(line["CapEff:".Length..].Trim(), 16);
            var missing = new[] { (12, "CAP_NET_ADMIN"), (13, "CAP_NET_RAW"), (21, "CAP_SYS_ADMIN") }
                .Where(c => (caps & (1UL << c.Item1)) == 0).Select(c => c.Item2).ToArray();
            return missing.Length == 0 ? null : string.Join(", ", missing);
        }
        catch (IOException) { return null; }
    }

    private static readonly Dictionary<string, string> Packages = new()
    {
        ["python3"] = "python3", ["dnsmasq"] = "dnsmasq-base", ["socat"] = "socat", ["tcpdump"] = "tcpdump",
        ["ping"] = "iputils-ping", ["tc"] = "iproute2", ["nc"] = "netcat-openbsd", ["iperf3"] = "iperf3", ["dig"] = "bind9-dnsutils",
        ["openssl"] = "openssl", ["nft"] = "nftables",
    };

    /// <summary>Why a test needing <paramref name="programs"/> cannot run (one is not installed), or null.</summary>
    public static string? WhyProgramsMissing(IEnumerable<string> programs)
    {
        var missing = programs.Where(p => FindProgram(p) is null).ToArray();
        if (missing.Length == 0) return null;
        var packages = missing.Select(p => Packages.GetValueOrDefault(p, p)).Distinct();
        return $"the test needs {string.Join(", ", missing)} (apt-get install {string.Join(' ', packages)}).";
    }

    public static string? FindProgram(string name) => VethLab.FindProgram(name);

    /// <summary>Opens our stack's pcap device on u0, from inside namespace U.</summary>
    public PcapDevice OpenStackDevice(PcapDeviceOptions? options = null) =>
        Own(PcapDevice.Open(StackInterface, (options ?? new PcapDeviceOptions()) with { NetworkNamespace = StackNamespace }));

    /// <summary>
    /// Opens a pcap device on k0 in namespace K: a raw frame injector and observer on the kernel's side of the wire
    /// (for filter tests and load generation). Frames it sends reach u0 as if the kernel had sent them.
    /// </summary>
    public PcapDevice OpenKernelSideDevice(PcapDeviceOptions? options = null) =>
        Own(PcapDevice.Open(KernelInterface, (options ?? new PcapDeviceOptions()) with { NetworkNamespace = KernelNamespace }));

    /// <summary>Runs a shell command inside K and waits (bounded) for it to finish.</summary>
    public LabResult RunInKernel(string command, TimeSpan? timeout = null) =>
        LabProcess.Run("ip", ["netns", "exec", KernelNamespace, "sh", "-c", command], timeout, $"[K] {command}");

    /// <summary>Starts a shell command inside K; it is killed when the lab is disposed, if not before.</summary>
    public LabProcess StartInKernel(string command) =>
        Own(LabProcess.Start("ip", ["netns", "exec", KernelNamespace, "sh", "-c", "exec " + command], $"[K] {command}"));

    /// <summary>Starts a program (no shell: arguments passed as they are) inside K; killed when the lab is disposed.</summary>
    public LabProcess StartProgramInKernel(string file, params string[] arguments) =>
        Own(LabProcess.Start("ip", ["netns", "exec", KernelNamespace, file, .. arguments], $"[K] {file} {string.Join(' ', arguments)}"));

    /// <summary>Runs a program (no shell) inside K and waits (bounded) for it to finish.</summary>
    public LabResult RunProgramInKernel(string file, string[] arguments, TimeSpan? timeout = null) =>
        LabProcess.Run("ip", ["netns", "exec", KernelNamespace, file, .. arguments], timeout, $"[K] {file} {string.Join(' ', arguments)}");

    /// <summary>
    /// Puts a netem qdisc on k0, the kernel's side of the wire (e.g. "delay 5ms", "loss 5% delay 5ms reorder 10%"):
    /// real loss, delay and reordering for what the kernel sends us. Replaces any earlier one.
    /// </summary>
    public void SetKernelNetem(string spec) =>
        RunInKernel($"tc qdisc replace dev {KernelInterface} root netem {spec}").EnsureSuccess();

    /// <summary>Removes the netem qdisc from k0.</summary>
    public void ClearKernelNetem() => RunInKernel($"tc qdisc del dev {KernelInterface} root");

    /// <summary>The kernel's neighbour entry for <paramref name="address"/> on k0: its MAC (if any) and state, or null.</summary>
    public (MacAddress? Mac, string State)? KernelNeighbour(Ipv4Address address)
    {
        var text = RunInKernel($"ip neigh show {address} dev {KernelInterface}").EnsureSuccess().Output.Trim();
        if (text.Length == 0) return null;
        var words = text.Split(' ', StringSplitOptions.RemoveEmptyEntries);
        var i = Array.IndexOf(words, "lladdr");
        MacAddress? mac = i >= 0 && i + 1 < words.Length ? MacAddress.Parse(words[i + 1]) : null;
        return (mac, words[^1]);
    }

    /// <summary>Runs a shell command inside U (for inspection; nothing in U speaks IPv4 but our stack).</summary>
    public LabResult RunInStackNamespace(string command, TimeSpan? timeout = null) =>
        LabProcess.Run("ip", ["netns", "exec", StackNamespace, "sh", "-c", command], timeout, $"[U] {command}");

    private T Own<T>(T item) where T : IDisposable
    {
        lock (_ownedGate)
        {
            if (_disposed != 0) { item.Dispose(); throw new ObjectDisposedException(nameof(KernelLab)); }
            _owned.Add(item);
        }
        return item;
    }

    private static MacAddress ReadMac(string ns, string dev) =>
        MacAddress.Parse(LabProcess.Run("ip", ["netns", "exec", ns, "cat", $"/sys/class/net/{dev}/address"]).EnsureSuccess().Output.Trim());

    public void Dispose()
    {
        if (Interlocked.Exchange(ref _disposed, 1) != 0) return;
        List<IDisposable> owned;
        lock (_ownedGate) { owned = [.. _owned]; _owned.Clear(); }
        owned.Reverse();
        foreach (var item in owned)
        {
            try { item.Dispose(); } catch (Exception) { /* teardown goes on */ }
        }
        foreach (var ns in new[] { KernelNamespace, StackNamespace })
        {
            if (ns is null || !File.Exists(Path.Combine("/var/run/netns", ns))) continue;
            try { LabProcess.Run("ip", ["netns", "del", ns], TimeSpan.FromSeconds(30)); } catch (Exception) { }
        }
        lock (LiveGate) Live.Remove(this);
    }

    private static void DisposeAllLive()
    {
        KernelLab[] labs;
        lock (LiveGate) labs = [.. Live];
        foreach (var lab in labs) lab.Dispose();
    }

    [GeneratedRegex(@"^ns[ku]-" + VethLab.TagPattern + @"(\d+)-\d+$")]
    private static partial Regex OurNamespace();

    /// <summary>Deletes namespaces named like ours whose owning test process no longer exists (a crashed run).</summary>
    public static IReadOnlyList<string> DeleteLeftovers() =>
        VethLab.DeleteLeftovers(OurNamespace(), name => LabProcess.Run("ip", ["netns", "del", name], TimeSpan.FromSeconds(30)).ExitCode == 0);

    /// <summary>Our namespaces (this process's) that still exist.</summary>
    public static IReadOnlyList<string> NamespacesOfThisProcess() =>
        !Directory.Exists("/var/run/netns") ? []
        : Directory.GetFiles("/var/run/netns").Select(Path.GetFileName).OfType<string>()
            .Where(n => OurNamespace().Match(n) is { Success: true } m && m.Groups[1].Value == Environment.ProcessId.ToString()).ToArray();
}
