namespace NetStack.Tcp;

/// <summary>
/// RACK-TLP loss detection (RFC 8985) over the sender's transmit records, with Proportional Rate Reduction
/// (RFC 6937) for the window during fast recovery and the undo of spurious reductions (D-SACK and timestamps,
/// <see cref="SpuriousRetransmissionUndo"/>). A segment is lost when a segment sent sufficiently later has been
/// delivered (RACK: its send time plus the RACK RTT plus a reordering window has passed), so a lost retransmission is
/// found like any other; the reordering window starts at min_RTT/4, grows with D-SACKs and is 0 until reordering is
/// seen; when it has not passed yet a reorder timer waits for it. The tail loss probe (RackRecovery.Tlp.cs) turns a
/// lost tail into a probe timeout instead of an RTO. Phases as Linux's: open, fast recovery (until SND.MAX at its
/// start is acknowledged), loss (after a timeout: every unSACKed segment is lost and resent in order, slow start).
/// Used when SACK is negotiated and <see cref="TcpSettings.LossDetection"/> is <see cref="LossDetection.Rack"/>. Loop only.
/// </summary>
internal sealed partial class RackRecovery : ILossRecovery
{
    /// <summary>RFC 8985 6.2 step 4: reordering is not yet seen and this many segments are SACKed: no reordering window.</summary>
    public const int DupThresh = LossRecovery.DupThresh;
    /// <summary>RFC 8985 6.2 step 4: RACK.reo_wnd_persist, recoveries over which a widened reordering window lasts.</summary>
    private const int ReoWndPersist = 16;

    private enum Phase { Open, Recovery, Loss }
    private enum TimerKind { None, Reorder, Probe }

    private readonly TcpConnection _c;
    private readonly TcpSender _snd;
    private Phase _phase;
    private TimerKind _timer;

    // RACK (RFC 8985 6.1): the most recently sent segment delivered so far, and its RTT.
    private bool _rackValid, _rackAdvanced;
    private TimeSpan _rackXmit, _rackRtt;
    private long _rackOrder;                // RACK.xmit_ts and RACK.end_seq as the transmission order they stand for
    private uint _priorFack;               // the highest delivered sequence before this ACK (RACK.fack)
    private bool _reorderingSeen;
    private int _reoWndMult = 1, _reoWndPersist;
    private bool _dsackRoundSet;
    private uint _dsackRound;

    private ProportionalRateReduction _prr;
    private SpuriousRetransmissionUndo _undo;

    // per-connection figures
    private long _rackLosses, _spurious, _undos;

    /// <param name="una">SND.UNA when the options were negotiated (the recovery may be made later, at its first use).</param>
    public RackRecovery(TcpConnection connection, uint una)
    {
        _c = connection;
        _snd = connection.Snd;
        RecoveryPoint = una;
        _priorFack = una;
    }

    public bool InRecovery => _phase == Phase.Recovery;
    /// <summary>After a retransmission timeout, until its recovery point is acknowledged (Linux's loss state).</summary>
    public bool InLoss => _phase == Phase.Loss;
    public uint RecoveryPoint { get; private set; }
    public int DupAcks { get; private set; }
    public bool GoBackN => false;
    public LossRecoveryStats Stats => new("rack", _phase.ToString(), ReorderWindow(), _tlpProbes, _rackLosses, _spurious, _undos);

    private TcpCounters Counters => _c.Layer.Counters;
    private uint Mss => (uint)_c.SndMss;
    private SentSegments Sent => _snd.Sent;

    // ---------------- the ACK ----------------

    public void OnAckArrived(ref AckEvent ack)
    {
        _rackAdvanced = false;
        _priorFack = Sent.HighestDelivered;
        if (!ack.Dsack) return;
        // RFC 2883 / RFC 3708: the peer got this range twice. Within a loss episode it takes back retransmissions.
        if (_undo.OnDsack(ack.DsackLeft, ack.DsackRight, Mss))
        {
            _spurious++;
            Counters.SpuriousRetransmits++;
        }
        OnTlpDsack(ref ack);
    }

    public void OnDuplicateAck(ref AckEvent ack, TimeSpan now) => DupAcks++;

    public void OnSndUnaAdvanced(ref AckEvent ack, TimeSpan now)
    {
        DupAcks = 0;
        if (Sent.Count > 0 && Sent[0].Has(SentFlags.Sacked))
        {
            // Reneging (RFC 2018 8): the cumulative ACK stops at data the peer had SACKed, so it dropped it. Its
            // records count as outstanding again; the first is resent at once, RACK finds the rest.
            Counters.SackReneging++;
            _c.Layer.Context.Trace("Tcp", $"{_c.Describe()} peer reneged on SACKed data at {_snd.Una}");
            Sent.ClearSacked();
            MarkLost(0);
        }
    }

