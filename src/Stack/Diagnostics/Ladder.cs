using System.Globalization;
using NetStack.Sockets;
using NetStack.Tcp;

namespace NetStack.Diagnostics;

/// <summary>A row of a ladder diagram: a segment between two hosts, or a host's TCP state changing.</summary>
public abstract record LadderRow(TimeSpan Time);

/// <summary>One frame as an arrow from one host's column to another's, with its label, marks and decoded fields.</summary>
public sealed record LadderArrow(TimeSpan Time, int From, int To, string Label, SegmentMarks Marks, FrameSummary Frame) : LadderRow(Time)
{
    /// <summary>Every decoded field, in display order (the HTML page shows them on hover).</summary>
    public IReadOnlyList<KeyValuePair<string, string>> Fields => LadderBuilder.FieldsOf(Frame, Marks);
}

/// <summary>A host's TCP state changing, written beside its column; Inferred when read from the segments rather than the stack.</summary>
public sealed record LadderStateNote(TimeSpan Time, int Host, string State, bool Inferred, string? Connection) : LadderRow(Time)
{
    /// <summary>The note as written: "ESTABLISHED", "~ESTABLISHED" when inferred, with ":port" when a host has several connections.</summary>
    public string Text => (Inferred ? "~" : "") + State + (Connection is null ? "" : " " + Connection);
}

/// <summary>
/// A ladder (sequence) diagram: one column per host, time down the page, one arrow per frame, each side's TCP
/// state beside its column where it changes. Built by <see cref="LadderBuilder"/>, drawn by <see cref="LadderText"/>,
/// <see cref="LadderSvg"/> and <see cref="LadderHtml"/>.
/// </summary>
public sealed class Ladder
{
    public Ladder(string title, IReadOnlyList<string> hosts, IReadOnlyList<LadderRow> rows, TimeSpan origin)
    {
        Title = title;
        Hosts = hosts;
        Rows = rows;
        Origin = origin;
    }

    public string Title { get; }
    /// <summary>Column labels (IPv4 addresses), in order of first appearance.</summary>
    public IReadOnlyList<string> Hosts { get; }
    public IReadOnlyList<LadderRow> Rows { get; }
    /// <summary>The time of the first frame: row times are shown relative to it.</summary>
    public TimeSpan Origin { get; }
    public IEnumerable<LadderArrow> Arrows => Rows.OfType<LadderArrow>();
    public IEnumerable<LadderStateNote> States => Rows.OfType<LadderStateNote>();

    /// <summary>Milliseconds since the first frame, as the time column shows it.</summary>
    public string RelativeMs(TimeSpan t) => (t - Origin).TotalMilliseconds.ToString("0.000", CultureInfo.InvariantCulture);

    /// <summary>RFC 9293 state names: SYN-SENT, ESTABLISHED, FIN-WAIT-1...</summary>
    public static string StateName(TcpState s) => s switch
    {
        TcpState.Closed => "CLOSED",
        TcpState.Listen => "LISTEN",
        TcpState.SynSent => "SYN-SENT",
        TcpState.SynReceived => "SYN-RECEIVED",
        TcpState.Established => "ESTABLISHED",
        TcpState.FinWait1 => "FIN-WAIT-1",
        TcpState.FinWait2 => "FIN-WAIT-2",
        TcpState.CloseWait => "CLOSE-WAIT",
        TcpState.Closing => "CLOSING",
        TcpState.LastAck => "LAST-ACK",
        TcpState.TimeWait => "TIME-WAIT",
        _ => s.ToString().ToUpperInvariant(),
    };
}

/// <summary>Builds a <see cref="Ladder"/> from decoded frames and, where the stack recorded them, its TCP state transitions.</summary>
public static class LadderBuilder
{
    /// <summary>
    /// One arrow per frame that has IPv4 addresses (in the order given), marks from <see cref="SegmentAnalyzer"/>, and
    /// state notes: for hosts that appear as the local address of a <paramref name="stateChanges"/> entry (our stacks)
    /// the transitions they recorded, placed at the segment that caused them; for other hosts, states inferred from
    /// the segments (marked Inferred).
    /// </summary>
    public static Ladder Build(IReadOnlyList<FrameSummary> frames, IEnumerable<TcpStateChange>? stateChanges = null, string? title = null)
    {
        var marks = SegmentAnalyzer.AnalyzeAll(frames);
        var hosts = new List<string>();
        int Column(Ipv4Address a)
        {
            var s = a.ToString();
            var i = hosts.IndexOf(s);
            if (i >= 0) return i;
            hosts.Add(s);
            return hosts.Count - 1;
        }
        var multi = MultiConnectionHosts(frames);
        var arrows = new List<LadderArrow>();
        for (int i = 0; i < frames.Count; i++)
        {
            var f = frames[i];
            if (f.SourceAddress is not { } s || f.DestinationAddress is not { } d) continue;
            arrows.Add(new LadderArrow(f.Time, Column(s), Column(d), LabelOf(f, marks[i], multi.Contains(s.ToString()) || multi.Contains(d.ToString())), marks[i], f));
        }
        var origin = arrows.Count > 0 ? arrows[0].Time : TimeSpan.Zero;
        var notes = LadderStates.Place(arrows, hosts, stateChanges?.ToList() ?? new List<TcpStateChange>(), multi);
        var rows = new List<LadderRow>(arrows.Count + notes.Count);
        var byTime = notes.Where(n => n.Anchor < 0).OrderBy(n => n.Note.Time).ToList();
        var next = 0;
        for (int i = 0; i < arrows.Count; i++)
        {
            while (next < byTime.Count && byTime[next].Note.Time < arrows[i].Time) rows.Add(byTime[next++].Note);
            rows.AddRange(notes.Where(n => n.Anchor == i && n.Before).Select(n => n.Note));
            rows.Add(arrows[i]);
            rows.AddRange(notes.Where(n => n.Anchor == i && !n.Before).Select(n => n.Note));
        }
        while (next < byTime.Count) rows.Add(byTime[next++].Note);
        return new Ladder(title ?? string.Join(" ⇄ ", hosts), hosts, rows, origin);
    }

