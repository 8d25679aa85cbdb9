using System.Runtime.CompilerServices;

namespace NetStack.Icmp;

/// <summary>Settings of a traceroute (<see cref="Traceroute"/>).</summary>
public sealed record TraceRouteOptions
{
    /// <summary>The highest TTL tried (traceroute's and tracert's default: 30).</summary>
    public int MaxHops { get; init; } = 30;
    /// <summary>Probes sent with each TTL (traceroute's default: 3).</summary>
    public int ProbesPerHop { get; init; } = 3;
    /// <summary>How long each probe waits for its answer.</summary>
    public TimeSpan Timeout { get; init; } = TimeSpan.FromSeconds(3);
    /// <summary>Bytes of echo data in each probe.</summary>
    public int PayloadSize { get; init; } = 32;

    internal TraceRouteOptions Validated()
    {
        if (MaxHops is < 1 or > 255) throw new StackException(StackError.InvalidArgument, $"MaxHops {MaxHops} is out of range; use 1 to 255.");
        if (ProbesPerHop is < 1 or > 10) throw new StackException(StackError.InvalidArgument, $"ProbesPerHop {ProbesPerHop} is out of range; use 1 to 10.");
        if (Timeout <= TimeSpan.Zero) throw new StackException(StackError.InvalidArgument, "Timeout must be positive.");
        return this;
    }
}

/// <summary>
/// One traceroute probe's outcome: the hop (the TTL it was sent with), which of that hop's probes it was, who answered
/// (null when nobody did) and how: <see cref="PingStatus.TtlExpired"/> from a router on the way,
/// <see cref="PingStatus.Success"/> from the target, <see cref="PingStatus.TimedOut"/> for silence, or an unreachable
/// status. <paramref name="RoundTripTime"/> is the probe's own round trip, to the answer (or to the timeout).
/// </summary>
public sealed record TraceProbe(int Hop, int Probe, Ipv4Address Target, Ipv4Address? Address, PingStatus Status, TimeSpan RoundTripTime);

/// <summary>
/// Traceroute (RFC 1393's background; the method of Van Jacobson's traceroute and Windows' tracert): echo requests with
/// TTL 1, 2, 3... Each router that finds the TTL run out answers with ICMP time exceeded (RFC 792, RFC 1812 5.3.1),
/// which the ICMP layer hands to the probe that caused it (matched by the quoted echo identifier, sequence and
/// destination); the target answers with an echo reply. Echo probes, as Test-Connection -Traceroute and tracert send,
/// rather than classic traceroute's UDP to high ports: the answer from the target is then the same kind of message as
/// from any ping, and no firewall port guessing is involved. Probes go one at a time, so results stream in order.
/// The trace stops after the hop where the target answered or where a router said the target cannot be reached, or at
/// <see cref="TraceRouteOptions.MaxHops"/>. Calls only the probe it is given: the stack sends, this decides.
/// </summary>
public static class Traceroute
{
    public static async IAsyncEnumerable<TraceProbe> RunAsync(Ipv4Address target, TraceRouteOptions options,
        Func<byte, CancellationToken, Task<PingReply>> probe, [EnumeratorCancellation] CancellationToken cancellationToken = default)
    {
        options.Validated();
        for (int hop = 1; hop <= options.MaxHops; hop++)
        {
            var last = false;
            for (int i = 1; i <= options.ProbesPerHop; i++)
            {
                cancellationToken.ThrowIfCancellationRequested();
                var reply = await probe((byte)hop, cancellationToken).ConfigureAwait(false);
                yield return new TraceProbe(hop, i, target, Answerer(reply), reply.Status, reply.RoundTripTime);
                last |= EndsTrace(reply.Status);
            }
            if (last) yield break;
        }
    }

    /// <summary>Who answered a probe: the target for a reply, the ICMP error's sender otherwise, nobody for silence or a local failure.</summary>
    public static Ipv4Address? Answerer(PingReply reply) => reply.Status switch
    {
        PingStatus.Success => reply.Address,
        PingStatus.TimedOut => null,
        _ => reply.ReportedBy,
    };

    /// <summary>Whether a probe's outcome ends the trace: the target answered, or it cannot be reached (further TTLs would not help).</summary>
    public static bool EndsTrace(PingStatus status) => status is not (PingStatus.TimedOut or PingStatus.TtlExpired);
}
