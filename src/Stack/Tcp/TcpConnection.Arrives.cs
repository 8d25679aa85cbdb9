namespace NetStack.Tcp;

/// <summary>
/// SEGMENT ARRIVES (RFC 9293 3.10.7) for a connection, in the RFC's order: SYN-SENT, then for the synchronized
/// states the sequence check and trimming (the receiver's), RST, SYN, ACK (the sender's), text (the receiver's)
/// and FIN; and received ICMP errors.
/// </summary>
internal sealed partial class TcpConnection
{
    /// <summary>The per-connection limit on ACKs for refused segments and challenge ACKs.</summary>
    private AckRateLimit _refusedAcks;

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
        Snd.Output(now);
        Rcv.ScheduleAck(now);
        Layer.Schedule(this);
    }

    // RFC 9293 3.10.7.3
    private void OnSegmentSynSent(ref TcpSegment seg, TimeSpan now)
    {
        if (seg.Has(TcpFlags.Ack) && (Seq.Le(seg.Ack, Iss) || Seq.Gt(seg.Ack, Snd.Nxt)))
        {
            if (!seg.Has(TcpFlags.Rst)) SendReset(seg.Ack, now);
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
        Rcv.OnSyn(seg.Seq);
        Negotiate(ref seg);
        if (seg.Has(TcpFlags.Ack))
        {
            Context.Trace("Tcp", $"{Describe()} SYN-ACK received, IRS {Irs}");
            Snd.OnSynAck(ref seg);
            if (Snd.Retries == 0) Snd.Rtt.Sample(now - _synSentAt); // Karn: only an unretransmitted SYN gives a sample
            else if (TsEnabled && seg.Options.TsEcr != 0) Snd.Rtt.Sample(TimeSpan.FromMilliseconds(TsNow(now) - seg.Options.TsEcr));
            RtoAt = Never;
            Snd.Retries = 0;
            Snd.Rtt.Backoff = 0;
            EnterEstablished(now);
            Rcv.AckNow = true;
            return;
        }
        // Simultaneous open (RFC 9293 3.5, figure 8): SYN-RECEIVED and a SYN-ACK with our original ISS.
        Snd.OnPeerSyn(ref seg);
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
            Snd.Retries++; // a retransmission: Karn's rule then takes no RTT sample from the handshake
            SendSyn(now);
            return;
        }

        // PAWS (RFC 7323 5.3): a timestamp older than TS.Recent marks an old duplicate.
        if (TsEnabled && opts.HasTimestamp && !rst && (int)(opts.TsVal - TsRecent) < 0)
        {
            Counters.PawsRejected++;
            if (seg.Has(TcpFlags.Syn)) SendChallengeAck(now); // RFC 5961 4.2: any SYN, whatever its sequence number
            else AckRefused(ref seg, now);
            return;
        }

        // First: sequence number acceptability.
        if (!Rcv.IsAcceptable(ref seg))
        {
            if (rst) { Counters.DroppedNotAcceptable++; return; }
            if (seg.Has(TcpFlags.Syn)) { SendChallengeAck(now); return; } // RFC 5961 4.2, irrespective of the sequence number
            Counters.DuplicateSegments++;
            Rcv.OnUnacceptable(ref seg); // a duplicate is reported with D-SACK (RFC 2883)
            AckRefused(ref seg, now); // RFC 9293: <SEQ=SND.NXT><ACK=RCV.NXT><CTL=ACK>, then drop
            // TIME-WAIT: a retransmitted FIN (already below RCV.NXT) is acknowledged and restarts 2 MSL.
            if (State == TcpState.TimeWait && seg.Has(TcpFlags.Fin)) StateAt = now + 2 * Settings.Msl;
            return;
        }
        Rcv.Trim(ref seg);

        // TS.Recent follows the segment that covers the last ACK we sent (RFC 7323 4.3).
        if (TsEnabled && opts.HasTimestamp && Seq.Le(seg.Seq, Rcv.LastAckSent)) TsRecent = opts.TsVal;

        // Second: RST (RFC 5961 3.2: only an exact RCV.NXT match resets; other in-window RSTs get a challenge ACK).
        if (rst)
        {
            if (seg.Seq != Rcv.Nxt)
            {
                SendChallengeAck(now);
                return;
            }
            Counters.ResetsReceived++;
            OnReset(now);
            return;
        }

        // Fourth: SYN in a synchronized state (RFC 5961 4.2): challenge ACK, drop.
        if (seg.Has(TcpFlags.Syn))
        {
            SendChallengeAck(now);
            return;
        }

        // Fifth: ACK.
        if (!seg.Has(TcpFlags.Ack)) { Counters.DroppedNotAcceptable++; return; }
        // RFC 5961 5.2: SND.UNA - MAX.SND.WND <= SEG.ACK <= SND.NXT, otherwise challenge ACK and drop.
        if (Seq.Gt(seg.Ack, Snd.Max) || Seq.Lt(seg.Ack, Snd.Una - Snd.MaxWnd))
        {
            SendChallengeAck(now);
            return;
        }
        if (State == TcpState.SynReceived)
        {
            if (!Seq.Lt(Snd.Una, seg.Ack))
            {
                SendReset(seg.Ack, now);
                return;
            }
            if (Listener is { } l && !l.HasAcceptRoom)
            {
                // Accept queue full: leave the handshake incomplete, as Linux does; our SYN-ACK retransmission
                // (or the client's next segment) completes it once the application has accepted.
                Counters.ListenAcceptQueueFull++;
                return;
            }
            Snd.OnHandshakeAck(ref seg);
            if (Snd.Retries == 0) Snd.Rtt.Sample(now - _synSentAt);
            Snd.Retries = 0;
            Snd.Rtt.Backoff = 0;
            EnterEstablished(now);
        }
        if (!OnAck(ref seg, now)) return;

        if (Keepalive && State is TcpState.Established or TcpState.CloseWait)
        {
            KeepAt = now + Settings.KeepaliveIdle;
            _keepProbes = 0;
        }

        // Seventh: segment text.
        if (seg.Payload.Length > 0)
        {
            if (State is TcpState.Established or TcpState.FinWait1 or TcpState.FinWait2) Rcv.OnText(ref seg, ref _pending, now);
            else Counters.DroppedAfterClose++;
        }

        // Eighth: FIN, once everything before it has arrived. A FIN that came out of order is remembered and
        // taken when the hole before it fills, rather than waiting for the peer to retransmit it.
        if (Rcv.PeerFin || State is not (TcpState.Established or TcpState.FinWait1 or TcpState.FinWait2 or TcpState.SynReceived)) return;
        if (Rcv.FinReached(ref seg)) OnFin(now);
    }

    /// <summary>
    /// The ACK owed for a refused segment (out of the window, or an old duplicate by PAWS): at once for data or a FIN;
    /// for anything else at most once per Tcp.InvalidAckInterval (<see cref="AckRateLimit"/>).
    /// </summary>
    private void AckRefused(ref TcpSegment seg, TimeSpan now)
    {
        if (!AckRateLimit.Applies(ref seg) || _refusedAcks.TryTake(now, Settings.InvalidAckInterval)) Rcv.AckNow = true;
        else Counters.InvalidAcksSuppressed++;
    }

    /// <summary>A challenge ACK (RFC 5961 3.2, 4.2, 5.2): within this connection's limit, then the stack-wide budget.</summary>
    private void SendChallengeAck(TimeSpan now)
    {
        if (!_refusedAcks.TryTake(now, Settings.InvalidAckInterval)) { Counters.ChallengeAcksSuppressed++; return; }
        if (Layer.TakeChallengeAck(now)) SendAck(now);
    }

    /// <summary>The sender takes the ACK; a new one frees room for a waiting send, and may acknowledge our FIN. False when the connection closed.</summary>
    private bool OnAck(ref TcpSegment seg, TimeSpan now)
    {
        var result = Snd.OnAck(ref seg, now);
        if (result == AckResult.NothingNew) return true;
        if (!SendBufferFixed) Snd.BufferLimit = SendBufferTuning.Size(Snd.BufferLimit, Snd.Cwnd, Snd.MaxWnd, Settings.SendBufferMax);
        if (_pending.HasSend) _pending.PumpSend(Snd.Buffer); // (nothing to pump without a waiting send: no ring made for it)
        if (result != AckResult.AckedFin) return true;
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
        return true;
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

    private void OnFin(TimeSpan now)
    {
        Rcv.TakeFin();
        Context.Trace("Tcp", $"{Describe()} FIN received");
        if (_pending.HasReceive && Rcv.BufferCount == 0) _pending.CompleteReceive(0);
        switch (State)
        {
            case TcpState.SynReceived:
            case TcpState.Established:
                SetState(TcpState.CloseWait, now);
                break;
            case TcpState.FinWait1:
                // Our FIN not yet acknowledged (else we would be in FIN-WAIT-2): simultaneous close.
                SetState(Snd.FinAcked ? TcpState.TimeWait : TcpState.Closing, now);
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
        if (!error.IsLocal && (Seq.Lt(seq, Snd.Una) || Seq.Gt(seq, Snd.Max))) return;
        if (error.NextHopMtu > 0 && error.Error == StackError.MessageTooLong)
        {
            // RFC 1191: lower the path MSS and resend what is outstanding at the new size, without a congestion response.
            var mss = Math.Max(error.NextHopMtu - IPv4.Ipv4Header.MinLength - TcpHeader.MinLength, 68);
            if (mss >= PathMss) return;
            PathMss = mss;
            UpdateSndMss();
            Counters.PathMtuUpdates++;
            Context.Trace("Tcp", $"{Describe()} path MTU {error.NextHopMtu}: MSS now {SndMss}");
            if (Synchronized && Snd.Max != Snd.Una)
            {
                Snd.Nxt = Snd.Una;
                Snd.Output(now);
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