    public void OnNewAck(ref AckEvent ack, TimeSpan now) { }

    /// <summary>RACK_update (RFC 8985 6.2 step 2) and reordering detection (step 3) for each delivered segment.</summary>
    public void OnSegmentDelivered(in SentSegment s, TimeSpan now)
    {
        var retransmitted = s.Has(SentFlags.EverRetransmitted);
        if (!retransmitted && Seq.Lt(s.End, _priorFack)) _reorderingSeen = true;
        var rtt = now - s.Sent;
        if (retransmitted)
        {
            // Ambiguous: the ACK may be for the original. Not when it echoes a timestamp older than this
            // transmission, or came back sooner than any round trip could.
            if (_pendingTsEcr is { } ecr && (int)(ecr - _c.TsNow(s.Sent)) < 0) return;
            if (rtt < _snd.Rtt.MinRtt) return;
        }
        _rackRtt = rtt;
        if (!_rackValid || s.Order > _rackOrder)
        {
            _rackXmit = s.Sent;
            _rackOrder = s.Order;
            _rackValid = true;
            _rackAdvanced = true;
        }
    }

    /// <summary>The echoed timestamp of the ACK being processed (for RACK's ambiguity test), when it carries one.</summary>
    private uint? _pendingTsEcr;

    /// <summary>Set by the sender before the records hear of the ACK's deliveries.</summary>
    public void BeginAck(bool hasTimestamp, uint tsEcr) => _pendingTsEcr = _c.TsEnabled && hasTimestamp && tsEcr != 0 ? tsEcr : null;

    public void OnAckDone(ref AckEvent ack, TimeSpan now)
    {
        _pendingTsEcr = null;
        if (Seq.Gt(_snd.Una, ack.PriorUna))
        {
            _ptoBase = now; // RFC 8985 7.2: an ACK of new data restarts the PTO
            _probesInRow = 0;
        }
        OnTlpAck(ref ack, now);

        // RFC 8985 6.2 step 4: a D-SACK widens the reordering window, once per round trip.
        if (_dsackRoundSet && Seq.Ge(_snd.Una, _dsackRound)) _dsackRoundSet = false;
        if (!_dsackRoundSet && ack.Dsack)
        {
            _dsackRoundSet = true;
            _dsackRound = _snd.Max;
            _reoWndMult++;
            _reoWndPersist = ReoWndPersist;
        }

        // Spurious retransmissions: every one D-SACKed (RFC 3708), or the Eifel test (RFC 3522).
        if (_undo.AllDsacked || _undo.EifelSpurious(ack.Ack, ack.HasTimestamp, ack.TsEcr)) Undo(now);

        // Leaving fast recovery or the loss phase: SND.MAX at its start is acknowledged.
        if (_phase != Phase.Open && Seq.Ge(_snd.Una, RecoveryPoint)) Exit();

        // RFC 8985 6.2 step 5: time-based loss detection, when this ACK moved RACK on.
        if (_rackAdvanced) DetectLossAndArm(now);

        if (_phase == Phase.Recovery && _prr.Active) ApplyPrr(ack.Delivered);
        if (Seq.Gt(_snd.Una, RecoveryPoint) && _phase == Phase.Open) RecoveryPoint = _snd.Una - 1; // stays within 2^31 of SND.UNA
    }

    // ---------------- RACK ----------------

    /// <summary>
    /// RACK.reo_wnd (RFC 8985 6.2 step 4): 0 while no reordering has been seen and either recovery is under way or
    /// DupThresh segments are SACKed; otherwise min_RTT/4 times the D-SACK multiplier, at most SRTT.
    /// </summary>
    private TimeSpan ReorderWindow()
    {
        // The records read only if made: a snapshot's Stats (Get-NetStackConnection) of a connection that has sent no
        // data must not make them, or its sender leaves the short path (TcpSender.Bare.cs) for good.
        if (!_reorderingSeen && (_phase != Phase.Open || (_snd.SentIfMade?.SackedBytes ?? 0) >= DupThresh * Mss)) return TimeSpan.Zero;
        var minRtt = _snd.Rtt.MinRtt;
        var w = minRtt / 4 * _reoWndMult;
        var srtt = _snd.Rtt.Srtt;
        return w > srtt ? srtt : w;
    }

