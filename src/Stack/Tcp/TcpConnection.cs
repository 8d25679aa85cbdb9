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

    public TcpConnection(TcpLayer layer, TcpSocket socket)
    {
        Layer = layer;
        Socket = socket;
        var s = layer.Settings;
        SndBuf = new ByteRing(s.SendBufferSize);
        RcvBuf = new ByteRing(s.ReceiveBufferSize);
        Rtt = new RttEstimator(s.InitialRto, s.MinRto, s.MaxRto);
    }

    public readonly TcpLayer Layer;
    public readonly TcpSocket Socket;
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
    private TaskCompletionSource<bool>? _connectTcs;
    private TaskCompletionSource<bool>? _closeTcs;
    private TaskCompletionSource<int>? _recvTcs;
    private Memory<byte> _recvMem;
    private TaskCompletionSource<bool>? _sendTcs;
    private ReadOnlyMemory<byte> _sendMem;
    private static readonly Task<bool> s_true = Task.FromResult(true);

    // ---- statistics ----
    public long BytesSent, BytesReceived, SegmentsOut, SegmentsIn, Retransmits;

    private TcpCounters Counters => Layer.Counters;
    private LayerContext Context => Layer.Context;
    private IIpOutput Ip => Layer.Ip;
    private TcpSettings Settings => Layer.Settings;

    // ---------------- state ----------------

    private void SetState(TcpState next, TimeSpan now)
    {
        if (State == next) return;
        var prev = State;
        State = next;
        _stateSince = now;
        Socket.PublishState(next);
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
                CompleteClose();
                break;
            case TcpState.Closed:
                RtoAt = DelAckAt = KeepAt = StateAt = Never;
                Layer.Remove(this);
                SndBuf.Release();
                if (UserClosed || Error != StackError.None) RcvBuf.Release();
                _ooo = null; _oooCount = 0; Scoreboard = null;
                CompleteClose();
                if (_recvTcs != null && Error == StackError.None) CompleteReceive(0);
                Socket.OnClosed();
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
        var ex = MakeError();
        _connectTcs?.TrySetException(ex); _connectTcs = null;
        _recvTcs?.TrySetException(MakeError()); _recvTcs = null;
        _sendTcs?.TrySetException(MakeError()); _sendTcs = null;
        _closeTcs?.TrySetResult(true); _closeTcs = null;
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
        _connectTcs?.TrySetException(ex);
        _recvTcs?.TrySetException(ex);
        _sendTcs?.TrySetException(ex);
        _closeTcs?.TrySetResult(true);
        _connectTcs = null; _recvTcs = null; _sendTcs = null; _closeTcs = null;
        State = TcpState.Closed;
        Socket.PublishState(TcpState.Closed);
        SndBuf.Release();
        RcvBuf.Release();
    }

    // ---------------- opening ----------------

    private void InitCommon(TimeSpan now)
    {
        var s = Settings;
        Cc = s.CongestionControl == "newreno" ? new NewRenoCongestionControl() : new CubicCongestionControl();
        PathMss = Ip.Mtu - Ipv4Header.MinLength - TcpHeader.MinLength;
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
        _connectTcs = new TaskCompletionSource<bool>(); // loop-side: see NetworkStack.InvokeAsync
        _synSentAt = now;
        SendSyn(now);
        Context.Trace("Tcp", $"{Describe()} SYN sent, ISN {Iss}");
        RtoAt = now + Rtt.Rto;
        Layer.Schedule(this);
        return _connectTcs.Task;
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
            l.OnEstablished(Socket);
        }
        _connectTcs?.TrySetResult(true);
        _connectTcs = null;
        if (FinQueued) SetState(TcpState.FinWait1, now); // shut down before the handshake finished
    }

    // ---------------- user operations (loop side) ----------------

    /// <param name="waiter">The caller's own completion source when the call can be cancelled (see CancelSend), else null.</param>
    public Task<bool> Send(ReadOnlyMemory<byte> data, TimeSpan now, TaskCompletionSource<bool>? waiter = null)
    {
        ThrowIfFailed();
        if (FinQueued) throw new StackException(StackError.Shutdown, "Sending was shut down on this socket (ShutdownSend or Close); no more data can be sent.");
        if (State is TcpState.Closed or TcpState.Listen) throw new StackException(StackError.NotConnected, "The socket is not connected; call ConnectAsync first.");
        if (_sendTcs != null) throw new InvalidOperationException("A SendAsync is already pending on this socket; await it before sending more.");
        var n = SndBuf.Write(data.Span);
        if (n == data.Length)
        {
            Kick(now);
            return s_true;
        }
        _sendMem = data[n..];
        _sendTcs = waiter ?? new TaskCompletionSource<bool>(); // loop-side
        Kick(now);
        return _sendTcs.Task;
    }

    /// <summary>ACKs freed send-buffer space: take more of a waiting SendAsync.</summary>
    private void PumpSendWaiter()
    {
        if (_sendTcs is null || SndBuf.Free == 0) return;
        var n = SndBuf.Write(_sendMem.Span);
        _sendMem = _sendMem[n..];
        if (_sendMem.Length > 0) return;
        var t = _sendTcs;
        _sendTcs = null;
        _sendMem = default;
        t.TrySetResult(true);
    }

    /// <param name="waiter">The caller's own completion source when the call can be cancelled (see CancelReceive), else null.</param>
    public Task<int> Receive(Memory<byte> buffer, TimeSpan now, TaskCompletionSource<int>? waiter = null)
    {
        if (_recvTcs != null) throw new InvalidOperationException("A ReceiveAsync is already pending on this socket; await it before receiving again.");
        if (RcvBuf.Count > 0)
        {
            var n = RcvBuf.Read(buffer.Span);
            BytesRead(now);
            return Task.FromResult(n);
        }
        if (Error != StackError.None) throw MakeError();
        if (PeerFin || (State == TcpState.Closed && Key.LocalPort != 0)) return Task.FromResult(0);
        if (State is TcpState.Closed) throw new StackException(StackError.NotConnected, "The socket is not connected; call ConnectAsync first.");
        if (buffer.Length == 0) return Task.FromResult(0);
        _recvMem = buffer;
        _recvTcs = waiter ?? new TaskCompletionSource<int>(); // loop-side
        return _recvTcs.Task;
    }

    /// <summary>Cancels the pending receive if it is <paramref name="which"/> (any when null).</summary>
    public void CancelReceive(TaskCompletionSource<int>? which = null)
    {
        var t = _recvTcs;
        if (t is null || (which != null && t != which)) return;
        _recvTcs = null;
        _recvMem = default;
        t.TrySetCanceled();
    }

    /// <summary>Cancels the pending send if it is <paramref name="which"/>; bytes already queued stay queued, as with a kernel socket.</summary>
    public void CancelSend(TaskCompletionSource<bool>? which = null)
    {
        var t = _sendTcs;
        if (t is null || (which != null && t != which)) return;
        _sendTcs = null;
        _sendMem = default;
        t.TrySetCanceled();
    }

    private void CompleteReceive(int n)
    {
        var t = _recvTcs!;
        _recvTcs = null;
        _recvMem = default;
        t.TrySetResult(n);
    }

    /// <summary>The user took data: give the array back when empty and open the window if that is worth a segment.</summary>
    private void BytesRead(TimeSpan now)
    {
        if (RcvBuf.Count == 0 && _oooCount == 0) RcvBuf.ReleaseIfEmpty();
        if (!Synchronized || PeerFin) return;
        // Window update (RFC 1122 4.2.3.3 with Linux's test): when the offered window has fallen to half
        // or less and reading at least doubles it, tell the peer now rather than at the next ACK.
        var cur = Seq.Gt(RcvAdvEdge, RcvNxt) ? RcvAdvEdge - RcvNxt : 0;
        var free = (uint)RcvBuf.Free;
        if (free >= 2 * cur && free - cur >= (uint)Math.Min(RcvBuf.Limit / 2, PathMss))
        {
            SendAck(now);
            Layer.Schedule(this);
        }
    }

    public void ShutdownSend(TimeSpan now)
    {
        if (FinQueued) return;
        switch (State)
        {
            case TcpState.Closed:
            case TcpState.Listen:
                if (Error != StackError.None) return;
                throw new StackException(StackError.NotConnected, "The socket is not connected.");
            case TcpState.SynSent:
            case TcpState.SynReceived:
                FinQueued = true; // sent once established
                return;
            case TcpState.Established:
                FinQueued = true;
                SetState(TcpState.FinWait1, now);
                break;
            case TcpState.CloseWait:
                FinQueued = true;
                SetState(TcpState.LastAck, now);
                break;
            default:
                return;
        }
        _sendTcs?.TrySetException(new StackException(StackError.Shutdown, "Sending was shut down while this send waited for buffer space."));
        _sendTcs = null;
        Kick(now);
    }

    /// <summary>Orderly close (RFC 9293 3.10.4): FIN after the queued data; the task ends when our FIN is acknowledged.</summary>
    public Task<bool> Close(TimeSpan now)
    {
        UserClosed = true;
        CancelReceive();
        switch (State)
        {
            case TcpState.Closed:
                RcvBuf.Release();
                Socket.OnClosed();
                return s_true;
            case TcpState.SynSent:
                Fail(StackError.ConnectionAborted, "The connection attempt was closed by the user.", now);
                return s_true;
            case TcpState.TimeWait:
            case TcpState.FinWait2:
                if (State == TcpState.FinWait2) StateAt = now + Settings.FinWait2Timeout;
                Layer.Schedule(this);
                RcvBuf.Release();
                return s_true;
        }
        if (RcvBuf.Count > 0)
        {
            // RFC 2525 2.17 / RFC 1122 4.2.2.13: closing with unread data resets, so the peer knows it was lost.
            Abort(now);
            return s_true;
        }
        RcvBuf.Release();
        ShutdownSend(now);
        if (State is TcpState.FinWait2 or TcpState.TimeWait or TcpState.Closed) return s_true;
        _closeTcs ??= new TaskCompletionSource<bool>(); // loop-side
        return _closeTcs.Task;
    }

    private void CompleteClose()
    {
        var t = _closeTcs;
        _closeTcs = null;
        t?.TrySetResult(true);
    }

    /// <summary>Abort (RFC 9293 3.10.5): RST to the peer, everything pending fails with ConnectionAborted.</summary>
    public void Abort(TimeSpan now)
    {
        UserClosed = true;
        SendAbortReset(now);
        if (State == TcpState.Closed)
        {
            RcvBuf.Release();
            Socket.OnClosed();
            return;
        }
        Fail(StackError.ConnectionAborted, "The connection was aborted by the user.", now);
    }

    /// <summary>The RST of an abort (RFC 9293 3.10.5), in the states where the peer holds the connection open.</summary>
    internal void SendAbortReset(TimeSpan now)
    {
        if (State is TcpState.SynReceived or TcpState.Established or TcpState.FinWait1 or TcpState.FinWait2 or TcpState.CloseWait)
            Layer.SendControl(Remote, Key.LocalPort, Key.RemotePort, SndMax, 0, TcpFlags.Rst, now);
    }

    private void ThrowIfFailed()
    {
        if (Error != StackError.None) throw MakeError();
    }

    // ---------------- snapshot ----------------

    public ConnectionInfo Snapshot(TimeSpan now)
    {
        var sendQ = State is TcpState.Closed ? 0 : (long)SndBuf.Count;
        return new ConnectionInfo
        {
            Id = Socket.Id,
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
