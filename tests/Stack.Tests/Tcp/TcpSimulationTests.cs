using System.Diagnostics;
using NetStack;
using NetStack.Link;
using NetStack.Tcp;
using Xunit.Abstractions;

namespace Stack.Tests.Tcp;

/// <summary>Whole flows between two stacks on the virtual wire, in virtual time, replayable by seed.</summary>
public class TcpSimulationTests
{
    private readonly ITestOutputHelper _out;
    public TcpSimulationTests(ITestOutputHelper output) => _out = output;

    [Fact]
    public void Handshake_then_echo()
    {
        var (sim, a, b) = TcpSim.Pair(1, new WireFaults { Delay = TimeSpan.FromMilliseconds(1) });
        using var _ = sim;
        var (c, s) = TcpSim.Connect(sim, a, b);
        Assert.Equal(TcpState.Established, c.State);
        Assert.Equal(TcpState.Established, s.State);
        sim.Run(c.SendAsync("hello"u8.ToArray()));
        var buf = new byte[100];
        var n = sim.Run(s.ReceiveAsync(buf).AsTask());
        Assert.Equal("hello", System.Text.Encoding.ASCII.GetString(buf, 0, n));
        sim.Run(s.SendAsync(buf.AsMemory(0, n)));
        var m = sim.Run(c.ReceiveAsync(buf).AsTask());
        Assert.Equal("hello", System.Text.Encoding.ASCII.GetString(buf, 0, m));
    }

    [Theory]
    [InlineData(1)]
    [InlineData(2)]
    public void Bulk_one_mib_each_way_lossless(int seed)
    {
        var (sim, a, b) = TcpSim.Pair(seed, new WireFaults { Delay = TimeSpan.FromMilliseconds(1) });
        using var _ = sim;
        var (c, s) = TcpSim.Connect(sim, a, b);
        var up = new Flow(c, s, TcpSim.Data(1 << 20, seed));
        var down = new Flow(s, c, TcpSim.Data(1 << 20, seed + 100));
        Assert.True(TcpSim.Drive(sim, () => up.Pump() | down.Pump(), () => up.Done && down.Done, TimeSpan.FromMinutes(2)), $"transfer stalled: up {up.Received}, down {down.Received}");
        Assert.Equal(up.ExpectedHash, up.ReceivedHash);
        Assert.Equal(down.ExpectedHash, down.ReceivedHash);
    }

    public static TheoryData<double, int, int> LossCases()
    {
        var d = new TheoryData<double, int, int>();
        foreach (var loss in new[] { 0.0, 0.01, 0.05, 0.20 })
            foreach (var seed in new[] { 11, 12, 13 })
                d.Add(loss, seed, 1 << 20);
        return d;
    }

    [Theory]
    [MemberData(nameof(LossCases))]
    public void Bulk_each_way_under_loss_reordering_duplication_and_corruption(double loss, int seed, int size)
    {
        var faults = new WireFaults
        {
            Delay = TimeSpan.FromMilliseconds(5),
            LossRate = loss,
            ReorderRate = loss > 0 ? 0.05 : 0,
            ReorderDelay = TimeSpan.FromMilliseconds(3),
            DuplicateRate = loss > 0 ? 0.02 : 0,
            CorruptRate = loss > 0 ? 0.01 : 0,
        };
        var (sim, a, b) = TcpSim.Pair(seed, faults, t => t with { SynRetries = 10, MaxRetries = 30 });
        using var _ = sim;
        var wall = Stopwatch.StartNew();
        var (c, s) = TcpSim.Connect(sim, a, b);
        var up = new Flow(c, s, TcpSim.Data(size, seed));
        var down = new Flow(s, c, TcpSim.Data(size, seed + 100));
        var start = sim.Now;
        Assert.True(TcpSim.Drive(sim, () => up.Pump() | down.Pump(), () => up.Done && down.Done, TimeSpan.FromMinutes(30)),
            $"transfer stalled: up {up.Received}, down {down.Received}\n{TcpSim.Dump(sim)}");
        Assert.Equal(up.ExpectedHash, up.ReceivedHash);
        Assert.Equal(down.ExpectedHash, down.ReceivedHash);
        _out.WriteLine($"loss {loss:P0} seed {seed}: virtual {(sim.Now - start).TotalSeconds:F2} s, wall {wall.ElapsedMilliseconds} ms, " +
            $"{TcpSim.RetransmitSummary(sim)}, corrupted {sim.Wire.FramesCorrupted}");
    }