    /// <summary>
    /// RACK_detect_loss (RFC 8985 6.2 step 5): marks lost every unSACKed segment sent before RACK's segment whose
    /// send time + RACK.rtt + reo_wnd has passed; returns how long until the next would be (0: none waits).
    /// Walks the records in sequence order and stops at the first never-retransmitted segment sent after RACK's:
    /// every segment above it was sent later still.
    /// </summary>
    private TimeSpan DetectLoss(TimeSpan now, out int lost)
    {
        lost = 0;
        var timeout = TimeSpan.Zero;
        if (!_rackValid) return timeout;
        var reoWnd = ReorderWindow();
        for (int i = 0; i < Sent.Count; i++)
        {
            ref var r = ref Sent[i];
            if (r.Has(SentFlags.Sacked) || r.NeedsRetransmit) continue;
            // RACK_sent_after (RFC 8985 6.2) by transmission order: the RFC's (xmit_ts, end_seq) tie-break would call
            // a retransmission older than new data sent in the same clock tick after it.
            if (r.Order >= _rackOrder)
            {
                if (!r.Has(SentFlags.EverRetransmitted)) break;
                continue;
            }
            var remaining = r.Sent + _rackRtt + reoWnd - now;
            if (remaining <= TimeSpan.Zero)
            {
                MarkLost(i);
                lost++;
            }
            else if (remaining > timeout) timeout = remaining;
        }
        if (lost > 0)
        {
            _rackLosses += lost;
            Counters.RackLosses += lost;
        }
        return timeout;
    }

    private void MarkLost(int i)
    {
        ref var r = ref Sent[i];
        if (!r.Has(SentFlags.Lost)) _snd.Rate.OnLost(r.Length);
        Sent.MarkLost(i);
    }

    /// <summary>Loss detection; recovery starts when it found a loss; the reorder timer waits for the rest.</summary>
    private void DetectLossAndArm(TimeSpan now)
    {
        var timeout = DetectLoss(now, out var lost);
        if (lost > 0 && _tlpJustAcked) _probesInRow = 0; // the probe's ACK found losses: their retransmissions get probes of their own
        if (lost > 0 && _phase == Phase.Open) EnterRecovery(now);
        if (timeout > TimeSpan.Zero) SetTimer(TimerKind.Reorder, now + timeout);
        else if (_timer == TimerKind.Reorder) SetTimer(TimerKind.None, TcpConnection.Never);
    }

    private void SetTimer(TimerKind kind, TimeSpan at)
    {
        _timer = kind;
        _c.LossAt = at;
    }

    public void OnTimer(TimeSpan now)
    {
        var kind = _timer;
        _timer = TimerKind.None;
        if (kind == TimerKind.Reorder)
        {
            // RFC 8985 6.3: the reorder timer expired: detect again; recovery starts if something is lost now.
            DetectLossAndArm(now);
            if (_phase == Phase.Recovery && _prr.Active && _prr.Out == 0) ApplyPrr(0);
        }
        else if (kind == TimerKind.Probe) SendProbe(now);
    }

    // ---------------- phases ----------------

    /// <summary>Fast recovery (RFC 6675 5 as RFC 8985 9.1 applies it): ssthresh from the congestion control, PRR from here.</summary>
    private void EnterRecovery(TimeSpan now)
    {
        var flight = _snd.Max - _snd.Una;
        _undo = SpuriousRetransmissionUndo.Start(_snd.Cwnd, _snd.Ssthresh, _snd.Una, _snd.Max);
        _snd.Ssthresh = _snd.Cc.OnLoss(_snd.Cwnd, flight, Mss, now);
        RecoveryPoint = _snd.Max;
        _phase = Phase.Recovery;
        // PRR is the window of a window-based control only: a model-based one (BBR) sets cwnd itself on every ACK
        // (packet conservation for the first round, then its model), as Linux applies tcp_cwnd_reduction only without
        // cong_control. Left to PRR, each ACK of a batch lowered BBR's window with the pipe (cwnd = pipe + sndcnt).
        _prr = _snd.Cc.SetsWindow ? default : ProportionalRateReduction.Start(flight);
        Counters.FastRetransmits++;
        _snd.FastRecoveries++;
        if (_prr.Active) Counters.PrrRecoveries++;
        _snd.Rtt.StopTiming(); // Karn
        if (_tlpJustAcked) CountTlpRecovery(); // the probe's delivery showed the losses
        _c.Layer.Context.Trace("Tcp", $"{_c.Describe()} RACK: loss at {_snd.Una}, recovery until {RecoveryPoint}, ssthresh {_snd.Ssthresh}");
    }

