using System.Globalization;

namespace NetStack.Diagnostics;

/// <summary>
/// Draws a <see cref="SequenceGraph"/> as SVG in tcptrace's manner: each data segment an I-beam over the sequence
/// range it carried (retransmissions red with an R, probes teal diamonds), the receiver's cumulative ACK as a green
/// step line, the window's right edge as a yellow step line above it, SACK blocks as purple bars, a legend and axes
/// with units (time in ms, relative sequence number in bytes). Each segment and ACK carries its decoded fields.
/// </summary>
public static class SequenceGraphSvg
{
    internal const double Width = 1000, Height = 600, Left = 96, Top = 48, Bottom = 96;

    private const string Style = """
.axis { stroke: #333; stroke-width: 1; }
.grid { stroke: #e0e0e0; stroke-width: 1; }
.tick { fill: #444; font-size: 11px; }
.label { fill: #222; font-size: 12px; }
.title { font-weight: bold; font-size: 13px; }
.data line { stroke: #1f4e79; stroke-width: 1.4; }
.retransmission line { stroke: #c62828; stroke-width: 2; }
.retransmission text { fill: #c62828; font-size: 10px; font-weight: bold; }
.probe polygon { fill: #00838f; }
.ackline { stroke: #2e7d32; stroke-width: 1.4; }
.winline { stroke: #f9a825; stroke-width: 1.4; }
.sack line { stroke: #7b1fa2; stroke-width: 1.5; opacity: 0.6; }
.ack circle { fill: #2e7d32; }
.legend text { fill: #333; font-size: 11px; }
""";

    public static string Render(SequenceGraph g)
    {
        var panel = g.Internals.Count > 0;
        var right = panel ? SequenceGraphPanel.RightMargin : 24; // the panel's second axis needs room; both share x
        var svg = new SvgWriter(Width, Height + (panel ? SequenceGraphPanel.Height : 0), g.Title, Style + (panel ? SequenceGraphPanel.Style : ""));
        var t1 = Math.Max(1e-3, new[] { g.Segments.Select(s => Ms(g, s.Time)), g.Acks.Select(a => Ms(g, a.Time)) }.SelectMany(x => x).DefaultIfEmpty(1).Max());
        var s1 = Math.Max(1, new[] { g.Segments.Select(s => (double)s.End), g.Acks.Select(a => (double)a.WindowEdge) }.SelectMany(x => x).DefaultIfEmpty(1).Max());
        var (xStep, xMax) = Nice(t1);
        var (yStep, yMax) = Nice(s1);
        double X(double ms) => Left + ms / xMax * (Width - Left - right);
        double Y(double seq) => Height - Bottom - seq / yMax * (Height - Top - Bottom);

        svg.Text(Left, Top - 24, g.Title, "title");
        for (double v = 0; v <= xMax + xStep / 2; v += xStep)
        {
            svg.Line(X(v), Top, X(v), Y(0), "grid");
            svg.Text(X(v), Y(0) + 16, Num(v), "tick", "middle");
        }
        for (double v = 0; v <= yMax + yStep / 2; v += yStep)
        {
            svg.Line(Left, Y(v), Width - right, Y(v), "grid");
            svg.Text(Left - 6, Y(v) + 4, Num(v), "tick", "end");
        }
        svg.Line(Left, Top, Left, Y(0), "axis").Line(Left, Y(0), Width - right, Y(0), "axis");
        svg.Text((Left + Width - right) / 2, Y(0) + 34, "time since the connection's first frame (ms)", "label", "middle");
        svg.Text(18, (Top + Y(0)) / 2, "relative sequence number (bytes)", "label", "middle", $"transform=\"rotate(-90 18 {SvgWriter.N((Top + Y(0)) / 2)})\"");

        // The receiver's window edge and cumulative ACK as step lines, then SACK blocks, then the sender's segments on top.
        svg.Polyline(Steps(g.Acks.Select(a => (X(Ms(g, a.Time)), Y(a.WindowEdge)))), "winline");
        svg.Polyline(Steps(g.Acks.Select(a => (X(Ms(g, a.Time)), Y(a.Ack)))), "ackline");
        svg.Raw("<g class=\"sack\">\n");
        foreach (var s in g.Sacks) svg.Line(X(Ms(g, s.Time)), Y(s.Left), X(Ms(g, s.Time)), Y(s.Right));
        svg.Raw("</g>\n");
        var index = 0;
        foreach (var a in g.Acks)
        {
            svg.OpenItem("ack", index++, SvgWriter.Tooltip(LadderBuilder.FieldsOf(a.Frame, a.Marks)));
            svg.Raw($"<circle cx=\"{SvgWriter.N(X(Ms(g, a.Time)))}\" cy=\"{SvgWriter.N(Y(a.Ack))}\" r=\"1.6\"/>");
            svg.Close();
        }
        foreach (var s in g.Segments)
        {
            var x = X(Ms(g, s.Time));
            var tip = SvgWriter.Tooltip(LadderBuilder.FieldsOf(s.Frame, s.Marks));
            if (s.IsProbe)
            {
                var y = Y(s.Start);
                svg.OpenItem("probe", index++, tip).Raw($"<polygon points=\"{SvgWriter.N(x)},{SvgWriter.N(y - 5)} {SvgWriter.N(x + 4)},{SvgWriter.N(y)} {SvgWriter.N(x)},{SvgWriter.N(y + 5)} {SvgWriter.N(x - 4)},{SvgWriter.N(y)}\"/>").Close();
                continue;
            }
            var y0 = Y(s.Start);
            var y1 = Math.Min(Y(s.End), y0 - 1.5); // at least visible
            svg.OpenItem(s.IsRetransmission ? "retransmission" : "data", index++, tip);
            svg.Line(x, y0, x, y1).Line(x - 2.5, y0, x + 2.5, y0).Line(x - 2.5, y1, x + 2.5, y1);
            if (s.IsRetransmission) svg.Text(x + 3, y1 - 2, "R");
            svg.Close();
        }
        Legend(svg, Left, Height - 30);
        if (panel) SequenceGraphPanel.Draw(svg, g, X, xMax, xStep, right);
        return svg.ToString();
    }

