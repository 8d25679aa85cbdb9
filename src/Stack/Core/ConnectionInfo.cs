namespace NetStack;

// The values the netstat view and the socket API share with the transports that fill them: TCP's snapshot and UDP's
// datagrams use them, so they sit below both (the socket API above the transports, NetStack.Sockets, is never named by
// a protocol layer: LayeringTests).

/// <summary>Transport of a socket.</summary>
public enum SocketProtocol { Tcp, Udp }

/// <summary>An address and port, as a value.</summary>
public readonly record struct IpEndPoint(Ipv4Address Address, ushort Port)
{
    public override string ToString() => $"{Address}:{Port}";
}

/// <summary>
/// One row of the netstat-like view (Get-StackConnection): every TCP connection and UDP endpoint, taken on
/// the loop. TCP rows fill the internals; UDP rows leave them null.
/// </summary>
public sealed record ConnectionInfo
{
    public required int Id { get; init; }
    public required SocketProtocol Protocol { get; init; }
    public required Ipv4Address LocalAddress { get; init; }
    public required ushort LocalPort { get; init; }
    public required Ipv4Address RemoteAddress { get; init; }
    public required ushort RemotePort { get; init; }
    /// <summary>TCP: the state's name as Get-NetTCPConnection gives it (Listen, SynSent, Established, TimeWait…). UDP: Bound.</summary>
    public required string State { get; init; }
    /// <summary>Bytes received and not yet read by the user.</summary>
    public long RecvQ { get; init; }
    /// <summary>TCP: bytes not yet acknowledged by the peer (sent or waiting to be sent). UDP: 0.</summary>
    public long SendQ { get; init; }
    public TimeSpan TimeInState { get; init; }
    public TcpInternals? Tcp { get; init; }
}

/// <summary>A TCP connection's internals at snapshot time (RFC 9293 names).</summary>
public sealed record TcpInternals
{
    public uint Iss { get; init; }
    public uint Irs { get; init; }
    public uint SndUna { get; init; }
    public uint SndNxt { get; init; }
    public uint SndWnd { get; init; }
    public uint RcvNxt { get; init; }
    public uint RcvWnd { get; init; }
    /// <summary>The receive buffer now (auto-tuning grows it) and the receiver's RTT estimate that paces the tuning.</summary>
    public int RcvBuf { get; init; }
    public TimeSpan RcvRtt { get; init; }
    /// <summary>The send buffer now (it grows with the flight unless the user set it).</summary>
    public int SndBuf { get; init; }
    public uint Cwnd { get; init; }
    public uint Ssthresh { get; init; }
    public TimeSpan Srtt { get; init; }
    public TimeSpan RttVar { get; init; }
    public TimeSpan Rto { get; init; }
    public int Mss { get; init; }
    public int SndWindowScale { get; init; }
    public int RcvWindowScale { get; init; }
    public bool SackPermitted { get; init; }
    public bool Timestamps { get; init; }
    public long Retransmits { get; init; }
    public long BytesSent { get; init; }
    public long BytesReceived { get; init; }
    public long SegmentsSent { get; init; }
    public long SegmentsReceived { get; init; }
    public string CongestionControl { get; init; } = "";
    /// <summary>Loss recovery: "rack" (RACK-TLP with PRR and undo), "sack" (RFC 6675, duplicate ACKs) or "newreno".</summary>
    public string LossRecovery { get; init; } = "";
    /// <summary>"Open", "Recovery" (fast recovery) or "Loss" (after a retransmission timeout).</summary>
    public string RecoveryState { get; init; } = "";
    /// <summary>The windowed minimum RTT and RACK's current reordering window (RFC 8985).</summary>
    public TimeSpan MinRtt { get; init; }
    public TimeSpan ReorderWindow { get; init; }
    /// <summary>This connection's tail loss probes, segments RACK deemed lost, retransmissions shown spurious (D-SACK) and window reductions undone.</summary>
    public long TlpProbes { get; init; }
    public long RackLosses { get; init; }
    public long SpuriousRetransmits { get; init; }
    public long Undos { get; init; }
    /// <summary>The last delivery-rate sample, bytes per second (0 before one).</summary>
    public double DeliveryRate { get; init; }
    /// <summary>The pacing rate the congestion control gives, bytes per second (0: unpaced, as CUBIC and NewReno).</summary>
    public double PacingRate { get; init; }
    /// <summary>BBR's state (Startup, Drain, ProbeBw, ProbeRtt; "" for other algorithms), its bottleneck bandwidth estimate (bytes per second) and its min RTT (10 s filter).</summary>
    public string BbrState { get; init; } = "";
    public double BbrBandwidth { get; init; }
    public TimeSpan BbrMinRtt { get; init; }
}
