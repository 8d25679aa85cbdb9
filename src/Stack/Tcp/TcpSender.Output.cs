namespace NetStack.Tcp;

internal sealed partial class TcpSender
{
    /// <summary>The persist timer runs in place of the retransmission timer (RFC 9293 3.8.6.1).</summary>
    public bool Persisting { get; private set; }
    private bool _swsOverride;

    /// <summary>
    /// Sends as far as cwnd and the peer's window allow: the recovery names what goes next (RFC 6675 NextSeg
    /// during SACK recovery, otherwise new data), new data obeys sender SWS avoidance and Nagle (see
    /// <see cref="SendNext"/>); then arms the persist timer when a zero window holds data back.
    /// </summary>
    public void Output(TimeSpan now)
    {
        if (_c.State is not (TcpState.Established or TcpState.CloseWait or TcpState.FinWait1 or TcpState.Closing or TcpState.LastAck)) return;
        if (BufferCount == 0 && Max == Una && (!FinQueued || FinAcked))
        {
            // Nothing in flight and nothing to send (a receiving connection's every segment comes here): no recovery is
            // made for it (none was made if nothing was ever sent after the SYN), no pacing burst begun, no
            // retransmission looked for. What the rest would still do: the rate sampler's application-limited mark
            // (pipe 0, SND.UNA = SND.MAX; kept as a flag until the sampler is made) and the recovery's timers (with
            // nothing in flight RACK cancels its tail loss probe).
            if (Cwnd > 0)
            {
                if (_rate is null) _appLimitedBeforeRate = true;
                else Rate.MarkAppLimited(0);
            }
            _recovery?.AfterOutput(now);
            return;
        }
        if (OutputBare(now)) return; // nothing ever sent but a FIN: no recovery, records or sampler made for it
        long pipe = Recovery.Pipe();
        var newDataBlocked = false;
        var pacingRate = Cc.PacingRate; // 0: unpaced (CUBIC, NewReno)
        var paceBlocked = false;
        while (true)
        {
            var room = Cwnd - pipe;
            int n;
            if (pacingRate > 0 && room > 0 && !(_pacer ??= new Pacer()).MaySend(now, pacingRate, _c.SndMss))
            {
                if (_c.PaceAt != _pacer.NextDeparture) Counters.PacingWaits++;
                _c.PaceAt = _pacer.NextDeparture; // the next burst's time; TcpConnection.OnTimers calls Output then
                paceBlocked = true;
                break;
            }
            var next = Recovery.NextToSend(room, newDataBlocked, out var seq, out var len);
            if (next == NextSend.NewData)
            {
                n = SendNext(room, now);
                if (n < 0) { newDataBlocked = true; continue; }
            }
            else if (next == NextSend.Retransmission)
            {
                n = RetransmitAt(seq, len, now);
                if (n == 0) break;
                Recovery.OnRetransmitted(seq, n);
            }
            else break;
            pipe += n; // RFC 6675 5 (C.4)
            newDataBlocked = false;
            if (pacingRate > 0) _pacer!.OnSent(n, pacingRate);
        }
        // Persist timer (RFC 9293 3.8.6.1): data waits behind a zero (or too small) window and nothing is in
        // flight to bring an update.
        if (Max == Una && BufferCount > 0 && _c.RtoAt == TcpConnection.Never && !(FinQueued && FinAcked) && !paceBlocked)
        {
            Persisting = true;
            _c.RtoAt = now + Rtt.BackedOff;
        }
        // The rate sampler's CheckIfApplicationLimited: all data is out, cwnd has room, nothing lost waits to go again.
        if (Una + (uint)BufferCount == Max && pipe < Cwnd && Sent.LostBytes <= Sent.RetransmittedBytes) Rate.MarkAppLimited(pipe);
        Recovery.AfterOutput(now);
    }

    /// <summary>
    /// A tail loss probe (RFC 8985 7.3): one new segment if the peer's window allows (cwnd aside), else the last
    /// segment sent, again. Returns the sequence space sent; <paramref name="retransmission"/> says which it was.
    /// </summary>
    public int SendProbeSegment(TimeSpan now, out bool retransmission)
    {
        retransmission = false;
        var n = SendNext(_c.SndMss, now);
        if (n > 0) { ChargePacer(n, now); return n; }
        retransmission = true;
        var mss = (uint)_c.SndMss;
        var seq = Max - Una > mss ? Max - mss : Una;
        if (Sent.Count > 0 && Seq.Lt(Sent[Sent.Count - 1].Start, Max) && Seq.Ge(Sent[Sent.Count - 1].Start, seq)) seq = Sent[Sent.Count - 1].Start;
        n = RetransmitAt(seq, Max - seq, now);
        ChargePacer(n, now);
        return n;
    }

