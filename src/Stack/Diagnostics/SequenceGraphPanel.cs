using System.Globalization;

namespace NetStack.Diagnostics;

/// <summary>
/// The time-sequence graph's second panel, under it on the same time axis: the sender's congestion window, slow-start
/// threshold and bytes in flight (bytes, left axis) and its smoothed RTT and retransmission timeout (ms, right axis),
/// as step lines from the samples its connection's <see cref="TcpInternalsRecorder"/> took; loss events (fast recovery
/// begun, the retransmission timer expired) marked on the cwnd line. A legend names every line and mark.
/// </summary>
internal static class SequenceGraphPanel
{
    /// <summary>Added below the graph; the graph's right margin grows to <see cref="RightMargin"/> for the ms axis.</summary>
    public const double Height = 360, RightMargin = 80;
    private const double Gap = 48, PlotHeight = 220;

    public const string Style = """
.cwnd { stroke: #1565c0; stroke-width: 1.6; }
.ssthresh { stroke: #ef6c00; stroke-width: 1.4; stroke-dasharray: 6 3; }
.flight { stroke: #757575; stroke-width: 1.1; }
.srtt { stroke: #2e7d32; stroke-width: 1.4; }
.rto { stroke: #6a1b9a; stroke-width: 1.2; stroke-dasharray: 2 2; }
.recovery polygon { fill: #c62828; }
.timeout polygon { fill: #000000; }
""";

    public static void Draw(SvgWriter svg, SequenceGraph g, Func<double, double> x, double xMax, double xStep, double right)
    {
        const double left = SequenceGraphSvg.Left, width = SequenceGraphSvg.Width;
        var top = SequenceGraphSvg.Height + Gap;
        var bottom = top + PlotHeight;
        // Samples within the graph's time span; one before it (if any) gives the values in force at its start.
        var samples = new List<(double Ms, TcpInternalsSample S)>();
        foreach (var s in g.Internals)
        {
            var ms = SequenceGraphSvg.Ms(g, s.Time);
            if (ms < 0) { samples.Clear(); samples.Add((0, s)); continue; }
            if (ms > xMax) break;
            samples.Add((ms, s));
        }
        var bytesMax = Math.Max(1, samples.Select(p => (double)Math.Max(p.S.Cwnd, Math.Max(p.S.BytesInFlight, p.S.SsthreshSet ? p.S.Ssthresh : 0))).DefaultIfEmpty(1).Max());
        var msMax = Math.Max(1, samples.Select(p => Math.Max(p.S.Srtt.TotalMilliseconds, p.S.Rto.TotalMilliseconds)).DefaultIfEmpty(1).Max());
        var (bStep, bMax) = SequenceGraphSvg.Nice(bytesMax);
        var (mStep, mMax) = SequenceGraphSvg.Nice(msMax);
        double YB(double v) => bottom - v / bMax * PlotHeight;
        double YM(double v) => bottom - v / mMax * PlotHeight;

        svg.Text(left, top - 14, $"Sender internals of {g.Flow.Source}:{g.Flow.SourcePort} ({g.Internals.Count} samples, taken on the stack's loop)", "title");
        for (double v = 0; v <= xMax + xStep / 2; v += xStep)
        {
            svg.Line(x(v), top, x(v), bottom, "grid");
            svg.Text(x(v), bottom + 16, SequenceGraphSvg.Num(v), "tick", "middle");
        }
        for (double v = 0; v <= bMax + bStep / 2; v += bStep)
        {
            svg.Line(left, YB(v), width - right, YB(v), "grid");
            svg.Text(left - 6, YB(v) + 4, SequenceGraphSvg.Num(v), "tick", "end");
        }
        for (double v = 0; v <= mMax + mStep / 2; v += mStep)
            svg.Text(width - right + 6, YM(v) + 4, SequenceGraphSvg.Num(v), "tick");
        svg.Line(left, top, left, bottom, "axis").Line(width - right, top, width - right, bottom, "axis").Line(left, bottom, width - right, bottom, "axis");
        svg.Text((left + width - right) / 2, bottom + 34, "time since the connection's first frame (ms)", "label", "middle");
        var mid = SvgWriter.N((top + bottom) / 2);
        svg.Text(18, (top + bottom) / 2, "window (bytes)", "label", "middle", $"transform=\"rotate(-90 18 {mid})\"");
        var rx = SvgWriter.N(width - 14);
        svg.Text(width - 14, (top + bottom) / 2, "time (ms)", "label", "middle", $"transform=\"rotate(90 {rx} {mid})\"");

        svg.Polyline(Line(samples, x, p => YB(p.BytesInFlight)), "flight");
        foreach (var run in Runs(samples, p => p.SsthreshSet)) svg.Polyline(Line(run, x, p => YB(p.Ssthresh)), "ssthresh");
        svg.Polyline(Line(samples, x, p => YB(p.Cwnd)), "cwnd");
        foreach (var run in Runs(samples, p => p.Srtt > TimeSpan.Zero)) svg.Polyline(Line(run, x, p => YM(p.Srtt.TotalMilliseconds)), "srtt");
        svg.Polyline(Line(samples, x, p => YM(p.Rto.TotalMilliseconds)), "rto");
        foreach (var (ms, s) in samples.Where(p => p.S.IsLossEvent))
        {
            // One mark per kind of episode the sample saw: a timeout and a fast recovery in one sample are two marks.
            foreach (var timeout in new[] { true, false })
            {
                if ((s.Events & (timeout ? TcpSampleEvents.Timeout : TcpSampleEvents.RecoveryStarted)) == 0) continue;
                var tip = string.Create(CultureInfo.InvariantCulture, $"{(timeout ? "retransmission timeout" : "fast recovery")} at {ms:0.###} ms: cwnd {s.Cwnd}, ssthresh {(s.SsthreshSet ? s.Ssthresh.ToString(CultureInfo.InvariantCulture) : "-")}");
                svg.Raw($"<g class=\"{(timeout ? "timeout" : "recovery")}\"><title>{SvgWriter.Esc(tip)}</title>");
                Triangle(svg, x(ms), YB(s.Cwnd));
                svg.Raw("</g>\n");
            }
        }
        Legend(svg, left, bottom + 62);
    }

