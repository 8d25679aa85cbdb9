namespace NetStack.Tcp;

internal sealed partial class TcpConnection
{
    /// <summary>SEGMENT ARRIVES (RFC 9293 3.10.7) for this connection.</summary>
    public void OnSegment(ref TcpSegment seg, TimeSpan now)
    {
        SegmentsIn++;
        switch (State)
        {
            case TcpState.Closed:
            case TcpState.Listen:
                Layer.ResetFor(Remote, ref seg, now);
                return;
            case TcpState.SynSent:
                OnSegmentSynSent(ref seg, now);
                break;
            default:
                OnSegmentSynchronized(ref seg, now);
                break;
        }
        AfterInput(now);
    }

    /// <summary>Sends what the segment allowed and the ACK it asked for, then re-arms timers.</summary>
    private void AfterInput(TimeSpan now)
    {
        if (State == TcpState.Closed) return;
        Output(now);
        if (_ackNow) SendAck(now);
        else if (_ackAtBatchEnd) Layer.AckAtBatchEnd(this);
        else if (_ackPending && DelAckAt == Never) DelAckAt = now + Settings.DelayedAckTimeout;
        Layer.Schedule(this);
    }

    // RFC 9293 3.10.7.3
    private void OnSegmentSynSent(ref TcpSegment seg, TimeSpan now)
    {
        if (seg.Has(TcpFlags.Ack) && (Seq.Le(seg.Ack, Iss) || Seq.Gt(seg.Ack, SndNxt)))
        {
            if (!seg.Has(TcpFlags.Rst)) Layer.SendControl(Remote, Key.LocalPort, Key.RemotePort, seg.Ack, 0, TcpFlags.Rst, now);
            Counters.DroppedNotAcceptable++;
            return;
        }
        if (seg.Has(TcpFlags.Rst))
        {
            // Only a RST that acknowledges our SYN is believed (RFC 5961 3.2 keeps this rule for SYN-SENT).
            if (!seg.Has(TcpFlags.Ack)) { Counters.DroppedNotAcceptable++; return; }
            Counters.ResetsReceived++;
            Counters.AttemptFails++;
            Fail(StackError.ConnectionRefused, $"Connection refused by {Remote}:{Key.RemotePort} (RST in reply to SYN).", now);
            return;
        }
        if (!seg.Has(TcpFlags.Syn)) { Counters.DroppedNotAcceptable++; return; }

        Irs = seg.Seq;
        RcvNxt = seg.Seq + 1;
        Negotiate(ref seg);
        if (seg.Has(TcpFlags.Ack))
        {
            Context.Trace("Tcp", $"{Describe()} SYN-ACK received, IRS {Irs}");
            SndUna = seg.Ack;
            SynAcked = true;
            SndWnd = seg.Window; // unscaled in a SYN
            MaxSndWnd = SndWnd;
            SndWl1 = seg.Seq;
            SndWl2 = seg.Ack;
            if (Retries == 0) Rtt.Sample(now - _synSentAt); // Karn: only an unretransmitted SYN gives a sample
            else if (TsEnabled && seg.Options.TsEcr != 0) Rtt.Sample(TimeSpan.FromMilliseconds(TsNow(now) - seg.Options.TsEcr));
            RtoAt = Never;
            Retries = 0;
            Rtt.Backoff = 0;
            EnterEstablished(now);
            _ackNow = true;
            return;
        }
        // Simultaneous open (RFC 9293 3.5, figure 8): SYN-RECEIVED and a SYN-ACK with our original ISS.
        SndWnd = seg.Window;
        MaxSndWnd = SndWnd;
        SndWl1 = seg.Seq;
        SetState(TcpState.SynReceived, now);
        SendSyn(now);
    }

