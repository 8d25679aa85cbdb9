using System.Buffers.Binary;
using NetStack;
using NetStack.Arp;
using NetStack.IPv4;
using NetStack.Link;

namespace Stack.Tests.Support;

/// <summary>Builds crafted frames for tests, independently of the stack's send path.</summary>
public static class Frames
{
    public static byte[] Arp(ushort op, MacAddress ethSrc, MacAddress ethDst, MacAddress sha, Ipv4Address spa, MacAddress tha, Ipv4Address tpa)
    {
        var f = new byte[Ethernet.HeaderLength + ArpPacket.Length];
        Ethernet.WriteHeader(f, ethDst, ethSrc, Ethernet.TypeArp);
        ArpPacket.Write(f.AsSpan(Ethernet.HeaderLength), op, sha, spa, tha, tpa);
        return f;
    }

    /// <summary>An Ethernet frame carrying an IPv4 datagram with a correct header checksum.</summary>
    public static byte[] Ipv4(MacAddress ethSrc, MacAddress ethDst, Ipv4Address src, Ipv4Address dst, byte protocol, ReadOnlySpan<byte> payload,
        ushort id = 1, ushort flagsAndOffset = 0, byte ttl = 64)
    {
        var f = new byte[Ethernet.HeaderLength + 20 + payload.Length];
        Ethernet.WriteHeader(f, ethDst, ethSrc, Ethernet.TypeIpv4);
        Ipv4Header.Write(f.AsSpan(Ethernet.HeaderLength), 20 + payload.Length, id, flagsAndOffset, ttl, protocol, src, dst);
        payload.CopyTo(f.AsSpan(Ethernet.HeaderLength + 20));
        return f;
    }

    public static byte[] IcmpEcho(byte type, ushort id, ushort seq, ReadOnlySpan<byte> data)
    {
        var m = new byte[8 + data.Length];
        m[0] = type;
        BinaryPrimitives.WriteUInt16BigEndian(m.AsSpan(4), id);
        BinaryPrimitives.WriteUInt16BigEndian(m.AsSpan(6), seq);
        data.CopyTo(m.AsSpan(8));
        BinaryPrimitives.WriteUInt16BigEndian(m.AsSpan(2), Checksum.Compute(m));
        return m;
    }

    public static string Hex(ReadOnlySpan<byte> b) => Convert.ToHexString(b);
}
