namespace NetStack.Tcp;

/// <summary>
/// What one acceptable ACK told the sender (RFC 9293 3.10.7.4, fifth check), as loss recovery sees it. The sender
/// fills it as it processes the ACK; recovery algorithms read it (and <see cref="ILossRecovery.OnAckArrived"/>
/// reports what the SACK blocks added).
/// </summary>
internal ref struct AckEvent
{
    /// <summary>SEG.ACK.</summary>
    public uint Ack;
    /// <summary>The segment's SACK blocks as received (RFC 2018), unvalidated; empty when it carried none.</summary>
    public ReadOnlySpan<SackBlock> Sack;
    public bool HasTimestamp;
    public uint TsEcr;
    /// <summary>Set by the recovery: the blocks SACKed data not SACKed before.</summary>
    public bool NewlySacked;
    /// <summary>Data bytes the cumulative ACK newly acknowledged (0 for a duplicate).</summary>
    public uint DataAcked;
    /// <summary>The first block was a D-SACK (RFC 2883 4: below SEG.ACK, or inside the second block): the peer got [DsackLeft, DsackRight) twice.</summary>
    public bool Dsack;
    public uint DsackLeft, DsackRight;
    /// <summary>Sequence space newly delivered by this ACK, cumulatively or by SACK, not counting what was SACKed before (RFC 6937 DeliveredData).</summary>
    public uint Delivered;
    /// <summary>SND.UNA before this ACK.</summary>
    public uint PriorUna;
}

/// <summary>A connection's loss-recovery figures, for its snapshot.</summary>
internal readonly record struct LossRecoveryStats(string Name, string Phase, TimeSpan ReorderWindow, long TlpProbes, long RackLosses, long SpuriousRetransmits, long Undos);

/// <summary>The loss recovery a connection uses, chosen when the options are negotiated.</summary>
internal enum RecoveryKind : byte { None, NewReno, Sack, Rack }

/// <summary>What the transmission loop should send next (<see cref="ILossRecovery.NextToSend"/>).</summary>
internal enum NextSend
{
    Nothing,
    /// <summary>New data (or, after a timeout, go-back-N from SND.NXT), as the windows, SWS avoidance and Nagle allow.</summary>
    NewData,
    /// <summary>The range the query returned, sent again.</summary>
    Retransmission,
}

/// <summary>
/// Loss detection and recovery: which data is lost, what is resent and when, and the congestion window's
/// response during recovery. The sender tells it of every ACK (in the order below) and every retransmission
/// timeout, and asks it what to send next. NewReno (RFC 6582), SACK recovery (RFC 6675) and RACK-TLP with PRR and
/// undo (RFC 8985, RFC 6937, RFC 2883/3708/3522: <see cref="RackRecovery"/>) implement it. One instance per
/// connection, chosen when the options are negotiated (<see cref="TcpSettings.LossDetection"/>). Loop only.
/// </summary>
internal interface ILossRecovery
{
    /// <summary>Between entering fast recovery and the ACK of <see cref="RecoveryPoint"/> (or a timeout).</summary>
    bool InRecovery { get; }
    /// <summary>RFC 6582 "recover": the highest sequence number sent when the last recovery or timeout began.</summary>
    uint RecoveryPoint { get; }
    /// <summary>Duplicate ACKs since SND.UNA last advanced.</summary>
    int DupAcks { get; }

    /// <summary>1. Every acceptable ACK, first: take its SACK blocks (RFC 6675 Update()); set <see cref="AckEvent.NewlySacked"/>.</summary>
    void OnAckArrived(ref AckEvent ack);

    /// <summary>2a. The ACK was a duplicate (RFC 5681 2, RFC 6675 2): may start recovery with a fast retransmit.</summary>
    void OnDuplicateAck(ref AckEvent ack, TimeSpan now);

    /// <summary>2b. The ACK moved SND.UNA (the send ring has let the data go), before its RTT sample.</summary>
    void OnSndUnaAdvanced(ref AckEvent ack, TimeSpan now);

    /// <summary>3. After the RTT sample: the window's response in recovery (leave it on a full ACK, partial ACKs).</summary>
    void OnNewAck(ref AckEvent ack, TimeSpan now);

