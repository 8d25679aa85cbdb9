using NetStack.Tcp;

namespace Stack.Tests.Tcp;

/// <summary>The sender's SACK scoreboard (RFC 6675 3, 4) on crafted ranges: 100-byte segments from 1000.</summary>
public class SackScoreboardTests
{
    private const uint Una = 1000, Mss = 100;
    private const uint Max = Una + 10 * Mss; // ten segments outstanding

    private static uint S(int i) => Una + (uint)i * Mss; // start of segment i

    private static SackBlock B(uint left, uint right) => new(left, right);

    private static (uint, uint)[] Ranges(SackScoreboard sb) => Enumerable.Range(0, sb.Count).Select(i => (sb[i].Left, sb[i].Right)).ToArray();

    private static SackScoreboard Board(params SackBlock[] blocks)
    {
        var sb = new SackScoreboard(counters: new TcpCounters());
        sb.Update(blocks, Una, Max, Mss);
        return sb;
    }

    [Fact]
    public void Update_keeps_ranges_sorted_and_merges_overlapping_and_touching_blocks()
    {
        var c = new TcpCounters();
        var sb = new SackScoreboard(counters: c);
        Assert.True(sb.Update(new[] { B(S(7), S(8)) }, Una, Max, Mss));
        Assert.True(sb.Update(new[] { B(S(2), S(3)), B(S(5), S(6)) }, Una, Max, Mss));
        Assert.Equal(new[] { (S(2), S(3)), (S(5), S(6)), (S(7), S(8)) }, Ranges(sb));
        // [6,7) touches both neighbours: three ranges become one.
        Assert.True(sb.Update(new[] { B(S(6), S(7)) }, Una, Max, Mss));
        Assert.Equal(new[] { (S(2), S(3)), (S(5), S(8)) }, Ranges(sb));
        Assert.Equal(4 * Mss, sb.SackedBytes);
        // The same information again is not new (not a duplicate ACK by RFC 6675's definition).
        Assert.False(sb.Update(new[] { B(S(5), S(8)), B(S(2), S(3)) }, Una, Max, Mss));
        Assert.Equal(S(8), sb.HighSacked);
        Assert.Equal(0, c.SackBlocksIgnored);
    }

    [Fact]
    public void Invalid_blocks_are_ignored_and_counted_and_one_straddling_snd_una_is_clipped()
    {
        var c = new TcpCounters();
        var sb = new SackScoreboard(counters: c);
        var changed = sb.Update(new[]
        {
            B(S(3), S(3)),           // empty
            B(S(4), S(3)),           // reversed
            B(Una - 500, Una),       // at or below SND.UNA (a D-SACK)
            B(S(9), Max + 1),        // beyond SND.MAX
        }, Una, Max, Mss);
        Assert.False(changed);
        Assert.Equal(0, sb.Count);
        Assert.Equal(4, c.SackBlocksIgnored);
        Assert.True(sb.Update(new[] { B(Una - 50, S(1)) }, Una, Max, Mss));
        Assert.Equal(new[] { (Una, S(1)) }, Ranges(sb));
    }

    [Fact]
    public void A_full_table_forgets_the_highest_range_and_counts_it()
    {
        var c = new TcpCounters();
        var sb = new SackScoreboard(capacity: 3, counters: c);
        sb.Update(new[] { B(S(1), S(2)), B(S(3), S(4)), B(S(5), S(6)) }, Una, Max, Mss);
        Assert.False(sb.Update(new[] { B(S(7), S(8)) }, Una, Max, Mss)); // above all: dropped, nothing new recorded
        Assert.Equal(new[] { (S(1), S(2)), (S(3), S(4)), (S(5), S(6)) }, Ranges(sb));
        Assert.True(sb.Update(new[] { B(Una, Una + 10) }, Una, Max, Mss)); // below all: new, and the highest gives way
        Assert.Equal(new[] { (Una, Una + 10), (S(1), S(2)), (S(3), S(4)) }, Ranges(sb));
        Assert.Equal(2, c.SackRangesDropped);
        Assert.Equal(10 + 2 * Mss, sb.SackedBytes);
    }

    [Fact]
    public void IsLost_needs_more_than_two_segments_of_sacked_bytes_or_three_ranges_above()
    {
        // Two full segments above segment 0: not yet lost (RFC 6675: *more than* (DupThresh-1)*SMSS).
        var sb = Board(B(S(1), S(3)));
        Assert.False(sb.IsLost(S(0)));
        sb.Update(new[] { B(S(3), S(4)) }, Una, Max, Mss);
        Assert.True(sb.IsLost(S(0)));
        Assert.False(sb.IsLost(S(1))); // SACKed bytes are never lost

        // Three discontiguous small ranges (segments smaller than SMSS) above: lost although only 30 bytes.
        var small = Board(B(S(1), S(1) + 10), B(S(2), S(2) + 10), B(S(3), S(3) + 10));
        Assert.True(small.IsLost(S(0)));
        Assert.False(small.IsLost(S(1) + 50)); // two ranges, 20 bytes above

        // Holes high up with little SACKed above are not lost, holes below the boundary are.
        var holes = Board(B(S(1), S(3)), B(S(4), S(6)), B(S(7), S(8)));
        Assert.True(holes.IsLost(S(0)));
        Assert.True(holes.IsLost(S(3)));      // [4,6) and [7,8) above: 300 bytes
        Assert.False(holes.IsLost(S(6)));     // only [7,8) above
        Assert.False(holes.IsLost(S(9)));
        // Two ranges of 100 bytes above are not enough either.
        Assert.False(Board(B(S(1), S(2)), B(S(3), S(4))).IsLost(S(0)));
    }

