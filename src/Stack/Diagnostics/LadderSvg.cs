namespace NetStack.Diagnostics;

/// <summary>
/// Draws a <see cref="Ladder"/> as SVG: host columns, a time axis in ms, one arrow per frame (colour and dash by its
/// marks: retransmission, duplicate ACK, reset, zero window, probe), state boxes beside the columns (inferred ones
/// dashed and in italics), a legend; each arrow's decoded fields as its tooltip. <see cref="LadderHtml"/> wraps it
/// in a page with a hover panel.
/// </summary>
public static class LadderSvg
{
    private const double Left = 96, Top = 64, Spacing = 440, ArrowRow = 36, StateRow = 22, Gutter = 130, Bottom = 96;

    internal const string Style = """
.host { font-weight: bold; font-size: 13px; }
.col { stroke: #555; stroke-width: 1.5; }
.time { fill: #666; font-size: 11px; }
.seg line { stroke: #1f4e79; stroke-width: 1.6; }
.seg text { fill: #1f4e79; }
.seg.retransmission line { stroke: #c62828; stroke-width: 2.2; stroke-dasharray: 7 3; }
.seg.retransmission text { fill: #c62828; }
.seg.dupack line { stroke: #ef6c00; stroke-dasharray: 2 3; }
.seg.dupack text { fill: #ef6c00; }
.seg.reset line { stroke: #6a1b9a; stroke-width: 2.6; }
.seg.reset text { fill: #6a1b9a; }
.seg.zerowindow line, .seg.probe line { stroke: #00838f; stroke-dasharray: 1 2; }
.seg.zerowindow text, .seg.probe text { fill: #00838f; }
.seg.other line { stroke: #777; }
.seg.other text { fill: #555; }
.state rect { fill: #e8f5e9; stroke: #2e7d32; }
.state text { fill: #1b5e20; font-size: 11px; }
.state.inferred rect { fill: #f5f5f5; stroke: #9e9e9e; stroke-dasharray: 3 2; }
.state.inferred text { fill: #616161; font-style: italic; }
.legend text { fill: #333; font-size: 11px; }
""";

    private static readonly (string Cls, string Colour, string Text)[] Kinds =
    {
        ("", "#1f4e79", "segment"), ("retransmission", "#c62828", "retransmission"), ("dupack", "#ef6c00", "duplicate ACK"),
        ("reset", "#6a1b9a", "reset (RST)"), ("zerowindow", "#00838f", "zero window / probe"), ("other", "#777777", "other protocol"),
    };

