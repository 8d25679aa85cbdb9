namespace NetStack.Tcp;

/// <summary>
/// The sender while it has sent no data, only its SYN and perhaps a FIN: an accepted connection's handshake ACK, and
/// the close of a connection that sent nothing (a connect closed at once). Those ACKs and that FIN take a short path
/// that makes no loss recovery, transmit records, rate sampler or send ring (issue 18: they were made, and dropped,
/// on every connect+close, and kept ~430 B on every idle accepted connection). The full path's effects with nothing
/// in flight but a SYN or FIN are what this leaves: SND.UNA, the window, the RTT, the RTO; a recovery made later
/// starts as one that had seen these ACKs (its recovery point just below SND.UNA, as for an active open). BBR too, now
/// the default: an ACK of no data gives its model no sample, and its pacing begins at the first ACK of data (the first
/// flight, 10 segments, fits in one pacing quantum at BBR's initial rate anyway). Loop only.
/// </summary>
internal sealed partial class TcpSender
{
    /// <summary>A FIN sent by the short path is unacknowledged (it has no transmit record: its timeout resends it here).</summary>
    private bool _bareFin;

    /// <summary>Nothing but the SYN (and a FIN) was ever sent and nothing is queued: no recovery, no records.</summary>
    private bool Bare => _recovery is null && _sent is null && BufferCount == 0;

    /// <summary>Output with nothing to send but a FIN (RFC 9293 3.10.4): the FIN once, as the full path sends it. False when not <see cref="Bare"/>.</summary>
    private bool OutputBare(TimeSpan now)
    {
        if (!FinQueued || !Bare) return false;
        // The full path sends a FIN with no data if cwnd has room (none is in flight), whatever the peer's window.
        if (!FinAcked && Nxt == Una && Max == Una && Cwnd > 0)
        {
            _c.Transmit(Nxt, TcpFlags.Ack | TcpFlags.Fin, 0, 0, now);
            _bareFin = true;
            Nxt++;
            Max = Nxt;
            if (_c.RtoAt == TcpConnection.Never) _c.RtoAt = now + Rtt.Rto;
            _c.Layer.Context.Trace("Tcp", $"{_c.Describe()} FIN sent, seq {Nxt - 1}");
        }
        return true;
    }

    /// <summary>
    /// An ACK while <see cref="Bare"/> and without SACK blocks (RFC 9293 3.10.7.4): it can acknowledge only the SYN or the
    /// FIN. The window, the RTT (the echoed timestamp, else the timed segment), SND.UNA and the RTO, as the full path.
    /// </summary>
    private AckResult OnAckBare(ref TcpSegment seg, TimeSpan now)
    {
        var ack = seg.Ack;
        ref readonly var opts = ref seg.Options;
        var window = (uint)seg.Window << _c.SndWndShift;
        if (Seq.Le(ack, Una))
        {
            UpdateWindow(ref seg, window, now);
            return AckResult.NothingNew;
        }
        var acked = ack - Una;
        if (!SynAcked) { acked--; SynAcked = true; }
        var finAcked = FinQueued && !FinAcked && acked > 0; // no data was sent: beyond the SYN is the FIN
        if (finAcked) { FinAcked = true; _bareFin = false; }
        Una = ack;
        if (Seq.Lt(Nxt, Una)) Nxt = Una;
        // A recovery made later begins here, as after an active open (made from SND.UNA - 1: its point below SND.UNA).
        _negotiatedUna = Una - 1;
        if (_c.TsEnabled && opts.HasTimestamp && opts.TsEcr != 0)
        {
            if (Retries == 0) Rtt.Sample(TimeSpan.FromMilliseconds((int)(_c.TsNow(now) - opts.TsEcr)));
        }
        else Rtt.OnAck(ack, now);
        Rtt.Backoff = 0;
        Retries = 0;
        Persisting = false;
        _c.RtoAt = Max == Una ? TcpConnection.Never : now + Rtt.Rto;
        UpdateWindow(ref seg, window, now);
        return finAcked ? AckResult.AckedFin : AckResult.AckedData;
    }

    /// <summary>
    /// RFC 6298 5.4-5.7 for the FIN the short path sent: resend it, back off, collapse cwnd (RFC 5681 3.1), as the full
    /// path would (the recovery's part is for data, of which there is none after a FIN). False when no such FIN waits.
    /// </summary>
    private bool OnRetransmitTimeoutBare(TimeSpan now)
    {
        if (!_bareFin || Max != Una + 1) return false; // (its records, if made since, cannot hold it)
        Retries++;
        Rtt.Backoff++;
        Counters.Timeouts++;
        RetransmitTimeouts++;
        var mss = (uint)_c.SndMss;
        Ssthresh = Cc.OnTimeout(Cwnd, Max - Una, mss, now); // (no recovery: never in one)
        Cwnd = mss;
        Rtt.StopTiming(); // Karn
        _c.Layer.Context.Trace("Tcp", $"{_c.Describe()} retransmission {Retries} of {Una} (RTO {Rtt.BackedOff.TotalMilliseconds} ms)");
        _c.Transmit(Una, TcpFlags.Ack | TcpFlags.Fin, 0, 0, now);
        CountRetransmit(0);
        _c.RtoAt = now + Rtt.BackedOff;
        return true;
    }
}
