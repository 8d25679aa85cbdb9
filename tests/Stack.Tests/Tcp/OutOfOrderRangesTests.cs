using NetStack.Tcp;

namespace Stack.Tests.Tcp;

/// <summary>The receiver's out-of-order ranges alone: merging, the bound, taking them in order, SACK block order (RFC 2018 4).</summary>
public class OutOfOrderRangesTests
{
    private static (uint, uint)[] Blocks(OutOfOrderRanges r, int max) => r.SackBlocks(max).ToArray().Select(b => (b.Left, b.Right)).ToArray();

    [Fact]
    public void Ranges_merge_when_they_overlap_or_touch_and_at_the_bound_a_new_one_is_refused()
    {
        var r = new OutOfOrderRanges();
        Assert.True(r.Add(10, 20, 3));
        Assert.True(r.Add(30, 40, 3));
        Assert.True(r.Add(20, 30, 3));            // touches both: one range
        Assert.Equal(1, r.Count);
        Assert.Equal(new[] { (10u, 40u) }, Blocks(r, 4));
        Assert.True(r.Add(50, 60, 3));
        Assert.True(r.Add(70, 80, 3));
        Assert.False(r.Add(90, 100, 3));                 // a fourth range does not fit
        Assert.DoesNotContain((90u, 100u), Blocks(r, 4)); // and is never reported (RFC 2018: SACK only what is held)
        Assert.True(r.Add(55, 75, 3));            // merging needs no new range
        Assert.Equal(2, r.Count);
    }

    [Fact]
    public void At_the_bound_a_lower_arrival_is_refused_too_and_nothing_held_is_given_up()
    {
        var r = new OutOfOrderRanges();
        r.Add(100, 200, 3);
        r.Add(300, 400, 3);
        r.Add(500, 600, 3);
        Assert.False(r.Add(220, 240, 3));                // a new range below the others: no room either
        Assert.True(r.Add(400, 450, 3));                 // widening one needs none
        Assert.Equal(new[] { (300u, 450u), (100u, 200u), (500u, 600u) }, Blocks(r, 4));
        Assert.True(r.Holds(600));                       // what was SACKed stays held (no reneging)
    }

    [Fact]
    public void The_table_grows_to_the_bound_and_finds_ranges_by_binary_search()
    {
        var r = new OutOfOrderRanges();
        for (uint i = 0; i < 2000; i++) Assert.True(r.Add(1000 + i * 20, 1010 + i * 20, 2000));
        Assert.Equal(2000, r.Count);
        Assert.True(r.Holds(1010 + 1234 * 20));
        Assert.False(r.Holds(1011 + 1234 * 20));
        Assert.True(r.Contains(1002 + 777 * 20, 1008 + 777 * 20));
        Assert.False(r.Contains(1005 + 777 * 20, 1015 + 777 * 20));
        Assert.True(r.Add(1010 + 5 * 20, 1000 + 6 * 20, 2000)); // fills the hole between 5 and 6: they merge
        Assert.Equal(1999, r.Count);
        Assert.True(r.Holds(1000 + 6 * 20 + 10));
        Assert.Equal(1010u, r.TakeInOrder(1000));                  // RCV.NXT reaches the first range
        Assert.Equal(1998, r.Count);
    }

    [Fact]
    public void The_bound_is_the_receive_buffer_in_pairs_of_full_segments_unless_set()
    {
        Assert.Equal(16, OutOfOrderRanges.LimitFor(16 * 1024, 1448, 0));              // a small buffer: the least bound
        Assert.Equal(256 * 1024 / (2 * 1448) + 1, OutOfOrderRanges.LimitFor(256 * 1024, 1448, 0));
        Assert.Equal(6 * 1024 * 1024 / (2 * 1448) + 1, OutOfOrderRanges.LimitFor(6 * 1024 * 1024, 1448, 0));
        Assert.Equal(16, OutOfOrderRanges.LimitFor(6 * 1024 * 1024, 1448, 16));        // Tcp.MaxOutOfOrderRanges set: that
    }

    [Fact]
    public void The_latest_arrival_is_the_first_sack_block_then_the_others_from_the_lowest()
    {
        var r = new OutOfOrderRanges();
        r.Add(100, 200, 8);
        r.Add(300, 400, 8);
        r.Add(500, 600, 8);
        r.Add(310, 350, 8);                                 // within 300-400: that range is the latest
        Assert.Equal(new[] { (300u, 400u), (100u, 200u), (500u, 600u) }, Blocks(r, 4));
        Assert.Equal(new[] { (300u, 400u), (100u, 200u) }, Blocks(r, 2));
    }

    [Fact]
    public void Ranges_reached_by_rcv_nxt_are_taken_in_order()
    {
        var r = new OutOfOrderRanges();
        r.Add(100, 200, 8);
        r.Add(300, 400, 8);
        Assert.True(r.Holds(200));
        Assert.False(r.Holds(250));
        Assert.Equal(50u, r.TakeInOrder(50));            // the hole before 100 is still open
        Assert.Equal(200u, r.TakeInOrder(100));          // filled: RCV.NXT jumps to the range's end
        Assert.Equal(1, r.Count);
        Assert.Equal(400u, r.TakeInOrder(350));
        Assert.Equal(0, r.Count);
    }
}
