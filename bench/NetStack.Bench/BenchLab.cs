using System.Diagnostics;
using System.Globalization;
using System.Text;
using System.Text.RegularExpressions;
using NetStack.LabSetup;
using NetStack.Link;

namespace NetStack.Bench;

/// <summary>
/// The lab of LAB.md for the benchmark, built by the set-up steps the tests use too (tests/lab/VethLab.cs, a linked
/// file): namespace K with k0 = 192.0.2.1/24 (and, for the 100,000-connection figures, secondary addresses), namespace
/// U with u0 (no address while our stack runs; 192.0.2.2/24 for the kernel baseline), IPv6 off, TX offload off on both
/// ends so every frame on the wire is MTU-sized in both runs. Plus what the scenarios need of K and U: random loss on
/// K's side (nftables), the namespaces' protocol counters (nstat's sources), programs run inside them.
/// </summary>
internal sealed partial class BenchLab : IDisposable
{
    public const string KernelInterface = VethLab.KernelInterface;
    public const string StackInterface = VethLab.StackInterface;
    public static readonly Ipv4Address KernelAddress = VethLab.KernelAddress;
    public static readonly Ipv4Address StackAddress = VethLab.StackAddress;

    /// <summary>
    /// The MAC our stack uses: null, u0's own, as Start-Stack on an adapter does without -MacAddress; with
    /// NETSTACK_BENCH_OWN_MAC=1 one of its own derived from its address, as a virtual stack's (02-00-C0-00-02-02), so
    /// frames to it reach u0 as another host's (PACKET_OTHERHOST) and U's kernel drops them at the top of ip_rcv
    /// without routing them (an A/B of the host's cost per frame, docs/benchmarks.md "ownmac").
    /// </summary>
    public static readonly MacAddress? StackMac =
        Environment.GetEnvironmentVariable("NETSTACK_BENCH_OWN_MAC") == "1" ? new MacAddress(0x0200_0000_0000UL | StackAddress.Value) : null;

    /// <summary>Further addresses of K (on k0) for the 100,000-connection figures: each gives our stack 64,512 ports.</summary>
    public static readonly Ipv4Address[] KernelSecondaryAddresses = [new(192, 0, 2, 11), new(192, 0, 2, 12), new(192, 0, 2, 13), new(192, 0, 2, 14)];
    private const string LossTable = "netstack_bench_loss";

    private readonly List<Process> _started = new();
    private readonly object _disposeGate = new();
    private bool _disposed;
    private bool _secondaryAddresses;

    public string KernelNamespace { get; }
    public string StackNamespace { get; }
    public bool KernelOwnsStackAddress { get; private set; }

    public BenchLab()
    {
        if (!OperatingSystem.IsLinux()) throw new PlatformNotSupportedException("The benchmark needs Linux network namespaces.");
        if (Environment.UserName != "root" && Run("id", "-u").Output.Trim() != "0")
            throw new UnauthorizedAccessException("The benchmark needs root (network namespaces and packet capture): run it with sudo, or through 'dotnet pwsh ./build.ps1 -Task Bench' as root.");
        VethLab.DeleteLeftovers(OurNamespace(), name => Run(TimeSpan.FromSeconds(30), "ip", ["netns", "del", name]).ExitCode == 0);
        var pid = Environment.ProcessId;
        // NETSTACK_BENCH_TAG marks the namespaces of one user of a shared machine: nsbk-<tag>-<pid> (VethLab.TagPrefix).
        var tag = VethLab.TagPrefix();
        KernelNamespace = $"nsbk-{tag}{pid}";
        StackNamespace = $"nsbu-{tag}{pid}";
        try
        {
            VethLab.Create(KernelNamespace, StackNamespace, (file, args) => Run(file, args).EnsureSuccess(), txOffOnStackSide: true);
            // The kernel baseline client reuses TIME-WAIT ports like a busy client would (per-namespace sysctl).
            // The kernel's listener in U for the requests from K (Latency.RequestPort) is kept out of that range: a
            // connect scenario's TIME-WAIT ports there (up to 15,000 after three runs) would otherwise refuse its bind.
            Exec(StackNamespace, "sysctl", "-q", "-w", "net.ipv4.tcp_tw_reuse=1", "net.ipv4.ip_local_port_range=1024 65535",
                $"net.ipv4.ip_local_reserved_ports={Latency.RequestPort}",
                // Room in U's accept queue for the kernel's scale figures (100,000 idle connections from K, held unaccepted).
                "net.core.somaxconn=262144", "net.ipv4.tcp_max_syn_backlog=16384");
            // Room in K's accept queues for the 100,000 idle connections (held unaccepted: no descriptors needed).
            Exec(KernelNamespace, "sysctl", "-q", "-w", "net.core.somaxconn=262144", "net.ipv4.tcp_max_syn_backlog=16384", "net.ipv4.ip_local_port_range=1024 65535");
        }
        catch
        {
            Dispose();
            throw;
        }
    }