    public static TheoryData<double, int> SixteenMibCases()
    {
        var d = new TheoryData<double, int>();
        foreach (var loss in new[] { 0.0, 0.01, 0.05, 0.20 })
            foreach (var seed in new[] { 21, 22, 23 })
                d.Add(loss, seed);
        return d;
    }

    [Theory]
    [MemberData(nameof(SixteenMibCases))]
    public void Sixteen_mib_each_way_under_loss(double loss, int seed)
    {
        var (totals, virtualTime, wall) = SixteenMibEachWay(loss, seed, LossDetection.Rack);
        _out.WriteLine($"16 MiB each way at {loss:P0} loss: wall {wall.TotalMilliseconds:F0} ms, virtual {virtualTime.TotalSeconds:F1} s, " +
                       $"retransmitted {totals.Segments} segments / {totals.Bytes} bytes, timeouts {totals.Timeouts}, duplicates received {totals.Duplicates}");
    }

    /// <summary>
    /// RACK-TLP with PRR and undo against the duplicate-ACK SACK recovery it replaced, same seed and faults (2%
    /// reordering by up to 5 ms, 1% duplication, 0.5% corruption): fewer segments sent again and fewer timeouts, at 20%
    /// too since every ACK carries the SACK blocks while out-of-order data is held (SackAckRule; docs/tcp.md: seed 23
    /// at 20%, 39 timeouts against 228, where it was 360 against 209 while data segments carried none).
    /// </summary>
    [Theory]
    [InlineData(0.01, 21)]
    [InlineData(0.05, 22)]
    [InlineData(0.20, 23)]
    public void Sixteen_mib_each_way_rack_resends_less_and_times_out_less_than_dupack_recovery(double loss, int seed)
    {
        var (rack, rackTime, _) = SixteenMibEachWay(loss, seed, LossDetection.Rack);
        var (dupAck, dupAckTime, _) = SixteenMibEachWay(loss, seed, LossDetection.DupAck);
        _out.WriteLine($"{loss:P0}: rack {rack.Segments} segments resent, {rack.Timeouts} timeouts, {rackTime.TotalSeconds:F1} s virtual; " +
                       $"dupack {dupAck.Segments} resent, {dupAck.Timeouts} timeouts, {dupAckTime.TotalSeconds:F1} s");
        Assert.True(rack.Segments < dupAck.Segments, $"resent: rack {rack.Segments}, dupack {dupAck.Segments}");
        Assert.True(rack.Timeouts < dupAck.Timeouts, $"timeouts: rack {rack.Timeouts}, dupack {dupAck.Timeouts}");
    }

