namespace NetStack.Icmp;

/// <summary>How a ping ended.</summary>
public enum PingStatus
{
    Success,
    TimedOut,
    HostUnreachable,
    NetworkUnreachable,
    DestinationUnreachable,
    /// <summary>A router on the way said the TTL ran out (ICMP time exceeded, code 0): traceroute's answer from a hop.</summary>
    TtlExpired,
    /// <summary>
    /// Too big to pass with DF set: a router said "fragmentation needed" (ICMP 3/4, RFC 1191; its next-hop MTU in
    /// <see cref="PingReply.NextHopMtu"/>), or it could not even leave our own link (NextHopMtu is then our MTU).
    /// </summary>
    PacketTooBig,
}

/// <summary>
/// One echo request's outcome. <paramref name="ReportedBy"/>: who sent the ICMP error that ended it (a router, or the
/// target); null for a reply, a timeout, or a failure found locally. <paramref name="NextHopMtu"/>: for
/// <see cref="PingStatus.PacketTooBig"/>, the MTU the router named (0 if it named none, as routers before RFC 1191 do).
/// </summary>
public sealed record PingReply(Ipv4Address Address, PingStatus Status, TimeSpan RoundTripTime, byte Ttl, int Bytes, ushort Sequence,
    Ipv4Address? ReportedBy = null, int NextHopMtu = 0);