    /// <summary>Hosts with more than one TCP connection in the frames: their notes and labels name the port.</summary>
    internal static HashSet<string> MultiConnectionHosts(IReadOnlyList<FrameSummary> frames)
    {
        var perHost = new Dictionary<string, HashSet<TcpFlowKey>>();
        foreach (var f in frames)
        {
            if (TcpFlowKey.Of(f) is not { } k) continue;
            var c = k.Canonical;
            foreach (var h in new[] { k.Source.ToString(), k.Destination.ToString() })
            {
                if (!perHost.TryGetValue(h, out var set)) perHost[h] = set = new HashSet<TcpFlowKey>();
                set.Add(c);
            }
        }
        return perHost.Where(p => p.Value.Count > 1).Select(p => p.Key).ToHashSet();
    }

    /// <summary>"SYN Seq=0 Len=0 Win=65535 MSS=1460 WS=128 SACK_PERM TS" and the marks; other protocols: their one-line info.</summary>
    public static string LabelOf(FrameSummary f, SegmentMarks marks, bool withPorts = false)
    {
        if (f.Tcp is not { } t) return $"{f.Protocol} {f.Info}";
        var sb = new System.Text.StringBuilder();
        if (withPorts) sb.Append(f.SourcePort).Append('→').Append(f.DestinationPort).Append(' ');
        sb.Append(FrameDecoder.FlagNames(t.Flags).Replace(", ", ",", StringComparison.Ordinal));
        sb.Append(" Seq=").Append(t.RelativeSeq);
        if (t.RelativeAck is { } a) sb.Append(" Ack=").Append(a);
        sb.Append(" Len=").Append(t.Length).Append(" Win=").Append(t.Window);
        if (t.Has(TcpFlags.Syn))
        {
            if (t.Mss is { } mss) sb.Append(" MSS=").Append(mss);
            if (t.WindowScale is { } ws) sb.Append(" WS=").Append(1 << ws);
            if (t.SackPermitted) sb.Append(" SACK_PERM");
            if (t.TsVal is not null) sb.Append(" TS");
        }
        foreach (var r in t.Sack) sb.Append(" SACK=").Append(r.Left).Append('-').Append(r.Right);
        if (marks != SegmentMarks.None) sb.Append(" [").Append(SegmentAnalyzer.Describe(marks)).Append(']');
        return sb.ToString();
    }

    /// <summary>The decoded fields of a frame, for the hover panel and Format-List.</summary>
    public static IReadOnlyList<KeyValuePair<string, string>> FieldsOf(FrameSummary f, SegmentMarks marks)
    {
        var list = new List<KeyValuePair<string, string>>();
        void Add(string k, object? v) { if (v is not null) list.Add(new(k, Convert.ToString(v, CultureInfo.InvariantCulture) ?? "")); }
        Add("Frame", f.Number);
        Add("Time (s)", f.Time.TotalSeconds.ToString("0.000000", CultureInfo.InvariantCulture));
        if (f.Direction != FrameDirection.Unknown) Add("Direction", f.Direction);
        Add("Protocol", f.Protocol);
        Add("Source", f.SourcePort != 0 ? $"{f.Source}:{f.SourcePort}" : f.Source);
        Add("Destination", f.DestinationPort != 0 ? $"{f.Destination}:{f.DestinationPort}" : f.Destination);
        Add("Frame length", f.Length);
        if (f.Tcp is { } t)
        {
            Add("Flags", FrameDecoder.FlagNames(t.Flags));
            Add("Seq", $"{t.RelativeSeq} (raw {t.Seq})");
            if (t.RelativeAck is { } a) Add("Ack", $"{a} (raw {t.Ack})");
            Add("Len", t.Length);
            Add("Window", t.WindowScaleKnown ? $"{t.Window} (field {t.WindowField})" : $"{t.WindowField} (scale unknown)");
            Add("MSS", t.Mss);
            if (t.WindowScale is { } ws) Add("Window scale", $"{ws} (×{1 << ws})");
            if (t.SackPermitted) Add("SACK permitted", "yes");
            if (t.TsVal is { } tv) Add("Timestamps", $"TSval={tv} TSecr={t.TsEcr}");
            if (t.Sack.Count > 0) Add("SACK", string.Join(" ", t.Sack.Select(r => $"{r.Left}-{r.Right}")));
        }
        if (marks != SegmentMarks.None) Add("Analysis", SegmentAnalyzer.Describe(marks));
        Add("Info", f.Info);
        return list;
    }
}
