using System.Buffers.Binary;
using NetStack;
using NetStack.IPv4;
using NetStack.Icmp;
using NetStack.Link;
using Stack.Tests.Support;
using static Stack.Tests.IPv4.IpTestFrames;
using static Stack.Tests.Support.StackHarness;

namespace Stack.Tests.IPv4;

/// <summary>IPv4 receive validation (RFC 791, RFC 1122 3.2.1): each bad datagram is counted and dropped, and the stack keeps answering.</summary>
public class Ipv4RuleTests
{
    private static readonly byte[] Data = Pattern(32);

    private static byte[] GoodEcho() => EchoRequest(0x1234, 1, Data);

    private static byte[] ExpectedReply(byte[] sent) =>
        Frames.Ipv4(OurMac, PeerMac, OurIp, PeerIp, 1, Frames.IcmpEcho(IcmpCodes.TypeEchoReply, 0x1234, 1, Data), IpId(sent));

    /// <summary>Feeds the bad frame, asserts silence and the one counter, then proves a good echo still works.</summary>
    private static void AssertDropped(byte[] bad, Func<Ipv4Counters, long> counter)
    {
        using var h = HarnessWithPeer();
        Assert.Empty(h.Feed(bad));
        Assert.Equal(1, counter(h.Stack.Ip.Counters));
        Assert.Equal(0, h.Stack.Ip.Counters.PacketsDelivered);
        var reply = Assert.Single(h.Feed(GoodEcho()));
        Assert.Equal(Frames.Hex(ExpectedReply(reply)), Frames.Hex(reply));
        Assert.Equal(1, h.Stack.Ip.Counters.PacketsDelivered);
    }

    private static byte[] Mutate(Action<byte[]> change, bool fixChecksum = true)
    {
        var f = GoodEcho();
        change(f);
        if (fixChecksum) FixIpChecksum(f);
        return f;
    }

    private const int Ip = Ethernet.HeaderLength;

    [Fact]
    public void Truncated_header_is_dropped() => AssertDropped(GoodEcho()[..(Ip + 19)], c => c.DroppedTruncated);

    [Fact]
    public void Version_6_is_dropped() => AssertDropped(Mutate(f => f[Ip] = 0x65), c => c.DroppedBadVersion);

    [Fact]
    public void Header_length_below_20_is_dropped() => AssertDropped(Mutate(f => f[Ip] = 0x44, fixChecksum: false), c => c.DroppedBadHeaderLength);

    [Fact]
    public void Header_length_beyond_the_packet_is_dropped() => AssertDropped(GoodEcho()[..(Ip + 24)].Also(f => f[Ip] = 0x4F), c => c.DroppedBadHeaderLength);

    [Fact]
    public void Total_length_longer_than_the_frame_is_dropped() =>
        AssertDropped(Mutate(f => BinaryPrimitives.WriteUInt16BigEndian(f.AsSpan(Ip + 2), (ushort)(f.Length - Ip + 1))), c => c.DroppedBadTotalLength);

    [Fact]
    public void Total_length_shorter_than_the_header_is_dropped() =>
        AssertDropped(Mutate(f => BinaryPrimitives.WriteUInt16BigEndian(f.AsSpan(Ip + 2), 19)), c => c.DroppedBadTotalLength);

    [Fact]
    public void Bad_header_checksum_is_dropped() => AssertDropped(Mutate(f => f[Ip + 10] ^= 1, fixChecksum: false), c => c.DroppedBadChecksum);

    [Theory]
    [InlineData("255.255.255.255")]
    [InlineData("224.0.0.1")]
    [InlineData("192.0.2.2")]   // our own address
    [InlineData("192.0.2.255")] // our subnet's broadcast
    [InlineData("127.0.0.1")]
    [InlineData("0.0.0.0")]     // to our unicast address
    public void Martian_source_is_dropped(string source) =>
        AssertDropped(Mutate(f => Ipv4Address.Parse(source).Write(f.AsSpan(Ip + 12))), c => c.DroppedBadSource);

    [Fact]
    public void Datagram_for_another_host_is_dropped() =>
        AssertDropped(Mutate(f => Ipv4Address.Parse("192.0.2.77").Write(f.AsSpan(Ip + 16))), c => c.DroppedNotForUs);

