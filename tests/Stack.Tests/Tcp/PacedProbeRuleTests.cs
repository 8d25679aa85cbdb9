using NetStack;
using NetStack.Tcp;
using static NetStack.Tcp.TcpFlags;

namespace Stack.Tests.Tcp;

/// <summary>
/// Under BBR every transmission is paced (as Linux paces through its pacer or fq): a tail loss probe (RFC 8985 7.3) and
/// the retransmission after a timeout wait for the pacer's next departure, and their bytes take their time at the
/// pacing rate. On a bare connection, on the test's clock: 1000-byte segments, a 10 ms round trip.
/// </summary>
public class PacedProbeRuleTests
{
    private const uint P = BareTcp.PeerIss + 1;
    private const int Mss = 1000;
    private static readonly TimeSpan Ms = TimeSpan.FromMilliseconds(1);

    /// <summary>A BBR sender that sent 5 segments and had the first 2 acknowledged after 10 ms: it paces from there; 3 are in flight.</summary>
    private static (BareTcp T, TcpConnection C, uint Us) Paced()
    {
        var t = new BareTcp(s => s with { Sack = true, Congestion = CongestionAlgorithm.Bbr });
        var (c, us) = t.Established(Mss, 10 * Ms, sack: true);
        Assert.Equal(5, t.Do(now => c.Send(new byte[5 * Mss], now)).Count);
        t.Advance(10 * Ms);
        Assert.Empty(t.Feed(BareTcp.From(c.Key.LocalPort, P, us + 2 * Mss, Ack)));
        Assert.True(c.Snd.Cc.PacingRate > 0, "BBR paces once it has a delivery rate");
        return (t, c, us);
    }

    [Fact]
    public void A_tail_loss_probe_waits_for_the_pacers_next_departure_and_takes_its_bytes_time()
    {
        var (t, c, us) = Paced();
        var rate = c.Snd.Cc.PacingRate;
        // The pacer still owes 40 ms (as at a rate below a segment per probe timeout): the probe, due 2·SRTT + 2 ms
        // after the ACK, waits for it instead of leaving at once.
        var owed = t.Now + 40 * Ms;
        c.Snd.Pacer.NextDeparture = owed;
        Assert.Empty(t.Advance(40 * Ms - TimeSpan.FromTicks(1)));
        var probe = Assert.Single(t.Advance(TimeSpan.FromTicks(1)));
        Assert.Equal(owed, t.Now);
        Assert.Equal(us + 4 * Mss, probe.Seq);                             // the last segment again
        Assert.Equal(1, t.Layer.Counters.TlpProbes);
        Assert.Equal(owed.Ticks + Mss * (double)TimeSpan.TicksPerSecond / rate, c.Snd.Pacer.NextDeparture.Ticks, 1.0); // its time at the rate
    }

    [Fact]
    public void Without_pacing_owed_the_probe_leaves_at_its_timeout()
    {
        var (t, c, us) = Paced();
        var probe = Assert.Single(t.Advance(40 * Ms));
        Assert.Equal(us + 4 * Mss, probe.Seq);
        Assert.True(c.Snd.Pacer.NextDeparture < t.Now - 10 * Ms, "the probe left well before 40 ms: at 2·SRTT + 2 ms");
    }

    [Fact]
    public void The_retransmission_after_a_timeout_waits_for_the_pacer_too()
    {
        var (t, c, us) = Paced();
        // No ACK comes: two probes (each restarts the RTO), then the RTO. The pacer owes time beyond the RTO when it fires.
        for (int i = 0; i < 1000 && t.Layer.Counters.TlpProbes < RackRecovery.MaxProbesInRow; i++) t.Advance(Ms);
        Assert.Equal(RackRecovery.MaxProbesInRow, t.Layer.Counters.TlpProbes);
        var rtoAt = c.RtoAt;
        var owed = rtoAt + 30 * Ms;
        c.Snd.Pacer.NextDeparture = owed;
        Assert.Empty(t.Advance(owed - Ms - t.Now));
        Assert.Equal(1, t.Layer.Counters.Timeouts);                        // it fired, and its retransmission waits
        var resent = Assert.Single(t.Advance(Ms));
        Assert.Equal(us + 2 * Mss, resent.Seq);                            // SND.UNA's segment, at the pacer's time
    }
}
