namespace NetStack.Sockets;

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

/// <summary>
/// Base of every socket: the stack's control record, named by a descriptor <see cref="Id"/> unique within the
/// stack. Methods on derived classes are the thread-safe public API; their state lives on the loop.
/// </summary>
public abstract class StackSocket
{
    protected StackSocket(NetworkStack stack, SocketProtocol protocol)
    {
        Stack = stack;
        Protocol = protocol;
        Id = stack.Sockets.Register(this);
    }

    public NetworkStack Stack { get; }
    public int Id { get; }
    public SocketProtocol Protocol { get; }

    private volatile bool _closed;
    private volatile bool _closedByUser;

    /// <summary>
    /// True once the socket is closed: by its user (Close, Abort, Dispose, StopAsync: true as soon as that call
    /// returns, though the protocol may still finish in the background, as a kernel socket's FIN and TIME-WAIT do)
    /// or by the stack (published by the loop when the connection ends, by the peer's reset, a timeout, the
    /// orderly close completing, or the stack stopping). A closed socket takes no more options. Any thread.
    /// </summary>
    public bool IsClosed => _closed;

    /// <summary>True once the user closed the socket; false while only the stack ended it (a reset, a timeout). Any thread.</summary>
    public bool IsClosedByUser => _closedByUser;

    /// <summary>The loop ended the socket (see <see cref="IsClosed"/>); never reopened.</summary>
    protected void PublishClosed() => _closed = true;

    /// <summary>The user's closing call, on the caller's thread, before it posts the close to the loop.</summary>
    protected void PublishClosedByUser()
    {
        _closedByUser = true;
        _closed = true;
    }

    /// <summary>Snapshot row for the netstat view. Loop only.</summary>
    internal abstract ConnectionInfo Snapshot(TimeSpan now);

    /// <summary>
    /// This socket's netstat row (for TCP with its internals: Retransmits, Srtt...), taken on the loop. Works after
    /// the socket has closed too (the last state it had), when Get-StackConnection no longer lists it. Any thread.
    /// </summary>
    public Task<ConnectionInfo> GetInfoAsync() => Stack.CallAsync(now => Snapshot(now));

    /// <summary>Releases the descriptor (the socket can no longer be looked up by Id) and publishes it closed.</summary>
    protected void ReleaseDescriptor()
    {
        PublishClosed();
        Stack.Sockets.Unregister(this);
    }
}

/// <summary>The stack's descriptor table. Thread-safe: sockets register from any thread, lookups come from any thread.</summary>
internal sealed class SocketTable
{
    private readonly Dictionary<int, StackSocket> _byId = new();
    private readonly object _gate = new();
    private int _nextId = 3; // 0-2 look like stdio descriptors; start after them, as a kernel would

    public int Register(StackSocket s)
    {
        lock (_gate)
        {
            var id = _nextId++;
            _byId[id] = s;
            return id;
        }
    }

    public void Unregister(StackSocket s)
    {
        lock (_gate) _byId.Remove(s.Id);
    }

    public StackSocket? Find(int id)
    {
        lock (_gate) return _byId.TryGetValue(id, out var s) ? s : null;
    }

    public StackSocket[] All()
    {
        lock (_gate) return _byId.Values.OrderBy(s => s.Id).ToArray();
    }
}
