using System.Text;

namespace NetStack.Diagnostics;

/// <summary>
/// Draws a <see cref="Ladder"/> as text for a console, a transcript or a test's failure message: time (ms) down the
/// left, a column per host, each frame a label line and an arrow line, each state change on a line of its own
/// beside its host's column. Unicode box drawing, or plain ASCII. Fits the given width where the hosts allow.
/// </summary>
public static class LadderText
{
    private const int TimeWidth = 11;
    private const int GutterMax = 18;
    private const int MinSpacing = 16;

    private sealed record Glyphs(char Column, char Line, char Retransmit, char Reset, char DupAck, char Cross, char Right, char Left, char StartRight, char StartLeft, string Ellipsis);

    private static readonly Glyphs Unicode = new('│', '─', '═', '━', '┄', '┼', '▶', '◀', '├', '┤', "…");
    private static readonly Glyphs Ascii = new('|', '-', '=', '#', '.', '+', '>', '<', '+', '+', "~");

    /// <summary>The ladder's lines (no trailing spaces).</summary>
    public static IReadOnlyList<string> Render(Ladder ladder, int width = 100, bool ascii = false)
    {
        var g = ascii ? Ascii : Unicode;
        var n = Math.Max(1, ladder.Hosts.Count);
        var leftGutter = Math.Min(GutterMax, ladder.States.Where(s => s.Host == 0).Select(s => s.Text.Length + 1).DefaultIfEmpty(0).Max());
        var rightGutter = n > 1 ? Math.Min(GutterMax, ladder.States.Where(s => s.Host == n - 1).Select(s => s.Text.Length + 2).DefaultIfEmpty(0).Max()) : 0;
        var first = TimeWidth + 1 + leftGutter;
        var usable = Math.Max((n - 1) * MinSpacing, width - first - rightGutter - 1);
        var x = Enumerable.Range(0, n).Select(i => n == 1 ? first : first + i * usable / (n - 1)).ToArray();
        var lineWidth = x[^1] + 1 + rightGutter;

        var lines = new List<string>
        {
            ascii ? ladder.Title.Replace("⇄", "<->", StringComparison.Ordinal) : ladder.Title,
            Header(ladder, x, lineWidth, g),
            Blank(x, lineWidth, g, "ms".PadLeft(TimeWidth)),
        };
        foreach (var row in ladder.Rows)
        {
            var time = ladder.RelativeMs(row.Time).PadLeft(TimeWidth);
            if (row is LadderStateNote s)
            {
                var buf = Canvas(x, lineWidth, g);
                Put(buf, 0, time);
                var text = Fit(ascii ? s.Text.Replace('~', '?') : s.Text, s.Host == 0 ? leftGutter - 1 : s.Host == n - 1 ? rightGutter - 2 : Math.Max(4, x[Math.Min(n - 1, s.Host + 1)] - x[s.Host] - 3), g);
                if (s.Host == 0 && n > 1) Put(buf, x[0] - 1 - text.Length, text);
                else Put(buf, x[s.Host] + 2, text);
                lines.Add(Trim(buf));
            }
            else if (row is LadderArrow a)
            {
                var lo = Math.Min(x[a.From], x[a.To]);
                var hi = Math.Max(x[a.From], x[a.To]);
                var label = Canvas(x, lineWidth, g);
                var room = hi > lo ? hi - lo - 3 : (a.From + 1 < n ? x[a.From + 1] : lineWidth) - lo - 3; // to itself: up to the next column
                Put(label, lo + 2, Fit(ascii ? ToAscii(a.Label) : a.Label, Math.Max(1, room), g));
                lines.Add(Trim(label));
                var line = Canvas(x, lineWidth, g);
                Put(line, 0, time);
                DrawArrow(line, x[a.From], x[a.To], a.Marks, g);
                lines.Add(Trim(line));
            }
        }
        return lines;
    }

    /// <summary>The ladder as one string (lines joined with newlines): what a Pester failure message shows.</summary>
    public static string ToText(Ladder ladder, int width = 100, bool ascii = false) => string.Join("\n", Render(ladder, width, ascii));

    private static void DrawArrow(char[] buf, int from, int to, SegmentMarks marks, Glyphs g)
    {
        var fill = (marks & SegmentMarks.Reset) != 0 ? g.Reset
            : (marks & SegmentMarks.Retransmission) != 0 ? g.Retransmit
            : (marks & (SegmentMarks.DuplicateAck | SegmentMarks.WindowProbe | SegmentMarks.KeepAlive)) != 0 ? g.DupAck
            : g.Line;
        if (from == to) { buf[from] = g.Cross; return; }
        var right = to > from;
        var lo = Math.Min(from, to);
        var hi = Math.Max(from, to);
        for (int i = lo + 1; i < hi; i++) buf[i] = buf[i] == g.Column ? g.Cross : fill;
        buf[from] = right ? g.StartRight : g.StartLeft;
        if (right) buf[to - 1] = g.Right; else buf[to + 1] = g.Left;
    }

    private static string Header(Ladder ladder, int[] x, int width, Glyphs g)
    {
        var buf = new string(' ', Math.Max(width, x[^1] + 20)).ToCharArray();
        Put(buf, 0, "time".PadLeft(TimeWidth));
        for (int i = 0; i < ladder.Hosts.Count; i++)
        {
            var h = ladder.Hosts[i];
            var start = i == ladder.Hosts.Count - 1 && ladder.Hosts.Count > 1 ? x[i] - h.Length + 1 : i == 0 ? x[i] : x[i] - h.Length / 2;
            Put(buf, Math.Max(TimeWidth + 1, start), h);
        }
        return Trim(buf);
    }

    private static string Blank(int[] x, int width, Glyphs g, string time)
    {
        var buf = Canvas(x, width, g);
        Put(buf, 0, time);
        return Trim(buf);
    }

    private static char[] Canvas(int[] x, int width, Glyphs g)
    {
        var buf = new string(' ', width + 1).ToCharArray();
        foreach (var c in x) buf[c] = g.Column;
        return buf;
    }

    private static void Put(char[] buf, int at, string text)
    {
        for (int i = 0; i < text.Length; i++)
            if (at + i >= 0 && at + i < buf.Length) buf[at + i] = text[i];
    }

    private static string Fit(string s, int max, Glyphs g) =>
        max <= 0 ? "" : s.Length <= max ? s : s[..Math.Max(0, max - g.Ellipsis.Length)] + g.Ellipsis;

    private static string Trim(char[] buf) => new string(buf).TrimEnd();

    private static string ToAscii(string s)
    {
        var sb = new StringBuilder(s.Length);
        foreach (var c in s) sb.Append(c switch { '→' => '>', '×' => 'x', _ => c < 128 ? c : '?' });
        return sb.ToString();
    }
}
