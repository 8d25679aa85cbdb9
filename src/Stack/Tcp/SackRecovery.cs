namespace NetStack.Tcp;

/// <summary>
/// SACK-based loss recovery (RFC 6675) over the <see cref="SackScoreboard"/>: recovery starts on DupThresh
/// duplicates or when IsLost(SND.UNA) holds, with cwnd = ssthresh; during it the transmission loop sends what
/// NextSeg() names while cwnd - pipe >= 1 SMSS; after a timeout the scoreboard is kept so go-back-N skips what the
/// peer holds (5.1); a cumulative ACK that stops at a SACKed range is reneging (RFC 2018 8). Loop only.
/// </summary>
internal sealed class SackRecovery : LossRecovery
{
    /// <summary>Created at the first SACK block the peer sends (or when recovery starts without one).</summary>
    private SackScoreboard? _scoreboard;
    private bool _rescuePending;   // the retransmission being sent is the rescue (C.2: it does not move HighRxt)

    public SackRecovery(TcpConnection connection, uint una) : base(connection, una) { }

    protected override string Name => "sack";

    private SackScoreboard Board => _scoreboard ??= new SackScoreboard(SackScoreboard.DefaultCapacity, C.Layer.Counters);

    public override void OnAckArrived(ref AckEvent ack)
    {
        // RFC 6675 Update(): O(blocks x ranges), no allocation; ACKs without blocks skip it.
        if (ack.Sack.Length == 0) return;
        ack.NewlySacked = Board.Update(ack.Sack, Snd.Una, Snd.Max, (uint)C.SndMss);
    }

    protected override bool IsLost(uint seq) => _scoreboard != null && _scoreboard.IsLost(seq);

    protected override void OnRecoveryStarted(int sent)
    {
        // RFC 6675 5 (2), (3): cwnd = ssthresh; HighRxt and RescueRxt just past the segment resent. Output then runs step (C).
        Board.HighRxt = Board.RescueRxt = Snd.Una + (uint)sent;
        Snd.Cwnd = Snd.Ssthresh;
    }

    // A partial ACK changes nothing here: the loop recomputes the pipe and runs NextSeg (RFC 6675 5 (B), (C)).

    public override void OnSndUnaAdvanced(ref AckEvent ack, TimeSpan now)
    {
        if (_scoreboard is { } sb && !sb.Advance(Snd.Una))
        {
            // Reneging (RFC 2018 8): the peer lacks the segment at SND.UNA it had SACKed, so send it now; anything
            // else it dropped is found by later SACKs or, at worst, by the retransmission timer.
            C.Layer.Context.Trace("Tcp", $"{C.Describe()} peer reneged on SACKed data at {Snd.Una}: scoreboard cleared");
            Snd.Rtt.StopTiming(); // Karn
            var sent = Snd.RetransmitFirst(now);
            // After a timeout go-back-N may have skipped the reneged data: continue it from here.
            if (!InRecovery && Seq.Lt(Snd.Una, RecoveryPoint)) Snd.Nxt = Snd.Una + (uint)sent;
        }
        base.OnSndUnaAdvanced(ref ack, now);
    }

    public override void OnRetransmitTimeout(TimeSpan now, uint priorCwnd, uint priorSsthresh)
    {
        base.OnRetransmitTimeout(now, priorCwnd, priorSsthresh);
        // RFC 6675 5.1 (and RFC 2018 errata 1610): the scoreboard is kept, so go-back-N from SND.UNA skips what the
        // peer SACKed; a cumulative ACK that stops at a SACKed range (reneging) clears it (SackScoreboard.Advance).
        if (_scoreboard != null) _scoreboard.HighRxt = Snd.Una;
    }

    public override long Pipe()
    {
        if (InRecovery) return Board.Pipe(Snd.Una, Snd.Max); // RFC 6675 5 (B.2): SetPipe()
        // Outside recovery the pipe is the flight, less what the peer SACKed below SND.NXT: after a timeout
        // (go-back-N) SACKed ranges are skipped, and before recovery starts this is RFC 3042 limited transmit
        // (at most DupThresh - 1 segments' worth, beyond which IsLost starts recovery).
        long pipe = Snd.Nxt - Snd.Una;
        if (_scoreboard is { Count: > 0 } sb) pipe -= sb.SackedIn(Snd.Una, Snd.Nxt);
        return pipe;
    }

    /// <summary>
    /// RFC 6675 5 (C) during recovery, while cwnd - pipe >= 1 SMSS: NextSeg() rule (1) a lost unSACKed segment
    /// above HighRxt, (2) new data, (4) once per recovery the rescue retransmission of the highest unSACKed segment.
    /// </summary>
    public override NextSend NextToSend(long room, bool newDataBlocked, out uint seq, out uint len)
    {
        _rescuePending = false;
        if (!InRecovery) return base.NextToSend(room, newDataBlocked, out seq, out len);
        seq = len = 0;
        var mss = (uint)C.SndMss;
        if (room < mss) return NextSend.Nothing;
        if (!newDataBlocked)
            return Board.NextLost(Snd.Una, Snd.Max, mss, out seq, out len) ? NextSend.Retransmission : NextSend.NewData;
        // Rule (3), resending unSACKed data not yet deemed lost, is left out: in the lossy simulations it resent
        // mostly data still in flight (up to 2.6x the retransmitted bytes), as Linux found when it dropped it.
        if (!Board.NextRescue(Snd.Una, Snd.Max, mss, RecoveryPoint, out seq, out len)) return NextSend.Nothing;
        _rescuePending = true;
        return NextSend.Retransmission;
    }

    public override void OnRetransmitted(uint seq, int sent)
    {
        if (!_rescuePending) Board.HighRxt = seq + (uint)sent; // (C.2); a rescue leaves HighRxt alone
        _rescuePending = false;
    }

    public override bool SkipSacked(uint from, out uint unsacked, out uint limit)
    {
        if (_scoreboard is not { Count: > 0 } sb) return base.SkipSacked(from, out unsacked, out limit);
        unsacked = sb.SkipSacked(from, Snd.Max, out limit);
        return true;
    }

    public override void OnClosed() => _scoreboard = null;
}
