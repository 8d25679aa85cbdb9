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

    public static void WriteHeader(Span<byte> frame, MacAddress destination, MacAddress source, ushort etherType)
    {
        destination.Write(frame);
        source.Write(frame[6..]);
        BinaryPrimitives.WriteUInt16BigEndian(frame[12..], etherType);
    }
}
