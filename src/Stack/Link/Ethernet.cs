using System.Buffers.Binary;

namespace NetStack.Link;

/// <summary>Ethernet II framing (no FCS; the adapter adds and checks it).</summary>
public static class Ethernet
{
    public const int HeaderLength = 14;
    public const ushort TypeIpv4 = 0x0800;
    public const ushort TypeArp = 0x0806;
    public const ushort TypeIpv6 = 0x86DD;
    public const ushort TypeVlan = 0x8100;

    public static MacAddress Destination(ReadOnlySpan<byte> frame) => MacAddress.Read(frame);
    public static MacAddress Source(ReadOnlySpan<byte> frame) => MacAddress.Read(frame[6..]);
    public static ushort EtherType(ReadOnlySpan<byte> frame) => BinaryPrimitives.ReadUInt16BigEndian(frame[12..]);

    /// <summary>
    /// Whether a frame claims to come from <paramref name="own"/>. Such a frame is never for us: it is our own
    /// transmission echoed back by a capture, or another host using our address. The one spelling of that rule,
    /// applied by the Ethernet layer and, below it, by <see cref="PcapDevice"/> (which must not hand back its own frames).
    /// </summary>
    public static bool IsFrom(ReadOnlySpan<byte> frame, MacAddress own) => Source(frame) == own;

    /// <summary>
    /// Fills in the TCP checksum of an IPv4 frame whose checksum field holds the pseudo-header sum (checksum offload:
    /// <see cref="Checksum.CompletePartial"/>). Returns false, changing nothing, for a frame that is not IPv4 carrying TCP.
    /// </summary>
    public static bool CompleteTcpChecksum(Span<byte> frame)
    {
        const int ip = HeaderLength;
        if (frame.Length < ip + 40 || EtherType(frame) != TypeIpv4 || frame[ip + 9] != 6) return false;
        var ihl = (frame[ip] & 0xF) * 4;
        var total = BinaryPrimitives.ReadUInt16BigEndian(frame[(ip + 2)..]);
        if (ihl < 20 || total < ihl + 20 || ip + total > frame.Length) return false;
        Checksum.CompletePartial(frame.Slice(ip + ihl, total - ihl), 16);
        return true;
    }

    public static void WriteHeader(Span<byte> frame, MacAddress destination, MacAddress source, ushort etherType)
    {
        destination.Write(frame);
        source.Write(frame[6..]);
        BinaryPrimitives.WriteUInt16BigEndian(frame[12..], etherType);
    }
}
