using NetStack.Sockets;
using NetStack.Tcp;

namespace NetStack.Diagnostics;

/// <summary>What a segment is, seen against the segments before it in the same conversation.</summary>
[Flags]
public enum SegmentMarks
{
    None = 0,
    /// <summary>Carries sequence space (data, SYN or FIN) that was sent before.</summary>
    Retransmission = 1,
    /// <summary>A bare ACK repeating the previous ACK and window while the peer has data outstanding (RFC 5681 2).</summary>
    DuplicateAck = 2,
    /// <summary>Advertises a zero receive window.</summary>
    ZeroWindow = 4,
    Reset = 8,
    /// <summary>An empty segment one below the next sequence number while the peer's window is zero (RFC 9293 3.8.6.1).</summary>
    WindowProbe = 16,
    /// <summary>An empty segment one below the next sequence number with the window open (RFC 1122 4.2.3.6).</summary>
    KeepAlive = 32,
    /// <summary>Starts above the highest sequence number sent so far: bytes before it were not seen (lost before the capture point, or not captured).</summary>
    PreviousSegmentNotSeen = 64,
}

/// <summary>One direction of a TCP conversation: source and destination address and port.</summary>
public readonly record struct TcpFlowKey(Ipv4Address Source, ushort SourcePort, Ipv4Address Destination, ushort DestinationPort)
{
    public TcpFlowKey Reverse => new(Destination, DestinationPort, Source, SourcePort);
    /// <summary>The same key for both directions (the lower endpoint first).</summary>
    public TcpFlowKey Canonical =>
        (Source.Value, SourcePort).CompareTo((Destination.Value, DestinationPort)) <= 0 ? this : Reverse;
    public override string ToString() => $"{Source}:{SourcePort} → {Destination}:{DestinationPort}";

    public static TcpFlowKey? Of(FrameSummary f) =>
        f.Tcp is null || f.SourceAddress is not { } s || f.DestinationAddress is not { } d ? null : new TcpFlowKey(s, f.SourcePort, d, f.DestinationPort);
}

/// <summary>
/// Marks retransmissions, duplicate ACKs, zero windows, probes and resets the way tshark's TCP analysis does, from
/// the segments alone: feed them in capture order. Works the same on a stack's log and on a capture of two other
/// hosts. Sequence comparisons are modulo 2^32 (RFC 9293 3.4).
/// </summary>
public sealed class SegmentAnalyzer
{
    private sealed class Side
    {
        public bool Seen;
        public uint NextSeq;     // highest Seq + sequence length sent so far
        public bool HasAck;
        public uint LastAck;
        public long LastWindow = -1;
    }

    private readonly Dictionary<TcpFlowKey, Side> _sides = new();

    public SegmentMarks Analyze(FrameSummary frame)
    {
        if (frame.Tcp is not { } t || TcpFlowKey.Of(frame) is not { } key) return SegmentMarks.None;
        var me = Get(key);
        var peer = Get(key.Reverse);
        var marks = SegmentMarks.None;
        var rst = t.Has(TcpFlags.Rst);
        var syn = t.Has(TcpFlags.Syn);
        var seqLen = t.SequenceLength;
        if (rst) marks |= SegmentMarks.Reset;
        if (!rst && !syn && t.WindowField == 0) marks |= SegmentMarks.ZeroWindow;
        if (me.Seen && !rst)
        {
            if (seqLen > 0 && Lt(t.Seq, me.NextSeq)) marks |= SegmentMarks.Retransmission;
            else if (seqLen == 0 && !syn && t.Seq == me.NextSeq - 1)
                marks |= peer.LastWindow == 0 ? SegmentMarks.WindowProbe : SegmentMarks.KeepAlive;
            else if (seqLen > 0 && Gt(t.Seq, me.NextSeq)) marks |= SegmentMarks.PreviousSegmentNotSeen;
            if (seqLen == 0 && !syn && t.Has(TcpFlags.Ack) && me.HasAck && t.Ack == me.LastAck && t.Window == me.LastWindow
                && peer.Seen && Lt(t.Ack, peer.NextSeq) && (marks & (SegmentMarks.WindowProbe | SegmentMarks.KeepAlive)) == 0)
                marks |= SegmentMarks.DuplicateAck;
        }
        if (syn && !t.Has(TcpFlags.Ack) && me.Seen && t.Seq != me.NextSeq - 1) me.Seen = false; // a new incarnation
        if (!me.Seen) { me.Seen = true; me.NextSeq = t.Seq + seqLen; }
        else if (Gt(t.Seq + seqLen, me.NextSeq)) me.NextSeq = t.Seq + seqLen;
        if (!rst && t.Has(TcpFlags.Ack))
        {
            me.HasAck = true;
            me.LastAck = t.Ack;
            me.LastWindow = t.Window;
        }
        return marks;
    }

    /// <summary>The marks of every frame, in order (None for frames that are not TCP).</summary>
    public static SegmentMarks[] AnalyzeAll(IReadOnlyList<FrameSummary> frames)
    {
        var a = new SegmentAnalyzer();
        var marks = new SegmentMarks[frames.Count];
        for (int i = 0; i < frames.Count; i++) marks[i] = a.Analyze(frames[i]);
        return marks;
    }

    private Side Get(TcpFlowKey k)
    {
        if (!_sides.TryGetValue(k, out var s)) _sides[k] = s = new Side();
        return s;
    }

    private static bool Lt(uint a, uint b) => (int)(a - b) < 0;
    private static bool Gt(uint a, uint b) => (int)(a - b) > 0;

    /// <summary>Short names for labels: "retransmission", "dup ACK"...</summary>
    public static string Describe(SegmentMarks m)
    {
        var parts = new List<string>(2);
        if ((m & SegmentMarks.Retransmission) != 0) parts.Add("retransmission");
        if ((m & SegmentMarks.DuplicateAck) != 0) parts.Add("dup ACK");
        if ((m & SegmentMarks.ZeroWindow) != 0) parts.Add("zero window");
        if ((m & SegmentMarks.WindowProbe) != 0) parts.Add("window probe");
        if ((m & SegmentMarks.KeepAlive) != 0) parts.Add("keep-alive");
        if ((m & SegmentMarks.Reset) != 0) parts.Add("reset");
        if ((m & SegmentMarks.PreviousSegmentNotSeen) != 0) parts.Add("previous segment not seen");
        return string.Join(", ", parts);
    }
}
