namespace NetStack.Tests.Lab;

/// <summary>
/// Makes the kernel's namespace K of a <see cref="KernelLab"/> a router (ip_forward on) between the lab's 192.0.2.0/24
/// and 198.51.100.0/24, where a third namespace T holds the target, 198.51.100.2 on t0, behind the veth r1 in K
/// (198.51.100.1/24). Both ends of the far link get <c>farMtu</c>. K's ICMP rate limit is off, so every probe that
/// draws a time exceeded gets one. Our stack reaches T through K with 192.0.2.1 as its gateway: two hops.
/// Dispose deletes T (and with it the far veth pair); K goes with the lab.
/// </summary>
public sealed class KernelRouter : IDisposable
{
    public static readonly Ipv4Address RouterAddress = KernelLab.KernelAddress;
    public static readonly Ipv4Address RouterFarAddress = new(198, 51, 100, 1);
    public static readonly Ipv4Address TargetAddress = new(198, 51, 100, 2);

    private readonly KernelLab _lab;

    public string TargetNamespace { get; }

    public KernelRouter(KernelLab lab, int farMtu = 1500)
    {
        _lab = lab;
        TargetNamespace = KernelLab.NewKernelNamespaceName();
        var k = lab.KernelNamespace;
        var t = TargetNamespace;
        try
        {
            Run("ip", "netns", "add", t);
            Run("ip", "link", "add", "r1", "netns", k, "type", "veth", "peer", "name", "t0", "netns", t);
            Run("ip", "netns", "exec", t, "sysctl", "-q", "-w", "net.ipv6.conf.all.disable_ipv6=1", "net.ipv6.conf.default.disable_ipv6=1", "net.ipv6.conf.t0.disable_ipv6=1");
            Run("ip", "netns", "exec", k, "sysctl", "-q", "-w", "net.ipv6.conf.r1.disable_ipv6=1", "net.ipv4.ip_forward=1", "net.ipv4.icmp_ratelimit=0");
            Run("ip", "-n", k, "addr", "add", $"{RouterFarAddress}/24", "dev", "r1");
            Run("ip", "-n", k, "link", "set", "r1", "mtu", $"{farMtu}", "up");
            Run("ip", "-n", t, "addr", "add", $"{TargetAddress}/24", "dev", "t0");
            Run("ip", "-n", t, "link", "set", "t0", "mtu", $"{farMtu}", "up");
            Run("ip", "-n", t, "link", "set", "lo", "up");
            Run("ip", "-n", t, "route", "add", "default", "via", $"{RouterFarAddress}");
            Run("ip", "netns", "exec", t, "ethtool", "-K", "t0", "tx", "off");
        }
        catch
        {
            Dispose();
            throw;
        }
    }

    /// <summary>Runs a shell command inside T and waits (bounded) for it to finish.</summary>
    public LabResult RunInTarget(string command, TimeSpan? timeout = null) =>
        LabProcess.Run("ip", ["netns", "exec", TargetNamespace, "sh", "-c", command], timeout, $"[T] {command}");

    /// <summary>Router K stops sending ICMP time exceeded (an nftables drop on its output): a hop that does not answer.</summary>
    public void SilenceTimeExceeded()
    {
        foreach (var rule in new[] { "add table inet reach", "add chain inet reach out { type filter hook output priority 0; }",
                     "add rule inet reach out icmp type time-exceeded drop" })
            _lab.RunProgramInKernel("nft", rule.Split(' ')).EnsureSuccess();
    }

    private static void Run(string file, params string[] args) => LabProcess.Run(file, args).EnsureSuccess();

    public void Dispose()
    {
        if (File.Exists(Path.Combine("/var/run/netns", TargetNamespace)))
            try { LabProcess.Run("ip", ["netns", "del", TargetNamespace], TimeSpan.FromSeconds(30)); } catch (Exception) { }
    }
}
