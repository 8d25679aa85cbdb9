using NetStack;
using NetStack.Diagnostics;
using NetStack.Link;
using NetStack.Sockets;
using Stack.Tests.Tcp;
using Xunit.Abstractions;

namespace Stack.Tests.Diagnostics;

public class SequenceGraphTests(ITestOutputHelper output)
{
    /// <summary>
    /// A seeded lossy transfer on the virtual wire: 300 KB from 192.0.2.1 to 192.0.2.2 with 3% loss each way; with
    /// <paramref name="trace"/> the client socket (the sender) is traced from before its SYN.
    /// </summary>
    internal static (Simulation Sim, NetworkStack Sender, TcpSocket Client) LossyTransfer(int seed, int bytes = 300_000, bool trace = false)
    {
        var sim = new Simulation(seed, new WireFaults { LossRate = 0.03, Delay = TimeSpan.FromMilliseconds(5) });
        // CUBIC, pinned: the pictures and their tests show a window-based control's cwnd falling at each loss event.
        var a = sim.AddStack("192.0.2.1/24", c => c with { PacketLogCapacity = 20_000, Tcp = c.Tcp with { Congestion = CongestionAlgorithm.Cubic } });
        var b = sim.AddStack("192.0.2.2/24", c => c with { PacketLogCapacity = 20_000, Tcp = c.Tcp with { Congestion = CongestionAlgorithm.Cubic } });
        var listener = b.Listen(5000);
        var accept = listener.AcceptAsync();
        var client = a.CreateTcpSocket();
        if (trace) client.TraceInternals = true;
        sim.Run(client.ConnectAsync(b.Config.Address, 5000), TimeSpan.FromMinutes(5));
        var server = sim.Run(accept, TimeSpan.FromMinutes(5));
        var flow = new Flow(client, server, TcpSim.Data(bytes, seed));
        Assert.True(TcpSim.Drive(sim, flow.Pump, () => flow.Done, TimeSpan.FromMinutes(5)), "the transfer should finish");
        sim.Advance(TimeSpan.FromSeconds(1));
        return (sim, a, client);
    }

    internal static long Counter(Simulation sim, NetworkStack s, string name) =>
        sim.Run(s.GetStatisticsAsync()).Single(c => c.Layer == "Tcp" && c.Name == name).Value;

    [Theory]
    [InlineData(11)]
    [InlineData(12)]
    public void A_lossy_transfer_has_one_retransmission_marker_per_retransmission_the_counters_report(int seed)
    {
        var (sim, sender, _) = LossyTransfer(seed);
        using var _ = sim;
        var graph = SequenceGraphBuilder.Build(sim.Run(sender.GetPacketTraceAsync()).Decode())!;
        var counted = Counter(sim, sender, "SegmentsRetransmitted");
        output.WriteLine($"seed {seed}: {graph.Segments.Count} segments, {graph.Retransmissions} retransmission markers, counter {counted}");
        Assert.True(counted > 0, "3% loss should cause retransmissions");
        Assert.Equal(counted, graph.Retransmissions);
        Assert.Equal(new TcpFlowKey(sender.Config.Address, graph.Flow.SourcePort, graph.Flow.Destination, 5000), graph.Flow);
        var svg = SequenceGraphSvg.Render(graph);
        Assert.Equal(counted, System.Text.RegularExpressions.Regex.Count(svg, "<g class=\"retransmission\" data-index"));
        File.WriteAllText($"/tmp/graph{seed}.svg", svg);
        File.WriteAllText($"/tmp/graph{seed}.html", SequenceGraphSvg.RenderHtml(graph));
    }
}