    /// <summary>
    /// At the out-of-order bound (docs/tcp.md, Buffers) the receiver drops a segment that needs a new range and gives
    /// up nothing it holds: no sender ever sees its SACKed data fall back to unacknowledged (reneging, RFC 2018 8,
    /// which stalled the duplicate-ACK recovery when tried), and the recovery repairs the dropped segments like lost
    /// ones. A bound of 4 ranges, 5% loss with the faults above, 4 MiB each way under the duplicate-ACK recovery (whose
    /// larger flights meet the bound: RACK's under CUBIC did not once here): the bound is met over a thousand times and
    /// both transfers complete, hashes equal, well within the limit.
    /// </summary>
    [Theory]
    [InlineData(LossDetection.DupAck, 41)]
    [InlineData(LossDetection.DupAck, 42)]
    public void At_the_out_of_order_bound_nothing_held_is_given_up_and_recovery_completes(LossDetection detection, int seed)
    {
        var faults = new WireFaults { Delay = TimeSpan.FromMilliseconds(2), LossRate = 0.05, ReorderRate = 0.02, DuplicateRate = 0.01, CorruptRate = 0.005 };
        var (sim, a, b) = TcpSim.Pair(seed, faults, t => t with { MaxRetries = 30, LossDetection = detection, Congestion = CongestionAlgorithm.Cubic, MaxOutOfOrderRanges = 4 });
        using var _ = sim;
        var (c, s) = TcpSim.Connect(sim, a, b);
        var up = new Flow(c, s, TcpSim.Data(4 << 20, seed));
        var down = new Flow(s, c, TcpSim.Data(4 << 20, seed + 100));
        var start = sim.Now;
        Assert.True(TcpSim.Drive(sim, () => up.Pump() | down.Pump(), () => up.Done && down.Done, TimeSpan.FromMinutes(10)),
            $"transfer stalled: up {up.Received}, down {down.Received}\n{TcpSim.Dump(sim)}");
        Assert.Equal(up.ExpectedHash, up.ReceivedHash);
        Assert.Equal(down.ExpectedHash, down.ReceivedHash);
        long dropped = 0, reneging = 0;
        foreach (var st in sim.Stacks)
            foreach (var counter in sim.Run(st.GetStatisticsAsync()))
            {
                if (counter.Layer != "Tcp") continue;
                if (counter.Name == "DroppedOutOfOrderFull") dropped += counter.Value;
                else if (counter.Name == "SackReneging") reneging += counter.Value;
            }
        var totals = TcpSim.RetransmitTotals(sim);
        _out.WriteLine($"{detection}: {dropped} segments dropped at the bound, virtual {(sim.Now - start).TotalSeconds:F1} s, " +
                       $"resent {totals.Segments}, timeouts {totals.Timeouts}");
        Assert.True(dropped > 0, "the bound was never met");
        Assert.Equal(0, reneging);
    }

    /// <summary>16 MiB each way at once with loss, reordering, duplication and corruption; both hashes must match.</summary>
    private static ((long Segments, long Bytes, long Timeouts, long Duplicates) Totals, TimeSpan Virtual, TimeSpan Wall) SixteenMibEachWay(double loss, int seed, LossDetection detection)
    {
        // Reordering, duplication and corruption ride along with every loss rate, lossless included.
        var faults = new WireFaults { Delay = TimeSpan.FromMilliseconds(2), LossRate = loss, ReorderRate = 0.02, DuplicateRate = 0.01, CorruptRate = 0.005 };
        // CUBIC, pinned: these are the loss-recovery figures of docs/tcp.md (PRR to CUBIC's ssthresh); BBR has its own
        // (Sixteen_mib_each_way_with_bbr_under_loss_reordering_and_corruption).
        var (sim, a, b) = TcpSim.Pair(seed, faults, t => t with { MaxRetries = 30, LossDetection = detection, Congestion = CongestionAlgorithm.Cubic });
        using var _ = sim;
        var wall = Stopwatch.StartNew();
        var (c, s) = TcpSim.Connect(sim, a, b);
        var up = new Flow(c, s, TcpSim.Data(16 << 20, seed));
        var down = new Flow(s, c, TcpSim.Data(16 << 20, seed + 100));
        Assert.True(TcpSim.Drive(sim, () => up.Pump() | down.Pump(), () => up.Done && down.Done, TimeSpan.FromHours(1)),
            $"transfer stalled: up {up.Received}, down {down.Received}");
        Assert.Equal(up.ExpectedHash, up.ReceivedHash);
        Assert.Equal(down.ExpectedHash, down.ReceivedHash);
        return (TcpSim.RetransmitTotals(sim), sim.Now, wall.Elapsed);
    }

