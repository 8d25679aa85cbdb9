using System.Buffers.Binary;

namespace NetStack.Arp;

/// <summary>ARP for Ethernet/IPv4 (RFC 826): a 28-byte packet, read and written in place.</summary>
public static class ArpPacket
{
    public const int Length = 28;
    public const ushort OpRequest = 1;
    public const ushort OpReply = 2;

    /// <summary>True when the packet is Ethernet/IPv4 ARP with the right lengths.</summary>
    public static bool IsValid(ReadOnlySpan<byte> p) =>
        p.Length >= Length
        && BinaryPrimitives.ReadUInt16BigEndian(p) == 1
        && BinaryPrimitives.ReadUInt16BigEndian(p[2..]) == 0x0800
        && p[4] == 6 && p[5] == 4;

    public static ushort Operation(ReadOnlySpan<byte> p) => BinaryPrimitives.ReadUInt16BigEndian(p[6..]);
    public static MacAddress SenderHardware(ReadOnlySpan<byte> p) => MacAddress.Read(p[8..]);
    public static Ipv4Address SenderProtocol(ReadOnlySpan<byte> p) => Ipv4Address.Read(p[14..]);
    public static MacAddress TargetHardware(ReadOnlySpan<byte> p) => MacAddress.Read(p[18..]);
    public static Ipv4Address TargetProtocol(ReadOnlySpan<byte> p) => Ipv4Address.Read(p[24..]);

    public static void Write(Span<byte> p, ushort operation, MacAddress senderMac, Ipv4Address senderIp, MacAddress targetMac, Ipv4Address targetIp)
    {
        BinaryPrimitives.WriteUInt16BigEndian(p, 1);
        BinaryPrimitives.WriteUInt16BigEndian(p[2..], 0x0800);
        p[4] = 6;
        p[5] = 4;
        BinaryPrimitives.WriteUInt16BigEndian(p[6..], operation);
        senderMac.Write(p[8..]);
        senderIp.Write(p[14..]);
        targetMac.Write(p[18..]);
        targetIp.Write(p[24..]);
    }
}