    // RFC 9293 3.10.7.4
    private void OnSegmentSynchronized(ref TcpSegment seg, TimeSpan now)
    {
        ref readonly var opts = ref seg.Options;
        var rst = seg.Has(TcpFlags.Rst);

        // A retransmitted SYN while we are SYN-RECEIVED: our SYN-ACK was lost, send it again (as Linux does).
        if (State == TcpState.SynReceived && seg.IsBareSyn && seg.Seq == Irs)
        {
            Counters.DuplicateSegments++;
            if (TsEnabled && opts.HasTimestamp) TsRecent = opts.TsVal; // echo this SYN's time, not the first one's
            Retries++; // a retransmission: Karn's rule then takes no RTT sample from the handshake
            SendSyn(now);
            return;
        }

        // PAWS (RFC 7323 5.3): a timestamp older than TS.Recent marks an old duplicate.
        if (TsEnabled && opts.HasTimestamp && !rst && (int)(opts.TsVal - TsRecent) < 0)
        {
            Counters.PawsRejected++;
            SendAck(now);
            return;
        }

        // First: sequence number acceptability (the four cases of 3.10.7.4).
        var rcvWnd = Seq.Gt(RcvAdvEdge, RcvNxt) ? RcvAdvEdge - RcvNxt : 0;
        var segLen = seg.Len;
        bool acceptable;
        if (segLen == 0)
            acceptable = rcvWnd == 0 ? seg.Seq == RcvNxt : Seq.Le(RcvNxt, seg.Seq) && Seq.Lt(seg.Seq, RcvNxt + rcvWnd);
        else if (rcvWnd == 0)
            acceptable = seg.Seq == RcvNxt && !seg.Has(TcpFlags.Syn); // let ACK/RST through a closed window; text is trimmed below
        else
            acceptable = (Seq.Le(RcvNxt, seg.Seq) && Seq.Lt(seg.Seq, RcvNxt + rcvWnd))
                         || (Seq.Le(RcvNxt, seg.Seq + segLen - 1) && Seq.Lt(seg.Seq + segLen - 1, RcvNxt + rcvWnd));
        if (!acceptable)
        {
            if (rst) { Counters.DroppedNotAcceptable++; return; }
            Counters.DuplicateSegments++;
            _ackNow = true; // RFC 9293: <SEQ=SND.NXT><ACK=RCV.NXT><CTL=ACK>, then drop
            // TIME-WAIT: a retransmitted FIN (already below RCV.NXT) is acknowledged and restarts 2 MSL.
            if (State == TcpState.TimeWait && seg.Has(TcpFlags.Fin)) StateAt = now + 2 * Settings.Msl;
            return;
        }

        // Trim to the window: drop what was already received (a SYN included) and what lies beyond the edge.
        if (Seq.Lt(seg.Seq, RcvNxt))
        {
            var skip = RcvNxt - seg.Seq;
            if (seg.Has(TcpFlags.Syn)) { seg.Flags &= ~TcpFlags.Syn; seg.Seq++; skip--; }
            var data = (int)Math.Min(skip, (uint)seg.Payload.Length);
            seg.Payload = seg.Payload[data..];
            seg.Seq += (uint)data;
            if (data > 0) Counters.DuplicateSegments++;
        }
        var edge = RcvNxt + rcvWnd;
        if (Seq.Gt(seg.Seq + (uint)seg.Payload.Length, edge))
        {
            var keep = Seq.Gt(edge, seg.Seq) ? (int)(edge - seg.Seq) : 0;
            seg.Payload = seg.Payload[..keep];
            seg.Flags &= ~TcpFlags.Fin;
            _ackNow = true; // tell the sender where the window ends (a zero-window probe carrying data gets its answer)
        }

        // TS.Recent follows the segment that covers the last ACK we sent (RFC 7323 4.3).
        if (TsEnabled && opts.HasTimestamp && Seq.Le(seg.Seq, LastAckSent)) TsRecent = opts.TsVal;

        // Second: RST (RFC 5961 3.2: only an exact RCV.NXT match resets; other in-window RSTs get a challenge ACK).
        if (rst)
        {
            if (seg.Seq != RcvNxt)
            {
                if (Layer.TakeChallengeAck(now)) SendAck(now);
                return;
            }
            Counters.ResetsReceived++;
            OnReset(now);
            return;
        }

        // Fourth: SYN in a synchronized state (RFC 5961 4.2): challenge ACK, drop.
        if (seg.Has(TcpFlags.Syn))
        {
            if (Layer.TakeChallengeAck(now)) SendAck(now);
            return;
        }

        // Fifth: ACK.
        if (!seg.Has(TcpFlags.Ack)) { Counters.DroppedNotAcceptable++; return; }
        // RFC 5961 5.2: SND.UNA - MAX.SND.WND <= SEG.ACK <= SND.NXT, otherwise challenge ACK and drop.
        if (Seq.Gt(seg.Ack, SndMax) || Seq.Lt(seg.Ack, SndUna - MaxSndWnd))
        {
            if (Layer.TakeChallengeAck(now)) SendAck(now);
            return;
        }
        if (State == TcpState.SynReceived)
        {
            if (!Seq.Lt(SndUna, seg.Ack))
            {
                Layer.SendControl(Remote, Key.LocalPort, Key.RemotePort, seg.Ack, 0, TcpFlags.Rst, now);
                return;
            }
            if (Listener is { } l && !l.HasAcceptRoom)
            {
                // Accept queue full: leave the handshake incomplete, as Linux does; our SYN-ACK retransmission
                // (or the client's next segment) completes it once the application has accepted.
                Counters.ListenAcceptQueueFull++;
                return;
            }
            SndWnd = (uint)seg.Window << SndWndShift;
            MaxSndWnd = Math.Max(MaxSndWnd, SndWnd);
            SndWl1 = seg.Seq;
            SndWl2 = seg.Ack;
            if (Retries == 0) Rtt.Sample(now - _synSentAt);
            Retries = 0;
            Rtt.Backoff = 0;
            EnterEstablished(now);
        }
        if (!ProcessAck(ref seg, now)) return;

        if (Keepalive && State is TcpState.Established or TcpState.CloseWait)
        {
            KeepAt = now + Settings.KeepaliveIdle;
            _keepProbes = 0;
        }

        // Seventh: segment text.
        if (seg.Payload.Length > 0)
        {
            if (State is TcpState.Established or TcpState.FinWait1 or TcpState.FinWait2) ReceiveText(ref seg, now);
            else Counters.DroppedAfterClose++;
        }

        // Eighth: FIN, once everything before it has arrived. A FIN that came out of order is remembered and
        // taken when the hole before it fills, rather than waiting for the peer to retransmit it.
        if (PeerFin || State is not (TcpState.Established or TcpState.FinWait1 or TcpState.FinWait2 or TcpState.SynReceived)) return;
        if (seg.Has(TcpFlags.Fin))
        {
            var finSeq = seg.Seq + (uint)seg.Payload.Length;
            if (finSeq == RcvNxt) { OnFin(now); return; }
            if (seg.Payload.Length > 0 && _oooCount > 0 && IsOutOfOrderHeld(finSeq)) { _finPending = true; _finSeq = finSeq; }
        }
        if (_finPending && RcvNxt == _finSeq) OnFin(now);
    }