    [Fact]
    public void Sixteen_mib_lossless_throughput()
    {
        var cubic = LosslessSend(CongestionAlgorithm.Cubic);
        var bbr = LosslessSend(CongestionAlgorithm.Bbr);
        // A pacing fault (a burst held too long, a rate below the estimate) would show as a longer virtual time under BBR.
        Assert.True(bbr.TotalSeconds <= 1.25 * cubic.TotalSeconds, $"BBR took {bbr.TotalSeconds:F3} s virtual, CUBIC {cubic.TotalSeconds:F3} s");
    }

    private TimeSpan LosslessSend(CongestionAlgorithm congestion)
    {
        var (sim, a, b) = TcpSim.Pair(5, new WireFaults { Delay = TimeSpan.FromMilliseconds(0.05), RateBitsPerSecond = 1_000_000_000 }, t => t with { Congestion = congestion });
        using var _ = sim;
        var (c, s) = TcpSim.Connect(sim, a, b);
        var data = TcpSim.Data(16 << 20, 3);
        var up = new Flow(c, s, data);
        var wall = Stopwatch.StartNew();
        var start = sim.Now;
        Assert.True(TcpSim.Drive(sim, up.Pump, () => up.Done, TimeSpan.FromHours(1)));
        wall.Stop();
        var time = sim.Now - start;
        Assert.Equal(up.ExpectedHash, up.ReceivedHash);
        _out.WriteLine($"16 MiB lossless, {congestion}, 1 Gbit/s wire: {time.TotalMilliseconds:F1} ms virtual = {16 * 8 * 1.048576 / time.TotalSeconds:F0} Mbit/s; " +
                       $"wall {wall.ElapsedMilliseconds} ms = {16 / wall.Elapsed.TotalSeconds:F0} MiB/s of wall time");
        return time;
    }

    [Theory]
    [InlineData("newreno", false, false, 0.05, 31)]
    [InlineData("newreno", true, true, 0.05, 32)]
    [InlineData("cubic", false, false, 0.05, 33)]
    [InlineData("newreno", false, false, 0.20, 34)]
    [InlineData("cubic", true, false, 0.20, 35)]
    public void Bulk_under_loss_without_sack_or_timestamps_and_with_newreno(string cc, bool sack, bool timestamps, double loss, int seed)
    {
        var faults = new WireFaults { Delay = TimeSpan.FromMilliseconds(5), LossRate = loss, ReorderRate = 0.03, DuplicateRate = 0.01, CorruptRate = 0.005 };
        var (sim, a, b) = TcpSim.Pair(seed, faults, t => t with { CongestionControl = cc, Sack = sack, Timestamps = timestamps, SynRetries = 10, MaxRetries = 30 });
        using var _ = sim;
        var (c, s) = TcpSim.Connect(sim, a, b);
        var up = new Flow(c, s, TcpSim.Data(1 << 20, seed));
        var down = new Flow(s, c, TcpSim.Data(1 << 20, seed + 1));
        Assert.True(TcpSim.Drive(sim, () => up.Pump() | down.Pump(), () => up.Done && down.Done, TimeSpan.FromMinutes(30)),
            $"transfer stalled: up {up.Received}, down {down.Received}\n{TcpSim.Dump(sim)}");
        Assert.Equal(up.ExpectedHash, up.ReceivedHash);
        Assert.Equal(down.ExpectedHash, down.ReceivedHash);
        var row = sim.Run(a.GetConnectionsAsync()).Single(r => r.Id == c.Id);
        Assert.Equal(cc, row.Tcp!.CongestionControl);
        Assert.Equal(sack, row.Tcp.SackPermitted);
        Assert.Equal(timestamps, row.Tcp.Timestamps);
    }
}
