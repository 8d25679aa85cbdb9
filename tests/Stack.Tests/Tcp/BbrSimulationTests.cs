using NetStack;
using NetStack.Link;
using NetStack.Sockets;
using NetStack.Tcp;
using Xunit.Abstractions;

namespace Stack.Tests.Tcp;

/// <summary>BBR on the virtual wire, seeded: the estimate follows a bottleneck that changes, pacing shows in departure times, random loss.</summary>
public class BbrSimulationTests(ITestOutputHelper output)
{
    private static Func<TcpSettings, TcpSettings> Bbr => t => t with { Congestion = CongestionAlgorithm.Bbr, MaxRetries = 30 };

    /// <summary>Runs an endless one-way flow until <paramref name="until"/> of virtual time has passed.</summary>
    private static void RunFor(Simulation sim, Flow flow, TimeSpan until) =>
        TcpSim.Drive(sim, () => flow.Pump(), () => false, until);

    private static BbrCongestionControl BbrOf(TcpSocket s) => Assert.IsType<BbrCongestionControl>(s.Tcb.Snd.Cc);

    [Fact]
    public void The_bandwidth_estimate_follows_a_bottleneck_whose_rate_changes()
    {
        var faults = new WireFaults { Delay = TimeSpan.FromMilliseconds(10), RateBitsPerSecond = 40_000_000 };
        var (sim, a, b) = TcpSim.Pair(41, faults, Bbr);
        using var _ = sim;
        var (c, s) = TcpSim.Connect(sim, a, b);
        var flow = new Flow(c, s, TcpSim.Data(64 << 20, 41));
        // Goodput ceiling: 1448 data bytes per 1514-byte frame and 24 bytes of preamble and gap.
        static double Goodput(long bits) => bits / 8.0 * 1448 / (1514 + 24);
        var phases = new[] { 40_000_000L, 10_000_000L, 40_000_000L };
        for (int i = 0; i < phases.Length; i++)
        {
            sim.Wire.Faults = faults with { RateBitsPerSecond = phases[i] };
            RunFor(sim, flow, TimeSpan.FromSeconds(i == 0 ? 4 : 6));
            var bbr = BbrOf(c);
            var expected = Goodput(phases[i]);
            output.WriteLine($"{phases[i] / 1e6} Mbit/s: estimate {bbr.Bandwidth * 8 / 1e6:F2} Mbit/s (goodput ceiling {expected * 8 / 1e6:F2}), " +
                             $"state {bbr.State}, min RTT {bbr.MinRtt.TotalMilliseconds:F1} ms, pacing {bbr.PacingRate * 8 / 1e6:F2} Mbit/s, cwnd {c.Tcb.Snd.Cwnd}");
            Assert.InRange(bbr.Bandwidth, 0.85 * expected, 1.1 * expected);
            Assert.InRange(bbr.MinRtt, TimeSpan.FromMilliseconds(20), TimeSpan.FromMilliseconds(30));
            Assert.Equal(BbrState.ProbeBw, bbr.State);
        }
        Assert.True(flow.Received > 0);
    }

    /// <summary>Records the time and TCP payload length of every frame a stack sends.</summary>
    private sealed class DepartureLog(ILinkDevice inner) : ForwardingLink(inner)
    {
        public readonly List<(TimeSpan At, int Payload, double Rate)> Departures = new();
        public Func<double> Rate = () => 0;
        public override void Transmit(ReadOnlySpan<byte> frame, TimeSpan now)
        {
            // Ethernet 14 + IPv4 header (IHL) + TCP header (data offset): what is left is payload.
            if (frame.Length > 34 && frame[23] == 6)
            {
                var ihl = (frame[14] & 0xf) * 4;
                var total = frame[16] << 8 | frame[17];
                var tcp = 14 + ihl;
                var payload = total - ihl - (frame[tcp + 12] >> 4) * 4;
                if (payload > 0) Departures.Add((now, payload, Rate()));
            }
            base.Transmit(frame, now);
        }
    }

    [Fact]
    public void Departures_are_paced_at_the_pacing_rate_in_bursts_of_about_a_millisecond()
    {
        var faults = new WireFaults { Delay = TimeSpan.FromMilliseconds(10), RateBitsPerSecond = 20_000_000 };
        using var sim = new Simulation(42, faults);
        DepartureLog? log = null;
        var a = sim.AddStack("192.0.2.1/24", cfg => cfg with { Tcp = Bbr(cfg.Tcp) }, link: d => log = new DepartureLog(d));
        var b = sim.AddStack("192.0.2.2/24", cfg => cfg with { Tcp = Bbr(cfg.Tcp) });
        var (c, s) = TcpSim.Connect(sim, a, b);
        var flow = new Flow(c, s, TcpSim.Data(64 << 20, 42));
        RunFor(sim, flow, TimeSpan.FromSeconds(3)); // past startup
        var bbr = BbrOf(c);
        Assert.Equal(BbrState.ProbeBw, bbr.State);
        // Every departure from here with the pacing rate it left under.
        log!.Rate = () => bbr.PacingRate;
        log.Departures.Clear();
        RunFor(sim, flow, TimeSpan.FromSeconds(1));
        var mss = c.Tcb.SndMss;
        var gaps = new List<double>();
        var bursts = 0;
        var d = log.Departures;
        for (int i = 0; i < d.Count;)
        {
            // A burst is the departures of one instant; the gap after it is its bytes' time at the rate.
            int j = i, bytes = 0;
            while (j < d.Count && d[j].At == d[i].At) bytes += d[j++].Payload;
            var rate = d[i].Rate;
            Assert.True(bytes <= Pacer.Quantum(rate, mss) + mss, $"a burst of {bytes} bytes at {d[i].At}, quantum {Pacer.Quantum(rate, mss)}");
            if (j < d.Count && d[j].Rate == rate)
            {
                gaps.Add((d[j].At - d[i].At).TotalSeconds / (bytes / rate));
                bursts++;
            }
            i = j;
        }
        Assert.True(bursts > 100, $"only {bursts} bursts measured");
        gaps.Sort();
        var median = gaps[gaps.Count / 2];
        var tooSoon = gaps.Count(g => g < 0.95);
        output.WriteLine($"pacing {bbr.PacingRate * 8 / 1e6:F2} Mbit/s: {bursts} bursts, gap / (bytes / rate) median {median:F3}, {tooSoon} sooner than the rate allows");
        Assert.InRange(median, 0.97, 1.15); // the next burst leaves when the last one's bytes have had their time
        Assert.True(tooSoon <= gaps.Count / 50, $"{tooSoon} of {gaps.Count} bursts left sooner than the pacing rate allows");
    }

