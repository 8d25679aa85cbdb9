using System.Buffers.Binary;
using System.Runtime.CompilerServices;

namespace NetStack.Tcp;

/// <summary>TCP control bits (RFC 9293 section 3.1, RFC 3168 for ECE/CWR).</summary>
[Flags]
public enum TcpFlags : byte
{
    None = 0,
    Fin = 0x01,
    Syn = 0x02,
    Rst = 0x04,
    Psh = 0x08,
    Ack = 0x10,
    Urg = 0x20,
    Ece = 0x40,
    Cwr = 0x80,
}

/// <summary>Sequence-number arithmetic modulo 2^32 (RFC 9293 section 3.4).</summary>
internal static class Seq
{
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static bool Lt(uint a, uint b) => (int)(a - b) < 0;
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static bool Le(uint a, uint b) => (int)(a - b) <= 0;
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static bool Gt(uint a, uint b) => (int)(a - b) > 0;
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static bool Ge(uint a, uint b) => (int)(a - b) >= 0;
    public static uint Max(uint a, uint b) => Gt(a, b) ? a : b;
    public static uint Min(uint a, uint b) => Lt(a, b) ? a : b;
}

/// <summary>A SACK block (RFC 2018): the left edge and the sequence number just past the right edge.</summary>
internal struct SackBlock
{
    public uint Left;
    public uint Right;
    public SackBlock(uint left, uint right) { Left = left; Right = right; }
}

[InlineArray(4)]
internal struct SackBlocks4
{
    private SackBlock _element0;
}

/// <summary>The options of one segment, parsed in place (RFC 9293 3.2, RFC 7323, RFC 2018).</summary>
internal struct TcpOptions
{
    public const byte KindEnd = 0, KindNop = 1, KindMss = 2, KindWindowScale = 3, KindSackPermitted = 4, KindSack = 5, KindTimestamp = 8;

    /// <summary>0 when absent.</summary>
    public ushort Mss;
    /// <summary>-1 when absent.</summary>
    public int WindowScale;
    public bool SackPermitted;
    public bool HasTimestamp;
    public uint TsVal;
    public uint TsEcr;
    public int SackCount;
    public SackBlocks4 Sack;

    /// <summary>Parses the option bytes; false when an option's length is malformed (the segment is then dropped).</summary>
    public static bool TryParse(ReadOnlySpan<byte> o, out TcpOptions opts)
    {
        opts = default;
        opts.WindowScale = -1;
        int i = 0;
        while (i < o.Length)
        {
            var kind = o[i];
            if (kind == KindEnd) break;
            if (kind == KindNop) { i++; continue; }
            if (i + 1 >= o.Length) return false;
            var len = o[i + 1];
            if (len < 2 || i + len > o.Length) return false;
            var body = o.Slice(i + 2, len - 2);
            switch (kind)
            {
                case KindMss when len == 4:
                    opts.Mss = BinaryPrimitives.ReadUInt16BigEndian(body);
                    break;
                case KindWindowScale when len == 3:
                    opts.WindowScale = Math.Min((int)body[0], 14); // RFC 7323 2.3: larger shifts are taken as 14
                    break;
                case KindSackPermitted when len == 2:
                    opts.SackPermitted = true;
                    break;
                case KindTimestamp when len == 10:
                    opts.HasTimestamp = true;
                    opts.TsVal = BinaryPrimitives.ReadUInt32BigEndian(body);
                    opts.TsEcr = BinaryPrimitives.ReadUInt32BigEndian(body[4..]);
                    break;
                case KindSack when (len - 2) % 8 == 0:
                    for (int b = 0; b < (len - 2) / 8 && opts.SackCount < 4; b++)
                        opts.Sack[opts.SackCount++] = new SackBlock(BinaryPrimitives.ReadUInt32BigEndian(body[(b * 8)..]), BinaryPrimitives.ReadUInt32BigEndian(body[(b * 8 + 4)..]));
                    break;
                case KindMss or KindWindowScale or KindSackPermitted or KindTimestamp or KindSack:
                    return false; // a known option with a wrong length
            }
            i += len;
        }
        return true;
    }
}

