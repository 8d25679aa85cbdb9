using System.Text.RegularExpressions;

// One source file compiled into both tests/Stack.Tests (Lab/KernelLab.cs) and bench/NetStack.Bench (BenchLab.cs) as
// a linked file, so the kernel lab's set-up steps exist once and neither project depends on the other.
namespace NetStack.LabSetup;

/// <summary>
/// The kernel lab's network (docs/lab.md, LAB.md): namespace K with k0 = 192.0.2.1/24 and namespace U with u0 (no
/// kernel address: our stack opens it), joined by a veth pair created straight inside the namespaces, IPv6 off on
/// both ends, TX checksum offload off on k0 (the kernel's frames carry finished checksums; this also turns TSO off).
/// </summary>
internal static class VethLab
{
    public const string KernelInterface = "k0";
    public const string StackInterface = "u0";
    public static readonly Ipv4Address KernelAddress = new(192, 0, 2, 1);
    public static readonly Ipv4Address StackAddress = new(192, 0, 2, 2);
    public const int PrefixLength = 24;

    /// <summary>
    /// NETSTACK_BENCH_TAG (a lower-case letter, then lower-case letters and digits) marks the namespaces of one user of a
    /// shared machine: "&lt;tag&gt;-", put after the prefix of every namespace the lab and the benchmark create
    /// (nsk-&lt;tag&gt;-&lt;pid&gt;-&lt;n&gt;, nsbk-&lt;tag&gt;-&lt;pid&gt;); "" when unset or not of that form.
    /// </summary>
    public static string TagPrefix() =>
        Environment.GetEnvironmentVariable("NETSTACK_BENCH_TAG") is { Length: > 0 } t && char.IsAsciiLetterLower(t[0])
        && t.All(c => char.IsAsciiLetterLower(c) || char.IsAsciiDigit(c)) ? t + "-" : "";

    /// <summary>The pattern of <see cref="TagPrefix"/> in a namespace name (optional), for the leftover patterns.</summary>
    public const string TagPattern = "(?:[a-z][a-z0-9]*-)?";

    /// <summary>Runs a program (no shell) to completion and throws if it fails: each project brings its own runner.</summary>
    public delegate void Run(string file, params string[] arguments);

    /// <summary>
    /// Creates K and U and the veth pair between them. <paramref name="txOffOnStackSide"/> also turns TX offload off on
    /// u0 (the benchmark: every frame on the wire MTU-sized whichever side sends). On failure the caller deletes the
    /// namespaces (its Dispose).
    /// </summary>
    public static void Create(string k, string u, Run run, bool txOffOnStackSide = false)
    {
        run("ip", "netns", "add", k);
        run("ip", "netns", "add", u);
        // Create the pair straight inside the namespaces: the host's own interface names are never touched.
        run("ip", "link", "add", KernelInterface, "netns", k, "type", "veth", "peer", "name", StackInterface, "netns", u);
        foreach (var (ns, dev) in new[] { (k, KernelInterface), (u, StackInterface) })
        {
            run("ip", "netns", "exec", ns, "sysctl", "-q", "-w", "net.ipv6.conf.all.disable_ipv6=1", "net.ipv6.conf.default.disable_ipv6=1", $"net.ipv6.conf.{dev}.disable_ipv6=1");
            run("ip", "-n", ns, "link", "set", "lo", "up");
        }
        run("ip", "-n", k, "addr", "add", $"{KernelAddress}/{PrefixLength}", "dev", KernelInterface);
        run("ip", "-n", k, "link", "set", KernelInterface, "up");
        run("ip", "-n", u, "link", "set", StackInterface, "up");
        run("ip", "netns", "exec", k, "ethtool", "-K", KernelInterface, "tx", "off");
        if (txOffOnStackSide) run("ip", "netns", "exec", u, "ethtool", "-K", StackInterface, "tx", "off");
    }

    /// <summary>
    /// Deletes namespaces whose name matches <paramref name="ours"/> (group 1: the owning process id) when that process
    /// no longer exists: what a crashed (SIGKILLed) run left behind. Returns the names deleted.
    /// </summary>
    public static IReadOnlyList<string> DeleteLeftovers(Regex ours, Func<string, bool> delete)
    {
        var deleted = new List<string>();
        if (!Directory.Exists("/var/run/netns")) return deleted;
        foreach (var path in Directory.GetFiles("/var/run/netns"))
        {
            var name = Path.GetFileName(path);
            var m = ours.Match(name);
            if (!m.Success || Directory.Exists($"/proc/{m.Groups[1].Value}")) continue;
            try
            {
                if (delete(name)) deleted.Add(name);
            }
            catch (Exception) { /* the next run tries again */ }
        }
        return deleted;
    }

    /// <summary>The full path of <paramref name="name"/> on PATH or in the usual sbin/bin folders, or null.</summary>
    public static string? FindProgram(string name) =>
        (Environment.GetEnvironmentVariable("PATH") ?? "").Split(':', StringSplitOptions.RemoveEmptyEntries)
            .Concat(["/usr/sbin", "/sbin", "/usr/bin", "/bin"])
            .Select(d => Path.Combine(d, name)).FirstOrDefault(File.Exists);
}
