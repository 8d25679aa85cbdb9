namespace NetStack.Tcp;

/// <summary>
/// The transmission control block of one connection (RFC 9293 3.3.1) and its state machine: the state, ISS and
/// IRS, the negotiated options, the timers' deadlines, errors, and the parts that do the work — the receiver
/// (<see cref="Rcv"/>), the sender (<see cref="Snd"/>, with its loss recovery and RTT estimator) and the user's
/// waiting operations. Segments leave through the layer's <see cref="ISegmentOutput"/>. Opening is in
/// TcpConnection.Open.cs, SEGMENT ARRIVES in TcpConnection.Arrives.cs, the user's operations in
/// TcpConnection.User.cs, timers in TcpConnection.Timers.cs, outgoing segments in TcpConnection.Segments.cs.
/// Everything here runs on the loop.
/// </summary>
internal sealed partial class TcpConnection
{
    /// <summary>A deadline that is off.</summary>
    internal static readonly TimeSpan Never = TimeSpan.MaxValue;

    /// <param name="user">Who holds the connection for the user (a TcpSocket), told of state changes; null for a bare connection.</param>
    public TcpConnection(TcpLayer layer, IConnectionUser? user = null)
    {
        Layer = layer;
        User = user;
        Rcv = new TcpReceiver(this, layer.Settings);
        Snd = new TcpSender(this, layer.Settings);
    }

    public readonly TcpLayer Layer;
    public readonly IConnectionUser? User;
    public ConnKey Key { get; private set; }
    public Ipv4Address Remote => new(Key.RemoteAddress);
    // Narrow backing fields (the values fit a byte or 16 bits): 10,000 idle connections multiply every field.
    private byte _state, _error, _softError;
    private ushort _sndMss = 536, _peerMss = 536, _pathMss;
    public TcpState State { get => (TcpState)_state; private set => _state = (byte)value; }
    private TimeSpan _stateSince;
    /// <summary>Set for connections born from a listener's SYN until the user accepts them.</summary>
    public ListenEndpoint? Listener { get; private set; }
    /// <summary>The local port asked for with Bind (0: pick an ephemeral one at connect).</summary>
    public ushort BoundPort;

    // ---- the parts ----
    /// <summary>The receiver: a struct used in place through this field (never copied, never readonly).</summary>
    public TcpReceiver Rcv;
    public readonly TcpSender Snd;
    /// <summary>The user's waiting connect, send, receive and close.</summary>
    private PendingOperations _pending; // a struct used in place (never copied, never readonly)

    // ---- sequence numbers of the SYNs ----
    /// <summary>ISS (settable for tests that place it near a wrap) and IRS.</summary>
    public uint Iss;
    public uint Irs { get; private set; }

    // ---- negotiated (RFC 9293 3.7.1, RFC 7323, RFC 2018) ----
    /// <summary>Data bytes per segment: min(peer's MSS, path MSS) less the options every segment carries.</summary>
    public int SndMss { get => _sndMss; private set => _sndMss = (ushort)value; }
    /// <summary>The data a new segment carries: <see cref="SndMss"/>, less room for the SACK blocks an ACK owes (<see cref="SackAckRule"/>).</summary>
    public int DataMss => SackEnabled && Rcv.HasSackBlocks ? SackAckRule.DataRoom(SndMss, TsEnabled ? TcpHeader.TimestampOptionLength : 0, Rcv.SackBlocksOwed) : SndMss;
    public int PeerMss { get => _peerMss; private set => _peerMss = (ushort)value; }
    public int PathMss { get => _pathMss; private set => _pathMss = (ushort)Math.Min(value, ushort.MaxValue); }
    public bool TsEnabled { get; private set; }
    public bool SackEnabled { get; private set; }
    public bool WsEnabled { get; private set; }
    public byte SndWndShift { get; private set; }
    public byte RcvWndShift { get; private set; }
    private uint _tsOffset;
    /// <summary>TS.Recent (RFC 7323 4.3): the timestamp we echo.</summary>
    public uint TsRecent { get; private set; }

    /// <summary>CloseAsync: the user will not read any more.</summary>
    public bool UserClosed { get; private set; }

