namespace NetStack.Tcp;

/// <summary>
/// NewReno loss recovery (RFC 6582) for peers without SACK: fast retransmit on DupThresh duplicate ACKs with
/// cwnd = ssthresh + 3 SMSS, inflation by one SMSS per further duplicate, and on a partial ACK the next hole
/// resent at once with cwnd deflated by the amount acknowledged. Loop only.
/// </summary>
internal sealed class NewRenoRecovery : LossRecovery
{
    public NewRenoRecovery(TcpConnection connection, uint una) : base(connection, una) { }

    protected override string Name => "newreno";

    // RFC 6582 3.2 step 2: cwnd = ssthresh + 3 * SMSS, for the three segments the duplicates say have left.
    protected override void OnRecoveryStarted(int sent) => Snd.Cwnd = Snd.Ssthresh + 3 * (uint)C.SndMss;

    // RFC 6582 3.2 step 5: inflate per further duplicate.
    protected override void OnDuplicateInRecovery() => Snd.Cwnd += (uint)C.SndMss;

    protected override void OnPartialAck(ref AckEvent ack, TimeSpan now)
    {
        // RFC 6582 3.2 step 4: retransmit the next hole, deflate by the amount acknowledged (adding back one SMSS
        // when at least one was acknowledged).
        var mss = (uint)C.SndMss;
        Snd.RetransmitFirst(now);
        Snd.Cwnd = Snd.Cwnd > ack.DataAcked ? Snd.Cwnd - ack.DataAcked : mss;
        if (ack.DataAcked >= mss) Snd.Cwnd += mss;
    }
}
