using NetStack.Tcp;

namespace Stack.Tests.Tcp;

/// <summary>The RTT estimator alone (RFC 6298): the formulas of 2.2 and 2.3, the bounds, backoff (5.5) and Karn's rule.</summary>
public class RttEstimatorTests
{
    private static TimeSpan Ms(double ms) => TimeSpan.FromMilliseconds(ms);

    [Fact]
    public void Samples_follow_rfc_6298_and_the_rto_stays_within_its_bounds()
    {
        var rtt = new RttEstimator(Ms(1000), Ms(200), Ms(120_000));
        Assert.Equal(Ms(1000), rtt.Rto);                 // 2.1: before any sample
        Assert.False(rtt.HasSample);
        rtt.Sample(Ms(100));                             // 2.2: SRTT = R, RTTVAR = R/2, RTO = SRTT + 4 RTTVAR
        Assert.Equal(Ms(100), rtt.Srtt);
        Assert.Equal(Ms(50), rtt.RttVar);
        Assert.Equal(Ms(300), rtt.Rto);
        rtt.Sample(Ms(200));                             // 2.3: RTTVAR = 3/4 RTTVAR + 1/4 |SRTT - R|, SRTT = 7/8 SRTT + 1/8 R
        Assert.Equal(Ms(62.5), rtt.RttVar);
        Assert.Equal(Ms(112.5), rtt.Srtt);
        Assert.Equal(Ms(362.5), rtt.Rto);

        var fast = new RttEstimator(Ms(1000), Ms(200), Ms(120_000));
        fast.Sample(Ms(1));
        Assert.Equal(Ms(200), fast.Rto);                 // 2.4 with the configured floor
        fast.Sample(TimeSpan.FromSeconds(-1));           // a negative measurement is no measurement
        Assert.Equal(Ms(1), fast.Srtt);
    }

    [Fact]
    public void Backoff_doubles_the_timer_up_to_the_maximum()
    {
        var rtt = new RttEstimator(Ms(1000), Ms(200), Ms(120_000));
        rtt.Sample(Ms(100));
        rtt.Backoff = 2;
        Assert.Equal(Ms(1200), rtt.BackedOff);           // 5.5: 300 ms doubled twice
        Assert.Equal(Ms(300), rtt.Rto);
        rtt.Backoff = 20;
        Assert.Equal(Ms(120_000), rtt.BackedOff);
    }

    [Fact]
    public void One_segment_is_timed_at_a_time_and_a_retransmission_cancels_its_sample()
    {
        var rtt = new RttEstimator(Ms(1000), Ms(200), Ms(120_000));
        rtt.StartTiming(1000, Ms(0));
        rtt.StartTiming(2000, Ms(5));                    // already timing one: ignored
        rtt.OnAck(999, Ms(10));
        Assert.False(rtt.HasSample);
        rtt.OnAck(1000, Ms(50));
        Assert.Equal(Ms(50), rtt.Srtt);
        rtt.StartTiming(3000, Ms(60));
        rtt.StopTiming();                                // Karn: the timed segment was resent
        rtt.OnAck(3000, Ms(90));
        Assert.Equal(Ms(50), rtt.Srtt);
    }
}
