using NetStack.Tcp;

namespace Stack.Tests.Tcp;

/// <summary>
/// BBR's model and state machine on virtual time (draft-ietf-ccwg-bbr 4, Linux's tcp_bbr): each step is one round
/// trip whose ACK delivers a round's worth of data over the RTT, so the delivery rate is exactly the path's.
/// </summary>
public class BbrModelTests
{
    private const uint Mss = 1448;
    private static readonly TimeSpan Rtt = TimeSpan.FromMilliseconds(20);

    /// <summary>A path driven one round trip per ACK.</summary>
    private sealed class Path(BbrCongestionControl bbr)
    {
        public TimeSpan Now = TimeSpan.FromSeconds(1);
        public long Delivered;
        public uint Cwnd = 10 * Mss;

        /// <summary>One round: <paramref name="bandwidth"/> bytes/s delivered over <paramref name="rtt"/> with <paramref name="inFlight"/> left in flight.</summary>
        public void Round(double bandwidth, TimeSpan? rtt = null, long? inFlight = null, bool appLimited = false, long lost = 0, LossPhase phase = LossPhase.Open)
        {
            var r = rtt ?? Rtt;
            Now += r;
            var bytes = (long)(bandwidth * r.TotalSeconds);
            var prior = Delivered;
            Delivered += bytes;
            var flight = inFlight ?? Cwnd;
            var rs = new RateSample
            {
                IsValid = true, Delivered = bytes, Interval = r, SendElapsed = r, AckElapsed = r, PriorDelivered = prior,
                IsAppLimited = appLimited, Rtt = r, NewlyDelivered = bytes, NewlyLost = lost, PriorInFlight = flight + bytes,
            };
            bbr.OnRateSample(in rs, Now);
            Cwnd = bbr.WindowAfterAck(Cwnd, flight, bytes, lost, phase, Mss, Now);
        }
    }

    [Fact]
    public void The_bandwidth_filter_keeps_the_maximum_of_the_last_ten_rounds_then_forgets_it()
    {
        var f = WindowedFilter.Max();
        f.Update(100, 0, BbrModel.BandwidthWindowRounds);
        for (long round = 1; round <= 10; round++)
        {
            f.Update(40 + round, round, BbrModel.BandwidthWindowRounds);
            Assert.Equal(100, f.Value); // the peak stands for the window
        }
        f.Update(30, 11, BbrModel.BandwidthWindowRounds);
        Assert.True(f.Value < 100, $"the peak of round 0 outlived its 10-round window: {f.Value}");
        Assert.True(f.Value >= 45, $"the best of the later rounds takes its place, not the current sample: {f.Value}");
        f.Update(500, 12, BbrModel.BandwidthWindowRounds);
        Assert.Equal(500, f.Value); // a new maximum at once
    }

    [Fact]
    public void Startup_ends_after_three_rounds_without_25_percent_growth_then_drain_then_probe_bw()
    {
        var bbr = new BbrCongestionControl();
        var path = new Path(bbr);
        Assert.Equal(BbrState.Startup, bbr.State);
        foreach (var bw in new[] { 1e6, 2e6, 4e6, 8e6 })
        {
            path.Round(bw);
            Assert.Equal(BbrState.Startup, bbr.State);
            Assert.Equal(BbrCongestionControl.HighGain * bw * 0.99, bbr.PacingRate, 1); // startup paces at 2/ln2 x the estimate
        }
        path.Round(8.5e6);
        path.Round(8.8e6);
        Assert.Equal(BbrState.Startup, bbr.State);
        path.Round(9e6, inFlight: 1 << 20); // the third round without 25% growth: the plateau; the queue is still there
        Assert.True(bbr.FullBandwidthReached);
        Assert.Equal(BbrState.Drain, bbr.State);
        Assert.Equal(9e6 * BbrCongestionControl.DrainGain * 0.99, bbr.PacingRate, 1); // drains below the estimate
        var bdp = 9e6 * Rtt.TotalSeconds;
        path.Round(9e6, inFlight: (long)bdp - 20_000 - (long)(9e6 * Rtt.TotalSeconds)); // the flight has come down to a BDP
        Assert.Equal(BbrState.ProbeBw, bbr.State);
        Assert.Equal(9e6, bbr.Bandwidth, 1);
        Assert.Equal(Rtt, bbr.MinRtt);
        Assert.Equal(BbrCongestionControl.GainCycle[bbr.CycleIndex] * 9e6 * 0.99, bbr.PacingRate, 1);
        Assert.NotEqual(1, bbr.CycleIndex); // never starts in the draining phase
    }