    private bool _finPending;
    private uint _finSeq;

    /// <summary>True when the out-of-order ranges hold the byte just before <paramref name="end"/>.</summary>
    private bool IsOutOfOrderHeld(uint end)
    {
        for (int i = 0; i < _oooCount; i++)
            if (Seq.Lt(_ooo![i].Left, end) && Seq.Le(end, _ooo[i].Right)) return true;
        return false;
    }

    private void OnReset(TimeSpan now)
    {
        switch (State)
        {
            case TcpState.SynReceived when Listener != null:
                // A passive open that was reset returns to LISTEN: only this half-open connection goes.
                Fail(StackError.ConnectionReset, "The half-open connection was reset by the peer.", now);
                break;
            case TcpState.SynReceived:
                Counters.AttemptFails++;
                Fail(StackError.ConnectionRefused, $"Connection refused by {Remote}:{Key.RemotePort}.", now);
                break;
            case TcpState.Established:
            case TcpState.FinWait1:
            case TcpState.FinWait2:
            case TcpState.CloseWait:
                Counters.EstablishedResets++;
                Fail(StackError.ConnectionReset, $"Connection reset by {Remote}:{Key.RemotePort}.", now);
                break;
            default: // CLOSING, LAST-ACK, TIME-WAIT: the connection was ending anyway
                Context.Trace("Tcp", $"{Describe()} RST in {State}");
                SetState(TcpState.Closed, now);
                break;
        }
    }