/// <summary>One arriving segment: the header fields and payload, read in place from the datagram.</summary>
internal ref struct TcpSegment
{
    public ushort SourcePort;
    public ushort DestinationPort;
    public uint Seq;
    public uint Ack;
    public TcpFlags Flags;
    public ushort Window;
    public ReadOnlySpan<byte> Payload;
    public TcpOptions Options;

    public readonly bool Has(TcpFlags f) => (Flags & f) != 0;
    /// <summary>SYN without ACK, RST or FIN (ECE/CWR of an ECN-setup SYN, RFC 3168, and PSH/URG are ignored).</summary>
    public readonly bool IsBareSyn => (Flags & (TcpFlags.Syn | TcpFlags.Ack | TcpFlags.Rst | TcpFlags.Fin)) == TcpFlags.Syn;
    /// <summary>SEG.LEN: the payload plus one for SYN and one for FIN (RFC 9293 3.4).</summary>
    public readonly uint Len => (uint)Payload.Length + (Has(TcpFlags.Syn) ? 1u : 0u) + (Has(TcpFlags.Fin) ? 1u : 0u);
}

/// <summary>The TCP header (RFC 9293 section 3.1), read and written in place.</summary>
public static class TcpHeader
{
    public const int MinLength = 20;
    public const int MaxLength = 60;

    public static ushort SourcePort(ReadOnlySpan<byte> h) => BinaryPrimitives.ReadUInt16BigEndian(h);
    public static ushort DestinationPort(ReadOnlySpan<byte> h) => BinaryPrimitives.ReadUInt16BigEndian(h[2..]);
    public static uint SequenceNumber(ReadOnlySpan<byte> h) => BinaryPrimitives.ReadUInt32BigEndian(h[4..]);
    public static uint AcknowledgmentNumber(ReadOnlySpan<byte> h) => BinaryPrimitives.ReadUInt32BigEndian(h[8..]);
    public static int DataOffset(ReadOnlySpan<byte> h) => (h[12] >> 4) * 4;
    public static TcpFlags Flags(ReadOnlySpan<byte> h) => (TcpFlags)h[13];
    public static ushort Window(ReadOnlySpan<byte> h) => BinaryPrimitives.ReadUInt16BigEndian(h[14..]);
    public static ushort ChecksumField(ReadOnlySpan<byte> h) => BinaryPrimitives.ReadUInt16BigEndian(h[16..]);

    /// <summary>Writes the fixed header with a zero checksum; <paramref name="headerLength"/> includes options.</summary>
    public static void Write(Span<byte> h, ushort sourcePort, ushort destinationPort, uint seq, uint ack, TcpFlags flags, ushort window, int headerLength)
    {
        BinaryPrimitives.WriteUInt16BigEndian(h, sourcePort);
        BinaryPrimitives.WriteUInt16BigEndian(h[2..], destinationPort);
        BinaryPrimitives.WriteUInt32BigEndian(h[4..], seq);
        BinaryPrimitives.WriteUInt32BigEndian(h[8..], ack);
        h[12] = (byte)((headerLength / 4) << 4);
        h[13] = (byte)flags;
        BinaryPrimitives.WriteUInt16BigEndian(h[14..], window);
        h[16] = h[17] = h[18] = h[19] = 0;
    }

    /// <summary>Fills the checksum of a complete segment (RFC 9293 3.1 with the pseudo-header).</summary>
    public static void SetChecksum(Span<byte> segment, Ipv4Address source, Ipv4Address destination)
    {
        segment[16] = segment[17] = 0;
        var sum = Checksum.Add(Checksum.PseudoHeader(source, destination, 6, segment.Length), segment);
        BinaryPrimitives.WriteUInt16BigEndian(segment[16..], Checksum.Finish(sum));
    }

