using System.Diagnostics;
using System.Text;
using System.Text.RegularExpressions;

namespace NetStack.Bench;

/// <summary>
/// The lab of LAB.md, kept small for the benchmark (tests/Stack.Tests/Lab/KernelLab.cs is the full one; this
/// duplicates its set-up steps so the bench does not depend on the xunit project): namespace K with
/// k0 = 192.0.2.1/24, namespace U with u0 (no address while our stack runs; 192.0.2.2/24 for the kernel
/// baseline), IPv6 off, TX offload off on both ends so every frame on the wire is MTU-sized in both runs.
/// </summary>
internal sealed partial class BenchLab : IDisposable
{
    public const string KernelInterface = "k0";
    public const string StackInterface = "u0";
    public static readonly Ipv4Address KernelAddress = new(192, 0, 2, 1);
    public static readonly Ipv4Address StackAddress = new(192, 0, 2, 2);

    private readonly List<Process> _started = new();
    private readonly object _disposeGate = new();
    private bool _disposed;

    public string KernelNamespace { get; }
    public string StackNamespace { get; }
    public bool KernelOwnsStackAddress { get; private set; }

    public BenchLab()
    {
        if (!OperatingSystem.IsLinux()) throw new PlatformNotSupportedException("The benchmark needs Linux network namespaces.");
        if (Environment.UserName != "root" && Run("id", "-u").Output.Trim() != "0")
            throw new UnauthorizedAccessException("The benchmark needs root (network namespaces and packet capture): run it with sudo, or through 'dotnet pwsh ./build.ps1 -Task Bench' as root.");
        DeleteLeftovers();
        var pid = Environment.ProcessId;
        KernelNamespace = $"nsbk-{pid}";
        StackNamespace = $"nsbu-{pid}";
        try
        {
            Ip("netns", "add", KernelNamespace);
            Ip("netns", "add", StackNamespace);
            Ip("link", "add", KernelInterface, "netns", KernelNamespace, "type", "veth", "peer", "name", StackInterface, "netns", StackNamespace);
            foreach (var (ns, dev) in new[] { (KernelNamespace, KernelInterface), (StackNamespace, StackInterface) })
            {
                Exec(ns, "sysctl", "-q", "-w", "net.ipv6.conf.all.disable_ipv6=1", "net.ipv6.conf.default.disable_ipv6=1", $"net.ipv6.conf.{dev}.disable_ipv6=1");
                Ip("-n", ns, "link", "set", "lo", "up");
                Ip("-n", ns, "link", "set", dev, "up");
                // Unfinished checksums would be dropped by a correct stack; this also turns TSO off: MTU-sized frames.
                Exec(ns, "ethtool", "-K", dev, "tx", "off");
            }
            Ip("-n", KernelNamespace, "addr", "add", $"{KernelAddress}/24", "dev", KernelInterface);
            // The kernel baseline client reuses TIME-WAIT ports like a busy client would (per-namespace sysctl).
            Exec(StackNamespace, "sysctl", "-q", "-w", "net.ipv4.tcp_tw_reuse=1", "net.ipv4.ip_local_port_range=1024 65535");
            Exec(KernelNamespace, "sysctl", "-q", "-w", "net.core.somaxconn=16384", "net.ipv4.tcp_max_syn_backlog=16384");
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
        if (kernel) SetHostIngressDrop(false);
        Ip("-n", StackNamespace, "addr", kernel ? "add" : "del", $"{StackAddress}/24", "dev", StackInterface);
        // The kernel in K keeps its neighbour entry: same MAC either way (our stack uses u0's own MAC).
        KernelOwnsStackAddress = kernel;
    }

    private bool _hostDrop;
    private bool _warnedNoNft;

    /// <summary>Whether the host-drop rule is in place now (reported with the results).</summary>
    public bool HostIngressDrop => _hostDrop;

    private static string? FindProgram(string name) =>
        (Environment.GetEnvironmentVariable("PATH") ?? "").Split(':', StringSplitOptions.RemoveEmptyEntries).Concat(["/usr/sbin", "/sbin", "/usr/bin", "/bin"])
            .Select(d => Path.Combine(d, name)).FirstOrDefault(File.Exists);

    /// <summary>
    /// An nftables netdev-ingress rule in U that drops IPv4 arriving on u0 after the capture tap has copied it to
    /// our stack (AF_PACKET taps run before the ingress hook): without it the kernel in U routes every frame meant
    /// for our stack, finds no address and drops it (ip_route_input_slow, ip_error, dst_alloc/destroy: ~10% of the
    /// loop thread's CPU in bulk receive, measured). Off while the kernel itself owns 192.0.2.2.
    /// </summary>
    public void SetHostIngressDrop(bool on)
    {
        if (on == _hostDrop) return;
        if (on && FindProgram("nft") is null)
        {
            if (!_warnedNoNft) Console.WriteLine("  (nft not found: the kernel in U also routes and drops every frame meant for our stack; apt-get install nftables)");
            _warnedNoNft = true;
            return;
        }
        if (on)
        {
            Exec(StackNamespace, "nft", "add", "table", "netdev", "netstack_bench");
            Exec(StackNamespace, "nft", "add", "chain", "netdev", "netstack_bench", "ingress", $"{{ type filter hook ingress device {StackInterface} priority 0; }}");
            Exec(StackNamespace, "nft", "add", "rule", "netdev", "netstack_bench", "ingress", "meta", "protocol", "ip", "drop");
        }
        else Exec(StackNamespace, "nft", "delete", "table", "netdev", "netstack_bench");
        _hostDrop = on;
    }

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

    [GeneratedRegex(@"^nsb[ku]-(\d+)$")]
    private static partial Regex OurNamespace();

    /// <summary>Deletes bench namespaces left by a run that crashed (their PID is gone).</summary>
    private static void DeleteLeftovers()
    {
        if (!Directory.Exists("/var/run/netns")) return;
        foreach (var path in Directory.GetFiles("/var/run/netns"))
        {
            var m = OurNamespace().Match(Path.GetFileName(path));
            if (m.Success && !Directory.Exists($"/proc/{m.Groups[1].Value}"))
                try { Run(TimeSpan.FromSeconds(30), "ip", ["netns", "del", Path.GetFileName(path)]); } catch (Exception) { }
        }
    }

    private static void Ip(params string[] args) => Run("ip", args).EnsureSuccess();
    private static void Exec(string ns, params string[] args) => Run("ip", ["netns", "exec", ns, .. args]).EnsureSuccess();

    public static ProcessResult Run(string file, params string[] args) => Run(TimeSpan.FromSeconds(30), file, args);

    public static ProcessResult Run(TimeSpan timeout, string file, string[] args)
    {
        using var p = StartProcess(file, args);
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
