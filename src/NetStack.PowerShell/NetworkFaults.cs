using System.Collections;
using System.Globalization;
using System.Management.Automation;
using NetStack.Link;

namespace NetStack.PowerShell;

/// <summary>
/// The -Simulate settings of a virtual network (Start-Stack -Simulate, Set-StackNetwork -Simulate) and the
/// <see cref="WireFaults"/> they stand for. Every frame the network delivers is subject to them.
/// </summary>
internal static class NetworkFaults
{
    private const double MaxMs = 10_000;

    /// <summary>The keys, their ranges and what they mean (also the text of the error for a wrong key).</summary>
    public static readonly (string Key, double Max, string Meaning)[] Keys =
    {
        ("Loss", 1, "probability (0 to 1) that a frame is lost, e.g. 0.05 for 5%"),
        ("DelayMs", MaxMs, "one-way delay added to every frame, in milliseconds"),
        ("JitterMs", MaxMs, "a further random delay of 0 to this many milliseconds per frame (frames may overtake each other)"),
        ("Reorder", 1, "probability that a frame is held back by up to ReorderMs, so later frames pass it"),
        ("ReorderMs", MaxMs, "how long Reorder holds a frame back at most (default 5)"),
        ("Duplicate", 1, "probability that a frame arrives twice"),
        ("Corrupt", 1, "probability that one bit of a frame is flipped"),
        ("RateMbps", 100_000, "link rate in megabits per second (0: unlimited)"),
    };

    public static string KeyList => string.Join(", ", Keys.Select(k => k.Key));

    /// <summary>
    /// <paramref name="current"/> with the settings of <paramref name="table"/> applied; terminates the command with
    /// InvalidSimulation (InvalidArgument) naming the key and the accepted keys or range when one is wrong.
    /// </summary>
    public static WireFaults Parse(PSCmdlet cmdlet, Hashtable table, WireFaults current)
    {
        var v = ToSettings(current);
        foreach (DictionaryEntry e in table)
        {
            var key = e.Key?.ToString() ?? "";
            var match = Keys.Where(k => string.Equals(k.Key, key, StringComparison.OrdinalIgnoreCase)).ToArray();
            if (match.Length == 0)
                Fail(cmdlet, key, $"'{key}' is not a -Simulate setting. Use {KeyList}, e.g. @{{ Loss = 0.05; DelayMs = 20 }}.");
            var spec = match[0];
            var raw = e.Value is PSObject p ? p.BaseObject : e.Value;
            double value = double.NaN;
            var isNumber = raw is not (bool or null) && double.TryParse(Convert.ToString(raw, CultureInfo.InvariantCulture), NumberStyles.Float, CultureInfo.InvariantCulture, out value);
            if (!isNumber || double.IsNaN(value) || value < 0 || value > spec.Max)
                Fail(cmdlet, spec.Key, $"-Simulate {spec.Key} = '{raw}' is out of range: give a number from 0 to {spec.Max.ToString(CultureInfo.InvariantCulture)} ({spec.Meaning}).");
            v[spec.Key] = value;
        }
        if (v["Reorder"] > 0 && v["JitterMs"] > 0)
            Fail(cmdlet, "JitterMs", "-Simulate JitterMs and Reorder cannot both be set: jitter is the network's reordering applied to every frame. Give one of them (or set the other to 0).");
        return ToFaults(v);
    }

    private static void Fail(PSCmdlet cmdlet, string key, string message) =>
        cmdlet.ThrowTerminatingError(new ErrorRecord(new ArgumentException(message, "Simulate"), "InvalidSimulation", ErrorCategory.InvalidArgument, key));

    /// <summary>The settings a WireFaults stands for (jitter is reordering of every frame, ReorderRate 1).</summary>
    public static Dictionary<string, double> ToSettings(WireFaults f)
    {
        var jitter = f.ReorderRate >= 1;
        return new Dictionary<string, double>(StringComparer.OrdinalIgnoreCase)
        {
            ["Loss"] = f.LossRate,
            ["DelayMs"] = f.Delay.TotalMilliseconds,
            ["JitterMs"] = jitter ? f.ReorderDelay.TotalMilliseconds : 0,
            ["Reorder"] = jitter ? 0 : f.ReorderRate,
            ["ReorderMs"] = jitter ? WireFaults.None.ReorderDelay.TotalMilliseconds : f.ReorderDelay.TotalMilliseconds,
            ["Duplicate"] = f.DuplicateRate,
            ["Corrupt"] = f.CorruptRate,
            ["RateMbps"] = f.RateBitsPerSecond / 1e6,
        };
    }

