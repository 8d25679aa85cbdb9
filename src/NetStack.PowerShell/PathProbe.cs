using System.Management.Automation;
using NetStack.Icmp;

namespace NetStack.PowerShell;

/// <summary>One traceroute probe (Test-StackConnection -Traceroute), shaped like Test-Connection -Traceroute's TraceStatus.</summary>
public sealed class StackTraceHop
{
    /// <summary>The TTL the probe was sent with.</summary>
    public int Hop { get; init; }
    /// <summary>Who answered (the hop's address; no reverse lookup is made); null when nobody did.</summary>
    public string? Hostname { get; init; }
    /// <summary>Which of the hop's probes this is (1 to 3).</summary>
    public int Ping { get; init; }
    /// <summary>The probe's own round trip to the answer, in milliseconds; 0 when it timed out.</summary>
    public double Latency { get; init; }
    /// <summary>TtlExpired from a router on the way, Success from the target, TimedOut for silence, or an unreachable status.</summary>
    public PingStatus Status { get; init; }
    /// <summary>The stack's address.</summary>
    public string Source { get; init; } = "";
    /// <summary>The target as given (a name or an address).</summary>
    public string Target { get; init; } = "";
    /// <summary>What the target resolved to.</summary>
    public string TargetAddress { get; init; } = "";
    public string? HopAddress { get; init; }
    public string Stack { get; init; } = "";
}

/// <summary>What path-MTU discovery found (Test-StackConnection -MtuSize), shaped like Test-Connection -MtuSize's PingMtuStatus.</summary>
public sealed class StackMtuResult
{
    public string Source { get; init; } = "";
    /// <summary>The target as given.</summary>
    public string Destination { get; init; } = "";
    public string Address { get; init; } = "";
    /// <summary>The largest datagram (IP header included) that reached the target with DF set; 0 when none did.</summary>
    public int MtuSize { get; init; }
    public PingStatus Status { get; init; }
    /// <summary>The round trip of the probe of MtuSize bytes, in milliseconds.</summary>
    public double Latency { get; init; }
    /// <summary>The router that said "fragmentation needed" (ICMP 3/4), if one did.</summary>
    public string? ReportedBy { get; init; }
    /// <summary>Every DF echo sent: its size and outcome (e.g. "1500 PacketTooBig (next hop 1400)", "1400 Success").</summary>
    public string[] Probes { get; init; } = [];
    public string Stack { get; init; } = "";
}

/// <summary>Traceroute and path-MTU discovery for Test-StackConnection, over the stack's core (Icmp/Traceroute, Icmp/PathMtuDiscovery).</summary>
internal static class PathProbe
{
    /// <summary>Probes sent with each TTL, as traceroute and Test-Connection send.</summary>
    public const int ProbesPerHop = 3;

    /// <summary>
    /// Writes each probe's result as it comes (or, with <paramref name="quiet"/>, one bool: whether the target answered).
    /// Ctrl+C ends the wait at once; the probe in flight ends by its own timeout on the stack.
    /// </summary>
    public static void Trace(NetStackCmdlet cmdlet, StackInstance stack, string name, Ipv4Address address, int maxHops, TimeSpan timeout, bool quiet)
    {
        var options = new TraceRouteOptions { MaxHops = maxHops, ProbesPerHop = ProbesPerHop, Timeout = timeout };
        var probes = stack.Core.TraceRouteAsync(address, options, cmdlet.StopToken).GetAsyncEnumerator(cmdlet.StopToken);
        var reached = false;
        var progressId = Math.Abs(name.GetHashCode() % 1000) + 1;
        var activity = $"Test-StackConnection -Traceroute {name}";
        var next = (Hop: 1, Probe: 1);
        var finished = false;
        try
        {
            while (true)
            {
                cmdlet.WriteProgress(new ProgressRecord(progressId, activity, $"Hop {next.Hop} of at most {maxHops}, probe {next.Probe}")
                { PercentComplete = Math.Min(100, (next.Hop - 1) * 100 / maxHops) });
                var more = false;
                if (!cmdlet.TryStack(() => more = cmdlet.Await(stack, () => probes.MoveNextAsync().AsTask()), name) || !more) break;
                var p = probes.Current;
                reached |= p.Status == PingStatus.Success;
                next = p.Probe < ProbesPerHop ? (p.Hop, p.Probe + 1) : (p.Hop + 1, 1);
                if (quiet) continue;
                var hop = p.Address?.ToString();
                cmdlet.WriteObject(new StackTraceHop
                {
                    Hop = p.Hop, Ping = p.Probe, Hostname = hop, HopAddress = hop, Status = p.Status,
                    Latency = p.Status == PingStatus.TimedOut ? 0 : Math.Round(p.RoundTripTime.TotalMilliseconds, 3),
                    Source = stack.IPAddress, Target = name, TargetAddress = address.ToString(), Stack = stack.Name,
                });
            }
            finished = true;
        }
        finally
        {
            // After Ctrl+C a MoveNext may still be pending (its probe waits for its timeout): the enumerator is left to it.
            if (finished) probes.DisposeAsync().AsTask().GetAwaiter().GetResult();
        }
        cmdlet.WriteProgress(new ProgressRecord(progressId, activity, "Done") { RecordType = ProgressRecordType.Completed });
        if (quiet) cmdlet.WriteObject(reached);
    }

    /// <summary>
    /// Finds the path MTU and writes it (with <paramref name="quiet"/>: just the size, 0 when nothing got through); when no
    /// size got through, a non-terminating error says why.
    /// </summary>
    public static void Mtu(NetStackCmdlet cmdlet, StackInstance stack, string name, Ipv4Address address, TimeSpan timeout, bool quiet)
    {
        PathMtuResult? result = null;
        if (!cmdlet.TryStack(() => result = cmdlet.Await(stack, () => stack.Core.DiscoverPathMtuAsync(address, timeout, cmdlet.StopToken)), name) || result is null)
        {
            if (quiet) cmdlet.WriteObject(0);
            return;
        }
        if (quiet) cmdlet.WriteObject(result.Mtu);
        else if (result.Status == PingStatus.Success)
            cmdlet.WriteObject(new StackMtuResult
            {
                Source = stack.IPAddress, Destination = name, Address = address.ToString(), MtuSize = result.Mtu, Status = result.Status,
                Latency = Math.Round(result.RoundTripTime.TotalMilliseconds, 3),
                ReportedBy = result.Probes.FirstOrDefault(p => p.Status == PingStatus.PacketTooBig && p.ReportedBy is not null)?.ReportedBy?.ToString(),
                Probes = result.Probes.Select(Describe).ToArray(), Stack = stack.Name,
            });
        else
            cmdlet.WriteError(new ErrorRecord(new StackException(result.Status == PingStatus.TimedOut ? StackError.TimedOut : StackError.HostUnreachable,
                    $"Path MTU to {name} ({address}): no echo request got an answer, at any size ({string.Join(", ", result.Probes.Select(Describe))}). " +
                    "Check that the target answers ping (Test-StackConnection without -MtuSize)."),
                result.Status == PingStatus.TimedOut ? "TimedOut" : result.Status.ToString(),
                result.Status == PingStatus.TimedOut ? ErrorCategory.OperationTimeout : ErrorCategory.ConnectionError, name));
    }

    private static string Describe(PathMtuProbe p) =>
        p.Status == PingStatus.PacketTooBig && p.NextHopMtu > 0 ? $"{p.Size} {p.Status} (next hop {p.NextHopMtu})" : $"{p.Size} {p.Status}";
}