    /// <summary>The fifth check's ACK processing (RFC 9293 3.10.7.4, RFC 5681, RFC 6582, RFC 6675). False when the connection closed.</summary>
    private bool ProcessAck(ref TcpSegment seg, TimeSpan now)
    {
        var ack = seg.Ack;
        ref readonly var opts = ref seg.Options;
        var newlySacked = false;
        if (SackEnabled && opts.SackCount > 0)
        {
            // RFC 6675 Update(): O(blocks x ranges), no allocation; ACKs without blocks skip it.
            Scoreboard ??= new SackScoreboard(SackScoreboard.DefaultCapacity, Counters);
            newlySacked = Scoreboard.Update(opts.Sack[..opts.SackCount], SndUna, SndMax, (uint)SndMss);
        }

        var window = (uint)seg.Window << SndWndShift;
        if (Seq.Le(ack, SndUna))
        {
            // RFC 5681 2: a duplicate ACK carries no data, no SYN/FIN, the same window, while data is outstanding.
            // RFC 6675 2: with SACK, one that SACKs new data is a duplicate whatever its window (Linux opens its
            // window as it reads, so its duplicates rarely repeat the window).
            if (ack == SndUna && seg.Payload.Length == 0 && !seg.Has(TcpFlags.Fin) && (window == SndWnd || newlySacked) && SndMax != SndUna)
                OnDuplicateAck(now);
            UpdateWindow(ref seg, window, now);
            return true;
        }

        // New data acknowledged.
        var acked = ack - SndUna;
        // Our SYN still unacknowledged? A flag, not SND.UNA <= ISS: that comparison wraps after 2^31 bytes.
        var synAcked = !SynAcked;
        if (synAcked) { acked--; SynAcked = true; }
        var dataAcked = (int)Math.Min(acked, (uint)SndBuf.Count);
        var flightBefore = SndNxt - SndUna; // in flight when this ACK arrived: our estimate of RFC 7661's pipeACK
        SndBuf.Discard(dataAcked);
        var finAcked = FinQueued && !FinAcked && acked > (uint)dataAcked;
        if (finAcked) FinAcked = true;
        SndUna = ack;
        if (Seq.Lt(SndNxt, SndUna)) SndNxt = SndUna;
        if (Scoreboard is { } sb && !sb.Advance(SndUna))
        {
            // Reneging (RFC 2018 8): the peer lacks the segment at SND.UNA it had SACKed, so send it now; anything
            // else it dropped is found by later SACKs or, at worst, by the retransmission timer.
            Context.Trace("Tcp", $"{Describe()} peer reneged on SACKed data at {SndUna}: scoreboard cleared");
            Rtt.StopTiming(); // Karn
            var sent = RetransmitFirst(now);
            // After a timeout go-back-N may have skipped the reneged data: continue it from here.
            if (!InRecovery && Seq.Lt(SndUna, Recover)) SndNxt = SndUna + (uint)sent;
        }
        if (SndBuf.Count == 0) SndBuf.ReleaseIfEmpty();
        DupAcks = 0;

        // RTT (RFC 6298 / RFC 7323 4.1): from the echoed timestamp, else from the one timed segment (Karn).
        // Not after a timeout: the echoed TS.Recent may then be that of a much older segment (the peer does not
        // update TS.Recent from segments below RCV.NXT), which would inflate SRTT (Karn's rule, applied to TSecr).
        if (TsEnabled && opts.HasTimestamp && opts.TsEcr != 0)
        {
            if (Retries == 0) Rtt.Sample(TimeSpan.FromMilliseconds((int)(TsNow(now) - opts.TsEcr)));
        }
        else Rtt.OnAck(ack, now);
        Rtt.Backoff = 0;
        Retries = 0;

        // Congestion control.
        var mss = (uint)SndMss;
        if (InRecovery)
        {
            if (Seq.Ge(ack, Recover))
            {
                // Full ACK (RFC 6582 3.2 step 3): leave recovery with cwnd = min(ssthresh, FlightSize + MSS).
                InRecovery = false;
                var flight = SndMax - SndUna;
                Cwnd = Math.Min(Ssthresh, Math.Max(flight, mss) + mss);
            }
            else if (!SackEnabled)
            {
                // Partial ACK (RFC 6582 3.2 step 4): retransmit the next hole, deflate by the amount acknowledged.
                RetransmitFirst(now);
                Cwnd = Cwnd > (uint)dataAcked ? Cwnd - (uint)dataAcked : mss;
                if ((uint)dataAcked >= mss) Cwnd += mss;
            }
            // With SACK a partial ACK changes nothing here: Output recomputes the pipe and runs NextSeg (RFC 6675 5 (B), (C)).
        }
        else
        {
            // RFC 7661 4.3: grow cwnd only while it is validated, i.e. the flight uses at least half of it. An
            // application- or receive-window-limited sender would otherwise inflate cwnd without bound and then
            // burst it all the first time more data or a slower path appears.
            if (!synAcked && dataAcked > 0)
            {
                if (flightBefore >= Cwnd / 2) Cwnd = Cc.OnAck(Cwnd, Ssthresh, (uint)dataAcked, mss, now, Rtt.Srtt);
                else Cc.OnNotCwndLimited(now);
            }
            // Keep Recover just below SND.UNA once passed, so the RFC 6582 comparison never spans 2^31 bytes.
            if (Seq.Gt(SndUna, Recover)) Recover = SndUna - 1;
        }

        // RTO (RFC 6298 5.2/5.3): stop when all is acknowledged, else restart.
        _persisting = false;
        RtoAt = SndMax == SndUna ? Never : now + Rtt.Rto;
        UpdateWindow(ref seg, window, now);
        if (dataAcked > 0) BytesSent += dataAcked;
        _pending.PumpSend(SndBuf);

        if (finAcked)
        {
            switch (State)
            {
                case TcpState.FinWait1:
                    SetState(TcpState.FinWait2, now);
                    _pending.CompleteClose();
                    if (UserClosed) StateAt = now + Settings.FinWait2Timeout;
                    break;
                case TcpState.Closing:
                    SetState(TcpState.TimeWait, now);
                    break;
                case TcpState.LastAck:
                    SetState(TcpState.Closed, now);
                    return false;
            }
        }
        return true;
    }