    /// <summary>4. Every acceptable ACK, last, before the window grows: time-based loss detection, recovery's window (PRR), undo.</summary>
    void OnAckDone(ref AckEvent ack, TimeSpan now);

    /// <summary>A sent segment was delivered (cumulatively acknowledged or SACKed), told while the ACK is processed.</summary>
    void OnSegmentDelivered(in SentSegment segment, TimeSpan now);

    /// <summary>Any data (or FIN) transmission of <paramref name="len"/> bytes of sequence space at <paramref name="seq"/>.</summary>
    void OnTransmitted(uint seq, int len, bool retransmission, TimeSpan now);

    /// <summary>
    /// The retransmission timer expired (RFC 6298 5.4-5.7); the sender has set ssthresh and cwnd, which were
    /// <paramref name="priorCwnd"/> and <paramref name="priorSsthresh"/> before.
    /// </summary>
    void OnRetransmitTimeout(TimeSpan now, uint priorCwnd, uint priorSsthresh);

    /// <summary>After a timeout the sender goes back N from SND.UNA (true), or the recovery resends what it marked lost.</summary>
    bool GoBackN { get; }

    /// <summary>The transmission loop has sent what it could: arm the recovery's own timer (a tail loss probe).</summary>
    void AfterOutput(TimeSpan now);

    /// <summary>The recovery's own timer (the connection's LossAt) fell due; the sender runs its output afterwards.</summary>
    void OnTimer(TimeSpan now);

    /// <summary>The figures a snapshot shows.</summary>
    LossRecoveryStats Stats { get; }

    /// <summary>The data in flight, as this algorithm counts it (RFC 6675 SetPipe() in SACK recovery).</summary>
    long Pipe();

    /// <summary>
    /// What the transmission loop sends next with <paramref name="room"/> = cwnd - pipe bytes free; with
    /// <paramref name="newDataBlocked"/> when new data could not go on this round. <see cref="NextSend.Retransmission"/>
    /// names the range in <paramref name="seq"/> and <paramref name="len"/>.
    /// </summary>
    NextSend NextToSend(long room, bool newDataBlocked, out uint seq, out uint len);

    /// <summary>The loop resent <paramref name="sent"/> bytes of sequence space from <paramref name="seq"/> as asked.</summary>
    void OnRetransmitted(uint seq, int sent);

    /// <summary>
    /// The first byte at or after <paramref name="from"/> the peer has not SACKed, and where the next SACKed range
    /// starts (or SND.MAX); false when nothing is SACKed.
    /// </summary>
    bool SkipSacked(uint from, out uint unsacked, out uint limit);

    /// <summary>The connection closed: let go of any state.</summary>
    void OnClosed();
}

/// <summary>
/// What NewReno and SACK recovery share: fast retransmit on DupThresh duplicates (RFC 5681 3.2) only beyond the
/// last recovery point (RFC 6582 3.2 step 2), leaving recovery on a full ACK with cwnd = min(ssthresh,
/// FlightSize + SMSS) (RFC 6582 3.2 step 3), and a timeout's RecoveryPoint = SND.MAX.
/// </summary>
internal abstract class LossRecovery : ILossRecovery
{
    /// <summary>RFC 5681 2 / RFC 6675 2: DupThresh.</summary>
    public const int DupThresh = 3;

    protected readonly TcpConnection C;
    protected readonly TcpSender Snd;

    /// <param name="una">SND.UNA when the options were negotiated (the recovery may be made later, at its first use).</param>
    protected LossRecovery(TcpConnection connection, uint una)
    {
        C = connection;
        Snd = connection.Snd;
        RecoveryPoint = una;
    }

    public bool InRecovery { get; private set; }
    public uint RecoveryPoint { get; private set; }
    public int DupAcks { get; private set; }

    public virtual void OnAckArrived(ref AckEvent ack) { }

    public void OnDuplicateAck(ref AckEvent ack, TimeSpan now)
    {
        DupAcks++;
        if (InRecovery)
        {
            OnDuplicateInRecovery();
            return;
        }
        // RFC 5681 3.2 / RFC 6675 5 (2), (3): DupThresh duplicates, or the algorithm's own evidence that SND.UNA is lost.
        var lost = DupAcks >= DupThresh || IsLost(Snd.Una);
        if (!lost || !Seq.Gt(Snd.Una, RecoveryPoint)) return; // not before the last recovery's end
        EnterRecovery(now);
    }

