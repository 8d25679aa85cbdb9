using NetStack;
using NetStack.Sockets;
using NetStack.Tcp;
using static NetStack.Tcp.TcpFlags;

namespace Stack.Tests.Tcp;

/// <summary>
/// SACK loss recovery (RFC 6675, Tcp.LossDetection = DupAck) on the wire: ten 1000-byte segments from our stack,
/// crafted ACKs with SACK blocks from the peer, and exactly the retransmissions that must follow. NewReno window
/// arithmetic, so ssthresh = cwnd = FlightSize / 2 = 5000 on entering recovery.
/// </summary>
public class SackRecoveryRuleTests
{
    private const uint P = TcpRig.PeerIss + 1;
    private const int Mss = 1000;

    /// <summary>An accepted SACK connection that has sent ten full segments (the initial window); returns segment i's start.</summary>
    private static (TcpRig Rig, TcpSocket Socket, Func<int, uint> S) TenSegmentsInFlight()
    {
        var rig = new TcpRig(t => t with { Sack = true, CongestionControl = "newreno", LossDetection = LossDetection.DupAck });
        var s = rig.AcceptOne(synOptions: SegCodec.MssOption(Mss).Concat(new byte[] { 1, 1, 4, 2 }).ToArray());
        var us = rig.OurIss + 1;
        rig.H.Device.Sent.Clear();
        rig.H.Run(s.SendAsync(new byte[10 * Mss]));
        var sent = rig.H.Device.Sent.Select(SegCodec.Parse).OfType<Seg>().ToList();
        Assert.Equal(Enumerable.Range(0, 10).Select(i => us + (uint)(i * Mss)), sent.Select(x => x.Seq));
        Assert.All(sent, x => Assert.Equal(Mss, x.Payload.Length));
        return (rig, s, i => us + (uint)(i * Mss));
    }

    private static Seg AckWithSack(TcpRig rig, uint ack, params (uint, uint)[] blocks) =>
        rig.From(P, ack, Ack, options: blocks.Length > 0 ? SegCodec.SackOption(blocks) : null);

    [Fact]
    public void Segments_three_and_six_lost_are_each_retransmitted_exactly_once()
    {
        var (rig, s, S) = TenSegmentsInFlight();
        using var _ = rig;
        var resent = new List<uint>();
        void Feed(Seg ack) => resent.AddRange(rig.Feed(ack).Where(x => x.Payload.Length > 0).Select(x => x.Seq));

        Feed(AckWithSack(rig, S(3)));                                  // segments 0-2 arrive
        Feed(AckWithSack(rig, S(3), (S(4), S(5))));                    // 4: duplicate 1
        Feed(AckWithSack(rig, S(3), (S(4), S(6))));                    // 5: duplicate 2
        Assert.Empty(resent);
        Feed(AckWithSack(rig, S(3), (S(7), S(8)), (S(4), S(6))));      // 7: duplicate 3, 3000 bytes above segment 3
        Assert.Equal(new[] { S(3) }, resent);                          // fast retransmit of 3; 6 is not lost yet
        Assert.True(s.Tcb.Snd.Recovery.InRecovery);
        Feed(AckWithSack(rig, S(3), (S(7), S(9)), (S(4), S(6))));      // 8: only 2000 bytes above segment 6
        Assert.Equal(new[] { S(3) }, resent);
        Feed(AckWithSack(rig, S(3), (S(7), S(10)), (S(4), S(6))));     // 9: segment 6 is lost now (IsLost)
        Assert.Equal(new[] { S(3), S(6) }, resent);
        Feed(AckWithSack(rig, S(6), (S(7), S(10))));                   // the retransmitted 3 arrives: partial ACK
        Feed(AckWithSack(rig, S(10)));                                 // the retransmitted 6: all acknowledged
        Assert.Equal(new[] { S(3), S(6) }, resent);
        Assert.False(s.Tcb.Snd.Recovery.InRecovery);
        Assert.Equal(2, rig.Counter("SegmentsRetransmitted"));
        Assert.Equal(2 * Mss, rig.Counter("BytesRetransmitted"));
        Assert.Equal(1, rig.Counter("FastRetransmits"));
    }