    public static string Render(Ladder ladder)
    {
        var n = Math.Max(1, ladder.Hosts.Count);
        var x = Enumerable.Range(0, n).Select(i => Left + Gutter + i * Spacing).ToArray();
        var height = Top + ladder.Rows.Sum(r => r is LadderArrow ? ArrowRow : StateRow) + Bottom;
        var width = Math.Max(x[^1] + Gutter + 40, 940);
        var svg = new SvgWriter(width, height, ladder.Title, Style);
        svg.Raw("<defs>\n");
        foreach (var k in Kinds) svg.ArrowMarker("head" + k.Cls, k.Colour);
        svg.Raw("</defs>\n");
        svg.Text(Left - 8, Top - 34, "time (ms)", "time", "end");
        for (int i = 0; i < n; i++)
        {
            svg.Text(x[i], Top - 34, ladder.Hosts[i], "host", "middle");
            svg.Line(x[i], Top - 22, x[i], height - Bottom + 8, "col");
        }
        var y = Top;
        var index = 0;
        foreach (var row in ladder.Rows)
        {
            if (row is LadderArrow a)
            {
                var cls = KindOf(a);
                var yLine = y + ArrowRow - 12;
                svg.OpenItem(("seg " + cls).Trim(), index++, SvgWriter.Tooltip(a.Fields));
                svg.Text(Left - 8, yLine + 4, ladder.RelativeMs(a.Time), "time", "end");
                svg.Rect(Math.Min(x[a.From], x[a.To]), y, Math.Abs(x[a.To] - x[a.From]), ArrowRow, null, "fill=\"transparent\"");
                if (a.From == a.To)
                {
                    // To itself (a gratuitous ARP): a short stub with the label beside it.
                    svg.Line(x[a.From], yLine, x[a.From] + 36, yLine, null, $"marker-end=\"url(#head{cls})\"");
                    svg.Text(x[a.From] + 42, yLine + 4, Shorten(a.Label, (int)(Spacing / 7.2)));
                }
                else
                {
                    var dir = x[a.To] >= x[a.From] ? 1 : -1;
                    svg.Line(x[a.From], yLine, x[a.To] - dir * 1.5, yLine, null, $"marker-end=\"url(#head{cls})\"");
                    svg.Text((x[a.From] + x[a.To]) / 2, yLine - 6, Shorten(a.Label, (int)(Math.Abs(x[a.To] - x[a.From]) / 7.2)), null, "middle");
                }
                svg.Close();
                y += ArrowRow;
            }
            else if (row is LadderStateNote s)
            {
                var text = s.Text;
                var w = text.Length * 6.8 + 10;
                var left = s.Host == 0 && n > 1 ? x[0] - 6 - w : x[s.Host] + 6;
                svg.Raw(s.Inferred ? "<g class=\"state inferred\">\n" : "<g class=\"state\">\n");
                svg.Raw($"<title>{SvgWriter.Esc(s.Inferred ? "inferred from the segments" : "recorded by the stack")}</title>\n");
                svg.Text(Left - 8, y + 15, ladder.RelativeMs(s.Time), "time", "end");
                svg.Rect(left, y + 3, w, StateRow - 6, null, "rx=\"4\"");
                svg.Text(left + 5, y + 15, text);
                svg.Close();
                y += StateRow;
            }
        }
        Legend(svg, Left, height - Bottom + 30);
        return svg.ToString();
    }

    internal static string KindOf(LadderArrow a) =>
        a.Frame.Tcp is null ? "other"
        : (a.Marks & SegmentMarks.Reset) != 0 ? "reset"
        : (a.Marks & SegmentMarks.Retransmission) != 0 ? "retransmission"
        : (a.Marks & SegmentMarks.DuplicateAck) != 0 ? "dupack"
        : (a.Marks & SegmentMarks.ZeroWindow) != 0 ? "zerowindow"
        : (a.Marks & (SegmentMarks.WindowProbe | SegmentMarks.KeepAlive)) != 0 ? "probe"
        : "";

    private static void Legend(SvgWriter svg, double left, double y)
    {
        svg.Raw("<g class=\"legend\">\n");
        var x = left;
        foreach (var k in Kinds)
        {
            svg.Raw($"<g class=\"seg {k.Cls}\">");
            svg.Line(x, y, x + 34, y, null, $"marker-end=\"url(#head{k.Cls})\"");
            svg.Raw("</g>");
            svg.Text(x + 40, y + 4, k.Text);
            x += 48 + k.Text.Length * 6.6;
        }
        y += 22;
        svg.Raw("<g class=\"state\">");
        svg.Rect(left, y - 11, 84, 16, null, "rx=\"4\"");
        svg.Text(left + 5, y + 1, "ESTABLISHED");
        svg.Raw("</g>");
        svg.Text(left + 92, y + 1, "state recorded by the stack");
        svg.Raw("<g class=\"state inferred\">");
        svg.Rect(left + 300, y - 11, 92, 16, null, "rx=\"4\"");
        svg.Text(left + 305, y + 1, "~ESTABLISHED");
        svg.Raw("</g>");
        svg.Text(left + 400, y + 1, "state inferred from the segments");
        svg.Raw("</g>\n");
    }

    private static string Shorten(string s, int max) => max < 4 || s.Length <= max ? s : s[..(max - 1)] + "…";
}

/// <summary>A ladder as one self-contained HTML page: the SVG and a panel with the decoded fields of the segment under the pointer.</summary>
public static class LadderHtml
{
    public static string Render(Ladder ladder) =>
        HtmlPage.Wrap(ladder.Title, LadderSvg.Render(ladder), ladder.Arrows.Select(a => a.Fields).ToList(),
            "Time in ms from the first frame. States in solid boxes were recorded by the stack; ~states in dashed boxes are inferred from the segments.");
}