    [Fact]
    public void Datagram_for_an_unjoined_multicast_group_is_dropped() =>
        AssertDropped(Mutate(f => Ipv4Address.Parse("239.1.2.3").Write(f.AsSpan(Ip + 16))), c => c.DroppedNotForUs);

    [Fact]
    public void Ethernet_padding_is_trimmed_by_the_total_length()
    {
        using var h = HarnessWithPeer();
        var padded = new byte[GoodEcho().Length + 18];
        GoodEcho().CopyTo(padded, 0);
        padded.AsSpan(padded.Length - 18).Fill(0xEE); // padding counts in no checksum and is not echoed
        var reply = Assert.Single(h.Feed(padded));
        Assert.Equal(Frames.Hex(ExpectedReply(reply)), Frames.Hex(reply));
    }

    [Theory]
    [InlineData("192.0.2.255")]
    [InlineData("255.255.255.255")]
    public void Broadcast_destinations_are_accepted_but_echo_is_not_answered(string destination)
    {
        using var h = HarnessWithPeer();
        var f = EchoRequest(0x1234, 1, Data, Ipv4Address.Parse(destination));
        MacAddress.Broadcast.Write(f);
        Assert.Empty(h.Feed(f));
        Assert.Equal(1, h.Stack.Ip.Counters.PacketsDelivered);
        Assert.Equal(1, h.Stack.Icmp.Counters.EchoRequestsIgnoredBroadcast);
        Assert.Equal(0, h.Stack.Icmp.Counters.EchoRepliesSent);
    }

    [Fact]
    public void Header_with_options_is_accepted_and_the_payload_found_behind_them()
    {
        using var h = HarnessWithPeer();
        var good = GoodEcho();
        // Insert 4 bytes of options (NOP NOP NOP EOL) after the 20-byte header: IHL 6.
        var f = new byte[good.Length + 4];
        good.AsSpan(0, Ip + 20).CopyTo(f);
        f[Ip + 20] = 1; f[Ip + 21] = 1; f[Ip + 22] = 1; f[Ip + 23] = 0;
        good.AsSpan(Ip + 20).CopyTo(f.AsSpan(Ip + 24));
        f[Ip] = 0x46;
        BinaryPrimitives.WriteUInt16BigEndian(f.AsSpan(Ip + 2), (ushort)(f.Length - Ip));
        FixIpChecksum(f);
        var reply = Assert.Single(h.Feed(f));
        Assert.Equal(Frames.Hex(ExpectedReply(reply)), Frames.Hex(reply));
    }

    [Fact]
    public void Every_validation_in_one_stack_leaves_it_working()
    {
        using var h = HarnessWithPeer();
        var bad = new[]
        {
            GoodEcho()[..(Ip + 10)],
            Mutate(f => f[Ip] = 0x55),
            Mutate(f => f[Ip] = 0x43, fixChecksum: false),
            Mutate(f => BinaryPrimitives.WriteUInt16BigEndian(f.AsSpan(Ip + 2), 2000)),
            Mutate(f => f[Ip + 11] ^= 0x80, fixChecksum: false),
            Mutate(f => Ipv4Address.Broadcast.Write(f.AsSpan(Ip + 12))),
            Mutate(f => Ipv4Address.Parse("192.0.2.99").Write(f.AsSpan(Ip + 16))),
        };
        foreach (var f in bad) Assert.Empty(h.Feed(f));
        var c = h.Stack.Ip.Counters;
        Assert.Equal(bad.Length, c.DroppedTruncated + c.DroppedBadVersion + c.DroppedBadHeaderLength + c.DroppedBadTotalLength
                                 + c.DroppedBadChecksum + c.DroppedBadSource + c.DroppedNotForUs);
        Assert.Equal(bad.Length, c.PacketsReceived);
        var reply = Assert.Single(h.Feed(GoodEcho()));
        Assert.Equal(Frames.Hex(ExpectedReply(reply)), Frames.Hex(reply));
    }
}

internal static class ByteArrayTestExtensions
{
    public static byte[] Also(this byte[] b, Action<byte[]> change)
    {
        change(b);
        return b;
    }
}
