namespace NetStack.Tcp;

internal sealed partial class TcpConnection
{
    /// <summary>Our timestamp clock: milliseconds from the loop's time plus a per-connection offset (RFC 7323 5.4).</summary>
    private uint TsNow(TimeSpan now) => (uint)(now.Ticks / TimeSpan.TicksPerMillisecond) + _tsOffset;

    /// <summary>After a user operation: send what may go, then re-arm timers.</summary>
    private void Kick(TimeSpan now)
    {
        Output(now);
        if (_ackNow) SendAck(now);
        Layer.Schedule(this);
    }

    /// <summary>
    /// Sends new data and the FIN as far as the windows allow (RFC 9293 3.8.6.2.1 sender SWS avoidance, RFC 896
    /// Nagle unless NoDelay, RFC 5681 cwnd), runs RFC 6675 5 step (C) during SACK recovery, then arms the persist
    /// timer when a zero window holds data back.
    /// </summary>
    private void Output(TimeSpan now)
    {
        if (State is not (TcpState.Established or TcpState.CloseWait or TcpState.FinWait1 or TcpState.Closing or TcpState.LastAck)) return;
        if (InRecovery && SackEnabled) SackRecoveryOutput(now);
        else
        {
            // Outside recovery the pipe is the flight, less what the peer SACKed below SND.NXT: after a timeout
            // (go-back-N) SACKed ranges are skipped, and before recovery starts this is RFC 3042 limited transmit
            // (at most DupThresh - 1 segments' worth, beyond which IsLost starts recovery).
            long pipe = SndNxt - SndUna;
            if (Scoreboard is { Count: > 0 } sb) pipe -= sb.SackedIn(SndUna, SndNxt);
            while (true)
            {
                var sent = SendNext(Cwnd - pipe, now);
                if (sent < 0) break;
                pipe += sent;
            }
        }
        // Persist timer (RFC 9293 3.8.6.1): data waits behind a zero (or too small) window and nothing is in
        // flight to bring an update.
        if (SndMax == SndUna && SndBuf.Count > 0 && RtoAt == Never && !(FinQueued && FinAcked))
        {
            _persisting = true;
            RtoAt = now + Rtt.BackedOff;
        }
    }

    /// <summary>
    /// RFC 6675 5 (B.2) and (C): pipe from SetPipe(), then while cwnd - pipe >= 1 SMSS send what NextSeg() names:
    /// (1) a lost unSACKed segment above HighRxt, (2) new data, (4) once per recovery the rescue retransmission of
    /// the highest unSACKed segment. Pipe grows by what is sent (C.4).
    /// </summary>
    private void SackRecoveryOutput(TimeSpan now)
    {
        var sb = Scoreboard ??= new SackScoreboard(SackScoreboard.DefaultCapacity, Counters);
        var mss = (uint)SndMss;
        long pipe = sb.Pipe(SndUna, SndMax);
        while (Cwnd - pipe >= mss)
        {
            uint seq, len;
            int n;
            if (sb.NextLost(SndUna, SndMax, mss, out seq, out len))
            {
                n = RetransmitAt(seq, len, now);
                if (n == 0) break;
                sb.HighRxt = seq + (uint)n; // (C.2)
                pipe += n;
                continue;
            }
            n = SendNext(Cwnd - pipe, now);
            if (n >= 0) { pipe += n; continue; }
            // Rule (3), resending unSACKed data not yet deemed lost, is left out: in the lossy simulations it resent
            // mostly data still in flight (up to 2.6x the retransmitted bytes), as Linux found when it dropped it.
            if (!sb.NextRescue(SndUna, SndMax, mss, Recover, out seq, out len)) break;
            n = RetransmitAt(seq, len, now); // HighRxt is not moved by a rescue (C.2)
            if (n == 0) break;
            pipe += n;
        }
    }