    [Fact]
    public void Probe_bw_cycles_its_gains_a_min_rtt_each_and_cwnd_is_twice_the_bdp()
    {
        var bbr = new BbrCongestionControl();
        var path = ToProbeBw(bbr, 10e6);
        var bdp = 10e6 * Rtt.TotalSeconds;
        var gains = new List<double>();
        for (int i = 0; i < 40 && gains.Count < 16; i++)
        {
            // Long enough rounds (a min RTT and more) and a flight that reaches the probing target, so each phase ends on time.
            path.Round(10e6, Rtt + TimeSpan.FromMilliseconds(1), inFlight: (long)(1.3 * bdp));
            if (gains.Count == 0 || bbr.PacingGain != gains[^1] || bbr.CycleIndex != (gains.Count % 8)) gains.Add(bbr.PacingGain);
        }
        var probe = gains.IndexOf(1.25);
        Assert.True(probe >= 0, $"no probing phase in {string.Join(", ", gains)}");
        Assert.Equal(0.75, gains[probe + 1]); // probing up is followed by draining what it queued
        Assert.Equal(1.0, gains[probe + 2]);
        Assert.Equal(10e6 * 0.75 * 0.99, 10e6 * gains[probe + 1] * 0.99, 1);
        // cwnd: 2 x BDP plus room for three bursts, plus the aggregation allowance (here each ACK delivers a round at once).
        path.Round(10e6, inFlight: (long)bdp);
        Assert.InRange(path.Cwnd, 2 * bdp, 3.1 * bdp + 8 * Mss);
    }

    [Fact]
    public void A_min_rtt_unrenewed_for_10_s_sends_the_flow_to_probe_rtt_for_200_ms_and_a_round()
    {
        var bbr = new BbrCongestionControl();
        var path = ToProbeBw(bbr, 10e6);
        var stamp = path.Now;
        // Queueing: every RTT sample is above the min, which was taken in the first round.
        while (bbr.State != BbrState.ProbeRtt && path.Now - stamp <= TimeSpan.FromSeconds(11))
        {
            Assert.Equal(BbrState.ProbeBw, bbr.State);
            path.Round(10e6, TimeSpan.FromMilliseconds(30), inFlight: 100_000);
        }
        Assert.Equal(BbrState.ProbeRtt, bbr.State);
        Assert.InRange(path.Now - TimeSpan.FromSeconds(1), BbrModel.MinRttWindow, BbrModel.MinRttWindow + TimeSpan.FromMilliseconds(40));
        Assert.True(path.Cwnd <= 4 * Mss, $"PROBE_RTT holds the flight to 4 segments, cwnd {path.Cwnd}");
        Assert.Equal(BbrCongestionControl.HighGain > 1 ? 1.0 : 0, bbr.PacingGain);
        // The flight drains to 4 segments; 200 ms and a round trip later the flow returns to PROBE_BW with a fresh min RTT.
        var entered = path.Now;
        path.Round(10e6, TimeSpan.FromMilliseconds(20), inFlight: 2 * Mss);
        while (bbr.State == BbrState.ProbeRtt && path.Now - entered < TimeSpan.FromSeconds(1))
            path.Round(1e6, TimeSpan.FromMilliseconds(20), inFlight: 2 * Mss);
        Assert.Equal(BbrState.ProbeBw, bbr.State);
        Assert.InRange(path.Now - entered, BbrCongestionControl.ProbeRttDuration, BbrCongestionControl.ProbeRttDuration + TimeSpan.FromMilliseconds(80));
        Assert.Equal(TimeSpan.FromMilliseconds(20), bbr.MinRtt);
        Assert.True(path.Cwnd > 4 * Mss, "the window from before PROBE_RTT is restored");
        Assert.Equal(10e6, bbr.Bandwidth, 1); // PROBE_RTT's slow rounds (more than the filter's 10) did not empty the bandwidth filter
    }

    [Fact]
    public void Random_loss_is_not_congestion_the_window_returns_after_the_episode()
    {
        var bbr = new BbrCongestionControl();
        var path = ToProbeBw(bbr, 10e6);
        path.Round(10e6, inFlight: 100_000);
        var before = path.Cwnd;
        bbr.OnLoss(path.Cwnd, 100_000, Mss, path.Now);
        // The first round of recovery: packet conservation, the flight is what was delivered.
        path.Round(10e6, inFlight: 50_000, lost: 3 * Mss, phase: LossPhase.Recovery);
        Assert.Equal(50_000 + (uint)(10e6 * Rtt.TotalSeconds), path.Cwnd);
        path.Round(10e6, inFlight: 50_000, phase: LossPhase.Recovery);
        path.Round(10e6, inFlight: 100_000, phase: LossPhase.Open);
        Assert.True(path.Cwnd >= before, $"cwnd {path.Cwnd} after the episode, {before} before");
        Assert.Equal(10e6, bbr.Bandwidth, 1); // the estimate is untouched by loss
    }

    [Fact]
    public void Application_limited_samples_do_not_lower_the_estimate()
    {
        var bbr = new BbrCongestionControl();
        var path = ToProbeBw(bbr, 10e6);
        for (int i = 0; i < 20; i++) path.Round(1e6, appLimited: true);
        Assert.Equal(10e6, bbr.Bandwidth, 1);
        for (int i = 0; i < 12; i++) path.Round(5e6);
        Assert.Equal(5e6, bbr.Bandwidth, 1); // the path's own samples do, once the old maximum leaves the window
    }

    private static Path ToProbeBw(BbrCongestionControl bbr, double bw)
    {
        var path = new Path(bbr);
        for (int i = 0; i < 12 && bbr.State != BbrState.ProbeBw; i++) path.Round(bw, inFlight: 0); // a flight of one BDP before each ACK
        Assert.Equal(BbrState.ProbeBw, bbr.State);
        return path;
    }
}
