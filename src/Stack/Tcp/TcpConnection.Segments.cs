namespace NetStack.Tcp;

/// <summary>
/// The segments a connection sends, built from the sender's data and sequence numbers and the receiver's ACK,
/// window and SACK blocks, and handed to the layer's <see cref="ISegmentOutput"/>.
/// </summary>
internal sealed partial class TcpConnection
{
    /// <summary>Our timestamp clock: milliseconds from the loop's time plus a per-connection offset (RFC 7323 5.4).</summary>
    internal uint TsNow(TimeSpan now) => (uint)(now.Ticks / TimeSpan.TicksPerMillisecond) + _tsOffset;

    /// <summary>After a user operation: send what may go, then re-arm timers.</summary>
    private void Kick(TimeSpan now)
    {
        Snd.Output(now);
        if (Rcv.AckNow) SendAck(now);
        Layer.Schedule(this);
    }

    /// <summary>RFC 1122 4.2.3.6 / 9293 3.8.6.1: &lt;SEQ=SND.UNA-1&gt;&lt;ACK&gt;, old enough that the peer must answer with an ACK.</summary>
    internal void SendProbe(TimeSpan now) => Transmit(Snd.Una - 1, TcpFlags.Ack, 0, 0, now);

    /// <summary>The end of a receive batch: the ACK owed for the batch's segments (TcpLayer.FlushPendingAcks).</summary>
    internal void SendBatchAck(TimeSpan now) => Rcv.OnBatchEnd(now);

    internal void SendAck(TimeSpan now)
    {
        if (!Synchronized) return;
        // SEQ = the highest sequence number sent, not SND.NXT: after a timeout SND.NXT rewinds (go-back-N), and
        // an ACK with that older SEQ would fail the peer's acceptability test and never be processed.
        Transmit(Snd.Max, TcpFlags.Ack, 0, 0, now);
    }

    /// <summary>SYN (active) or SYN-ACK (passive or simultaneous open) with our options.</summary>
    private void SendSyn(TimeSpan now)
    {
        var flags = State == TcpState.SynSent ? TcpFlags.Syn : TcpFlags.Syn | TcpFlags.Ack;
        Transmit(Iss, flags, 0, 0, now);
    }

    /// <summary>A bare &lt;SEQ=seq&gt;&lt;CTL=RST&gt; to the peer (abort, a bad ACK in a handshake, too many retries).</summary>
    private void SendReset(uint seq, TimeSpan now) => Layer.SendControl(Remote, Key.LocalPort, Key.RemotePort, seq, 0, TcpFlags.Rst, now);

    /// <summary>
    /// Hands one segment to the output: header fields, options, and the data as spans of the send ring (copied once,
    /// by the output). Every segment but the first SYN carries ACK = RCV.NXT and our window.
    /// </summary>
    internal void Transmit(uint seq, TcpFlags flags, int dataOffset, int len, TimeSpan now)
    {
        var syn = (flags & TcpFlags.Syn) != 0;
        var sackOwed = false;
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
            if (SackEnabled && Rcv.HasSackBlocks && (flags & TcpFlags.Ack) != 0)
            {
                sackOwed = true;
                // SACK blocks go only where they fit: within 40 option bytes and within the path MTU beside the data.
                var room = Math.Min(40 - optLen, PathMss - optLen - len);
                if (room >= 12) seg.Options.Sack = Rcv.SackBlocks((room - 4) / 8);
            }
        }
        var ackFlag = (flags & TcpFlags.Ack) != 0;
        seg.Ack = ackFlag ? Rcv.Nxt : 0;
        seg.Window = Rcv.WindowField(syn);
        if (len > 0) Snd.Buffer.Slice(dataOffset, len, out seg.Data, out seg.DataWrapped); // else both stay empty, as Slice leaves them
        var r = Layer.Output.Send(Remote, in seg, now);
        if (r == StackError.HostUnreachable && State == TcpState.SynSent)
        {
            // The neighbour is known to be unreachable right now: an active open fails like Linux's EHOSTUNREACH.
            SoftError = r;
        }
        SegmentsOut++;
        Counters.SegmentsSent++;
        if (ackFlag) Rcv.OnAckSent(SackAckRule.PaysImmediateAck(sackOwed, seg.Options.Sack.Length > 0));
    }
}
