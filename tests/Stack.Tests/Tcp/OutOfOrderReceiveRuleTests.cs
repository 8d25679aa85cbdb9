using NetStack;
using static NetStack.Tcp.TcpFlags;

namespace Stack.Tests.Tcp;

/// <summary>
/// The receiver's out-of-order data on a bare connection (RFC 9293 3.10.7.4, RFC 2018): a window of alternate segments is
/// held whole (the bound follows the receive buffer, as Linux bounds its out-of-order queue by memory); at a bound set by
/// Tcp.MaxOutOfOrderRanges a segment that needs a new range is dropped, nothing held is given up, and the SACK blocks
/// report only what is held.
/// </summary>
public class OutOfOrderReceiveRuleTests
{
    private const uint P = BareTcp.PeerIss + 1;
    private const int Mss = 1000;

    private static (BareTcp T, Func<uint, int, List<Seg>> Data) Receiver(int maxRanges = 0)
    {
        var t = new BareTcp(s => s with { Sack = true, MaxOutOfOrderRanges = maxRanges });
        var (c, us) = t.Established(Mss, TimeSpan.Zero, sack: true);
        var port = c.Key.LocalPort;
        return (t, (from, len) => t.Feed(BareTcp.From(port, from, us, Ack | Psh, new byte[len])));
    }

    [Fact]
    public void A_window_of_alternate_segments_is_held_whole_and_given_in_order_when_the_holes_fill()
    {
        var (t, data) = Receiver();
        const int Full = 1460; // our MSS: the peer's full segments
        // 22 full segments, each after a hole of one, fill the 64 KiB window (no window scaling): 22 ranges, where 16 was the bound.
        List<Seg> acks = new();
        for (int i = 0; i < 22; i++) acks = data(P + (uint)(Full + 2 * Full * i), Full);
        var last = Assert.Single(acks);
        Assert.Equal(P, last.Ack);
        Assert.Equal((P + 43 * Full, P + 44 * Full), last.Sack[0]);      // RFC 2018 4: the latest arrival's block first
        Assert.Equal((P + Full, P + 2 * Full), last.Sack[1]);            // then the others from the lowest
        Assert.Equal(0, t.Layer.Counters.DroppedOutOfOrderFull);
        // The holes fill: each ACK moves to the next hole, the last one to the end of everything held.
        for (int i = 0; i < 22; i++)
        {
            var ack = Assert.Single(data(P + (uint)(2 * Full * i), Full));
            Assert.Equal(P + (uint)(2 * Full * (i + 1)), ack.Ack);
        }
        Assert.Equal(0, t.Layer.Counters.DroppedOutOfOrderFull);
    }

    [Fact]
    public void At_a_set_bound_a_segment_that_needs_a_new_range_is_dropped_and_never_sacked_and_what_is_held_stays()
    {
        var (t, data) = Receiver(maxRanges: 3);
        data(P + 1000, 1000);
        data(P + 3000, 1000);
        var held = Assert.Single(data(P + 5000, 1000));
        Assert.Equal(3, held.Sack.Length);
        // A fourth range, above them all or below: dropped and counted, never SACKed (RFC 2018 8: only data held is reported).
        var above = Assert.Single(data(P + 7000, 1000));
        Assert.DoesNotContain(above.Sack, b => b.Left == P + 7000);
        var below = Assert.Single(data(P + 2400, 200));
        Assert.DoesNotContain(below.Sack, b => b.Left == P + 2400);
        Assert.Equal(2, t.Layer.Counters.DroppedOutOfOrderFull);
        // A segment that widens a range needs none: held, and its block is the first (the latest arrival).
        var widened = Assert.Single(data(P + 6000, 1000));
        Assert.Equal((P + 5000, P + 7000), widened.Sack[0]);
        // The holes fill: everything held is given in order, up to the end of the highest range.
        Assert.Equal(P + 2000, Assert.Single(data(P, 1000)).Ack);
        Assert.Equal(P + 4000, Assert.Single(data(P + 2000, 1000)).Ack);
        Assert.Equal(P + 7000, Assert.Single(data(P + 4000, 1000)).Ack);
        Assert.Equal(2, t.Layer.Counters.DroppedOutOfOrderFull);
    }
}