    [Fact]
    public void One_ack_sacking_three_segments_above_snd_una_starts_recovery_before_three_duplicates()
    {
        var (rig, s, S) = TenSegmentsInFlight();
        using var _ = rig;
        var r = rig.Feed(AckWithSack(rig, S(0), (S(1), S(4)))); // earlier ACKs lost: one duplicate, three segments SACKed
        var rx = Assert.Single(r);
        Assert.Equal(S(0), rx.Seq);
        Assert.Equal(Mss, rx.Payload.Length);
        Assert.True(s.Tcb.Snd.Recovery.InRecovery);
        Assert.Equal(1, s.Tcb.Snd.Recovery.DupAcks);
    }

    [Fact]
    public void The_lost_tail_is_resent_once_by_the_rescue_retransmission()
    {
        var (rig, s, S) = TenSegmentsInFlight();
        using var _ = rig;
        // Segments 0 and 9 lost: 0 is detected by SACK, 9 has nothing above it and can never be IsLost.
        var first = Assert.Single(rig.Feed(AckWithSack(rig, S(0), (S(1), S(9)))));
        Assert.Equal(S(0), first.Seq);
        var rescue = Assert.Single(rig.Feed(AckWithSack(rig, S(9)))); // partial ACK: only 9 is left
        Assert.Equal(S(9), rescue.Seq);
        Assert.Equal(Mss, rescue.Payload.Length);
        rig.FeedNone(AckWithSack(rig, S(9)));                          // one rescue per recovery
        rig.FeedNone(rig.From(P, S(10), Ack));
        Assert.False(s.Tcb.Snd.Recovery.InRecovery);
        Assert.Equal(2, rig.Counter("SegmentsRetransmitted"));
    }

    /// <summary>The peer gets every segment we send (cumulative ACKs), holding SACKed segments 8 and 9 from before.</summary>
    private static List<Seg> GoBackNAfterTimeout(TcpRig rig, Func<int, uint> S, bool renege)
    {
        rig.FeedNone(AckWithSack(rig, S(0), (S(8), S(10))));             // segment 0 lost, 8 and 9 SACKed: not yet loss
        var queue = new Queue<Seg>(rig.Advance(TimeSpan.FromMilliseconds(200))); // the RTO
        var resent = new List<Seg>();
        while (queue.Count > 0)
        {
            var seg = queue.Dequeue();
            if (seg.Payload.Length == 0) continue;
            resent.Add(seg);
            var ack = seg.Seq + (uint)seg.Payload.Length;
            if (ack == S(8) && !renege) ack = S(10);                      // 8 and 9 were held out of order
            // The peer keeps SACKing 8 and 9 while it holds them; a reneging peer has dropped them and does not.
            var blocks = !renege && (int)(ack - S(8)) < 0 ? new[] { (S(8), S(10)) } : Array.Empty<(uint, uint)>();
            foreach (var r in rig.Feed(AckWithSack(rig, ack, blocks))) queue.Enqueue(r);
        }
        return resent;
    }

    [Fact]
    public void After_a_timeout_sacked_data_is_not_sent_again()
    {
        var (rig, s, S) = TenSegmentsInFlight();
        using var _ = rig;
        var resent = GoBackNAfterTimeout(rig, S, renege: false);
        Assert.Equal(Enumerable.Range(0, 8).Select(S), resent.Select(x => x.Seq));
        Assert.All(resent, x => Assert.Equal(Mss, x.Payload.Length));
        Assert.Equal(1, rig.Counter("Timeouts"));
        Assert.Equal(8, rig.Counter("SegmentsRetransmitted"));
        Assert.Equal(0, rig.Row(s).SendQ);
    }

    [Fact]
    public void A_peer_that_reneges_on_sacked_data_gets_it_again_at_once()
    {
        var (rig, s, S) = TenSegmentsInFlight();
        using var _ = rig;
        var resent = GoBackNAfterTimeout(rig, S, renege: true);
        // 0-7 skip the SACKed 8 and 9; the ACK stopping at 8 shows the peer dropped them, and they follow.
        Assert.Equal(Enumerable.Range(0, 10).Select(S), resent.Select(x => x.Seq));
        Assert.Equal(1, rig.Counter("SackReneging"));
        Assert.Equal(1, rig.Counter("Timeouts"));
        Assert.Equal(0, rig.Row(s).SendQ);
    }
}
