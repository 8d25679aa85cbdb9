using NetStack.IPv4;
using NetStack.Sockets;

namespace NetStack.Tcp;

/// <summary>
/// The transmission control block of one connection (RFC 9293 3.3.1) and its state machine. Everything here
/// runs on the loop. Buffers are rings over pooled arrays held only while they hold data; the out-of-order
/// queue is the receive ring itself (data lands at its place in the window, ranges are tracked in a small
/// array), so a segment costs one copy in and one copy out and no allocation. Input is in
/// TcpConnection.Input.cs, output and timers in TcpConnection.Output.cs.
/// </summary>
internal sealed partial class TcpConnection
{
    private static readonly TimeSpan Never = TimeSpan.MaxValue;

    /// <param name="user">Who holds the connection for the user (a TcpSocket), told of state changes; null for a bare connection.</param>
    public TcpConnection(TcpLayer layer, IConnectionUser? user = null)
    {
        Layer = layer;
        User = user;
        var s = layer.Settings;
        SndBuf = new ByteRing(s.SendBufferSize);
        RcvBuf = new ByteRing(s.ReceiveBufferSize);
        Rtt = new RttEstimator(s.InitialRto, s.MinRto, s.MaxRto);
    }

    public readonly TcpLayer Layer;
    public readonly IConnectionUser? User;
    public ConnKey Key;
    public Ipv4Address Remote => new(Key.RemoteAddress);
    public TcpState State { get; private set; }
    private TimeSpan _stateSince;
    /// <summary>Set for connections born from a listener's SYN until the user accepts them.</summary>
    public TcpListener? Listener;
    /// <summary>The local port asked for with Bind (0: pick an ephemeral one at connect).</summary>
    public ushort BoundPort;

    // ---- send sequence space (RFC 9293 3.3.1) ----
    public uint Iss, SndUna, SndNxt, SndWnd, SndWl1, SndWl2;
    /// <summary>Highest sequence number sent; SND.NXT falls back to SND.UNA after a timeout (go-back-N).</summary>
    public uint SndMax;
    /// <summary>Largest window the peer has offered (RFC 5961 5.2, sender SWS avoidance).</summary>
    public uint MaxSndWnd;
    public byte SndWndShift, RcvWndShift;
    // ---- receive sequence space ----
    public uint Irs, RcvNxt;
    /// <summary>RCV.NXT + RCV.WND as last advertised; never moved left (RFC 9293 3.8.6: do not shrink the window).</summary>
    public uint RcvAdvEdge;

    /// <summary>Data bytes from SND.UNA: sent-unacknowledged, then unsent.</summary>
    public readonly ByteRing SndBuf;
    /// <summary>Data in order and unread at [0, Count); out-of-order data beyond, at its offset from RCV.NXT.</summary>
    public readonly ByteRing RcvBuf;
    private SackBlock[]? _ooo;           // received out-of-order ranges, sorted, lazily allocated
    private int _oooCount;
    private int _oooLatest = -1;          // the range holding the latest arrival: first SACK block (RFC 2018 4)

    // ---- negotiated ----
    /// <summary>Data bytes per segment: min(peer's MSS, path MSS) less the options every segment carries.</summary>
    public int SndMss = 536;
    public int PeerMss = 536;
    public int PathMss;
    public bool TsEnabled, SackEnabled, WsEnabled;
    private uint _tsOffset;
    public uint TsRecent;
    public uint LastAckSent;

    // ---- FIN bookkeeping ----
    public bool FinQueued;   // the user shut down sending: a FIN follows the queued data
    public bool FinAcked;
    public bool SynAcked;
    public bool PeerFin;     // FIN received in order
    public bool UserClosed;  // CloseAsync: the user will not read any more

    // ---- RTT and retransmission (RFC 6298) ----
    /// <summary>SRTT, RTTVAR, RTO and its backoff; a struct used in place.</summary>
    public RttEstimator Rtt;
    public int Retries;
    private bool _persisting;

    // ---- congestion control (RFC 5681, 6582, 6675, 9438) ----
    public uint Cwnd, Ssthresh = uint.MaxValue;
    public ICongestionControl Cc = null!;
    public int DupAcks;
    public bool InRecovery;
    public uint Recover;
    /// <summary>The sender's SACK scoreboard (RFC 6675), created at the first SACK block the peer sends.</summary>
    internal SackScoreboard? Scoreboard;