    /// <summary>The graph as a self-contained HTML page with a hover panel.</summary>
    public static string RenderHtml(SequenceGraph g)
    {
        var fields = g.Acks.Select(a => LadderBuilder.FieldsOf(a.Frame, a.Marks))
            .Concat(g.Segments.Select(s => LadderBuilder.FieldsOf(s.Frame, s.Marks))).ToList();
        return HtmlPage.Wrap(g.Title, Render(g), fields,
            $"{g.Segments.Count} segments ({g.Retransmissions} retransmitted), {g.Acks.Count} ACKs, {g.Sacks.Count} SACK blocks. Hover a segment or an ACK dot for its fields.");
    }

    private static void Legend(SvgWriter svg, double x, double y)
    {
        svg.Raw("<g class=\"legend\">\n");
        svg.Raw("<g class=\"data\">").Line(x, y - 7, x, y + 5).Line(x - 2.5, y - 7, x + 2.5, y - 7).Line(x - 2.5, y + 5, x + 2.5, y + 5).Raw("</g>");
        svg.Text(x + 8, y + 3, "data segment");
        x += 110;
        svg.Raw("<g class=\"retransmission\">").Line(x, y - 7, x, y + 5).Line(x - 2.5, y - 7, x + 2.5, y - 7).Line(x - 2.5, y + 5, x + 2.5, y + 5).Text(x + 3, y - 8, "R").Raw("</g>");
        svg.Text(x + 12, y + 3, "retransmission");
        x += 130;
        svg.Raw($"<g class=\"probe\"><polygon points=\"{x},{y - 6} {x + 4},{y} {x},{y + 6} {x - 4},{y}\"/></g>");
        svg.Text(x + 8, y + 3, "window probe / keep-alive");
        x += 190;
        svg.Line(x, y, x + 26, y, "ackline").Text(x + 32, y + 3, "cumulative ACK");
        x += 140;
        svg.Line(x, y, x + 26, y, "winline").Text(x + 32, y + 3, "ACK + receive window");
        x += 170;
        svg.Raw("<g class=\"sack\">").Line(x, y - 6, x, y + 6).Raw("</g>").Text(x + 8, y + 3, "SACK block");
        svg.Raw("</g>\n");
    }

    internal static double Ms(SequenceGraph g, TimeSpan t) => (t - g.Origin).TotalMilliseconds;

    /// <summary>A step line: each value holds until the next one.</summary>
    internal static IEnumerable<(double X, double Y)> Steps(IEnumerable<(double X, double Y)> points)
    {
        (double X, double Y)? prev = null;
        foreach (var p in points)
        {
            if (prev is { } q) yield return (p.X, q.Y);
            yield return p;
            prev = p;
        }
    }

    /// <summary>A round tick step (1, 2 or 5 times a power of ten) for about six ticks, and the axis end it gives.</summary>
    internal static (double Step, double Max) Nice(double max)
    {
        var raw = max / 6;
        var pow = Math.Pow(10, Math.Floor(Math.Log10(raw)));
        var step = raw / pow < 1.5 ? pow : raw / pow < 3.5 ? 2 * pow : raw / pow < 7.5 ? 5 * pow : 10 * pow;
        return (step, Math.Ceiling(max / step) * step);
    }

    internal static string Num(double v) => v >= 1e6 && v % 1e6 == 0 ? (v / 1e6).ToString(CultureInfo.InvariantCulture) + "M"
        : v >= 1e4 && v % 1e3 == 0 ? (v / 1e3).ToString(CultureInfo.InvariantCulture) + "k"
        : Math.Round(v, 3).ToString(CultureInfo.InvariantCulture);
}