    private static WireFaults ToFaults(Dictionary<string, double> v)
    {
        var jitter = v["JitterMs"] > 0;
        return new WireFaults
        {
            LossRate = v["Loss"],
            Delay = TimeSpan.FromMilliseconds(v["DelayMs"]),
            ReorderRate = jitter ? 1 : v["Reorder"],
            ReorderDelay = TimeSpan.FromMilliseconds(jitter ? v["JitterMs"] : v["ReorderMs"]),
            DuplicateRate = v["Duplicate"],
            CorruptRate = v["Corrupt"],
            RateBitsPerSecond = (long)(v["RateMbps"] * 1e6),
        };
    }

    /// <summary>"Loss 5%, DelayMs 20" or "none": the settings that differ from a clean network.</summary>
    public static string Describe(WireFaults f)
    {
        var s = ToSettings(f);
        var clean = ToSettings(WireFaults.None);
        var parts = Keys.Where(k => s[k.Key] != clean[k.Key] && !(k.Key == "ReorderMs" && s["Reorder"] == 0))
            .Select(k => k.Max == 1 ? $"{k.Key} {s[k.Key] * 100:0.##}%" : $"{k.Key} {s[k.Key]:0.###}");
        var text = string.Join(", ", parts);
        return text.Length == 0 ? "none" : text;
    }
}

/// <summary>A virtual network (Get-StackNetwork): its stacks, its service host, its faults and what the wire did.</summary>
public sealed class StackNetworkInfo
{
    internal StackNetworkInfo(VirtualNetwork net, StackInstance[] stacks, StackInstance? host)
    {
        Name = net.Name;
        Stacks = stacks.Select(s => s.Name).ToArray();
        ServiceHost = host?.Name;
        ServiceHostAddress = host?.IPAddress;
        ServiceDomain = host is null ? null : EmbeddedLab.DomainOf(host);
        var service = host is null ? null : EmbeddedLab.ServiceOf(host);
        DhcpPool = service?.DhcpPool;
        DhcpLeases = service is null || host?.NetworkStack is not { } hostStack ? Array.Empty<StackDhcpServerLease>()
            : service.DhcpLeases.Select(l => new StackDhcpServerLease(l, hostStack.Clock.Now)).ToArray();
        var f = net.Wire.Faults;
        var s = NetworkFaults.ToSettings(f);
        Loss = s["Loss"]; DelayMs = s["DelayMs"]; JitterMs = s["JitterMs"]; Reorder = s["Reorder"]; ReorderMs = s["ReorderMs"];
        Duplicate = s["Duplicate"]; Corrupt = s["Corrupt"]; RateMbps = s["RateMbps"];
        Faults = NetworkFaults.Describe(f);
        var w = net.Wire;
        FramesCarried = Interlocked.Read(ref w.FramesCarried);
        FramesLost = Interlocked.Read(ref w.FramesLost);
        FramesDuplicated = Interlocked.Read(ref w.FramesDuplicated);
        FramesReordered = Interlocked.Read(ref w.FramesReordered);
        FramesCorrupted = Interlocked.Read(ref w.FramesCorrupted);
        FramesOverflowed = Interlocked.Read(ref w.FramesOverflowed);
    }

    public string Name { get; }
    public string[] Stacks { get; }
    public string? ServiceHost { get; }
    public string? ServiceHostAddress { get; }
    public string? ServiceDomain { get; }
    /// <summary>The addresses the service host's DHCP server hands out, e.g. "192.0.2.100-192.0.2.199".</summary>
    public string? DhcpPool { get; }
    /// <summary>The addresses of the pool it has offered, leased, released or seen declined.</summary>
    public StackDhcpServerLease[] DhcpLeases { get; }
    /// <summary>The settings that differ from a clean network, e.g. "Loss 5%, DelayMs 20", or "none".</summary>
    public string Faults { get; }
    public double Loss { get; }
    public double DelayMs { get; }
    public double JitterMs { get; }
    public double Reorder { get; }
    public double ReorderMs { get; }
    public double Duplicate { get; }
    public double Corrupt { get; }
    public double RateMbps { get; }
    public long FramesCarried { get; }
    public long FramesLost { get; }
    public long FramesDuplicated { get; }
    public long FramesReordered { get; }
    public long FramesCorrupted { get; }
    public long FramesOverflowed { get; }

    /// <summary>The settings as a -Simulate hashtable (feed it to Set-StackNetwork or Start-Stack on another network).</summary>
    public Hashtable Simulate => new()
    {
        ["Loss"] = Loss, ["DelayMs"] = DelayMs, ["JitterMs"] = JitterMs, ["Reorder"] = Reorder, ["ReorderMs"] = ReorderMs,
        ["Duplicate"] = Duplicate, ["Corrupt"] = Corrupt, ["RateMbps"] = RateMbps,
    };
}
