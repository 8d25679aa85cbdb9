namespace NetStack.Tcp;

/// <summary>Opening a connection: active open (RFC 9293 3.10.1), passive open from a listener's SYN, option negotiation.</summary>
internal sealed partial class TcpConnection
{
    private void InitCommon(TimeSpan now)
    {
        Snd.Cc = CongestionControls.Create(Settings.Congestion);
        PathMss = Layer.Output.PathMss;
        // Our window scale: the smallest shift that lets the receive buffer be advertised (RFC 7323 2.2).
        int shift = 0;
        while (shift < 14 && (Rcv.Buffer.Limit >> shift) > 65535) shift++;
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
        Snd.Start(Iss);
        Counters.ActiveOpens++;
        SetState(TcpState.SynSent, now);
        var connected = _pending.WaitConnect();
        _synSentAt = now;
        SendSyn(now);
        Context.Trace("Tcp", $"{Describe()} SYN sent, ISN {Iss}");
        RtoAt = now + Snd.Rtt.Rto;
        Layer.Schedule(this);
        return connected;
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
    /// Takes the peer's SYN options: MSS (RFC 9293 3.7.1, 536 when absent), window scale, SACK, timestamps; then
    /// chooses loss recovery: with SACK, RACK-TLP (RFC 8985) or, when Tcp.LossDetection is DupAck, SACK recovery
    /// (RFC 6675); without SACK, NewReno (RFC 6582).
    /// </summary>
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
        Rcv.OnNegotiated();
        Snd.Recovery = !SackEnabled ? new NewRenoRecovery(this)
            : s.LossDetection == LossDetection.Rack ? new RackRecovery(this) : new SackRecovery(this);
    }

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
