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
        var n = sim.Run(s.ReceiveAsync(buf));
        Assert.Equal("hello", System.Text.Encoding.ASCII.GetString(buf, 0, n));
        sim.Run(s.SendAsync(buf.AsMemory(0, n)));
        var m = sim.Run(c.ReceiveAsync(buf));
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
}
