using System.Buffers.Binary;
using NetStack;
using NetStack.IPv4;
using NetStack.Icmp;
using NetStack.Link;
using Stack.Tests.Support;
using static Stack.Tests.Support.StackHarness;

namespace Stack.Tests.IPv4;

/// <summary>Crafted IPv4 traffic between the harness peer and our stack, for IPv4/ICMP/fuzz tests.</summary>
public static class IpTestFrames
{
    public const byte ProtocolUnassigned = 253; // RFC 3692 experimental: nobody registers it

    /// <summary>Payload bytes 0, 1, 2... (mod 251, so no period lines up with 8-byte blocks).</summary>
    public static byte[] Pattern(int length, int salt = 0)
    {
        var b = new byte[length];
        for (int i = 0; i < length; i++) b[i] = (byte)((i + salt) % 251);
        return b;
    }

    /// <summary>An echo request from the peer to us, as one frame.</summary>
    public static byte[] EchoRequest(ushort id, ushort seq, ReadOnlySpan<byte> data, Ipv4Address? dst = null, ushort ipId = 1) =>
        Frames.Ipv4(PeerMac, OurMac, PeerIp, dst ?? OurIp, 1, Frames.IcmpEcho(IcmpCodes.TypeEchoRequest, id, seq, data), ipId);

    /// <summary>One fragment (peer to us) carrying <paramref name="payload"/>[offset..offset+length].</summary>
    public static byte[] Fragment(byte[] payload, int offset, int length, bool more, ushort id = 7, byte protocol = 1)
    {
        var fo = (ushort)((offset / 8) | (more ? Ipv4Header.FlagMoreFragments : 0));
        return Frames.Ipv4(PeerMac, OurMac, PeerIp, OurIp, protocol, payload.AsSpan(offset, length), id, fo);
    }

    /// <summary>Splits <paramref name="payload"/> into fragments of <paramref name="chunk"/> bytes (a multiple of 8), in order.</summary>
    public static List<byte[]> Train(byte[] payload, int chunk, ushort id = 7, byte protocol = 1)
    {
        var list = new List<byte[]>();
        for (int off = 0; off < payload.Length; off += chunk)
        {
            var len = Math.Min(chunk, payload.Length - off);
            list.Add(Fragment(payload, off, len, off + len < payload.Length, id, protocol));
        }
        return list;
    }

    /// <summary>Joins the IP payloads of fragments the stack sent (any order) by offset; asserts they tile exactly.</summary>
    public static byte[] Reassemble(IEnumerable<byte[]> frames)
    {
        var parts = frames.Select(f => f.AsSpan(Ethernet.HeaderLength).ToArray())
            .OrderBy(p => Ipv4Header.FragmentOffset(p)).ToList();
        var result = new List<byte>();
        foreach (var p in parts)
        {
            Assert.Equal(result.Count, Ipv4Header.FragmentOffset(p));
            result.AddRange(p[Ipv4Header.HeaderLength(p)..Ipv4Header.TotalLength(p)]);
        }
        Assert.False(Ipv4Header.MoreFragments(parts[^1]));
        return result.ToArray();
    }

    /// <summary>The IP header of a frame the stack sent: id, so expected frames can be built exactly.</summary>
    public static ushort IpId(byte[] frame) => Ipv4Header.Identification(frame.AsSpan(Ethernet.HeaderLength));

    public static void FixIpChecksum(Span<byte> frame)
    {
        var ip = frame[Ethernet.HeaderLength..];
        var ihl = Ipv4Header.HeaderLength(ip);
        ip[10] = ip[11] = 0;
        BinaryPrimitives.WriteUInt16BigEndian(ip[10..], Checksum.Compute(ip[..ihl]));
    }

    /// <summary>A harness whose ARP cache already maps the peer, so replies leave at once.</summary>
    public static StackHarness HarnessWithPeer(Func<StackConfig, StackConfig>? configure = null, int mtu = 1500)
    {
        var h = new StackHarness(configure, mtu);
        h.Run(h.Stack.AddArpEntryAsync(PeerIp, PeerMac));
        h.Device.Sent.Clear();
        return h;
    }
}