    /// <summary>
    /// Under a paced congestion control, the earliest a segment sent outside the transmission loop (a tail loss probe)
    /// may leave: <paramref name="now"/> when unpaced or a burst may go, else the pacer's next departure (Linux paces
    /// every transmission, probes and retransmissions included).
    /// </summary>
    public TimeSpan PacedNotBefore(TimeSpan now) => Cc.PacingRate > 0 && _pacer is { } p ? p.EarliestDeparture(now) : now;

    /// <summary>A segment sent outside the transmission loop (a probe, a fast retransmit) takes its bytes' time at the pacing rate like any other.</summary>
    private void ChargePacer(int bytes, TimeSpan now)
    {
        var rate = Cc.PacingRate;
        if (rate <= 0 || bytes <= 0) return;
        var pacer = _pacer ??= new Pacer();
        pacer.MaySend(now, rate, _c.SndMss); // begins a burst now unless one is under way (an idle sender's credit stays bounded)
        pacer.OnSent(bytes, rate);
    }

    /// <summary>The recovery's own timer (RACK's reorder timer or the tail loss probe) fell due.</summary>
    public void OnLossTimer(TimeSpan now)
    {
        if (_c.State is not (TcpState.Established or TcpState.CloseWait or TcpState.FinWait1 or TcpState.Closing or TcpState.LastAck)) return;
        Recovery.OnTimer(now);
        Output(now);
    }

    /// <summary>Records a transmission of <paramref name="used"/> bytes of sequence space at <paramref name="seq"/> (before SND.MAX moves).</summary>
    private void Record(uint seq, int used, TimeSpan now)
    {
        if (used <= 0) return;
        if (Sent.Count == 0) Sent.SetCapacity(Math.Min(Buffer.Limit / Math.Max(_c.SndMss, 536) + 4, 1 << 16));
        var retransmission = Seq.Lt(seq, Max);
        var stamp = Rate.OnSend(now, Max == Una);
        Sent.OnTransmit(seq, (uint)used, Max, now, ref stamp);
        Recovery.OnTransmitted(seq, used, retransmission, now);
    }

    /// <summary>
    /// Sends one segment at SND.NXT if cwnd room, the peer's window, SWS avoidance and Nagle allow; returns the
    /// sequence space it used (data plus FIN), or -1 when nothing may go. After a timeout SND.NXT is below SND.MAX
    /// and the segment is a retransmission: SACKed ranges are skipped and never resent (RFC 6675 5.1).
    /// </summary>
    private int SendNext(long cwndRoom, TimeSpan now)
    {
        // New data leaves room for the SACK blocks an ACK owes (SackAckRule); data sent before keeps its size.
        var mss = Nxt == Max ? _c.DataMss : _c.SndMss;
        var sackLimit = false;
        var limit = 0u;
        if (Seq.Lt(Nxt, Max) && Recovery.SkipSacked(Nxt, out var unsacked, out limit))
        {
            Nxt = unsacked;
            sackLimit = Seq.Lt(limit, Max);
        }
        var dataEnd = Una + (uint)BufferCount;
        var unsent = Seq.Lt(Nxt, dataEnd) ? (int)(dataEnd - Nxt) : 0;
        var finToSend = FinQueued && !FinAcked && Nxt == dataEnd;
        if (unsent == 0 && !finToSend) return -1;
        long sndRoom = (long)(Una + Wnd - Nxt);
        if ((int)(Una + Wnd - Nxt) < 0) sndRoom = 0;
        var room = Math.Min(cwndRoom, sndRoom);
        var len = (int)Math.Max(0, Math.Min(Math.Min(unsent, mss), room));
        var hole = false;
        if (sackLimit && len >= (int)(limit - Nxt))
        {
            len = (int)(limit - Nxt); // a hole below a SACKed range: resend just the hole
            hole = true;
        }
        var fin = finToSend || (FinQueued && !FinAcked && len == unsent && len > 0);
        if (len == 0 && !(fin && unsent == 0 && cwndRoom > 0)) return -1;
        if (hole) fin = false;
        else if (len < mss && len < unsent)
        {
            // Window-limited runt: only if it is at least half the largest window the peer offered, or when
            // the persist timer's override fires (RFC 9293 3.8.6.2.1), so a small window cannot stall us.
            if (len == 0 || (len < MaxWnd / 2 && !_swsOverride)) return -1;
            fin = false;
        }
        else if (len < mss && !fin && !_c.NoDelay && Nxt != Una)
        {
            return -1; // Nagle (RFC 896): one small segment in flight at a time
        }
        var isNew = Nxt == Max;
        var flags = TcpFlags.Ack | (len > 0 && len == unsent ? TcpFlags.Psh : 0) | (fin ? TcpFlags.Fin : 0);
        _c.Transmit(Nxt, flags, (int)(Nxt - Una), len, now);
        Record(Nxt, len + (fin ? 1 : 0), now);
        if (isNew)
        {
            if (!_c.TsEnabled && len > 0) Rtt.StartTiming(Nxt + (uint)len, now);
        }
        else CountRetransmit(len);
        var used = len + (fin ? 1 : 0);
        Nxt += (uint)used;
        if (Seq.Gt(Nxt, Max)) Max = Nxt;
        if (_c.RtoAt == TcpConnection.Never || Persisting)
        {
            Persisting = false;
            _c.RtoAt = now + Rtt.Rto;
        }
        if (fin && isNew) _c.Layer.Context.Trace("Tcp", $"{_c.Describe()} FIN sent, seq {Nxt - 1}");
        return used;
    }