    // ---- ACK policy ----
    private bool _ackNow;
    private bool _ackPending;
    private int _unackedSegments;
    private bool _ackAtBatchEnd;              // an ACK is owed; sent once when the receive batch ends (TcpLayer.FlushPendingAcks)
    internal bool InBatchAckList;             // linked into the layer's list of connections owing a batch-end ACK
    internal TcpConnection? NextBatchAck;     // intrusive link of that list: no allocation per batch

    // ---- timers (absolute deadlines; Never when off) ----
    public TimeSpan RtoAt = Never, DelAckAt = Never, KeepAt = Never, StateAt = Never;
    /// <summary>The deadline of this connection's live entry in the layer's heap.</summary>
    public TimeSpan HeapAt = Never;
    public TimeSpan NextDeadline
    {
        get
        {
            var d = RtoAt;
            if (DelAckAt < d) d = DelAckAt;
            if (KeepAt < d) d = KeepAt;
            if (StateAt < d) d = StateAt;
            return d;
        }
    }
    private int _keepProbes;
    private TimeSpan _synSentAt;

    // ---- user ----
    public bool NoDelay;
    public bool Keepalive;
    public StackError Error;
    private string? _errorMessage;
    public StackError SoftError;
    /// <summary>The user's waiting connect, send, receive and close.</summary>
    private readonly PendingOperations _pending = new();

    // ---- statistics ----
    public long BytesSent, BytesReceived, SegmentsOut, SegmentsIn, Retransmits;

    private TcpCounters Counters => Layer.Counters;
    private LayerContext Context => Layer.Context;
    private TcpSettings Settings => Layer.Settings;

    // ---------------- state ----------------

    private void SetState(TcpState next, TimeSpan now)
    {
        if (State == next) return;
        var prev = State;
        State = next;
        _stateSince = now;
        User?.OnStateChanged(next);
        Layer.StateLog.Record(new(now, Context.Config.Address, Key.LocalPort, Remote, Key.RemotePort, prev, next, Iss, Irs, RcvWndShift, SndWndShift)); // ladders, relative Seq/Ack
        if (next is TcpState.Established or TcpState.TimeWait or TcpState.Closed || Context.TraceEnabled)
            Context.Trace("Tcp", $"{Describe()} {prev} -> {next}");
        switch (next)
        {
            case TcpState.TimeWait:
                // RFC 9293 3.10.7.4: TIME-WAIT holds the pair for 2 MSL so old duplicates die out.
                RtoAt = DelAckAt = KeepAt = Never;
                StateAt = now + 2 * Settings.Msl;
                SndBuf.Release();
                _pending.CompleteClose();
                break;
            case TcpState.Closed:
                RtoAt = DelAckAt = KeepAt = StateAt = Never;
                Layer.Remove(this);
                SndBuf.Release();
                if (UserClosed || Error != StackError.None) RcvBuf.Release();
                _ooo = null; _oooCount = 0; Scoreboard = null;
                _pending.CompleteClose();
                if (_pending.HasReceive && Error == StackError.None) _pending.CompleteReceive(0);
                User?.OnClosed();
                break;
        }
    }

    /// <summary>Leaves TIME-WAIT early because a new incarnation of the pair is starting.</summary>
    internal void EndTimeWait(TimeSpan now)
    {
        Context.Trace("Tcp", $"{Describe()} TIME-WAIT ended by a new SYN");
        SetState(TcpState.Closed, now);
    }

    internal string Describe() => $"{Context.Config.Address}:{Key.LocalPort}-{Remote}:{Key.RemotePort}";

    private bool Synchronized => State is not (TcpState.Closed or TcpState.Listen or TcpState.SynSent);

    /// <summary>Ends the connection with an error every pending and later operation reports.</summary>
    internal void Fail(StackError error, string message, TimeSpan now)
    {
        if (State == TcpState.Closed && Error != StackError.None) return;
        if (Error == StackError.None) { Error = error; _errorMessage = message; }
        _pending.FailAll(MakeError());
        if (Listener != null && State == TcpState.SynReceived) { Listener.OnHalfOpenGone(); Listener = null; }
        Context.Trace("Tcp", $"{Describe()} failed: {error}: {message}");
        SetState(TcpState.Closed, now);
    }

