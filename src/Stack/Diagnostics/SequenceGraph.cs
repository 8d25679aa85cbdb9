using NetStack.Sockets;
using NetStack.Tcp;

namespace NetStack.Diagnostics;

/// <summary>One segment of the sender in a time-sequence graph: the sequence range it carried (relative), and its marks.</summary>
public sealed record GraphSegment(TimeSpan Time, long Start, long End, SegmentMarks Marks, FrameSummary Frame)
{
    public bool IsRetransmission => (Marks & SegmentMarks.Retransmission) != 0;
    public bool IsProbe => (Marks & (SegmentMarks.WindowProbe | SegmentMarks.KeepAlive)) != 0;
}

/// <summary>What the receiver said at a moment: its cumulative ACK and the right edge of its window (ACK + window), both relative.</summary>
public sealed record GraphAck(TimeSpan Time, long Ack, long WindowEdge, SegmentMarks Marks, FrameSummary Frame);

/// <summary>A SACK block the receiver reported (RFC 2018), relative to the sender's ISN.</summary>
public sealed record GraphSack(TimeSpan Time, long Left, long Right);

/// <summary>
/// A time-sequence graph (tcptrace's): one direction of a TCP connection, sequence number against time — the sender's
/// segments, the receiver's cumulative ACK line, its window line above it, and its SACK blocks; retransmissions and
/// probes marked. Built by <see cref="SequenceGraphBuilder"/>, drawn by <see cref="SequenceGraphSvg"/>.
/// </summary>
public sealed class SequenceGraph
{
    public SequenceGraph(TcpFlowKey flow, TimeSpan origin, IReadOnlyList<GraphSegment> segments, IReadOnlyList<GraphAck> acks, IReadOnlyList<GraphSack> sacks)
    {
        Flow = flow;
        Origin = origin;
        Segments = segments;
        Acks = acks;
        Sacks = sacks;
    }

    /// <summary>The data direction: from the sender to the receiver.</summary>
    public TcpFlowKey Flow { get; }
    /// <summary>The time of the connection's first frame: the x axis starts there.</summary>
    public TimeSpan Origin { get; }
    public IReadOnlyList<GraphSegment> Segments { get; }
    public IReadOnlyList<GraphAck> Acks { get; }
    public IReadOnlyList<GraphSack> Sacks { get; }
    /// <summary>
    /// The sender's internals over time (cwnd, ssthresh, bytes in flight, SRTT, RTO) when its connection was traced:
    /// drawn as a second panel under the graph. Empty otherwise.
    /// </summary>
    public IReadOnlyList<TcpInternalsSample> Internals { get; init; } = Array.Empty<TcpInternalsSample>();
    public int Retransmissions => Segments.Count(s => s.IsRetransmission);

    /// <summary>The same graph with the sender's traced internals for the second panel (<see cref="TcpSocket.GetInternalsTraceAsync"/>).</summary>
    public SequenceGraph WithInternals(IReadOnlyList<TcpInternalsSample> samples) => new(Flow, Origin, Segments, Acks, Sacks) { Internals = samples };
    public string Title => $"Time-sequence graph {Flow}";
}

public static class SequenceGraphBuilder
{
    /// <summary>
    /// The graph of <paramref name="flow"/>'s data direction, or of the direction that sent the most data when it is
    /// null. Null when the frames hold no TCP data at all.
    /// </summary>
    public static SequenceGraph? Build(IReadOnlyList<FrameSummary> frames, TcpFlowKey? flow = null)
    {
        var marks = SegmentAnalyzer.AnalyzeAll(frames);
        var key = flow ?? BusiestFlow(frames);
        if (key is not { } k) return null;
        var segments = new List<GraphSegment>();
        var acks = new List<GraphAck>();
        var sacks = new List<GraphSack>();
        TimeSpan? origin = null;
        long wraps = 0; uint last = 0; var started = false; // relative numbers may pass 2^32 on long transfers
        long Unwrap(uint rel)
        {
            if (!started) { started = true; last = rel; return rel; }
            if (rel < last && last - rel > 0x8000_0000u) wraps++;
            else if (rel > last && rel - last > 0x8000_0000u) return rel + (wraps - 1) * 0x1_0000_0000L; // an old segment from before a wrap
            last = rel;
            return rel + wraps * 0x1_0000_0000L;
        }
        for (int i = 0; i < frames.Count; i++)
        {
            var f = frames[i];
            if (f.Tcp is not { } t || TcpFlowKey.Of(f) is not { } fk || (fk != k && fk != k.Reverse)) continue;
            origin ??= f.Time;
            if (fk == k)
            {
                if (t.SequenceLength > 0 || (marks[i] & (SegmentMarks.WindowProbe | SegmentMarks.KeepAlive)) != 0)
                {
                    var start = Unwrap(t.RelativeSeq);
                    segments.Add(new GraphSegment(f.Time, start, start + t.SequenceLength, marks[i], f));
                }
            }
            else if (t.Has(TcpFlags.Ack) && !t.Has(TcpFlags.Rst) && t.RelativeAck is { } ra)
            {
                var ack = ra + (wraps * 0x1_0000_0000L);
                acks.Add(new GraphAck(f.Time, ack, ack + t.Window, marks[i], f));
                foreach (var s in t.Sack) sacks.Add(new GraphSack(f.Time, s.Left + wraps * 0x1_0000_0000L, s.Right + wraps * 0x1_0000_0000L));
            }
        }
        return new SequenceGraph(k, origin ?? TimeSpan.Zero, segments, acks, sacks);
    }

    /// <summary>The direction of the TCP conversation that carried the most data bytes.</summary>
    public static TcpFlowKey? BusiestFlow(IReadOnlyList<FrameSummary> frames)
    {
        var bytes = new Dictionary<TcpFlowKey, long>();
        foreach (var f in frames)
            if (TcpFlowKey.Of(f) is { } k)
                bytes[k] = (bytes.TryGetValue(k, out var b) ? b : 0) + f.Tcp!.Length + 1; // +1: a flow of bare segments still counts
        return bytes.Count == 0 ? null : bytes.MaxBy(p => p.Value).Key;
    }
}
