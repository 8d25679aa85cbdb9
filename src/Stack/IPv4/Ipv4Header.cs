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

/// <summary>What a transport needs to know about an arriving datagram, passed by reference (a ref struct: it may carry the datagram's span).</summary>
public readonly ref struct IpDatagramInfo
{
    public IpDatagramInfo(Ipv4Address source, Ipv4Address destination, IpProtocol protocol, byte ttl, byte tos, MacAddress linkSource,
        ReadOnlySpan<byte> datagram = default)
    {
        Datagram = datagram;
        Source = source;
        Destination = destination;
        Protocol = protocol;
        Ttl = ttl;
        Tos = tos;
        LinkSource = linkSource;
    }

    public Ipv4Address Source { get; }
    public Ipv4Address Destination { get; }
    public IpProtocol Protocol { get; }
    public byte Ttl { get; }
    public byte Tos { get; }
    public MacAddress LinkSource { get; }
    /// <summary>
    /// The whole datagram (IP header and payload) as delivered, valid only during the call: what an ICMP error
    /// about it must quote (e.g. UDP's port unreachable). Empty when the deliverer did not supply it.
    /// </summary>
    public ReadOnlySpan<byte> Datagram { get; }
    /// <summary>Sent to a broadcast or multicast address rather than to us alone.</summary>
    public bool IsBroadcastOrMulticast => Destination.IsBroadcast || Destination.IsMulticast;
}

/// <summary>An error concerning a datagram we sent: an ICMP error received, or a local failure (ARP gave up).</summary>
public readonly struct IpErrorInfo
{
    public IpErrorInfo(StackError error, byte icmpType, byte icmpCode, Ipv4Address reporter, int nextHopMtu, bool isLocal)
    {
        Error = error;
        IcmpType = icmpType;
        IcmpCode = icmpCode;
        Reporter = reporter;
        NextHopMtu = nextHopMtu;
        IsLocal = isLocal;
    }

    public StackError Error { get; }
    public byte IcmpType { get; }
    public byte IcmpCode { get; }
    /// <summary>Who reported it (the ICMP sender; our own address for local errors).</summary>
    public Ipv4Address Reporter { get; }
    /// <summary>For "fragmentation needed" (type 3 code 4): the next-hop MTU (RFC 1191); 0 otherwise.</summary>
    public int NextHopMtu { get; }
    public bool IsLocal { get; }
    /// <summary>Hard errors end a connection attempt; soft ones (e.g. host unreachable during SYN retries) are recorded (RFC 1122 4.2.3.9).</summary>
    public bool IsHard => Error is StackError.PortUnreachable or StackError.ProtocolUnreachable;
}

/// <summary>A transport protocol registered with the IPv4 layer (ICMP, UDP, TCP).</summary>
internal interface IIpProtocolHandler
{
    /// <summary>A datagram for us; <paramref name="payload"/> is the IP payload, valid only during the call.</summary>
    void OnDatagram(in IpDatagramInfo info, ReadOnlySpan<byte> payload, TimeSpan now);

    /// <summary>An error about a datagram we sent; <paramref name="original"/> is its IP header and at least 8 bytes of payload.</summary>
    void OnError(in IpErrorInfo error, ReadOnlySpan<byte> original, TimeSpan now);
}
