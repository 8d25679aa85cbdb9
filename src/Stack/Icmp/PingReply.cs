namespace NetStack.Icmp;

/// <summary>How a ping ended.</summary>
public enum PingStatus
{
    Success,
    TimedOut,
    HostUnreachable,
    NetworkUnreachable,
    DestinationUnreachable,
    TtlExpired,
}

/// <summary>One echo request's outcome.</summary>
public sealed record PingReply(Ipv4Address Address, PingStatus Status, TimeSpan RoundTripTime, byte Ttl, int Bytes, ushort Sequence, Ipv4Address? ReportedBy = null);