    public virtual void OnSndUnaAdvanced(ref AckEvent ack, TimeSpan now) => DupAcks = 0;

    public void OnNewAck(ref AckEvent ack, TimeSpan now)
    {
        if (InRecovery)
        {
            if (Seq.Ge(ack.Ack, RecoveryPoint))
            {
                // Full ACK (RFC 6582 3.2 step 3): leave recovery with cwnd = min(ssthresh, FlightSize + MSS).
                InRecovery = false;
                var mss = (uint)C.SndMss;
                var flight = Snd.Max - Snd.Una;
                Snd.Cwnd = Math.Min(Snd.Ssthresh, Math.Max(flight, mss) + mss);
            }
            else OnPartialAck(ref ack, now);
            return;
        }
        // Keep the recovery point just below SND.UNA once passed, so the RFC 6582 comparison never spans 2^31 bytes.
        if (Seq.Gt(Snd.Una, RecoveryPoint)) RecoveryPoint = Snd.Una - 1;
    }

    public virtual void OnAckDone(ref AckEvent ack, TimeSpan now) { }
    public virtual void OnSegmentDelivered(in SentSegment segment, TimeSpan now) { }
    public virtual void OnTransmitted(uint seq, int len, bool retransmission, TimeSpan now) { }
    public bool GoBackN => true;
    public void AfterOutput(TimeSpan now) { }
    public void OnTimer(TimeSpan now) { }
    public LossRecoveryStats Stats => new(Name, InRecovery ? "Recovery" : "Open", TimeSpan.Zero, 0, 0, 0, 0);
    /// <summary>The recovery's name in snapshots.</summary>
    protected abstract string Name { get; }

    public virtual void OnRetransmitTimeout(TimeSpan now, uint priorCwnd, uint priorSsthresh)
    {
        InRecovery = false;
        RecoveryPoint = Snd.Max; // RFC 6582 3.2: no fast retransmit for ACKs below what was sent before the timeout
        DupAcks = 0;
    }

    public virtual long Pipe() => Snd.Nxt - Snd.Una;

    public virtual NextSend NextToSend(long room, bool newDataBlocked, out uint seq, out uint len)
    {
        seq = len = 0;
        return newDataBlocked ? NextSend.Nothing : NextSend.NewData;
    }

    public virtual void OnRetransmitted(uint seq, int sent) { }

    public virtual bool SkipSacked(uint from, out uint unsacked, out uint limit)
    {
        unsacked = from;
        limit = Snd.Max;
        return false;
    }

    public virtual void OnClosed() { }

    /// <summary>Evidence beyond DupThresh duplicates that <paramref name="seq"/> was lost.</summary>
    protected virtual bool IsLost(uint seq) => false;

    /// <summary>A further duplicate ACK during recovery.</summary>
    protected virtual void OnDuplicateInRecovery() { }

    /// <summary>An ACK in recovery below the recovery point.</summary>
    protected virtual void OnPartialAck(ref AckEvent ack, TimeSpan now) { }

    /// <summary>Recovery began with the retransmission of <paramref name="sent"/> bytes at SND.UNA; sets cwnd.</summary>
    protected abstract void OnRecoveryStarted(int sent);

    /// <summary>
    /// Fast retransmit and the start of loss recovery: ssthresh from the congestion control, RecoveryPoint =
    /// SND.MAX, SND.UNA's segment resent (RFC 5681 3.2, RFC 6582 3.2 step 2, RFC 6675 5 (1)-(3)).
    /// </summary>
    private void EnterRecovery(TimeSpan now)
    {
        var flight = Snd.Max - Snd.Una;
        Snd.Ssthresh = Snd.Cc.OnLoss(Snd.Cwnd, flight, (uint)C.SndMss, now);
        RecoveryPoint = Snd.Max;
        InRecovery = true;
        C.Layer.Counters.FastRetransmits++;
        Snd.FastRecoveries++;
        Snd.Rtt.StopTiming(); // Karn
        C.Layer.Context.Trace("Tcp", $"{C.Describe()} fast retransmit of {Snd.Una} after {DupAcks} duplicate ACKs, ssthresh {Snd.Ssthresh}");
        OnRecoveryStarted(Snd.RetransmitFirst(now));
    }
}
