namespace NetStack.Icmp;

/// <summary>One probe of a path-MTU discovery: the datagram size tried (IP header included) and what came back.</summary>
public sealed record PathMtuProbe(int Size, PingStatus Status, int NextHopMtu, Ipv4Address? ReportedBy, TimeSpan RoundTripTime);

/// <summary>
/// What path-MTU discovery found: <paramref name="Mtu"/>, the largest datagram (IP header included) that reached the
/// target with DF set and was answered (0 when none was); <paramref name="Status"/> Success then, otherwise what the
/// last probe met. <paramref name="Probes"/>: every probe, in order.
/// </summary>
public sealed record PathMtuResult(Ipv4Address Target, int Mtu, PingStatus Status, IReadOnlyList<PathMtuProbe> Probes)
{
    /// <summary>The round trip of the probe that found the answer (the last that got through).</summary>
    public TimeSpan RoundTripTime => Probes.LastOrDefault(p => p.Status == PingStatus.Success)?.RoundTripTime ?? TimeSpan.Zero;
}

/// <summary>
/// Path-MTU discovery with echo requests that carry DF (RFC 1191), as Test-Connection -MtuSize does: start at our own
/// MTU; a router's "fragmentation needed" (ICMP 3/4) names its next-hop MTU, which is tried next (a claim, checked by
/// that probe); without a usable MTU in it (routers before RFC 1191 send 0), or when a probe is met by silence (a
/// black hole that drops DF datagrams without a word, or loss), binary search between the largest size that got
/// through and the smallest that did not. Silence at the first size sends the next probe at the minimum of 68 bytes
/// (RFC 791), so a target that does not answer at all costs two timeouts, not eleven. Any other error (unreachable)
/// ends the discovery. Calls only the probe it is given.
/// </summary>
public static class PathMtuDiscovery
{
    /// <summary>Every IPv4 link carries 68-byte datagrams unfragmented (RFC 791).</summary>
    public const int MinimumMtu = 68;
    /// <summary>IP header (20) and ICMP echo header (8): a probe of size S carries S - 28 bytes of data.</summary>
    public const int ProbeOverhead = 28;

    /// <param name="probe">Sends one DF echo request with the given data length and returns its outcome.</param>
    public static async Task<PathMtuResult> RunAsync(Ipv4Address target, int linkMtu, Func<int, CancellationToken, Task<PingReply>> probe,
        CancellationToken cancellationToken = default)
    {
        if (linkMtu < MinimumMtu) throw new StackException(StackError.InvalidArgument, $"The link MTU {linkMtu} is below IPv4's minimum of {MinimumMtu}.");
        var probes = new List<PathMtuProbe>();
        // Every size up to passed got through (0: none yet); no size from failed up did.
        int passed = 0, failed = linkMtu + 1, size = linkMtu;
        var status = PingStatus.TimedOut;
        while (true)
        {
            cancellationToken.ThrowIfCancellationRequested();
            var reply = await probe(size - ProbeOverhead, cancellationToken).ConfigureAwait(false);
            probes.Add(new PathMtuProbe(size, reply.Status, reply.NextHopMtu, reply.ReportedBy, reply.RoundTripTime));
            status = reply.Status;
            int? hint = null;
            switch (reply.Status)
            {
                case PingStatus.Success:
                    passed = size;
                    break;
                case PingStatus.PacketTooBig:
                    failed = size;
                    // RFC 1191: nothing above the router's next-hop MTU passes it.
                    if (reply.NextHopMtu >= MinimumMtu && reply.NextHopMtu < size)
                    {
                        failed = reply.NextHopMtu + 1;
                        hint = reply.NextHopMtu;
                    }
                    break;
                case PingStatus.TimedOut:
                    failed = size;
                    if (passed == 0 && probes.Count == 1 && size > MinimumMtu) hint = MinimumMtu; // does it answer at all?
                    break;
                default:
                    return new PathMtuResult(target, passed, reply.Status, probes);
            }
            if (failed - passed <= 1 || failed <= MinimumMtu) break;
            size = hint is { } h && h > passed && h < failed ? h : Math.Max(MinimumMtu, (passed + failed) / 2);
        }
        return new PathMtuResult(target, passed, passed > 0 ? PingStatus.Success : status, probes);
    }
}