    private StackException MakeError() => new(Error, _errorMessage ?? Error.ToString());

    /// <summary>The stack is stopping: fail everything without sending.</summary>
    internal void Shutdown(StackException ex)
    {
        Error = ex.Error;
        _errorMessage = ex.Message;
        _pending.FailAll(ex);
        State = TcpState.Closed;
        User?.OnStateChanged(TcpState.Closed);
        SndBuf.Release();
        RcvBuf.Release();
    }

    // ---------------- opening ----------------

    private void InitCommon(TimeSpan now)
    {
        var s = Settings;
        Cc = s.CongestionControl == "newreno" ? new NewRenoCongestionControl() : new CubicCongestionControl();
        PathMss = Layer.Output.PathMss;
        // Our window scale: the smallest shift that lets the receive buffer be advertised (RFC 7323 2.2).
        int shift = 0;
        while (shift < 14 && (RcvBuf.Limit >> shift) > 65535) shift++;
        RcvWndShift = (byte)shift;
        _tsOffset = Layer.InitialSequenceNumber(new ConnKey(Key.RemoteAddress, Key.LocalPort, Key.RemotePort), TimeSpan.Zero);
        _stateSince = now;
    }

    /// <summary>Active open (RFC 9293 3.10.1): picks a port and ISN, sends SYN; the task ends when ESTABLISHED.</summary>
    public Task<bool> Connect(Ipv4Address remote, ushort port, TimeSpan now)
    {
        if (State != TcpState.Closed || Error != StackError.None || Key.LocalPort != 0)
            throw new StackException(State == TcpState.Closed ? StackError.InvalidState : StackError.AlreadyConnected,
                "This socket has already been used for a connection; create a new TcpSocket.");
        if (!Context.Config.IsUnicastHost(remote) || remote == Context.Config.Address)
            throw new ArgumentException($"Cannot connect to {remote}: give the unicast address of another host.", nameof(remote));
        if (port == 0) throw new ArgumentException("Remote port 0 cannot be connected to; give a port from 1 to 65535.", nameof(port));
        ushort local;
        if (BoundPort != 0)
        {
            if (Layer.IsListening(BoundPort) || Layer.HasConnection(new ConnKey(remote.Value, port, BoundPort)))
                throw new StackException(StackError.AddressInUse, $"Local port {BoundPort} is already in use towards {remote}:{port}.");
            local = BoundPort;
        }
        else local = Layer.AllocatePort(remote, port)
            ?? throw new StackException(StackError.NoEphemeralPorts, $"No ephemeral port is free for {remote}:{port}; widen EphemeralPortFirst..EphemeralPortLast or close connections.");
        Key = new ConnKey(remote.Value, port, local);
        if (!Layer.TryAdd(this))
            throw new StackException(StackError.NoBufferSpace, $"The stack holds Tcp.MaxConnections ({Settings.MaxConnections}) connections already.");
        InitCommon(now);
        Iss = Layer.InitialSequenceNumber(Key, now);
        SndUna = Iss;
        SndNxt = SndMax = Iss + 1;
        Recover = Iss;
        Counters.ActiveOpens++;
        SetState(TcpState.SynSent, now);
        var connected = _pending.WaitConnect();
        _synSentAt = now;
        SendSyn(now);
        Context.Trace("Tcp", $"{Describe()} SYN sent, ISN {Iss}");
        RtoAt = now + Rtt.Rto;
        Layer.Schedule(this);
        return connected;
    }

    /// <summary>Passive open: a listener's SYN becomes a SYN-RECEIVED connection and gets a SYN-ACK (RFC 9293 3.10.7.2).</summary>
    public bool OpenPassive(TcpListener listener, Ipv4Address remote, ref TcpSegment syn, TimeSpan now)
    {
        Key = new ConnKey(remote.Value, syn.SourcePort, syn.DestinationPort);
        if (!Layer.TryAdd(this)) return false;
        Listener = listener;
        InitCommon(now);
        Irs = syn.Seq;
        RcvNxt = syn.Seq + 1;
        Negotiate(ref syn);
        Iss = Layer.InitialSequenceNumber(Key, now);
        SndUna = Iss;
        SndNxt = SndMax = Iss + 1;
        Recover = Iss;
        SndWnd = syn.Window; // never scaled in a SYN (RFC 7323 2.2)
        MaxSndWnd = SndWnd;
        SndWl1 = syn.Seq;
        Counters.PassiveOpens++;
        SetState(TcpState.SynReceived, now);
        _synSentAt = now;
        SendSyn(now);
        RtoAt = now + Rtt.Rto;
        Layer.Schedule(this);
        return true;
    }

