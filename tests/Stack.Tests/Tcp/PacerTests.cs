using NetStack.Tcp;

namespace Stack.Tests.Tcp;

/// <summary>The pacer's rule: a burst of about 1 ms of data (2 segments to 64 KiB), then a wait of its bytes' time at the rate.</summary>
public class PacerTests
{
    private const int Mss = 1448;

    [Fact]
    public void The_quantum_is_a_millisecond_of_data_within_two_segments_and_64_KiB()
    {
        Assert.Equal(2 * Mss, Pacer.Quantum(1e6, Mss));          // 1 MB/s: 1,000 bytes a millisecond, less than two segments
        Assert.Equal(10_000, Pacer.Quantum(10e6, Mss));         // 10 MB/s: 10,000 bytes
        Assert.Equal(65536, Pacer.Quantum(1e9, Mss));           // 1 GB/s: capped
    }

    [Fact]
    public void A_burst_goes_at_once_and_the_next_waits_for_its_bytes_time_at_the_rate()
    {
        const double Rate = 10e6; // a quantum of 10,000 bytes, 1 ms
        var p = new Pacer();
        var t = TimeSpan.FromSeconds(5);
        var sent = 0;
        while (p.MaySend(t, Rate, Mss)) { p.OnSent(Mss, Rate); sent += Mss; }
        Assert.InRange(sent, 10_000, 15_000 + Mss); // the first burst: one quantum, and at most half one lent
        Assert.False(p.MaySend(t + TimeSpan.FromMicroseconds(100), Rate, Mss)); // not before its time
        var next = p.NextDeparture;
        Assert.Equal(t.Ticks + (sent - 5_000) * 10_000_000.0 / Rate, next.Ticks, 1.0); // its bytes' time at 10 MB/s, less the half quantum lent
        // In steady state each burst is a quantum and leaves when the previous one's time is up.
        for (int i = 0; i < 5; i++)
        {
            t = p.NextDeparture;
            var start = t;
            var bytes = 0;
            while (p.MaySend(t, Rate, Mss)) { p.OnSent(Mss, Rate); bytes += Mss; }
            Assert.InRange(bytes, 10_000, 10_000 + Mss);
            Assert.Equal(bytes * 10_000_000.0 / Rate, (p.NextDeparture - start).Ticks, 1.0);
        }
    }

    [Fact]
    public void A_late_wake_up_lends_at_most_half_a_quantum()
    {
        const double Rate = 10e6;
        var p = new Pacer();
        var t = TimeSpan.FromSeconds(5);
        while (p.MaySend(t, Rate, Mss)) p.OnSent(Mss, Rate);
        t = p.NextDeparture + TimeSpan.FromMilliseconds(50); // the loop woke 50 ms late
        var bytes = 0;
        while (p.MaySend(t, Rate, Mss)) { p.OnSent(Mss, Rate); bytes += Mss; }
        Assert.InRange(bytes, 10_000, 15_000 + Mss); // a quantum and at most half one more, not 50 ms of data
    }
}
