namespace NetStack.Tcp;

/// <summary>Opening a connection: active open (RFC 9293 3.10.1), passive open from a listener's SYN, option negotiation.</summary>
internal sealed partial class TcpConnection
{
    private void InitCommon(TimeSpan now)
    {
        Snd.ChooseCongestionControl(Settings.Congestion);
        PathMss = Layer.Output.PathMss;
        RcvWndShift = TcpReceiver.WindowShiftFor(Rcv.BufferCeiling); // room for what auto-tuning may grow it to
        _tsOffset = Layer.TimestampOffset(Key);
        _stateSince = now;
    }

    /// <summary>Active open (RFC 9293 3.10.1): picks a port and ISN, sends SYN; the task ends when ESTABLISHED.</summary>
    public Task<bool> Connect(Ipv4Address remote, ushort port, TimeSpan now)
    {
        var waiter = new TaskWaiter<bool>(); // loop-side: continuations run on the loop, for the loop's own callers
        Connect(remote, port, now, waiter);
        return waiter.Task;
    }

    /// <summary>Active open with the caller's own waiter, completed when ESTABLISHED (no allocation of its own).</summary>
    public void Connect(Ipv4Address remote, ushort port, TimeSpan now, IOperationWaiter<bool> waiter)
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
        Snd.Start(Iss);
        Counters.ActiveOpens++;
        SetState(TcpState.SynSent, now);
        _pending.WaitConnect(waiter);
        _synSentAt = now;
        SendSyn(now);
        Context.Trace("Tcp", $"{Describe()} SYN sent, ISN {Iss}");
        RtoAt = now + Snd.Rtt.Rto;
        Layer.Schedule(this);
    }

    /// <summary>Passive open: a listener's SYN becomes a SYN-RECEIVED connection and gets a SYN-ACK (RFC 9293 3.10.7.2).</summary>
    public bool OpenPassive(ListenEndpoint listener, Ipv4Address remote, ref TcpSegment syn, TimeSpan now)
    {
        Key = new ConnKey(remote.Value, syn.SourcePort, syn.DestinationPort);
        if (!Layer.TryAdd(this)) return false;
        Listener = listener;
        InitCommon(now);
        Irs = syn.Seq;
        Rcv.OnSyn(syn.Seq);
        Iss = Layer.InitialSequenceNumber(Key, now);
        Snd.Start(Iss);
        Negotiate(ref syn);
        Snd.OnPeerSyn(ref syn);
        Counters.PassiveOpens++;
        SetState(TcpState.SynReceived, now);
        _synSentAt = now;
        SendSyn(now);
        RtoAt = now + Snd.Rtt.Rto;
        Layer.Schedule(this);
        return true;
    }

    /// <summary>
    /// A returning SYN cookie (RFC 4987): the connection its ACK completes, as if our SYN-ACK had been sent from
    /// SYN-RECEIVED. The ISNs are SEG.SEQ - 1 and SEG.ACK - 1; the options are those the cookie carried
    /// (<paramref name="mss"/>; the peer's window scale and SACK-permitted from the timestamp, none without one).
    /// The caller then hands it the ACK.
    /// </summary>
    public bool OpenFromCookie(ListenEndpoint listener, Ipv4Address remote, ref TcpSegment ack, ushort mss, int windowScale, bool sackPermitted, TimeSpan now)
    {
        Key = new ConnKey(remote.Value, ack.SourcePort, ack.DestinationPort);
        if (!Layer.TryAdd(this)) return false;
        Listener = listener;
        InitCommon(now);
        Irs = ack.Seq - 1;
        Rcv.OnSyn(Irs);
        Iss = ack.Ack - 1;
        Snd.Start(Iss);
        Negotiate(mss, windowScale, sackPermitted, ack.Options.HasTimestamp, ack.Options.TsVal);
        Counters.PassiveOpens++;
        SetState(TcpState.SynReceived, now);
        // When the SYN-ACK left is not known: no RTT sample from the handshake (as after a retransmission, Karn).
        _synSentAt = now;
        Snd.Retries = 1;
        RtoAt = now + Snd.Rtt.Rto; // the SYN-ACK goes again if the ACK cannot establish it yet (a full accept queue)
        Layer.Schedule(this);
        return true;
    }

    /// <summary>Takes the options of the peer's SYN.</summary>
    private void Negotiate(ref TcpSegment syn)
    {
        ref readonly var o = ref syn.Options;
        Negotiate(o.Mss, o.WindowScale, o.SackPermitted, o.HasTimestamp, o.TsVal);
    }

    /// <summary>
    /// Takes the peer's options: MSS (RFC 9293 3.7.1, 536 when absent), window scale (-1: none), SACK, timestamps; then
    /// chooses loss recovery: with SACK, RACK-TLP (RFC 8985) or, when Tcp.LossDetection is DupAck, SACK recovery
    /// (RFC 6675); without SACK, NewReno (RFC 6582).
    /// </summary>
    private void Negotiate(ushort mss, int windowScale, bool sackPermitted, bool timestamps, uint tsVal)
    {
        var s = Settings;
        PeerMss = mss != 0 ? mss : 536;
        WsEnabled = s.WindowScaling && windowScale >= 0;
        if (WsEnabled) SndWndShift = (byte)windowScale;
        else { SndWndShift = 0; RcvWndShift = 0; }
        SackEnabled = s.Sack && sackPermitted;
        TsEnabled = s.Timestamps && timestamps;
        if (TsEnabled) TsRecent = tsVal;
        UpdateSndMss();
        Rcv.OnNegotiated();
        Snd.OnNegotiated(!SackEnabled ? RecoveryKind.NewReno : s.LossDetection == LossDetection.Rack ? RecoveryKind.Rack : RecoveryKind.Sack);
    }

    /// <summary>The loss recovery of <paramref name="kind"/>, starting from SND.UNA = <paramref name="una"/> (made by the sender at its first use).</summary>
    internal ILossRecovery CreateRecovery(RecoveryKind kind, uint una) => kind switch
    {
        RecoveryKind.Rack => new RackRecovery(this, una),
        RecoveryKind.Sack => new SackRecovery(this, una),
        _ => new NewRenoRecovery(this, una),
    };

    private void UpdateSndMss()
    {
        SndMss = Math.Max(Math.Min(PeerMss, PathMss) - (TsEnabled ? TcpHeader.TimestampOptionLength : 0), 64);
        Snd.SetInitialWindow(SndMss, Settings.InitialWindowSegments);
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
        if (Snd.FinQueued) SetState(TcpState.FinWait1, now); // shut down before the handshake finished
    }
}