    /// <summary>
    /// Sends one segment at SND.NXT if cwnd room, the peer's window, SWS avoidance and Nagle allow; returns the
    /// sequence space it used (data plus FIN), or -1 when nothing may go. After a timeout SND.NXT is below SND.MAX
    /// and the segment is a retransmission: SACKed ranges are skipped and never resent (RFC 6675 5.1).
    /// </summary>
    private int SendNext(long cwndRoom, TimeSpan now)
    {
        var mss = SndMss;
        var sackLimit = false;
        var limit = 0u;
        if (Scoreboard is { Count: > 0 } sb && Seq.Lt(SndNxt, SndMax))
        {
            SndNxt = sb.SkipSacked(SndNxt, SndMax, out limit);
            sackLimit = Seq.Lt(limit, SndMax);
        }
        var dataEnd = SndUna + (uint)SndBuf.Count;
        var unsent = Seq.Lt(SndNxt, dataEnd) ? (int)(dataEnd - SndNxt) : 0;
        var finToSend = FinQueued && !FinAcked && SndNxt == dataEnd;
        if (unsent == 0 && !finToSend) return -1;
        long sndRoom = (long)(SndUna + SndWnd - SndNxt);
        if ((int)(SndUna + SndWnd - SndNxt) < 0) sndRoom = 0;
        var room = Math.Min(cwndRoom, sndRoom);
        var len = (int)Math.Max(0, Math.Min(Math.Min(unsent, mss), room));
        var hole = false;
        if (sackLimit && len >= (int)(limit - SndNxt))
        {
            len = (int)(limit - SndNxt); // a hole below a SACKed range: resend just the hole
            hole = true;
        }
        var fin = finToSend || (FinQueued && !FinAcked && len == unsent && len > 0);
        if (len == 0 && !(fin && unsent == 0 && cwndRoom > 0)) return -1;
        if (hole) fin = false;
        else if (len < mss && len < unsent)
        {
            // Window-limited runt: only if it is at least half the largest window the peer offered, or when
            // the persist timer's override fires (RFC 9293 3.8.6.2.1), so a small window cannot stall us.
            if (len == 0 || (len < MaxSndWnd / 2 && !_swsOverride)) return -1;
            fin = false;
        }
        else if (len < mss && !fin && !NoDelay && SndNxt != SndUna)
        {
            return -1; // Nagle: one small segment in flight at a time
        }
        var isNew = SndNxt == SndMax;
        var flags = TcpFlags.Ack | (len > 0 && len == unsent ? TcpFlags.Psh : 0) | (fin ? TcpFlags.Fin : 0);
        Transmit(SndNxt, flags, (int)(SndNxt - SndUna), len, now);
        if (isNew)
        {
            if (!TsEnabled && len > 0) Rtt.StartTiming(SndNxt + (uint)len, now);
        }
        else CountRetransmit(len);
        var used = len + (fin ? 1 : 0);
        SndNxt += (uint)used;
        if (Seq.Gt(SndNxt, SndMax)) SndMax = SndNxt;
        if (RtoAt == Never || _persisting)
        {
            _persisting = false;
            RtoAt = now + Rtt.Rto;
        }
        if (fin && isNew) Context.Trace("Tcp", $"{Describe()} FIN sent, seq {SndNxt - 1}");
        return used;
    }

    /// <summary>
    /// Resends up to <paramref name="maxLen"/> bytes from <paramref name="seq"/>, never beyond what was sent
    /// before (a small Nagle segment may be all that is outstanding while more data waits), with the FIN when
    /// the segment reaches a FIN already sent. Returns the sequence space used, 0 when nothing was sent.
    /// </summary>
    private int RetransmitAt(uint seq, uint maxLen, TimeSpan now)
    {
        var dataEnd = SndUna + (uint)SndBuf.Count;
        var sentEnd = Seq.Min(dataEnd, SndMax);
        var len = Seq.Lt(seq, sentEnd) ? (int)Math.Min(Math.Min(maxLen, sentEnd - seq), (uint)SndMss) : 0;
        var fin = FinQueued && !FinAcked && Seq.Gt(SndMax, dataEnd) && seq + (uint)len == dataEnd;
        if (len == 0 && !fin) return 0;
        Transmit(seq, TcpFlags.Ack | (fin ? TcpFlags.Fin : 0), (int)(seq - SndUna), len, now);
        CountRetransmit(len);
        return len + (fin ? 1 : 0);
    }

