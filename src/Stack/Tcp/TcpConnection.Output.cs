using NetStack.IPv4;

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
    /// Nagle unless NoDelay, RFC 5681 cwnd, RFC 6675 pipe during SACK recovery), then arms the persist timer
    /// when a zero window holds data back.
    /// </summary>
    private void Output(TimeSpan now)
    {
        if (State is not (TcpState.Established or TcpState.CloseWait or TcpState.FinWait1 or TcpState.Closing or TcpState.LastAck)) return;
        if (InRecovery && SackEnabled && _scoreCount > 0) RetransmitHoles(now);
        var mss = SndMss;
        while (true)
        {
            var dataEnd = SndUna + (uint)SndBuf.Count;
            var unsent = Seq.Lt(SndNxt, dataEnd) ? (int)(dataEnd - SndNxt) : 0;
            var finToSend = FinQueued && !FinAcked && SndNxt == dataEnd;
            if (unsent == 0 && !finToSend) break;
            long cwndRoom = (long)Cwnd - Pipe();
            long sndRoom = (long)(SndUna + SndWnd - SndNxt);
            if ((int)(SndUna + SndWnd - SndNxt) < 0) sndRoom = 0;
            var room = Math.Min(cwndRoom, sndRoom);
            var len = (int)Math.Max(0, Math.Min(Math.Min(unsent, mss), room));
            var fin = finToSend || (FinQueued && !FinAcked && len == unsent && len > 0);
            if (len == 0 && !(fin && unsent == 0 && cwndRoom > 0)) break;
            if (len < mss && len < unsent)
            {
                // Window-limited runt: only if it is at least half the largest window the peer offered, or when
                // the persist timer's override fires (RFC 9293 3.8.6.2.1), so a small window cannot stall us.
                if (len == 0 || (len < MaxSndWnd / 2 && !_swsOverride)) break;
                fin = false;
            }
            else if (len < mss && !fin && !NoDelay && SndNxt != SndUna)
            {
                break; // Nagle: one small segment in flight at a time
            }
            var isNew = SndNxt == SndMax;
            var flags = TcpFlags.Ack | (len > 0 && len == unsent ? TcpFlags.Psh : 0) | (fin ? TcpFlags.Fin : 0);
            Transmit(SndNxt, flags, (int)(SndNxt - SndUna), len, now);
            if (isNew)
            {
                if (!_rttTiming && !TsEnabled && len > 0)
                {
                    _rttTiming = true;
                    _rttSeq = SndNxt + (uint)len;
                    _rttStart = now;
                }
            }
            else
            {
                Retransmits++;
                Counters.SegmentsRetransmitted++;
            }
            SndNxt += (uint)len + (fin ? 1u : 0u);
            if (Seq.Gt(SndNxt, SndMax)) SndMax = SndNxt;
            if (RtoAt == Never || _persisting)
            {
                _persisting = false;
                RtoAt = now + Rto;
            }
            if (fin)
            {
                if (isNew) Stack.Trace("Tcp", $"{Describe()} FIN sent, seq {SndNxt - 1}");
                break;
            }
        }
        // Persist timer (RFC 9293 3.8.6.1): data waits behind a zero (or too small) window and nothing is in
        // flight to bring an update.
        if (SndMax == SndUna && SndBuf.Count > 0 && RtoAt == Never && !(FinQueued && FinAcked))
        {
            _persisting = true;
            RtoAt = now + BackedOff(Rto);
        }
    }

    /// <summary>RFC 6675 NextSeg rule 1: resend the holes below the highest SACK while the pipe has room.</summary>
    private void RetransmitHoles(TimeSpan now)
    {
        var mss = (uint)SndMss;
        while (Pipe() + mss <= Cwnd)
        {
            var s = Seq.Max(_highRxt, SndUna);
            // Skip SACKed ranges.
            int i = 0;
            while (i < _scoreCount && Seq.Le(_scoreboard![i].Right, s)) i++;
            if (i < _scoreCount && Seq.Le(_scoreboard![i].Left, s)) { s = _scoreboard[i].Right; i++; }
            if (!Seq.Lt(s, _highSacked)) return;
            var end = Seq.Min(s + mss, i < _scoreCount ? _scoreboard![i].Left : _highSacked);
            var len = (int)(end - s);
            var avail = (int)(Seq.Min(SndUna + (uint)SndBuf.Count, SndMax) - s);
            if (len > avail) len = avail;
            if (len <= 0) return;
            Transmit(s, TcpFlags.Ack, (int)(s - SndUna), len, now);
            Retransmits++;
            Counters.SegmentsRetransmitted++;
            _highRxt = s + (uint)len;
        }
    }

    /// <summary>Resends the segment at SND.UNA (fast retransmit, NewReno partial ACK).</summary>
    private void RetransmitFirst(TimeSpan now)
    {
        // Never beyond what was sent before: a retransmission must not carry bytes the peer has not been offered
        // yet (a small Nagle segment may be all that is outstanding while more data waits).
        var sentData = (int)Math.Min(SndMax - SndUna, (uint)SndBuf.Count);
        var len = Math.Min(SndMss, sentData);
        var fin = FinQueued && !FinAcked && len == SndBuf.Count && Seq.Gt(SndMax, SndUna + (uint)SndBuf.Count);
        if (len == 0 && !fin) return;
        Transmit(SndUna, TcpFlags.Ack | (fin ? TcpFlags.Fin : 0), 0, len, now);
        Retransmits++;
        Counters.SegmentsRetransmitted++;
        if (Seq.Lt(_highRxt, SndUna + (uint)len)) _highRxt = SndUna + (uint)len;
        RtoAt = now + Rto;
    }

    private TimeSpan BackedOff(TimeSpan rto)
    {
        var t = rto;
        for (int i = 0; i < Backoff && t < Settings.MaxRto; i++) t += t;
        return t > Settings.MaxRto ? Settings.MaxRto : t;
    }

    // ---------------- timers ----------------

    public void OnTimers(TimeSpan now)
    {
        if (StateAt <= now)
        {
            StateAt = Never;
            if (State == TcpState.TimeWait)
            {
                Stack.Trace("Tcp", $"{Describe()} TIME-WAIT over");
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
            if (RtoAt == Never) { _persisting = true; RtoAt = now + BackedOff(Rto); }
            return;
        }
        if (_persisting)
        {
            // Zero-window probe: a segment just below the window draws an ACK with the current window.
            Counters.ZeroWindowProbes++;
            SendProbe(now);
            if (Backoff < 16) Backoff++;
            RtoAt = now + BackedOff(Rto);
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
                Backoff++;
                Counters.Timeouts++;
                Retransmits++;
                Counters.SegmentsRetransmitted++;
                Stack.Trace("Tcp", $"{Describe()} retransmission {Retries} of {(State == TcpState.SynSent ? "SYN" : "SYN-ACK")}");
                SendSyn(now);
                RtoAt = now + BackedOff(Rto);
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
        Backoff++;
        Counters.Timeouts++;
        var mss = (uint)SndMss;
        var flight = SndMax - SndUna;
        if (Retries == 1 || !InRecovery) Ssthresh = Cc.OnTimeout(Cwnd, flight, mss, now);
        Cwnd = mss; // loss window, one segment
        InRecovery = false;
        Recover = SndMax; // RFC 6582 3.2: no fast retransmit for ACKs below what was sent before the timeout
        DupAcks = 0;
        _rttTiming = false; // Karn
        _scoreCount = 0;    // RFC 6675 5.1 allows keeping SACK state; dropping it is the conservative choice
        _highSacked = SndUna;
        _highRxt = SndUna;
        SndNxt = SndUna;    // go back N from the first unacknowledged byte
        Stack.Trace("Tcp", $"{Describe()} retransmission {Retries} of {SndUna} (RTO {BackedOff(Rto).TotalMilliseconds} ms)");
        Output(now);
        RtoAt = now + BackedOff(Rto);
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
    /// Builds one segment in place in the IP layer's payload buffer (header, options, then the data copied once
    /// from the send ring) and sends it. Every segment but the first SYN carries ACK = RCV.NXT and our window.
    /// </summary>
    private void Transmit(uint seq, TcpFlags flags, int dataOffset, int len, TimeSpan now)
    {
        var buf = Stack.Ip.PayloadBuffer;
        var opts = buf[TcpHeader.MinLength..TcpHeader.MaxLength];
        var syn = (flags & TcpFlags.Syn) != 0;
        int optLen;
        if (syn)
        {
            var s = Settings;
            var active = State == TcpState.SynSent;
            // In a SYN-ACK we echo only what the peer's SYN offered (RFC 7323 2.2/3.2, RFC 2018 2).
            var ts = active ? s.Timestamps : TsEnabled;
            var sack = active ? s.Sack : SackEnabled;
            var ws = active ? (s.WindowScaling ? RcvWndShift : -1) : (WsEnabled ? RcvWndShift : -1);
            optLen = TcpHeader.WriteSynOptions(opts, (ushort)Math.Min(PathMss, 65535), sack, ts, TsNow(now), active ? 0 : TsRecent, ws);
        }
        else
        {
            optLen = 0;
            if (TsEnabled) optLen += TcpHeader.WriteTimestamp(opts, TsNow(now), TsRecent);
            if (SackEnabled && _oooCount > 0 && (flags & TcpFlags.Ack) != 0)
            {
                // SACK blocks go only where they fit: within 40 option bytes and within the path MTU beside the data.
                var room = Math.Min(40 - optLen, PathMss - optLen - len);
                if (room >= 12) optLen += TcpHeader.WriteSack(opts[optLen..], SackBlocksToSend((room - 4) / 8));
            }
        }
        var hlen = TcpHeader.MinLength + optLen;
        var ackFlag = (flags & TcpFlags.Ack) != 0;
        TcpHeader.Write(buf, Key.LocalPort, Key.RemotePort, seq, ackFlag ? RcvNxt : 0, flags, WindowField(syn), hlen);
        if (len > 0) SndBuf.CopyTo(dataOffset, buf.Slice(hlen, len));
        var total = hlen + len;
        var segment = buf[..total];
        TcpHeader.SetChecksum(segment, Stack.Config.Address, Remote);
        var r = Stack.Ip.Send(Remote, IpProtocol.Tcp, total, now, dontFragment: true);
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
