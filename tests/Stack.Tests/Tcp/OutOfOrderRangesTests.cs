using NetStack.Tcp;

namespace Stack.Tests.Tcp;

/// <summary>The receiver's out-of-order ranges alone: merging, the bound, taking them in order, SACK block order (RFC 2018 4).</summary>
public class OutOfOrderRangesTests
{
    private static (uint, uint)[] Blocks(OutOfOrderRanges r, int max) => r.SackBlocks(max).ToArray().Select(b => (b.Left, b.Right)).ToArray();

    [Fact]
    public void Ranges_merge_when_they_overlap_or_touch_and_a_full_table_refuses_a_new_one()
    {
        var r = new OutOfOrderRanges(3);
        Assert.True(r.Add(10, 20));
        Assert.True(r.Add(30, 40));
        Assert.True(r.Add(20, 30));                      // touches both: one range
        Assert.Equal(1, r.Count);
        Assert.Equal(new[] { (10u, 40u) }, Blocks(r, 4));
        Assert.True(r.Add(50, 60));
        Assert.True(r.Add(70, 80));
        Assert.False(r.Add(90, 100));                    // a fourth range does not fit
        Assert.True(r.Add(55, 75));                      // merging needs no new range
        Assert.Equal(2, r.Count);
    }

    [Fact]
    public void The_latest_arrival_is_the_first_sack_block_then_the_others_from_the_lowest()
    {
        var r = new OutOfOrderRanges(8);
        r.Add(100, 200);
        r.Add(300, 400);
        r.Add(500, 600);
        r.Add(310, 350);                                 // within 300-400: that range is the latest
        Assert.Equal(new[] { (300u, 400u), (100u, 200u), (500u, 600u) }, Blocks(r, 4));
        Assert.Equal(new[] { (300u, 400u), (100u, 200u) }, Blocks(r, 2));
    }

    [Fact]
    public void Ranges_reached_by_rcv_nxt_are_taken_in_order()
    {
        var r = new OutOfOrderRanges(8);
        r.Add(100, 200);
        r.Add(300, 400);
        Assert.True(r.Holds(200));
        Assert.False(r.Holds(250));
        Assert.Equal(50u, r.TakeInOrder(50));            // the hole before 100 is still open
        Assert.Equal(200u, r.TakeInOrder(100));          // filled: RCV.NXT jumps to the range's end
        Assert.Equal(1, r.Count);
        Assert.Equal(400u, r.TakeInOrder(350));
        Assert.Equal(0, r.Count);
    }
}
