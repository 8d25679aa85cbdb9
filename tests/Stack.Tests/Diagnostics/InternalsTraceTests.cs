using System.Text.RegularExpressions;
using NetStack;
using NetStack.Diagnostics;
using Xunit.Abstractions;

namespace Stack.Tests.Diagnostics;

/// <summary>
/// The sender's internals sampled on the loop for a traced connection (TcpSocket.TraceInternals), and the
/// time-sequence graph's second panel drawn from them.
/// </summary>
public class InternalsTraceTests(ITestOutputHelper output)
{
    [Theory]
    [InlineData(11)]
    [InlineData(12)]
    public void Cwnd_drops_at_each_loss_event_the_counters_report(int seed)
    {
        var (sim, sender, client) = SequenceGraphTests.LossyTransfer(seed, trace: true);
        using var _ = sim;
        var samples = sim.Run(client.GetInternalsTraceAsync());
        var fastRetransmits = SequenceGraphTests.Counter(sim, sender, "FastRetransmits");
        var timeouts = SequenceGraphTests.Counter(sim, sender, "Timeouts");
        var events = samples.Select((s, i) => (s, i)).Where(p => p.s.IsLossEvent).ToList();
        output.WriteLine($"seed {seed}: {samples.Length} samples; counters: {fastRetransmits} fast retransmits, {timeouts} timeouts; trace: {events.Count} loss events");
        Assert.True(fastRetransmits + timeouts > 0, "3% loss should cause loss events");
        Assert.Equal(fastRetransmits, samples.Count(s => (s.Events & TcpSampleEvents.RecoveryStarted) != 0));
        Assert.Equal(timeouts, samples.Count(s => (s.Events & TcpSampleEvents.Timeout) != 0));
        for (int k = 1; k < samples.Length; k++) Assert.True(samples[k].Time >= samples[k - 1].Time, "samples are in time order");

        var mss = 1460u - 12; // timestamps on
        foreach (var (e, i) in events)
        {
            var before = samples[i - 1].Cwnd;
            if (before == 0) continue; // the SYN's timeout: no window yet
            // Down at once, or (with proportional rate reduction) by the time recovery ends.
            var end = i;
            while (end + 1 < samples.Length && (samples[end + 1].Events & TcpSampleEvents.InRecovery) != 0 && !samples[end + 1].IsLossEvent) end++;
            var lowest = samples.Skip(i).Take(end - i + 1).Min(s => s.Cwnd);
            Assert.True(lowest < before || (before <= mss && lowest <= mss),
                $"cwnd should drop at the loss event at {e.Time.TotalMilliseconds} ms ({e.Events}): {before} before, at least {lowest} after");
            Assert.True(e.SsthreshSet && e.Ssthresh < before || before <= 2 * mss, $"ssthresh should fall below the cwnd before the event at {e.Time.TotalMilliseconds} ms");
        }
        Assert.Contains(samples, s => s.Srtt > TimeSpan.Zero);
        Assert.All(samples, s => Assert.True(s.Rto >= TimeSpan.FromMilliseconds(200), "the RTO is at least Tcp.MinRto"));
    }

    [Fact]
    public void The_graph_of_a_traced_sender_has_the_second_panel_with_one_mark_per_loss_event()
    {
        var (sim, sender, client) = SequenceGraphTests.LossyTransfer(11, trace: true);
        using var _ = sim;
        var samples = sim.Run(client.GetInternalsTraceAsync());
        var graph = SequenceGraphBuilder.Build(sim.Run(sender.GetPacketTraceAsync()).Decode())!.WithInternals(samples);
        var svg = SequenceGraphSvg.Render(graph);
        Assert.Contains("Sender internals of 192.0.2.1:", svg);
        foreach (var label in new[] { "window (bytes)", "time (ms)", "cwnd", "ssthresh", "bytes in flight", "SRTT (ms)", "RTO (ms)", "fast recovery", "timeout" })
            Assert.Contains($">{label}</text>", svg);
        var marks = Regex.Count(svg, "<g class=\"(recovery|timeout)\"><title>");
        Assert.Equal(samples.Count(s => s.IsLossEvent), marks);
        Assert.Equal(1, Regex.Count(svg, "<polyline class=\"cwnd\""));
        Assert.Equal("960", Regex.Match(svg, "height=\"(\\d+)\"").Groups[1].Value);
        File.WriteAllText("/tmp/graph-panel.svg", svg);
    }

    [Fact]
    public void Nothing_is_recorded_and_no_panel_drawn_when_tracing_is_off()
    {
        var (sim, sender, client) = SequenceGraphTests.LossyTransfer(11, bytes: 50_000);
        using var _ = sim;
        Assert.Null(client.Tcb.Recorder);
        Assert.False(client.TraceInternals);
        Assert.Empty(sim.Run(client.GetInternalsTraceAsync()));
        var graph = SequenceGraphBuilder.Build(sim.Run(sender.GetPacketTraceAsync()).Decode())!;
        var svg = SequenceGraphSvg.Render(graph);
        Assert.DoesNotContain("Sender internals", svg);
        Assert.Equal("600", Regex.Match(svg, "height=\"(\\d+)\"").Groups[1].Value);
    }

