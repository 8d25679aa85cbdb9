using System.Buffers.Binary;

namespace NetStack.IPv4;

/// <summary>IP protocol numbers we dispatch on.</summary>
public enum IpProtocol : byte
{
    Icmp = 1,
    Tcp = 6,
    Udp = 17,
}

/// <summary>The IPv4 header (RFC 791 section 3.1), read and written in place.</summary>
public static class Ipv4Header
{
    public const int MinLength = 20;
    public const ushort FlagDontFragment = 0x4000;
    public const ushort FlagMoreFragments = 0x2000;
    public const ushort OffsetMask = 0x1FFF;

    public static int Version(ReadOnlySpan<byte> h) => h[0] >> 4;
    public static int HeaderLength(ReadOnlySpan<byte> h) => (h[0] & 0xF) * 4;
    public static byte Tos(ReadOnlySpan<byte> h) => h[1];
    public static int TotalLength(ReadOnlySpan<byte> h) => BinaryPrimitives.ReadUInt16BigEndian(h[2..]);
    public static ushort Identification(ReadOnlySpan<byte> h) => BinaryPrimitives.ReadUInt16BigEndian(h[4..]);
    public static ushort FlagsAndOffset(ReadOnlySpan<byte> h) => BinaryPrimitives.ReadUInt16BigEndian(h[6..]);
    public static bool DontFragment(ReadOnlySpan<byte> h) => (FlagsAndOffset(h) & FlagDontFragment) != 0;
    public static bool MoreFragments(ReadOnlySpan<byte> h) => (FlagsAndOffset(h) & FlagMoreFragments) != 0;
    /// <summary>Fragment offset in bytes.</summary>
    public static int FragmentOffset(ReadOnlySpan<byte> h) => (FlagsAndOffset(h) & OffsetMask) * 8;
    public static byte Ttl(ReadOnlySpan<byte> h) => h[8];
    public static byte Protocol(ReadOnlySpan<byte> h) => h[9];
    public static ushort HeaderChecksum(ReadOnlySpan<byte> h) => BinaryPrimitives.ReadUInt16BigEndian(h[10..]);
    public static Ipv4Address Source(ReadOnlySpan<byte> h) => Ipv4Address.Read(h[12..]);
    public static Ipv4Address Destination(ReadOnlySpan<byte> h) => Ipv4Address.Read(h[16..]);

    /// <summary>Writes a 20-byte header (no options) with its checksum.</summary>
    public static void Write(Span<byte> h, int totalLength, ushort identification, ushort flagsAndOffset, byte ttl,
        byte protocol, Ipv4Address source, Ipv4Address destination, byte tos = 0)
    {
        h[0] = 0x45;
        h[1] = tos;
        BinaryPrimitives.WriteUInt16BigEndian(h[2..], (ushort)totalLength);
        BinaryPrimitives.WriteUInt16BigEndian(h[4..], identification);
        BinaryPrimitives.WriteUInt16BigEndian(h[6..], flagsAndOffset);
        h[8] = ttl;
        h[9] = protocol;
        h[10] = 0;
        h[11] = 0;
        source.Write(h[12..]);
        destination.Write(h[16..]);
        BinaryPrimitives.WriteUInt16BigEndian(h[10..], Checksum.Compute(h[..MinLength]));
    }
}