    /// <summary>Resends the segment at SND.UNA (fast retransmit, NewReno partial ACK), up to the first SACKed range.</summary>
    private int RetransmitFirst(TimeSpan now)
    {
        var maxLen = (uint)SndMss;
        if (Scoreboard is { Count: > 0 } sb && Seq.Lt(sb.SkipSacked(SndUna, SndMax, out var limit), SndMax) && limit - SndUna < maxLen)
            maxLen = limit - SndUna;
        var n = RetransmitAt(SndUna, maxLen, now);
        if (n > 0) RtoAt = now + Rtt.Rto;
        return n;
    }

    private void CountRetransmit(int len)
    {
        Retransmits++;
        Counters.SegmentsRetransmitted++;
        Counters.BytesRetransmitted += len;
    }

    // ---------------- timers ----------------

    public void OnTimers(TimeSpan now)
    {
        if (StateAt <= now)
        {
            StateAt = Never;
            if (State == TcpState.TimeWait)
            {
                Context.Trace("Tcp", $"{Describe()} TIME-WAIT over");
                SetState(TcpState.Closed, now);
                return;
            }
            if (State == TcpState.FinWait2)
            {
                Fail(StackError.TimedOut, "The peer did not close within Tcp.FinWait2Timeout.", now);
                return;
            }
        }
        if (RtoAt <= now)
        {
            RtoAt = Never;
            OnRetransmitTimeout(now);
            if (State == TcpState.Closed) return;
        }
        if (DelAckAt <= now)
        {
            DelAckAt = Never;
            if (_ackPending)
            {
                Counters.DelayedAcks++;
                SendAck(now);
            }
        }
        if (KeepAt <= now) OnKeepalive(now);
    }

    /// <summary>RFC 6298 5.4-5.7: retransmit the earliest unacknowledged segment, back off, collapse cwnd (RFC 5681 3.1).</summary>
    private void OnRetransmitTimeout(TimeSpan now)
    {
        var s = Settings;
        if (_persisting && SndWnd > 0)
        {
            // The window is open but was too small to send into without silly-window syndrome: send anyway now.
            _persisting = false;
            _swsOverride = true;
            Output(now);
            _swsOverride = false;
            if (RtoAt == Never) { _persisting = true; RtoAt = now + Rtt.BackedOff; }
            return;
        }
        if (_persisting)
        {
            // Zero-window probe: a segment just below the window draws an ACK with the current window.
            Counters.ZeroWindowProbes++;
            SendProbe(now);
            if (Rtt.Backoff < 16) Rtt.Backoff++;
            RtoAt = now + Rtt.BackedOff;
            return;
        }
        switch (State)
        {
            case TcpState.SynSent:
            case TcpState.SynReceived:
                var limit = State == TcpState.SynSent ? s.SynRetries : s.SynAckRetries;
                if (Retries >= limit)
                {
                    Counters.ConnectionsTimedOut++;
                    Counters.AttemptFails++;
                    var err = SoftError is StackError.None ? StackError.TimedOut : SoftError;
                    Fail(err, $"Connecting to {Remote}:{Key.RemotePort} timed out after {Retries + 1} SYNs" + (SoftError != StackError.None ? $" (last error: {SoftError})." : "."), now);
                    return;
                }
                Retries++;
                Rtt.Backoff++;
                Counters.Timeouts++;
                Retransmits++;
                Counters.SegmentsRetransmitted++;
                Context.Trace("Tcp", $"{Describe()} retransmission {Retries} of {(State == TcpState.SynSent ? "SYN" : "SYN-ACK")}");
                SendSyn(now);
                RtoAt = now + Rtt.BackedOff;
                return;
        }
        if (SndMax == SndUna) return; // nothing outstanding
        if (Retries >= s.MaxRetries)
        {
            Counters.ConnectionsTimedOut++;
            var err = SoftError is StackError.None ? StackError.TimedOut : SoftError;
            Layer.SendControl(Remote, Key.LocalPort, Key.RemotePort, SndMax, 0, TcpFlags.Rst, now);
            Fail(err, $"The connection to {Remote}:{Key.RemotePort} timed out after {Retries} retransmissions.", now);
            return;
        }
        Retries++;
        Rtt.Backoff++;
        Counters.Timeouts++;
        var mss = (uint)SndMss;
        var flight = SndMax - SndUna;
        if (Retries == 1 || !InRecovery) Ssthresh = Cc.OnTimeout(Cwnd, flight, mss, now);
        Cwnd = mss; // loss window, one segment
        InRecovery = false;
        Recover = SndMax; // RFC 6582 3.2: no fast retransmit for ACKs below what was sent before the timeout
        DupAcks = 0;
        Rtt.StopTiming(); // Karn
        // RFC 6675 5.1 (and RFC 2018 errata 1610): the scoreboard is kept, so go-back-N from SND.UNA skips what the
        // peer SACKed; a cumulative ACK that stops at a SACKed range (reneging) clears it (SackScoreboard.Advance).
        if (Scoreboard != null) Scoreboard.HighRxt = SndUna;
        SndNxt = SndUna;    // go back N from the first unacknowledged byte
        Context.Trace("Tcp", $"{Describe()} retransmission {Retries} of {SndUna} (RTO {Rtt.BackedOff.TotalMilliseconds} ms)");
        Output(now);
        RtoAt = now + Rtt.BackedOff;
    }