    // ---- timers (absolute deadlines; Never when off) ----
    public TimeSpan RtoAt = Never, DelAckAt = Never, KeepAt = Never, StateAt = Never;
    /// <summary>The loss recovery's own timer: RACK's reorder timer or the tail loss probe (RFC 8985 6.3, 7.2).</summary>
    public TimeSpan LossAt = Never;
    /// <summary>When a paced sender's next burst may leave (the congestion control's pacing rate; BBR).</summary>
    public TimeSpan PaceAt = Never;
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
            if (LossAt < d) d = LossAt;
            if (PaceAt < d) d = PaceAt;
            return d;
        }
    }
    private ushort _keepProbes; // (Linux allows 127; more than 65,535 would take days even at 1 ms apart)
    private TimeSpan _synSentAt;

    // ---- batch-end ACKs: queued once per batch in the layer's list ----
    internal bool InBatchAckList;

    // ---- user options, errors ----
    /// <summary>The user set the send buffer's size (as SO_SNDBUF on Linux): no send-buffer auto-tuning.</summary>
    public bool SendBufferFixed;
    public bool NoDelay;
    /// <summary>Samples the sender's internals when the user asked to trace this connection (TcpSocket.TraceInternals); else null.</summary>
    public Diagnostics.TcpInternalsRecorder? Recorder;
    public bool Keepalive;
    public StackError Error { get => (StackError)_error; private set => _error = (byte)value; }
    private string? _errorMessage;
    /// <summary>The last soft ICMP error (or unreachable neighbour), reported if the connection later times out.</summary>
    public StackError SoftError { get => (StackError)_softError; private set => _softError = (byte)value; }

    // ---- statistics ----
    public long SegmentsOut { get; private set; }
    public long SegmentsIn { get; private set; }

    /// <summary>The send ring (its Limit is the socket's send buffer size).</summary>
    public ByteRing SndBuf => Snd.Buffer;
    /// <summary>The receive ring (its Limit is the socket's receive buffer size).</summary>
    public ByteRing RcvBuf => Rcv.Buffer;

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
                RtoAt = DelAckAt = KeepAt = LossAt = PaceAt = Never;
                StateAt = now + 2 * Settings.Msl;
                Snd.ReleaseBuffer();
                _pending.CompleteClose();
                break;
            case TcpState.Closed:
                RtoAt = DelAckAt = KeepAt = StateAt = LossAt = PaceAt = Never;
                Layer.Remove(this);
                Snd.OnClosed();
                Rcv.OnClosed(releaseBuffer: UserClosed || Error != StackError.None);
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
        Snd.ReleaseBuffer();
        Rcv.ReleaseBuffer();
    }

    // ---------------- snapshot ----------------

    public ConnectionInfo Snapshot(TimeSpan now)
    {
        var sendQ = State is TcpState.Closed ? 0 : (long)Snd.BufferCount;
        var bbr = Snd.CcIfMade as BbrCongestionControl;
        var loss = Snd.RecoveryStats ?? default;
        return new ConnectionInfo
        {
            Id = User?.Id ?? 0,
            Protocol = SocketProtocol.Tcp,
            LocalAddress = Key.LocalPort == 0 ? Ipv4Address.Any : Context.Config.Address,
            LocalPort = Key.LocalPort,
            RemoteAddress = Remote,
            RemotePort = Key.RemotePort,
            State = State.ToString(),
            RecvQ = Rcv.BufferCount,
            SendQ = sendQ,
            TimeInState = now - _stateSince,
            Tcp = new TcpInternals
            {
                Iss = Iss,
                Irs = Irs,
                SndUna = Snd.Una,
                SndNxt = Snd.Nxt,
                SndWnd = Snd.Wnd,
                RcvNxt = Rcv.Nxt,
                RcvWnd = Rcv.Window,
                RcvBuf = Rcv.BufferLimit,
                RcvRtt = Rcv.TuningRtt,
                SndBuf = Snd.BufferLimit,
                Cwnd = Snd.Cwnd,
                Ssthresh = Snd.Ssthresh,
                Srtt = Snd.Rtt.Srtt,
                RttVar = Snd.Rtt.RttVar,
                Rto = Snd.Rtt.Rto,
                Mss = SndMss,
                SndWindowScale = WsEnabled ? SndWndShift : -1,
                RcvWindowScale = WsEnabled ? RcvWndShift : -1,
                SackPermitted = SackEnabled,
                Timestamps = TsEnabled,
                Retransmits = Snd.Retransmits,
                BytesSent = Snd.BytesSent,
                BytesReceived = Rcv.BytesReceived,
                SegmentsSent = SegmentsOut,
                SegmentsReceived = SegmentsIn,
                CongestionControl = Snd.CcName,
                LossRecovery = loss.Name ?? "",
                RecoveryState = loss.Phase ?? "",
                MinRtt = Snd.Rtt.MinRtt,
                ReorderWindow = loss.ReorderWindow,
                TlpProbes = loss.TlpProbes,
                RackLosses = loss.RackLosses,
                SpuriousRetransmits = loss.SpuriousRetransmits,
                Undos = loss.Undos,
                DeliveryRate = Snd.LastDeliveryRate,
                PacingRate = Snd.CcIfMade?.PacingRate ?? 0,
                BbrState = bbr?.State.ToString() ?? "",
                BbrBandwidth = bbr?.Bandwidth ?? 0,
                BbrMinRtt = bbr?.MinRtt ?? TimeSpan.Zero,
            },
        };
    }
}