    /// <summary>SND.WND follows segments that are not older than the last update (RFC 9293 3.10.7.4, SND.WL1/WL2).</summary>
    private void UpdateWindow(ref TcpSegment seg, uint window, TimeSpan now)
    {
        if (Seq.Lt(SndWl1, seg.Seq) || (SndWl1 == seg.Seq && Seq.Le(SndWl2, seg.Ack)))
        {
            SndWnd = window;
            SndWl1 = seg.Seq;
            SndWl2 = seg.Ack;
            if (window > MaxSndWnd) MaxSndWnd = window;
            if (window > 0 && _persisting)
            {
                _persisting = false;
                RtoAt = SndMax == SndUna ? Never : now + Rtt.Rto;
                Rtt.Backoff = 0;
            }
        }
    }

    private void OnDuplicateAck(TimeSpan now)
    {
        DupAcks++;
        if (InRecovery)
        {
            if (!SackEnabled) Cwnd += (uint)SndMss; // RFC 6582 3.2 step 5: inflate per further duplicate
            return;
        }
        // RFC 5681 3.2 / RFC 6675 5 (2), (3): DupThresh duplicates, or the scoreboard saying SND.UNA is lost.
        var lost = DupAcks >= SackScoreboard.DupThresh || (Scoreboard != null && Scoreboard.IsLost(SndUna));
        if (!lost || !Seq.Gt(SndUna, Recover)) return; // RFC 6582 3.2 step 2 / RFC 6675 5: not before the last recovery's end
        EnterRecovery(now);
    }