    private void OnKeepalive(TimeSpan now)
    {
        KeepAt = Never;
        if (!Keepalive || State is not (TcpState.Established or TcpState.CloseWait)) return;
        if (SndMax != SndUna) { KeepAt = now + Settings.KeepaliveIdle; return; } // the RTO watches outstanding data
        if (_keepProbes >= Settings.KeepaliveProbes)
        {
            Counters.ConnectionsTimedOut++;
            Fail(StackError.TimedOut, $"The connection to {Remote}:{Key.RemotePort} timed out: {_keepProbes} keepalive probes unanswered.", now);
            return;
        }
        _keepProbes++;
        Counters.KeepalivesSent++;
        SendProbe(now);
        KeepAt = now + Settings.KeepaliveInterval;
    }

    // ---------------- segments ----------------

    /// <summary>RFC 1122 4.2.3.6 / 9293 3.8.6.1: &lt;SEQ=SND.UNA-1&gt;&lt;ACK&gt;, old enough that the peer must answer with an ACK.</summary>
    private void SendProbe(TimeSpan now) => Transmit(SndUna - 1, TcpFlags.Ack, 0, 0, now);

    /// <summary>The end of a receive batch: one ACK for every segment of the batch, unless one already went out (piggybacked on data).</summary>
    internal void SendBatchAck(TimeSpan now)
    {
        if (!_ackAtBatchEnd || State == TcpState.Closed) return;
        Counters.BatchAcks++;
        SendAck(now);
    }

    internal void SendAck(TimeSpan now)
    {
        if (!Synchronized) return;
        // SEQ = the highest sequence number sent, not SND.NXT: after a timeout SND.NXT rewinds (go-back-N), and
        // an ACK with that older SEQ would fail the peer's acceptability test and never be processed.
        Transmit(SndMax, TcpFlags.Ack, 0, 0, now);
    }

    /// <summary>SYN (active) or SYN-ACK (passive or simultaneous open) with our options.</summary>
    private void SendSyn(TimeSpan now)
    {
        var flags = State == TcpState.SynSent ? TcpFlags.Syn : TcpFlags.Syn | TcpFlags.Ack;
        Transmit(Iss, flags, 0, 0, now);
    }