    [Fact]
    public void The_ring_is_bounded_and_a_sample_allocates_nothing()
    {
        var (sim, _, client) = SequenceGraphTests.LossyTransfer(12, bytes: 50_000);
        using var __ = sim;
        var recorder = new TcpInternalsRecorder(capacity: 64);
        var c = client.Tcb;
        c.Recorder = recorder; // the loop is idle: the test thread runs it
        var start = c.Snd.Cwnd;
        recorder.Sample(c, sim.Now); // warm up, twice: the second compares with the first (that comparison's first use
        recorder.Sample(c, sim.Now); // allocated 88-176 B in the timed loop when this test ran alone) and is kept (its events differ)
        // Three rounds of 1,000 changed and 1,000 unchanged samples, the least counted: a cost per sample shows in every
        // round, a one-time growth of the runtime's (4,400 B once in a fresh-clone run) in one.
        var least = long.MaxValue;
        for (int round = 0; round < 3; round++)
        {
            var before = GC.GetAllocatedBytesForCurrentThread();
            for (int i = 1; i <= 1000; i++)
            {
                var at = round * 1000 + i;
                c.Snd.Cwnd = start + (uint)at;
                recorder.Sample(c, sim.Now + TimeSpan.FromMilliseconds(at));
                recorder.Sample(c, sim.Now + TimeSpan.FromMilliseconds(at)); // unchanged: not kept
            }
            least = Math.Min(least, GC.GetAllocatedBytesForCurrentThread() - before);
        }
        c.Snd.Cwnd = start;
        Assert.Equal(0, least);
        Assert.Equal(3002, recorder.Total);
        var held = recorder.Snapshot();
        Assert.Equal(64, held.Length);
        Assert.Equal(start + 3000, held[^1].Cwnd);
        Assert.Equal(start + 2937, held[0].Cwnd);
    }

    [Fact]
    public void A_traced_listener_traces_the_connections_it_accepts()
    {
        using var sim = new Simulation(3);
        var a = sim.AddStack("192.0.2.1/24");
        var b = sim.AddStack("192.0.2.2/24");
        var listener = b.Listen(5000);
        listener.TraceInternals = true;
        var accept = listener.AcceptAsync();
        var client = a.CreateTcpSocket();
        sim.Run(client.ConnectAsync(b.Config.Address, 5000));
        var server = sim.Run(accept);
        sim.Run(server.SendAsync(new byte[20_000]));
        sim.Advance(TimeSpan.FromSeconds(1));
        Assert.True(server.TraceInternals);
        var samples = sim.Run(server.GetInternalsTraceAsync());
        Assert.NotEmpty(samples);
        Assert.Contains(samples, s => s.Cwnd > 0 && s.BytesInFlight > 0);
        Assert.Empty(sim.Run(client.GetInternalsTraceAsync()));
    }

    [RendererFact("rsvg-convert")]
    public void The_panel_renders_and_is_not_blank()
    {
        var (sim, sender, client) = SequenceGraphTests.LossyTransfer(12, trace: true);
        using var _ = sim;
        var graph = SequenceGraphBuilder.Build(sim.Run(sender.GetPacketTraceAsync()).Decode())!.WithInternals(sim.Run(client.GetInternalsTraceAsync()));
        var dir = Directory.CreateTempSubdirectory("netstack-panel-").FullName;
        try
        {
            var path = Path.Combine(dir, "graph.svg");
            File.WriteAllText(path, SequenceGraphSvg.Render(graph));
            var (rgb, w, h) = Renderers.RenderSvg(path);
            // The panel's plot area only (below the graph, above the panel's legend): lines were drawn there.
            int ink = 0, blue = 0;
            for (int y = 650; y < 865 && y < h; y++)
                for (int x = 100; x < w - 80; x++)
                {
                    var i = (y * w + x) * 3;
                    if (rgb[i] < 200 || rgb[i + 1] < 200 || rgb[i + 2] < 200) ink++;
                    if (rgb[i + 2] > 150 && rgb[i] < 80 && rgb[i + 1] < 140) blue++;
                }
            output.WriteLine($"{w}x{h}: {ink} pixels drawn in the panel, {blue} blue (cwnd)");
            Assert.Equal((1000, 960), (w, h));
            Assert.True(ink > 3000, $"only {ink} pixels drawn in the panel: it is (nearly) blank");
            Assert.True(blue > 300, "the cwnd line should be drawn in blue");
        }
        finally { Directory.Delete(dir, recursive: true); }
    }
}