    /// <summary>
    /// Fast retransmit and the start of loss recovery: RFC 6675 5 (1)-(3) with SACK (cwnd = ssthresh, HighRxt and
    /// RescueRxt after the first retransmission; Output then runs step (C)), RFC 6582 3.2 step 2-3 without.
    /// </summary>
    private void EnterRecovery(TimeSpan now)
    {
        var mss = (uint)SndMss;
        var flight = SndMax - SndUna;
        Ssthresh = Cc.OnLoss(Cwnd, flight, mss, now);
        Recover = SndMax;
        InRecovery = true;
        Counters.FastRetransmits++;
        Rtt.StopTiming(); // Karn
        Context.Trace("Tcp", $"{Describe()} fast retransmit of {SndUna} after {DupAcks} duplicate ACKs, ssthresh {Ssthresh}");
        var sent = RetransmitFirst(now);
        if (SackEnabled)
        {
            var sb = Scoreboard ??= new SackScoreboard(SackScoreboard.DefaultCapacity, Counters);
            sb.HighRxt = sb.RescueRxt = SndUna + (uint)sent;
            Cwnd = Ssthresh;
        }
        else Cwnd = Ssthresh + 3 * mss;
    }

    // ---------------- receiving data ----------------

    private void ReceiveText(ref TcpSegment seg, TimeSpan now)
    {
        var data = seg.Payload;
        var offset = seg.Seq - RcvNxt;
        if (UserClosed)
        {
            // Nobody will read it: acknowledge in-order data and drop it, so the peer can finish its close.
            Counters.DroppedAfterClose++;
            if (offset == 0) RcvNxt += (uint)data.Length;
            _ackNow = true;
            return;
        }
        if (offset == 0)
        {
            RcvBuf.WriteAt(RcvBuf.Count, data);
            RcvBuf.Commit(data.Length);
            RcvNxt += (uint)data.Length;
            BytesReceived += data.Length;
            if (_oooCount > 0)
            {
                MergeOutOfOrder();
                _ackNow = true; // RFC 5681 4.2: ACK at once when a segment fills a hole
            }
            else if (++_unackedSegments >= 2)
            {
                // RFC 1122 4.2.3.2 (an ACK for at least every second full segment) is owed, and sent when this receive
                // batch ends: one cumulative ACK for all the batch's segments (what Linux's GRO does in effect), so
                // a busy receiver does not send an ACK per two frames. The stretch is bounded so the sender's window
                // keeps moving within a long batch.
                if (RcvNxt - LastAckSent >= (uint)Math.Min(TcpLayer.MaxAckStretchBytes, RcvBuf.Limit / 4)) _ackNow = true;
                else _ackAtBatchEnd = true;
            }
            else _ackPending = true;
            if (_pending.HasReceive)
            {
                _pending.CompleteReceive(RcvBuf);
                if (RcvBuf.Count == 0 && _oooCount == 0) RcvBuf.ReleaseIfEmpty();
            }
            return;
        }
        // Out of order: keep it at its place in the window; ACK at once so the sender sees the hole (RFC 5681 4.2).
        Counters.OutOfOrderSegments++;
        _ackNow = true;
        if (!AddOutOfOrder(seg.Seq, seg.Seq + (uint)data.Length)) { Counters.DroppedOutOfOrderFull++; return; }
        RcvBuf.WriteAt(RcvBuf.Count + (int)offset, data);
    }

    /// <summary>Records [left, right) as received out of order; false when the range table is full.</summary>
    private bool AddOutOfOrder(uint left, uint right)
    {
        _ooo ??= new SackBlock[Settings.MaxOutOfOrderRanges];
        // Find the first range that ends at or after left.
        int i = 0;
        while (i < _oooCount && Seq.Lt(_ooo[i].Right, left)) i++;
        if (i < _oooCount && Seq.Le(_ooo[i].Left, right))
        {
            // Overlaps or touches range i: widen it and swallow the ranges it now reaches.
            _ooo[i].Left = Seq.Min(_ooo[i].Left, left);
            _ooo[i].Right = Seq.Max(_ooo[i].Right, right);
            int j = i + 1;
            while (j < _oooCount && Seq.Le(_ooo[j].Left, _ooo[i].Right))
            {
                _ooo[i].Right = Seq.Max(_ooo[i].Right, _ooo[j].Right);
                j++;
            }
            if (j > i + 1)
            {
                Array.Copy(_ooo, j, _ooo, i + 1, _oooCount - j);
                _oooCount -= j - i - 1;
            }
            _oooLatest = i;
            return true;
        }
        if (_oooCount == _ooo.Length) return false;
        Array.Copy(_ooo, i, _ooo, i + 1, _oooCount - i);
        _ooo[i] = new SackBlock(left, right);
        _oooCount++;
        _oooLatest = i;
        return true;
    }