    /// <summary>Takes the peer's SYN options: MSS (RFC 9293 3.7.1, 536 when absent), window scale, SACK, timestamps.</summary>
    private void Negotiate(ref TcpSegment syn)
    {
        var o = syn.Options;
        var s = Settings;
        PeerMss = o.Mss != 0 ? o.Mss : 536;
        WsEnabled = s.WindowScaling && o.WindowScale >= 0;
        if (WsEnabled) SndWndShift = (byte)o.WindowScale;
        else { SndWndShift = 0; RcvWndShift = 0; }
        SackEnabled = s.Sack && o.SackPermitted;
        TsEnabled = s.Timestamps && o.HasTimestamp;
        if (TsEnabled) TsRecent = o.TsVal;
        UpdateSndMss();
        // The window in our SYN was unscaled; the right edge we promised starts from it.
        RcvAdvEdge = RcvNxt + (uint)Math.Min(RcvBuf.Free, 65535);
        LastAckSent = RcvNxt;
    }

    private void UpdateSndMss()
    {
        SndMss = Math.Max(Math.Min(PeerMss, PathMss) - (TsEnabled ? 12 : 0), 64);
        if (Cwnd == 0)
        {
            // RFC 6928: IW = min(10*MSS, max(2*MSS, 14600)) for the default of 10 segments.
            var iw = Settings.InitialWindowSegments;
            Cwnd = (uint)(iw >= 10 ? Math.Min(iw * SndMss, Math.Max(2 * SndMss, 14600 * iw / 10)) : iw * SndMss);
        }
    }

    private void EnterEstablished(TimeSpan now)
    {
        SetState(TcpState.Established, now);
        if (Keepalive) KeepAt = now + Settings.KeepaliveIdle;
        if (Listener is { } l)
        {
            Listener = null;
            l.OnEstablished(this);
        }
        _pending.CompleteConnect();
        if (FinQueued) SetState(TcpState.FinWait1, now); // shut down before the handshake finished
    }

    // ---------------- snapshot ----------------

    public ConnectionInfo Snapshot(TimeSpan now)
    {
        var sendQ = State is TcpState.Closed ? 0 : (long)SndBuf.Count;
        return new ConnectionInfo
        {
            Id = User?.Id ?? 0,
            Protocol = SocketProtocol.Tcp,
            LocalAddress = Key.LocalPort == 0 ? Ipv4Address.Any : Context.Config.Address,
            LocalPort = Key.LocalPort,
            RemoteAddress = Remote,
            RemotePort = Key.RemotePort,
            State = State.ToString(),
            RecvQ = RcvBuf.Count,
            SendQ = sendQ,
            TimeInState = now - _stateSince,
            Tcp = new TcpInternals
            {
                Iss = Iss,
                Irs = Irs,
                SndUna = SndUna,
                SndNxt = SndNxt,
                SndWnd = SndWnd,
                RcvNxt = RcvNxt,
                RcvWnd = Seq.Gt(RcvAdvEdge, RcvNxt) ? RcvAdvEdge - RcvNxt : 0,
                Cwnd = Cwnd,
                Ssthresh = Ssthresh,
                Srtt = Rtt.Srtt,
                RttVar = Rtt.RttVar,
                Rto = Rtt.Rto,
                Mss = SndMss,
                SndWindowScale = WsEnabled ? SndWndShift : -1,
                RcvWindowScale = WsEnabled ? RcvWndShift : -1,
                SackPermitted = SackEnabled,
                Timestamps = TsEnabled,
                Retransmits = Retransmits,
                BytesSent = BytesSent,
                BytesReceived = BytesReceived,
                SegmentsSent = SegmentsOut,
                SegmentsReceived = SegmentsIn,
                CongestionControl = Cc?.Name ?? "",
            },
        };
    }
}