    /// <summary>PRR's sndcnt becomes the room: cwnd = pipe + sndcnt.</summary>
    private void ApplyPrr(uint delivered)
    {
        if (delivered == 0 && _prr.Out > 0) return; // an ACK that delivered nothing sends nothing (RFC 6937)
        var pipe = Pipe();
        var sndcnt = _prr.OnAck(delivered, pipe, _snd.Ssthresh, Mss);
        _snd.Cwnd = (uint)Math.Min(pipe + sndcnt, uint.MaxValue);
    }

    private void Exit()
    {
        // RFC 6937: cwnd = ssthresh when recovery ends; a model-based control restores its own (Linux's tcp_end_cwnd_reduction).
        if (_phase == Phase.Recovery && !_snd.Cc.SetsWindow) _snd.Cwnd = _snd.Ssthresh;
        _phase = Phase.Open;
        _prr = default;
        // RFC 8985 6.2 step 4: a widened reordering window decays after ReoWndPersist recoveries.
        if (--_reoWndPersist <= 0) _reoWndMult = 1;
    }

    /// <summary>The reduction was for nothing: restore the window and forget the losses not yet resent.</summary>
    private void Undo(TimeSpan now)
    {
        var cwnd = _snd.Cwnd;
        var ssthresh = _snd.Ssthresh;
        _undo.Undo(ref cwnd, ref ssthresh);
        _snd.Cwnd = cwnd;
        _snd.Ssthresh = ssthresh;
        _undos++;
        Counters.Undos++;
        if (_phase != Phase.Open)
        {
            _phase = Phase.Open;
            _prr = default;
            Sent.ClearUnsentLost();
        }
        _c.Layer.Context.Trace("Tcp", $"{_c.Describe()} spurious retransmission: cwnd {cwnd}, ssthresh {ssthresh} restored");
    }

    public void OnRetransmitTimeout(TimeSpan now, uint priorCwnd, uint priorSsthresh)
    {
        // A new episode unless this timeout continues one (a backoff, or during fast recovery whose reduction stands).
        if (_phase == Phase.Open || (_phase == Phase.Loss && _snd.Retries == 1))
            _undo = SpuriousRetransmissionUndo.Start(priorCwnd, priorSsthresh, _snd.Una, _snd.Max);
        _phase = Phase.Loss;
        _prr = default;
        RecoveryPoint = _snd.Max;
        DupAcks = 0;
        _tlpOutstanding = false;
        _probesInRow = 0;
        if (_timer == TimerKind.Reorder) SetTimer(TimerKind.None, TcpConnection.Never);
        // Every unSACKed segment is lost and goes again in order as the window allows (RFC 6675 5.1; Linux's loss state).
        for (int i = 0; i < Sent.Count; i++) MarkLost(i);
        if (--_reoWndPersist <= 0) _reoWndMult = 1;
    }

    // ---------------- what to send ----------------

    public long Pipe() => Sent.Pipe(_snd.Una, _snd.Max);

    /// <summary>Segments marked lost go first, lowest first (RFC 6675 NextSeg rule 1), then new data.</summary>
    public NextSend NextToSend(long room, bool newDataBlocked, out uint seq, out uint len)
    {
        seq = len = 0;
        var i = Sent.FirstToRetransmit();
        if (i >= 0)
        {
            ref var r = ref Sent[i];
            len = Math.Min(r.Length, Mss);
            if (room < len) return NextSend.Nothing;
            seq = r.Start;
            return NextSend.Retransmission;
        }
        return newDataBlocked ? NextSend.Nothing : NextSend.NewData;
    }

    public void OnRetransmitted(uint seq, int sent) { }

    public void OnTransmitted(uint seq, int len, bool retransmission, TimeSpan now)
    {
        _prr.OnSent(len);
        if (retransmission) _undo.OnRetransmit(seq, len, Mss, _c.TsEnabled, _c.TsNow(now));
        if (!_sendingProbe) _ptoBase = now; // RFC 8985 7.2: new data (here any transmission) restarts the PTO
    }

    public bool SkipSacked(uint from, out uint unsacked, out uint limit)
    {
        unsacked = Sent.SkipSacked(from, _snd.Max, out limit);
        return Sent.SackedBytes > 0;
    }

    public void OnClosed()
    {
        _timer = TimerKind.None;
        _c.LossAt = TcpConnection.Never;
    }
}