    /// <summary>RCV.NXT advanced: ranges it reached are now in order (their bytes are already in place in the ring).</summary>
    private void MergeOutOfOrder()
    {
        int consumed = 0;
        while (consumed < _oooCount && Seq.Le(_ooo![consumed].Left, RcvNxt))
        {
            var r = _ooo[consumed];
            if (Seq.Gt(r.Right, RcvNxt))
            {
                var n = (int)(r.Right - RcvNxt);
                RcvBuf.Commit(n);
                BytesReceived += n;
                RcvNxt = r.Right;
            }
            consumed++;
        }
        if (consumed == 0) return;
        Array.Copy(_ooo!, consumed, _ooo!, 0, _oooCount - consumed);
        _oooCount -= consumed;
        _oooLatest = _oooLatest >= consumed ? _oooLatest - consumed : (_oooCount > 0 ? 0 : -1);
    }

    private void OnFin(TimeSpan now)
    {
        RcvNxt++;
        PeerFin = true;
        _ackNow = true;
        Context.Trace("Tcp", $"{Describe()} FIN received");
        if (_pending.HasReceive && RcvBuf.Count == 0) _pending.CompleteReceive(0);
        switch (State)
        {
            case TcpState.SynReceived:
            case TcpState.Established:
                SetState(TcpState.CloseWait, now);
                break;
            case TcpState.FinWait1:
                // Our FIN not yet acknowledged (else we would be in FIN-WAIT-2): simultaneous close.
                SetState(FinAcked ? TcpState.TimeWait : TcpState.Closing, now);
                break;
            case TcpState.FinWait2:
                StateAt = Never;
                SetState(TcpState.TimeWait, now);
                break;
            case TcpState.TimeWait:
                StateAt = now + 2 * Settings.Msl; // a retransmitted FIN restarts the 2 MSL wait
                break;
        }
    }

    /// <summary>The ICMP error for a segment of ours (RFC 5927 checks the quoted sequence number first).</summary>
    public void OnIcmpError(in IPv4.IpErrorInfo error, uint seq, TimeSpan now)
    {
        if (State is TcpState.Closed or TcpState.Listen or TcpState.TimeWait) return;
        if (!error.IsLocal && (Seq.Lt(seq, SndUna) || Seq.Gt(seq, SndMax))) return;
        if (error.NextHopMtu > 0 && error.Error == StackError.MessageTooLong)
        {
            // RFC 1191: lower the path MSS and resend what is outstanding at the new size, without a congestion response.
            var mss = Math.Max(error.NextHopMtu - IPv4.Ipv4Header.MinLength - TcpHeader.MinLength, 68);
            if (mss >= PathMss) return;
            PathMss = mss;
            UpdateSndMss();
            Counters.PathMtuUpdates++;
            Context.Trace("Tcp", $"{Describe()} path MTU {error.NextHopMtu}: MSS now {SndMss}");
            if (Synchronized && SndMax != SndUna)
            {
                SndNxt = SndUna;
                Output(now);
                Layer.Schedule(this);
            }
            return;
        }
        if (State == TcpState.SynSent && (error.IsHard || error.IsLocal))
        {
            // RFC 1122 4.2.3.9: port/protocol unreachable abort an opening connection; so does a failed ARP here.
            Counters.AttemptFails++;
            var err = error.IsHard ? StackError.ConnectionRefused : error.Error;
            Fail(err, $"Connecting to {Remote}:{Key.RemotePort} failed: {IPv4.IpErrorText.Describe(error)}.", now);
            return;
        }
        SoftError = error.Error; // soft: remembered and reported if the connection later times out
    }
}
