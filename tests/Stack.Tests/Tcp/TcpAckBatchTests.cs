using NetStack;
using NetStack.Tcp;
using static NetStack.Tcp.TcpFlags;

namespace Stack.Tests.Tcp;

/// <summary>
/// The receiver's ACK per receive batch (one loop turn takes up to 256 frames; a connection owing the RFC 1122
/// every-second-segment ACK sends one cumulative ACK when the batch ends) and the immediate ACKs that stay
/// immediate: crafted segments in within one Poll, exact replies out.
/// </summary>
public class TcpAckBatchTests
{
    private const uint P = TcpRig.PeerIss + 1;
    private const int Mss = 1460;

    private static byte[] Bytes(int n, byte start = 1) => Enumerable.Range(0, n).Select(i => (byte)(start + i)).ToArray();

    /// <summary>Injects every segment, runs ONE loop turn (one receive batch) and returns what the stack sent.</summary>
    private static List<Seg> FeedBatch(TcpRig rig, IEnumerable<Seg> segs)
    {
        rig.H.Device.Sent.Clear();
        foreach (var s in segs) rig.H.Device.Inject(rig.Frame(s));
        rig.H.Poll();
        return rig.H.Device.Sent.Select(SegCodec.Parse).OfType<Seg>().ToList();
    }

    private static IEnumerable<Seg> InOrder(TcpRig rig, int first, int count) =>
        Enumerable.Range(first, count).Select(i => rig.From(P + (uint)(i * Mss), rig.OurIss + 1, Ack, Bytes(Mss, (byte)i)));

    [Fact]
    public void A_batch_of_in_order_full_segments_gets_one_cumulative_ack()
    {
        using var rig = new TcpRig();
        var s = rig.AcceptOne();
        var us = rig.OurIss + 1;
        var ack = Assert.Single(FeedBatch(rig, InOrder(rig, 0, 8)));
        Assert.Equal(Ack, ack.Flags);
        Assert.Equal(us, ack.Seq);
        Assert.Equal(P + 8 * Mss, ack.Ack);
        Assert.Equal(65535 - 8 * Mss, ack.Window); // all 8 segments wait unread in the 64 KiB buffer
        Assert.Equal(1, rig.Counter("BatchAcks"));
        Assert.Empty(rig.Advance(TimeSpan.FromMilliseconds(200))); // nothing left owed: no delayed ACK follows
        var buf = new byte[16 * Mss];
        Assert.Equal(8 * Mss, rig.H.Run(s.ReceiveAsync(buf).AsTask()));
    }

    [Fact]
    public void A_long_batch_is_acknowledged_at_least_every_quarter_of_the_receive_buffer()
    {
        using var rig = new TcpRig(); // 64 KiB - 1 receive buffer: at most 16383 bytes per deferred ACK
        rig.AcceptOne();
        var acks = FeedBatch(rig, InOrder(rig, 0, 20));
        Assert.Equal(2, acks.Count);
        Assert.Equal(P + 12 * Mss, acks[0].Ack); // 12 segments are the first to reach 16383 bytes
        Assert.Equal(65535 - 12 * Mss, acks[0].Window);
        Assert.Equal(P + 20 * Mss, acks[1].Ack); // the batch's end covers the rest
        Assert.Equal(65535 - 20 * Mss, acks[1].Window);
    }

    [Fact]
    public void One_segment_alone_in_a_batch_still_waits_for_the_delayed_ack_timer()
    {
        using var rig = new TcpRig();
        rig.AcceptOne();
        Assert.Empty(FeedBatch(rig, InOrder(rig, 0, 1)));
        var ack = Assert.Single(rig.Advance(TimeSpan.FromMilliseconds(40)));
        Assert.Equal(P + Mss, ack.Ack);
        Assert.Equal(1, rig.Counter("DelayedAcks"));
        Assert.Equal(0, rig.Counter("BatchAcks"));
    }

    [Fact]
    public void Out_of_order_segments_in_a_batch_each_get_an_immediate_duplicate_ack_with_sack()
    {
        using var rig = new TcpRig(t => t with { Sack = true });
        rig.AcceptOne(synOptions: SegCodec.MssOption(Mss).Concat(new byte[] { 1, 1, 4, 2 }).ToArray());
        var us = rig.OurIss + 1;
        // Segment 0 in order, segment 1 lost, 2..4 arrive: three duplicate ACKs, so the sender can fast-retransmit.
        var replies = FeedBatch(rig, InOrder(rig, 0, 1).Concat(InOrder(rig, 2, 3)));
        Assert.Equal(3, replies.Count);
        for (int i = 0; i < 3; i++)
        {
            Assert.Equal(Ack, replies[i].Flags);
            Assert.Equal(P + Mss, replies[i].Ack);
            Assert.Equal(new[] { (P + 2 * Mss, P + (uint)(3 + i) * Mss) }, replies[i].Sack);
        }
        // The retransmission fills the hole: acknowledged at once, everything, without SACK blocks.
        var fill = Assert.Single(FeedBatch(rig, InOrder(rig, 1, 1)));
        Assert.Equal(P + 5 * Mss, fill.Ack);
        Assert.Empty(fill.Sack);
        Assert.Equal(3, rig.Counter("OutOfOrderSegments"));
    }

    [Fact]
    public void A_fin_after_data_in_the_same_batch_is_acknowledged_at_once_and_only_once()
    {
        using var rig = new TcpRig();
        var s = rig.AcceptOne();
        var us = rig.OurIss + 1;
        var segs = InOrder(rig, 0, 2).Append(rig.From(P + 2 * Mss, us, Ack | Fin)).ToList();
        var ack = Assert.Single(FeedBatch(rig, segs));
        Assert.Equal(Ack, ack.Flags);
        Assert.Equal(P + 2 * Mss + 1, ack.Ack);
        Assert.Equal(TcpState.CloseWait, s.State);
        Assert.Equal(0, rig.Counter("BatchAcks"));
    }

    [Fact]
    public void The_owed_ack_rides_on_data_sent_in_the_same_batch()
    {
        using var rig = new TcpRig();
        var s = rig.AcceptOne();
        var us = rig.OurIss + 1;
        // Our send waits behind a zero window; the second segment of the batch reopens it and owes the ACK, so
        // the data sent at once carries it and no separate ACK follows at the batch's end.
        rig.FeedNone(rig.From(P, us, Ack, window: 0));
        var send = s.SendAsync(Bytes(100));
        Assert.Empty(rig.Drain());
        var segs = InOrder(rig, 0, 2).Select((x, i) => x with { Window = i == 0 ? (ushort)0 : (ushort)65535 }).ToList();
        var r = Assert.Single(FeedBatch(rig, segs));
        Assert.Equal(100, r.Payload.Length);
        Assert.Equal(P + 2 * Mss, r.Ack);
        Assert.Equal(0, rig.Counter("BatchAcks"));
        rig.H.Run(send);
    }
}