    /// <summary>Gives u0 the stack's address (the kernel in the stack's position) or takes it away (our stack alone answers).</summary>
    public void KernelTakesStackAddress(bool kernel)
    {
        if (kernel == KernelOwnsStackAddress) return;
        Ip("-n", StackNamespace, "addr", kernel ? "add" : "del", $"{StackAddress}/24", "dev", StackInterface);
        // Our stack with a MAC of its own (StackMac) and the kernel in U have different MACs: K forgets the one it knows, so
        // its next frame to the address asks ARP (with u0's MAC for both, K's entry stays right either way).
        if (StackMac is not null) Ip("-n", KernelNamespace, "neigh", "flush", "dev", KernelInterface);
        KernelOwnsStackAddress = kernel;
    }

    /// <summary>Adds <see cref="KernelSecondaryAddresses"/> to k0 (once).</summary>
    public void EnsureSecondaryAddresses()
    {
        if (_secondaryAddresses) return;
        foreach (var a in KernelSecondaryAddresses) Ip("-n", KernelNamespace, "addr", "add", $"{a}/24", "dev", KernelInterface);
        _secondaryAddresses = true;
    }

    /// <summary>
    /// Random loss on K's side for TCP <paramref name="ports"/>, each way: nftables in K drops <paramref name="percent"/>%
    /// of the segments arriving for those ports (input) and of those leaving from them (output), independently
    /// (<c>numgen random mod 100 &lt; N drop</c>). 0 removes it. This kernel has no sch_netem, so nothing else is applied.
    /// </summary>
    public void SetKernelLoss(int percent, params int[] ports)
    {
        Run(TimeSpan.FromSeconds(30), "ip", ["netns", "exec", KernelNamespace, "nft", "delete", "table", "inet", LossTable]);
        if (percent <= 0) return;
        var set = string.Join(", ", ports);
        var script = $$"""
            table inet {{LossTable}} {
              chain input { type filter hook input priority 0; policy accept; tcp dport { {{set}} } numgen random mod 100 < {{percent}} counter drop; }
              chain output { type filter hook output priority 0; policy accept; tcp sport { {{set}} } numgen random mod 100 < {{percent}} counter drop; }
            }
            """;
        RunWithInput(["netns", "exec", KernelNamespace, "nft", "-f", "-"], script).EnsureSuccess();
    }

    /// <summary>Segments the loss rule dropped so far, each way (input: towards K, output: from K).</summary>
    public (long ToKernel, long FromKernel) KernelLossDrops()
    {
        var r = Run(TimeSpan.FromSeconds(30), "ip", ["netns", "exec", KernelNamespace, "nft", "list", "table", "inet", LossTable]);
        var counts = LossCounter().Matches(r.Output).Select(m => long.Parse(m.Groups[1].Value, CultureInfo.InvariantCulture)).ToArray();
        return counts.Length == 2 ? (counts[0], counts[1]) : (0, 0);
    }

    /// <summary>
    /// The protocol counters of a namespace (what nstat reads: /proc/net/snmp and /proc/net/netstat), as
    /// "Tcp.RetransSegs", "TcpExt.TCPLossProbes", "Ip.InReceives"...
    /// </summary>
    public Dictionary<string, long> Counters(string ns)
    {
        var text = Run(TimeSpan.FromSeconds(30), "ip", ["netns", "exec", ns, "cat", "/proc/net/snmp", "/proc/net/netstat"]).EnsureSuccess().Output;
        var result = new Dictionary<string, long>();
        var lines = text.Split('\n', StringSplitOptions.RemoveEmptyEntries);
        for (int i = 0; i + 1 < lines.Length; i++)
        {
            var names = lines[i].Split(' ', StringSplitOptions.RemoveEmptyEntries);
            var values = lines[i + 1].Split(' ', StringSplitOptions.RemoveEmptyEntries);
            if (names.Length < 2 || names[0] != values[0] || !long.TryParse(values[1], CultureInfo.InvariantCulture, out _)) continue;
            var prefix = names[0].TrimEnd(':');
            for (int k = 1; k < Math.Min(names.Length, values.Length); k++)
                if (long.TryParse(values[k], CultureInfo.InvariantCulture, out var v)) result[$"{prefix}.{names[k]}"] = v;
            i++;
        }
        return result;
    }

    /// <summary>The congestion controls the kernel offers (tcp_available_congestion_control, read in U).</summary>
    public IReadOnlyList<string> KernelCongestionControls() =>
        Run(TimeSpan.FromSeconds(30), "ip", ["netns", "exec", StackNamespace, "cat", "/proc/sys/net/ipv4/tcp_available_congestion_control"])
            .Output.Split(' ', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries);