    /// <summary>
    /// Hands one segment to the output: header fields, options, and the data as spans of the send ring (copied once,
    /// by the output). Every segment but the first SYN carries ACK = RCV.NXT and our window.
    /// </summary>
    private void Transmit(uint seq, TcpFlags flags, int dataOffset, int len, TimeSpan now)
    {
        var syn = (flags & TcpFlags.Syn) != 0;
        var seg = new OutgoingSegment { LocalPort = Key.LocalPort, RemotePort = Key.RemotePort, Seq = seq, Flags = flags, DontFragment = true };
        if (syn)
        {
            var s = Settings;
            var active = State == TcpState.SynSent;
            // In a SYN-ACK we echo only what the peer's SYN offered (RFC 7323 2.2/3.2, RFC 2018 2).
            seg.Options.Mss = (ushort)Math.Min(PathMss, 65535);
            seg.Options.SackPermitted = active ? s.Sack : SackEnabled;
            seg.Options.HasTimestamp = active ? s.Timestamps : TsEnabled;
            seg.Options.TsVal = TsNow(now);
            seg.Options.TsEcr = active ? 0 : TsRecent;
            seg.Options.WindowScale = active ? (s.WindowScaling ? RcvWndShift : -1) : (WsEnabled ? RcvWndShift : -1);
        }
        else
        {
            var optLen = 0;
            if (TsEnabled)
            {
                seg.Options.HasTimestamp = true;
                seg.Options.TsVal = TsNow(now);
                seg.Options.TsEcr = TsRecent;
                optLen = TcpHeader.TimestampOptionLength;
            }
            if (SackEnabled && _oooCount > 0 && (flags & TcpFlags.Ack) != 0)
            {
                // SACK blocks go only where they fit: within 40 option bytes and within the path MTU beside the data.
                var room = Math.Min(40 - optLen, PathMss - optLen - len);
                if (room >= 12) seg.Options.Sack = SackBlocksToSend((room - 4) / 8);
            }
        }
        var ackFlag = (flags & TcpFlags.Ack) != 0;
        seg.Ack = ackFlag ? RcvNxt : 0;
        seg.Window = WindowField(syn);
        SndBuf.Slice(dataOffset, len, out seg.Data, out seg.DataWrapped);
        var r = Layer.Output.Send(Remote, in seg, now);
        if (r == StackError.HostUnreachable && State == TcpState.SynSent)
        {
            // The neighbour is known to be unreachable right now: an active open fails like Linux's EHOSTUNREACH.
            SoftError = r;
        }
        SegmentsOut++;
        Counters.SegmentsSent++;
        if (ackFlag)
        {
            LastAckSent = RcvNxt;
            _ackNow = false;
            _ackPending = false;
            _ackAtBatchEnd = false;
            _unackedSegments = 0;
            DelAckAt = Never;
        }
    }

    private SackBlock[]? _sackOut;
    private bool _swsOverride;

    /// <summary>RFC 2018 4: the block holding the latest arrival first, then the others from the lowest.</summary>
    private ReadOnlySpan<SackBlock> SackBlocksToSend(int max)
    {
        _sackOut ??= new SackBlock[4];
        int n = 0;
        if (_oooLatest >= 0 && _oooLatest < _oooCount) _sackOut[n++] = _ooo![_oooLatest];
        for (int i = 0; i < _oooCount && n < max; i++)
            if (i != _oooLatest) _sackOut[n++] = _ooo![i];
        return _sackOut.AsSpan(0, Math.Min(n, max));
    }

    /// <summary>
    /// The window field for the next segment: the free receive buffer, advanced only in steps worth a segment
    /// (receiver SWS avoidance, RFC 9293 3.8.6.2.2), never shrinking the right edge already offered.
    /// </summary>
    private ushort WindowField(bool syn)
    {
        var free = (uint)RcvBuf.Free;
        if (syn) return (ushort)Math.Min(free, 65535);
        var cur = Seq.Gt(RcvAdvEdge, RcvNxt) ? RcvAdvEdge - RcvNxt : 0;
        var adv = cur;
        if (free > cur && free - cur >= (uint)Math.Min(RcvBuf.Limit / 2, PathMss)) adv = free;
        var field = Math.Min(adv >> RcvWndShift, 65535u);
        var edge = RcvNxt + (field << RcvWndShift);
        if (Seq.Gt(edge, RcvAdvEdge)) RcvAdvEdge = edge;
        return (ushort)field;
    }
}
