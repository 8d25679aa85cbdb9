using NetStack.Link;
using NetStack.Sockets;
using Xunit.Abstractions;

namespace Stack.Tests.Tcp;

/// <summary>
/// Buffer auto-tuning on a long fat pipe (issue 14): 100 Mbit/s with 50 ms each way (a bandwidth-delay product of
/// 1.25 MB, five times the default 256 KiB buffers) on the virtual wire, seeded, no buffer set by the user.
/// </summary>
public class BufferTuningSimulationTests(ITestOutputHelper output)
{
    private const long Rate = 100_000_000;

    [Fact]
    public void One_connection_fills_a_long_fat_pipe_without_the_user_setting_buffers()
    {
        var faults = new WireFaults { Delay = TimeSpan.FromMilliseconds(50), RateBitsPerSecond = Rate };
        var (sim, a, b) = TcpSim.Pair(31, faults);
        using var _ = sim;
        var (c, s) = TcpSim.Connect(sim, a, b);
        var initialReceive = s.ReceiveBufferSize; // the size it starts from; the connection's RcvBuf is its size now
        const int Size = 48 << 20;
        var flow = new Flow(c, s, TcpSim.Data(Size, 31));
        var start = sim.Now;
        TimeSpan? half = null;
        Assert.True(TcpSim.Drive(sim, () =>
        {
            if (half is null && flow.Received >= Size / 2) half = sim.Now;
            return flow.Pump();
        }, () => flow.Done, TimeSpan.FromMinutes(5)), $"transfer stalled at {flow.Received}\n{TcpSim.Dump(sim)}");
        Assert.Equal(flow.ExpectedHash, flow.ReceivedHash);
        var total = sim.Now - start;
        var secondHalf = (Size / 2) * 8 / (sim.Now - half!.Value).TotalSeconds;
        // The link carries 1448 data bytes per 1514-byte frame plus the wire's 24 bytes of preamble and gap.
        var ceiling = Rate * 1448.0 / (1514 + 24);
        output.WriteLine($"48 MiB at 100 Mbit/s, 100 ms RTT: {total.TotalSeconds:F2} s virtual, {Size * 8 / total.TotalSeconds / 1e6:F1} Mbit/s overall, " +
                         $"{secondHalf / 1e6:F1} Mbit/s over the second half (ceiling {ceiling / 1e6:F1}); receive buffer {initialReceive} -> {s.Tcb.RcvBuf.Limit}, " +
                         $"send buffer {c.SendBufferSize} -> {c.Tcb.SndBuf.Limit}");
        Assert.True(secondHalf >= 0.85 * ceiling, $"{secondHalf / 1e6:F1} Mbit/s over the second half, short of the link's {ceiling / 1e6:F1}");
        Assert.True(s.Tcb.RcvBuf.Limit > initialReceive);
        Assert.Equal(s.Tcb.RcvBuf.Limit, sim.Run(b.GetConnectionsAsync()).Single(r => r.Id == s.Id).Tcp!.RcvBuf); // as Get-StackConnection shows it
    }
}