    /// <summary>A step line through the samples (each value holds until the next sample).</summary>
    private static IEnumerable<(double, double)> Line(IEnumerable<(double Ms, TcpInternalsSample S)> samples, Func<double, double> x, Func<TcpInternalsSample, double> y) =>
        SequenceGraphSvg.Steps(samples.Select(p => (x(p.Ms), y(p.S))));

    /// <summary>The runs of consecutive samples for which <paramref name="valid"/> holds (ssthresh once set, SRTT once measured).</summary>
    private static IEnumerable<List<(double Ms, TcpInternalsSample S)>> Runs(List<(double Ms, TcpInternalsSample S)> samples, Func<TcpInternalsSample, bool> valid)
    {
        var run = new List<(double, TcpInternalsSample)>();
        foreach (var p in samples)
        {
            if (valid(p.S)) { run.Add(p); continue; }
            if (run.Count > 0) { yield return run; run = new(); }
        }
        if (run.Count > 0) yield return run;
    }

    /// <summary>A downward triangle with its tip on the line: where cwnd was cut.</summary>
    private static void Triangle(SvgWriter svg, double x, double y) =>
        svg.Raw($"<polygon points=\"{SvgWriter.N(x - 4.5)},{SvgWriter.N(y - 9)} {SvgWriter.N(x + 4.5)},{SvgWriter.N(y - 9)} {SvgWriter.N(x)},{SvgWriter.N(y)}\"/>");

    private static void Legend(SvgWriter svg, double x, double y)
    {
        svg.Raw("<g class=\"legend\">\n");
        svg.Line(x, y, x + 26, y, "cwnd").Text(x + 32, y + 3, "cwnd");
        x += 80;
        svg.Line(x, y, x + 26, y, "ssthresh").Text(x + 32, y + 3, "ssthresh");
        x += 105;
        svg.Line(x, y, x + 26, y, "flight").Text(x + 32, y + 3, "bytes in flight");
        x += 150;
        svg.Line(x, y, x + 26, y, "srtt").Text(x + 32, y + 3, "SRTT (ms)");
        x += 110;
        svg.Line(x, y, x + 26, y, "rto").Text(x + 32, y + 3, "RTO (ms)");
        x += 105;
        svg.Raw("<g class=\"recovery\">"); Triangle(svg, x + 5, y + 4); svg.Raw("</g>");
        svg.Text(x + 14, y + 3, "fast recovery");
        x += 125;
        svg.Raw("<g class=\"timeout\">"); Triangle(svg, x + 5, y + 4); svg.Raw("</g>");
        svg.Text(x + 14, y + 3, "timeout");
        svg.Raw("</g>\n");
    }
}
