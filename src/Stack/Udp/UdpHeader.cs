using System.Buffers.Binary;

namespace NetStack.Udp;

/// <summary>The UDP header (RFC 768), read and written in place.</summary>
public static class UdpHeader
{
    public const int Length = 8;
    /// <summary>Largest UDP payload in one IPv4 datagram: 65535 - 20 (IP header) - 8 (UDP header).</summary>
    public const int MaxPayload = 65535 - 20 - Length;

    public static ushort SourcePort(ReadOnlySpan<byte> h) => BinaryPrimitives.ReadUInt16BigEndian(h);
    public static ushort DestinationPort(ReadOnlySpan<byte> h) => BinaryPrimitives.ReadUInt16BigEndian(h[2..]);
    /// <summary>The length field: header plus data, in bytes.</summary>
    public static int DatagramLength(ReadOnlySpan<byte> h) => BinaryPrimitives.ReadUInt16BigEndian(h[4..]);
    public static ushort Checksum(ReadOnlySpan<byte> h) => BinaryPrimitives.ReadUInt16BigEndian(h[6..]);

    /// <summary>
    /// Writes the header in front of the <c>datagram.Length - 8</c> data bytes already at datagram[8..], with
    /// the checksum over the pseudo-header; a computed 0 is sent as 0xFFFF, since 0 means "no checksum" (RFC 768).
    /// </summary>
    public static void Write(Span<byte> datagram, ushort sourcePort, ushort destinationPort, Ipv4Address source, Ipv4Address destination)
    {
        BinaryPrimitives.WriteUInt16BigEndian(datagram, sourcePort);
        BinaryPrimitives.WriteUInt16BigEndian(datagram[2..], destinationPort);
        BinaryPrimitives.WriteUInt16BigEndian(datagram[4..], (ushort)datagram.Length);
        datagram[6] = 0;
        datagram[7] = 0;
        var sum = NetStack.Checksum.Finish(NetStack.Checksum.Add(
            NetStack.Checksum.PseudoHeader(source, destination, (byte)IPv4.IpProtocol.Udp, datagram.Length), datagram));
        BinaryPrimitives.WriteUInt16BigEndian(datagram[6..], sum == 0 ? (ushort)0xFFFF : sum);
    }

    /// <summary>True when the checksum is absent (0, RFC 768) or verifies over the pseudo-header and datagram.</summary>
    public static bool ChecksumValid(ReadOnlySpan<byte> datagram, Ipv4Address source, Ipv4Address destination) =>
        Checksum(datagram) == 0 || NetStack.Checksum.Verify(
            NetStack.Checksum.PseudoHeader(source, destination, (byte)IPv4.IpProtocol.Udp, datagram.Length), datagram);
}