    /// <summary>
    /// Puts only the pseudo-header sum in the checksum field, for a device that completes it (checksum offload:
    /// <see cref="Checksum.CompletePartial"/>; RFC 9293 3.1 is met once it has).
    /// </summary>
    public static void SetPartialChecksum(Span<byte> segment, Ipv4Address source, Ipv4Address destination) =>
        BinaryPrimitives.WriteUInt16BigEndian(segment[16..], (ushort)Checksum.PseudoHeader(source, destination, 6, segment.Length));

    /// <summary>Writes MSS, SACK-permitted, timestamps and window scale in Linux's SYN order; returns the bytes written (a multiple of 4).</summary>
    internal static int WriteSynOptions(Span<byte> o, ushort mss, bool sackPermitted, bool timestamps, uint tsVal, uint tsEcr, int windowScale)
    {
        int i = 0;
        o[i++] = TcpOptions.KindMss; o[i++] = 4;
        BinaryPrimitives.WriteUInt16BigEndian(o[i..], mss); i += 2;
        if (sackPermitted && timestamps)
        {
            o[i++] = TcpOptions.KindSackPermitted; o[i++] = 2;
            i += WriteTimestampBody(o[i..], tsVal, tsEcr);
        }
        else if (timestamps)
        {
            o[i++] = TcpOptions.KindNop; o[i++] = TcpOptions.KindNop;
            i += WriteTimestampBody(o[i..], tsVal, tsEcr);
        }
        else if (sackPermitted)
        {
            o[i++] = TcpOptions.KindNop; o[i++] = TcpOptions.KindNop;
            o[i++] = TcpOptions.KindSackPermitted; o[i++] = 2;
        }
        if (windowScale >= 0)
        {
            o[i++] = TcpOptions.KindNop;
            o[i++] = TcpOptions.KindWindowScale; o[i++] = 3; o[i++] = (byte)windowScale;
        }
        return i;
    }

    private static int WriteTimestampBody(Span<byte> o, uint tsVal, uint tsEcr)
    {
        o[0] = TcpOptions.KindTimestamp; o[1] = 10;
        BinaryPrimitives.WriteUInt32BigEndian(o[2..], tsVal);
        BinaryPrimitives.WriteUInt32BigEndian(o[6..], tsEcr);
        return 10;
    }

    /// <summary>Length of the timestamp option as <see cref="WriteTimestamp"/> writes it.</summary>
    internal const int TimestampOptionLength = 12;

    /// <summary>Writes an outgoing segment's options: the SYN form when it offers an MSS, else timestamps then SACK blocks; returns the bytes written.</summary>
    internal static int WriteOptions(Span<byte> o, in SegmentOptions options)
    {
        if (options.Mss != 0)
            return WriteSynOptions(o, options.Mss, options.SackPermitted, options.HasTimestamp, options.TsVal, options.TsEcr, options.WindowScale);
        var n = 0;
        if (options.HasTimestamp) n += WriteTimestamp(o, options.TsVal, options.TsEcr);
        if (options.Sack.Length > 0) n += WriteSack(o[n..], options.Sack);
        return n;
    }

    /// <summary>NOP NOP TS (12 bytes), the form every Linux segment carries.</summary>
    internal static int WriteTimestamp(Span<byte> o, uint tsVal, uint tsEcr)
    {
        o[0] = TcpOptions.KindNop; o[1] = TcpOptions.KindNop;
        return 2 + WriteTimestampBody(o[2..], tsVal, tsEcr);
    }

    /// <summary>NOP NOP SACK with <paramref name="count"/> blocks (2 + 2 + 8n bytes).</summary>
    internal static int WriteSack(Span<byte> o, ReadOnlySpan<SackBlock> blocks)
    {
        o[0] = TcpOptions.KindNop; o[1] = TcpOptions.KindNop;
        o[2] = TcpOptions.KindSack; o[3] = (byte)(2 + 8 * blocks.Length);
        for (int b = 0; b < blocks.Length; b++)
        {
            BinaryPrimitives.WriteUInt32BigEndian(o[(4 + 8 * b)..], blocks[b].Left);
            BinaryPrimitives.WriteUInt32BigEndian(o[(8 + 8 * b)..], blocks[b].Right);
        }
        return 4 + 8 * blocks.Length;
    }
}