    /// <summary>The kernel's default congestion control in U (tcp_congestion_control).</summary>
    public string KernelDefaultCongestionControl() =>
        Run(TimeSpan.FromSeconds(30), "ip", ["netns", "exec", StackNamespace, "cat", "/proc/sys/net/ipv4/tcp_congestion_control"]).Output.Trim();

    /// <summary>Starts a program in K; killed on Dispose.</summary>
    public Process StartInKernel(string file, params string[] args)
    {
        var p = StartProcess("ip", ["netns", "exec", KernelNamespace, file, .. args]);
        lock (_started) _started.Add(p);
        return p;
    }

    public ProcessResult RunInStackNamespace(TimeSpan timeout, string file, params string[] args) =>
        Run(timeout, "ip", ["netns", "exec", StackNamespace, file, .. args]);

    public ProcessResult RunInKernelNamespace(TimeSpan timeout, string file, params string[] args) =>
        Run(timeout, "ip", ["netns", "exec", KernelNamespace, file, .. args]);

    /// <summary>Runs <paramref name="work"/> on a thread in K: sockets it creates are K's (the kernel's peer side).</summary>
    public T InKernel<T>(Func<T> work) => PcapDevice.RunInNetworkNamespace(KernelNamespace, work);

    /// <summary>Runs <paramref name="work"/> on a thread in U: sockets it creates are the kernel's in our stack's position.</summary>
    public T InStackNamespace<T>(Func<T> work) => PcapDevice.RunInNetworkNamespace(StackNamespace, work);

    /// <summary>Stops what the lab started and deletes the namespaces. A second caller (a signal during teardown) waits for the first.</summary>
    public void Dispose()
    {
        lock (_disposeGate)
        {
            if (_disposed) return;
            _disposed = true;
            Teardown();
        }
    }

    private void Teardown()
    {
        lock (_started)
        {
            foreach (var p in _started)
            {
                try { if (!p.HasExited) p.Kill(entireProcessTree: true); p.WaitForExit(5000); } catch (Exception) { }
            }
            _started.Clear();
        }
        foreach (var ns in new[] { KernelNamespace, StackNamespace })
            if (ns is not null && File.Exists(Path.Combine("/var/run/netns", ns)))
                try { Run(TimeSpan.FromSeconds(30), "ip", ["netns", "del", ns]); } catch (Exception) { }
    }

    [GeneratedRegex(@"^nsb[ku]-" + VethLab.TagPattern + @"(\d+)$")]
    private static partial Regex OurNamespace();

    [GeneratedRegex(@"counter packets (\d+)")]
    private static partial Regex LossCounter();

    private static void Ip(params string[] args) => Run("ip", args).EnsureSuccess();
    private static void Exec(string ns, params string[] args) => Run("ip", ["netns", "exec", ns, .. args]).EnsureSuccess();

    public static ProcessResult Run(string file, params string[] args) => Run(TimeSpan.FromSeconds(30), file, args);

    public static ProcessResult Run(TimeSpan timeout, string file, string[] args) => RunWithInput(file, args, null, timeout);

    private static ProcessResult RunWithInput(string[] ipArgs, string input) => RunWithInput("ip", ipArgs, input, TimeSpan.FromSeconds(30));

    private static ProcessResult RunWithInput(string file, string[] args, string? input, TimeSpan timeout)
    {
        using var p = StartProcess(file, args);
        if (input is not null) p.StandardInput.Write(input);
        p.StandardInput.Close();
        var stdout = p.StandardOutput.ReadToEndAsync();
        var stderr = p.StandardError.ReadToEndAsync();
        if (!p.WaitForExit(timeout))
        {
            try { p.Kill(entireProcessTree: true); } catch (Exception) { }
            throw new TimeoutException($"'{file} {string.Join(' ', args)}' did not finish within {timeout.TotalSeconds:0} s.");
        }
        return new ProcessResult($"{file} {string.Join(' ', args)}", p.ExitCode, stdout.Result, stderr.Result);
    }

    private static Process StartProcess(string file, string[] args)
    {
        var psi = new ProcessStartInfo(file)
        {
            RedirectStandardOutput = true, RedirectStandardError = true, RedirectStandardInput = true, UseShellExecute = false,
            StandardOutputEncoding = Encoding.UTF8,
        };
        foreach (var a in args) psi.ArgumentList.Add(a);
        return Process.Start(psi) ?? throw new InvalidOperationException($"could not start {file}");
    }
}

internal sealed record ProcessResult(string Command, int ExitCode, string Output, string Error)
{
    public ProcessResult EnsureSuccess() => ExitCode == 0 ? this
        : throw new InvalidOperationException($"'{Command}' exited with {ExitCode}: {Error.Trim()} {Output.Trim()}");
}
