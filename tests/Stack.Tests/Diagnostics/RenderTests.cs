using NetStack.Diagnostics;
using Xunit.Abstractions;

namespace Stack.Tests.Diagnostics;

/// <summary>The pictures checked by real renderers: rsvg-convert draws the SVG, headless Chromium runs the HTML page's script.</summary>
public class RenderTests(ITestOutputHelper output) : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("netstack-render-").FullName;

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    private static (int Ink, int Red) Count(byte[] rgb)
    {
        int ink = 0, red = 0;
        for (int i = 0; i < rgb.Length; i += 3)
        {
            if (rgb[i] < 200 || rgb[i + 1] < 200 || rgb[i + 2] < 200) ink++;
            if (rgb[i] > 150 && rgb[i + 1] < 90 && rgb[i + 2] < 90) red++;
        }
        return (ink, red);
    }

    [RendererFact("rsvg-convert")]
    public void The_ladder_svg_renders_and_is_not_blank()
    {
        using var s = new LadderScenario();
        var path = Path.Combine(_dir, "ladder.svg");
        File.WriteAllText(path, LadderSvg.Render(s.ClientLadder()));
        var (rgb, w, h) = Renderers.RenderSvg(path);
        var (ink, red) = Count(rgb);
        output.WriteLine($"{w}x{h}: {ink} pixels drawn, {red} red");
        Assert.True(w > 500 && h > 400, $"unexpected size {w}x{h}");
        Assert.True(ink > w * h / 100, $"only {ink} of {w * h} pixels drawn: the picture is (nearly) blank");
        Assert.True(red > 50, "the retransmission should be drawn in red");
    }

    [RendererFact("rsvg-convert")]
    public void The_time_sequence_graph_svg_renders_and_is_not_blank()
    {
        var (sim, sender, _) = SequenceGraphTests.LossyTransfer(11);
        using var _ = sim;
        var graph = SequenceGraphBuilder.Build(sim.Run(sender.GetPacketTraceAsync()).Decode())!;
        var path = Path.Combine(_dir, "graph.svg");
        File.WriteAllText(path, SequenceGraphSvg.Render(graph));
        var (rgb, w, h) = Renderers.RenderSvg(path);
        var (ink, red) = Count(rgb);
        output.WriteLine($"{w}x{h}: {ink} pixels drawn, {red} red");
        Assert.True(ink > w * h / 100, $"only {ink} of {w * h} pixels drawn: the picture is (nearly) blank");
        Assert.True(red > 20, "retransmissions should be drawn in red");
    }

    [RendererFact("chromium")]
    public void The_ladder_page_hover_script_runs_in_chromium()
    {
        using var s = new LadderScenario();
        var ladder = s.ClientLadder();
        var path = Path.Combine(_dir, "ladder.html");
        File.WriteAllText(path, LadderHtml.Render(ladder));
        Assert.Equal($"ok {ladder.Arrows.Count()}", Renderers.SelfTest(path));
    }

    [RendererFact("chromium")]
    public void The_graph_page_hover_script_runs_in_chromium()
    {
        var (sim, sender, _) = SequenceGraphTests.LossyTransfer(12, bytes: 60_000);
        using var _ = sim;
        var graph = SequenceGraphBuilder.Build(sim.Run(sender.GetPacketTraceAsync()).Decode())!;
        var path = Path.Combine(_dir, "graph.html");
        File.WriteAllText(path, SequenceGraphSvg.RenderHtml(graph));
        Assert.Equal($"ok {graph.Segments.Count + graph.Acks.Count}", Renderers.SelfTest(path));
    }

    [RendererFact("chromium")]
    public void A_broken_page_script_is_reported_not_passed()
    {
        using var s = new LadderScenario();
        var path = Path.Combine(_dir, "broken.html");
        File.WriteAllText(path, LadderHtml.Render(s.ClientLadder()).Replace("JSON.parse(", "JSON.parse('{' + ", StringComparison.Ordinal));
        Assert.StartsWith("error:", Renderers.SelfTest(path));
    }
}