    /// <summary>16 MiB one way through a 100 Mbit/s bottleneck with 5 ms each way and random loss: both hashes match, BBR far faster than CUBIC.</summary>
    [Theory]
    [InlineData(0.01, 51)]
    [InlineData(0.05, 52)]
    public void Sixteen_mib_under_random_loss_bbr_is_far_faster_than_cubic(double loss, int seed)
    {
        var bbr = Transfer(loss, seed, CongestionAlgorithm.Bbr);
        var cubic = Transfer(loss, seed, CongestionAlgorithm.Cubic);
        output.WriteLine($"{loss:P0} loss: BBR {bbr.Time.TotalSeconds:F2} s virtual ({bbr.Totals}), CUBIC {cubic.Time.TotalSeconds:F2} s ({cubic.Totals})");
        Assert.True(bbr.Time * 2 < cubic.Time, $"BBR {bbr.Time}, CUBIC {cubic.Time}");
        Assert.True(bbr.PacingWaits > 0, "BBR paces");
        Assert.Equal(0, cubic.PacingWaits); // CUBIC takes the unpaced path
    }

    /// <summary>
    /// 16 MiB each way at once under BBR with the faults of the loss-recovery simulations (loss, 2% reordering by up to
    /// 5 ms, 1% duplication, 0.5% corruption), with SACK (RACK-TLP) and without (NewReno recovery): both hashes match.
    /// </summary>
    [Theory]
    [InlineData(0.01, 61, true)]
    [InlineData(0.05, 62, true)]
    [InlineData(0.20, 63, true)]
    [InlineData(0.05, 64, false)]
    public void Sixteen_mib_each_way_with_bbr_under_loss_reordering_and_corruption(double loss, int seed, bool sack)
    {
        var faults = new WireFaults { Delay = TimeSpan.FromMilliseconds(2), LossRate = loss, ReorderRate = 0.02, DuplicateRate = 0.01, CorruptRate = 0.005 };
        var (sim, a, b) = TcpSim.Pair(seed, faults, t => t with { Congestion = CongestionAlgorithm.Bbr, MaxRetries = 30, Sack = sack });
        using var _ = sim;
        var (c, s) = TcpSim.Connect(sim, a, b);
        var up = new Flow(c, s, TcpSim.Data(16 << 20, seed));
        var down = new Flow(s, c, TcpSim.Data(16 << 20, seed + 100));
        var start = sim.Now;
        Assert.True(TcpSim.Drive(sim, () => up.Pump() | down.Pump(), () => up.Done && down.Done, TimeSpan.FromHours(1)),
            $"transfer stalled: up {up.Received}, down {down.Received}\n{TcpSim.Dump(sim)}");
        Assert.Equal(up.ExpectedHash, up.ReceivedHash);
        Assert.Equal(down.ExpectedHash, down.ReceivedHash);
        output.WriteLine($"BBR, 16 MiB each way at {loss:P0} loss, SACK {sack}: {(sim.Now - start).TotalSeconds:F2} s virtual; {TcpSim.RetransmitSummary(sim)}; wire lost {sim.Wire.FramesLost}, corrupted {sim.Wire.FramesCorrupted}, overflowed {sim.Wire.FramesOverflowed}");
    }

    private (TimeSpan Time, string Totals, long PacingWaits) Transfer(double loss, int seed, CongestionAlgorithm cc)
    {
        var faults = new WireFaults { Delay = TimeSpan.FromMilliseconds(5), RateBitsPerSecond = 100_000_000, LossRate = loss };
        var (sim, a, b) = TcpSim.Pair(seed, faults, t => t with { Congestion = cc, MaxRetries = 30 });
        using var _ = sim;
        var (c, s) = TcpSim.Connect(sim, a, b);
        var flow = new Flow(c, s, TcpSim.Data(16 << 20, seed));
        var start = sim.Now;
        Assert.True(TcpSim.Drive(sim, () => flow.Pump(), () => flow.Done, TimeSpan.FromHours(1)), $"{cc} stalled at {flow.Received}\n{TcpSim.Dump(sim)}");
        Assert.Equal(flow.ExpectedHash, flow.ReceivedHash);
        var waits = sim.Run(a.GetStatisticsAsync()).Single(x => x.Layer == "Tcp" && x.Name == "PacingWaits").Value;
        return (sim.Now - start, TcpSim.RetransmitSummary(sim), waits);
    }
}