    [Fact]
    public void Pipe_counts_unsacked_octets_not_lost_plus_those_retransmitted()
    {
        // Segments 0-2 acknowledged, 3 and 6 lost, the others SACKed.
        var una = S(3);
        var sb = new SackScoreboard(counters: new TcpCounters());
        sb.Update(new[] { B(S(4), S(6)), B(S(7), Max) }, una, Max, Mss);
        Assert.True(sb.IsLost(S(3)));
        Assert.True(sb.IsLost(S(6)));
        Assert.Equal(0u, sb.Pipe(una, Max));           // both holes lost, nothing retransmitted
        sb.HighRxt = S(4);                             // segment 3 resent
        Assert.Equal(Mss, sb.Pipe(una, Max));
        sb.HighRxt = S(7);                             // and segment 6
        Assert.Equal(2 * Mss, sb.Pipe(una, Max));

        // Nothing lost: every unSACKed octet counts once, twice if retransmitted.
        var few = new SackScoreboard(counters: new TcpCounters());
        few.Update(new[] { B(S(8), Max) }, Una, Max, Mss);
        Assert.Equal(8 * Mss, few.Pipe(Una, Max));
        few.HighRxt = S(1);
        Assert.Equal(9 * Mss, few.Pipe(Una, Max));
    }

    [Fact]
    public void NextLost_returns_each_lost_hole_once_above_HighRxt_and_stops_at_sacked_data()
    {
        var una = S(3);
        var sb = new SackScoreboard(counters: new TcpCounters());
        sb.Update(new[] { B(S(4), S(6)), B(S(6) + 40, Max) }, una, Max, Mss); // segment 6's hole is 40 bytes
        sb.HighRxt = una;
        Assert.True(sb.NextLost(una, Max, Mss, out var seq, out var len));
        Assert.Equal((S(3), Mss), (seq, len));
        sb.HighRxt = seq + len;
        Assert.True(sb.NextLost(una, Max, Mss, out seq, out len));
        Assert.Equal((S(6), 40u), (seq, len));
        sb.HighRxt = seq + len;
        Assert.False(sb.NextLost(una, Max, Mss, out _, out _));
    }

    [Fact]
    public void The_rescue_retransmission_is_the_highest_unsacked_segment_once_per_recovery()
    {
        // Segment 9 (the tail) is unSACKed with nothing above it: never IsLost, only the rescue can resend it.
        var sb = Board(B(S(1), S(9)));
        var una = Una;
        sb.HighRxt = sb.RescueRxt = una;
        Assert.False(sb.NextRescue(una, Max, Mss, Max, out _, out _)); // SND.UNA has not passed RescueRxt
        sb.RescueRxt = una - 1;
        Assert.True(sb.NextRescue(una, Max, Mss, Max, out var seq, out var len));
        Assert.Equal((S(9), Mss), (seq, len));
        Assert.Equal(Max, sb.RescueRxt);
        Assert.False(sb.NextRescue(una, Max, Mss, Max, out _, out _));
    }

    [Fact]
    public void Advance_trims_acknowledged_ranges_and_detects_reneging()
    {
        var c = new TcpCounters();
        var sb = new SackScoreboard(counters: c);
        sb.Update(new[] { B(S(2), S(4)), B(S(6), S(8)) }, Una, Max, Mss);
        Assert.True(sb.Advance(S(3)));                 // into the first range: clipped
        Assert.Equal(new[] { (S(3), S(4)), (S(6), S(8)) }, Ranges(sb));
        Assert.Equal(3 * Mss, sb.SackedBytes);
        Assert.True(sb.Advance(S(5)));
        Assert.Equal(new[] { (S(6), S(8)) }, Ranges(sb));
        // The cumulative ACK stops exactly where SACKed data begins: the receiver dropped it.
        Assert.False(sb.Advance(S(6)));
        Assert.Equal(0, sb.Count);
        Assert.Equal(1, c.SackReneging);
    }

    [Fact]
    public void SkipSacked_jumps_over_sacked_ranges_and_reports_the_next_one()
    {
        var sb = Board(B(S(2), S(4)), B(S(6), S(8)));
        Assert.Equal(S(0), sb.SkipSacked(S(0), Max, out var limit));
        Assert.Equal(S(2), limit);
        Assert.Equal(S(4), sb.SkipSacked(S(2) + 5, Max, out limit));
        Assert.Equal(S(6), limit);
        Assert.Equal(S(8), sb.SkipSacked(S(7), Max, out limit));
        Assert.Equal(Max, limit);
    }

    [Fact]
    public void Per_ack_operations_allocate_nothing()
    {
        var sb = new SackScoreboard(counters: new TcpCounters());
        var blocks = new[] { B(S(4), S(6)), B(S(7), S(9)), B(Una - 100, Una), B(S(9), S(10)) };
        void Round()
        {
            sb.Update(blocks, Una, Max, Mss);
            sb.NextLost(Una, Max, Mss, out _, out _);
            sb.NextRescue(Una + 1, Max, Mss, Max, out _, out _);
            sb.Pipe(Una, Max);
            sb.SkipSacked(Una, Max, out _);
            sb.Advance(Una);
            sb.Clear();
        }
        Round();
        var before = GC.GetAllocatedBytesForCurrentThread();
        for (int i = 0; i < 10_000; i++) Round();
        Stack.Tests.Support.Allocations.AssertNonePerItem(GC.GetAllocatedBytesForCurrentThread() - before, 10_000, "rounds of per-ACK scoreboard work");
    }
}