    /// <summary>
    /// Resends up to <paramref name="maxLen"/> bytes from <paramref name="seq"/>, never beyond what was sent
    /// before (a small Nagle segment may be all that is outstanding while more data waits), with the FIN when
    /// the segment reaches a FIN already sent. Returns the sequence space used, 0 when nothing was sent.
    /// </summary>
    public int RetransmitAt(uint seq, uint maxLen, TimeSpan now)
    {
        var dataEnd = Una + (uint)BufferCount;
        var sentEnd = Seq.Min(dataEnd, Max);
        var len = Seq.Lt(seq, sentEnd) ? (int)Math.Min(Math.Min(maxLen, sentEnd - seq), (uint)_c.SndMss) : 0;
        var fin = FinQueued && !FinAcked && Seq.Gt(Max, dataEnd) && seq + (uint)len == dataEnd;
        if (len == 0 && !fin) return 0;
        // PSH as a first transmission ending there had it: the segment reaches the end of the data queued.
        var psh = len > 0 && seq + (uint)len == dataEnd ? TcpFlags.Psh : 0;
        _c.Transmit(seq, TcpFlags.Ack | psh | (fin ? TcpFlags.Fin : 0), (int)(seq - Una), len, now);
        Record(seq, len + (fin ? 1 : 0), now);
        CountRetransmit(len);
        return len + (fin ? 1 : 0);
    }

    /// <summary>Resends the segment at SND.UNA (fast retransmit, NewReno partial ACK, reneging), up to the first SACKed range.</summary>
    public int RetransmitFirst(TimeSpan now)
    {
        var maxLen = (uint)_c.SndMss;
        if (Recovery.SkipSacked(Una, out var unsacked, out var limit) && Seq.Lt(unsacked, Max) && limit - Una < maxLen)
            maxLen = limit - Una;
        var n = RetransmitAt(Una, maxLen, now);
        if (n > 0) _c.RtoAt = now + Rtt.Rto;
        ChargePacer(n, now);
        return n;
    }

    /// <summary>Counts a segment sent again with <paramref name="len"/> data bytes (a SYN carries none).</summary>
    public void CountRetransmit(int len)
    {
        Retransmits++;
        Counters.SegmentsRetransmitted++;
        Counters.BytesRetransmitted += len;
    }

    /// <summary>
    /// The timer fired while persisting: send into a window too small for SWS avoidance, or probe a zero window
    /// (a segment just below the window draws an ACK with the current window) and back off. False when not persisting.
    /// </summary>
    public bool OnPersistTimer(TimeSpan now)
    {
        if (!Persisting) return false;
        if (Wnd > 0)
        {
            // The window is open but was too small to send into without silly-window syndrome: send anyway now.
            Persisting = false;
            _swsOverride = true;
            Output(now);
            _swsOverride = false;
            if (_c.RtoAt == TcpConnection.Never) { Persisting = true; _c.RtoAt = now + Rtt.BackedOff; }
            return true;
        }
        Counters.ZeroWindowProbes++;
        _c.SendProbe(now);
        if (Rtt.Backoff < 16) Rtt.Backoff++;
        _c.RtoAt = now + Rtt.BackedOff;
        return true;
    }

    /// <summary>RFC 6298 5.4-5.7: retransmit the earliest unacknowledged segment, back off, collapse cwnd (RFC 5681 3.1).</summary>
    public void OnRetransmitTimeout(TimeSpan now)
    {
        if (OnRetransmitTimeoutBare(now)) return;
        Retries++;
        Rtt.Backoff++;
        Counters.Timeouts++;
        RetransmitTimeouts++;
        var mss = (uint)_c.SndMss;
        var flight = Max - Una;
        var priorCwnd = Cwnd;
        var priorSsthresh = Ssthresh;
        if (Retries == 1 || !Recovery.InRecovery) Ssthresh = Cc.OnTimeout(Cwnd, flight, mss, now);
        Cwnd = mss; // loss window, one segment
        Recovery.OnRetransmitTimeout(now, priorCwnd, priorSsthresh);
        Rtt.StopTiming(); // Karn
        if (Recovery.GoBackN) Nxt = Una; // go back N from the first unacknowledged byte (else the recovery resends what it marked lost)
        _c.Layer.Context.Trace("Tcp", $"{_c.Describe()} retransmission {Retries} of {Una} (RTO {Rtt.BackedOff.TotalMilliseconds} ms)");
        Output(now);
        _c.RtoAt = now + Rtt.BackedOff;
    }
}
