using NetStack;

namespace Stack.Tests.Core;

/// <summary>The predictive poll's rule: a window around the next frame only when the recent gaps agree; back-off after a miss or a preempted spin.</summary>
public class ArrivalPredictorTests
{
    /// <summary>Frames at <paramref name="first"/>, then one every gap of <paramref name="gaps"/>; returns the last arrival.</summary>
    private static long Feed(ArrivalPredictor p, long first, params long[] gaps)
    {
        var at = first;
        p.OnFrames(at);
        foreach (var g in gaps)
        {
            at += g;
            p.OnFrames(at);
        }
        return at;
    }

    private static long[] Repeat(long gap, int n) => Enumerable.Repeat(gap, n).ToArray();

    [Fact]
    public void Steady_gaps_predict_a_window_around_the_next_frame_no_wider_than_the_budget()
    {
        var p = new ArrivalPredictor(200);
        var last = Feed(p, 1_000_000, Repeat(2000, ArrivalPredictor.History));
        Assert.True(p.TryPredict(last + 10, out var from, out var until));
        Assert.True(from < last + 2000 && last + 2000 < until, $"window {from - last}..{until - last} after the last frame");
        Assert.True(until - from <= 200);
        // Jitter widens it (to the agreeing gaps' spread plus a margin), the budget caps it.
        var q = new ArrivalPredictor(200);
        last = Feed(q, 0, 2000, 2030, 1970, 2000, 2010, 1990, 2000, 2020);
        Assert.True(q.TryPredict(last, out from, out until));
        Assert.Equal(last + 2000 - 50, from);
        Assert.Equal(last + 2000 + 50, until);
        var narrow = new ArrivalPredictor(60);
        last = Feed(narrow, 0, 2000, 2030, 1970, 2000, 2010, 1990, 2000, 2020);
        Assert.True(narrow.TryPredict(last, out from, out until));
        Assert.Equal(60, until - from);
    }

    [Fact]
    public void Too_few_or_disagreeing_gaps_predict_nothing()
    {
        var p = new ArrivalPredictor(200);
        var last = Feed(p, 0, Repeat(2000, ArrivalPredictor.History - 1));
        Assert.False(p.TryPredict(last, out _, out _)); // one gap short
        var q = new ArrivalPredictor(200);
        last = Feed(q, 0, 2000, 5000, 900, 2000, 7000, 2000, 400, 3000);
        Assert.False(q.TryPredict(last, out _, out _)); // no steady pace
        // Two odd gaps among eight (a late ACK, a retransmission) still leave a pace.
        var r = new ArrivalPredictor(200);
        last = Feed(r, 0, 2000, 2000, 40_000, 2000, 2000, 700, 2000, 2000);
        Assert.True(r.TryPredict(last, out _, out _));
        // Off: a budget of 0.
        var off = new ArrivalPredictor(0);
        last = Feed(off, 0, Repeat(2000, ArrivalPredictor.History));
        Assert.False(off.TryPredict(last, out _, out _));
    }

    [Fact]
    public void Frames_close_together_are_one_burst_and_a_long_pause_starts_over()
    {
        var p = new ArrivalPredictor(200);
        var at = 0L;
        p.OnFrames(at);
        for (var i = 0; i < ArrivalPredictor.History; i++)
        {
            at += 2000;
            p.OnFrames(at);
            p.OnFrames(at + 30); // the ACK of the same exchange: not a gap of its own
        }
        Assert.True(p.TryPredict(at + 40, out var from, out var until));
        Assert.True(from < at + 2000 && at + 2000 < until);
        p.OnFrames(at + 5_000_000); // five seconds of silence: the old pace says nothing
        Assert.False(p.TryPredict(at + 5_000_001, out _, out _));
    }

    [Fact]
    public void A_window_is_only_offered_before_it_ends()
    {
        var p = new ArrivalPredictor(200);
        var last = Feed(p, 0, Repeat(2000, ArrivalPredictor.History));
        Assert.True(p.TryPredict(last + 1000, out _, out var until));
        Assert.False(p.TryPredict(until, out _, out _));
    }

    [Fact]
    public void A_miss_or_a_preempted_spin_backs_off_for_growing_numbers_of_gaps_and_a_hit_clears_it()
    {
        var p = new ArrivalPredictor(200);
        var t = Feed(p, 0, Repeat(2000, ArrivalPredictor.History));
        bool Next(long gap)
        {
            t += gap;
            p.OnFrames(t);
            return p.TryPredict(t, out _, out _);
        }
        Assert.True(p.TryPredict(t, out _, out var until));
        p.Miss(until); // the frame came late: no window for two gaps
        Assert.Equal(1, p.Misses);
        Assert.False(Next(2300));
        Assert.False(Next(2000));
        Assert.True(Next(2000));
        p.Interrupted(t + 100); // a second back-off in a row: four gaps
        Assert.Equal(1, p.Preempted);
        Assert.False(Next(2000));
        Assert.False(Next(2000));
        Assert.False(Next(2000));
        Assert.False(Next(2000));
        Assert.True(Next(2000));
        p.Hit(); // cleared: the next miss backs off two gaps again
        Assert.Equal(1, p.Hits);
        p.Miss(t + 100);
        Assert.False(Next(2000));
        Assert.False(Next(2000));
        Assert.True(Next(2000));
        // However many misses in a row, at most MaxBackoffGaps gaps.
        for (var i = 0; i < 20; i++) p.Miss(t + 100);
        for (var i = 0; i < ArrivalPredictor.MaxBackoffGaps - 1; i++) Assert.False(Next(2000));
        Assert.True(Next(2000) || Next(2000));
    }
}
