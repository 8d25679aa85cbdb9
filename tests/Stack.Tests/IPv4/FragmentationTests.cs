using NetStack;
using NetStack.Arp;
using NetStack.IPv4;
using NetStack.Icmp;
using NetStack.Link;
using Stack.Tests.Support;
using static Stack.Tests.IPv4.IpTestFrames;
using static Stack.Tests.Support.StackHarness;

namespace Stack.Tests.IPv4;

/// <summary>Fragmentation on send (RFC 791 3.2): exact offsets, flags and lengths.</summary>
public class FragmentationTests
{
    private static byte[] ExpectedEcho(ushort seq, int size)
    {
        var data = new byte[size];
        for (int i = 0; i < size; i++) data[i] = (byte)(0x10 + i);
        return data;
    }

    private static void AssertFragments(List<byte[]> sent, int mtu, int icmpLength)
    {
        var chunk = (mtu - 20) & ~7;
        var count = (icmpLength + chunk - 1) / chunk;
        Assert.Equal(count, sent.Count);
        var id = IpId(sent[0]);
        for (int i = 0; i < count; i++)
        {
            var f = sent[i];
            var ip = f.AsSpan(Ethernet.HeaderLength);
            var len = Math.Min(chunk, icmpLength - i * chunk);
            Assert.Equal(PeerMac, Ethernet.Destination(f));
            Assert.Equal(Ethernet.HeaderLength + 20 + len, f.Length);
            Assert.Equal(20 + len, Ipv4Header.TotalLength(ip));
            Assert.Equal(id, Ipv4Header.Identification(ip));
            Assert.Equal(i * chunk, Ipv4Header.FragmentOffset(ip));
            Assert.Equal(i < count - 1, Ipv4Header.MoreFragments(ip));
            Assert.False(Ipv4Header.DontFragment(ip));
            Assert.Equal(64, Ipv4Header.Ttl(ip));
            Assert.True(Checksum.Verify(0, ip[..20]));
            Assert.True(20 + len <= mtu);
        }
    }

    [Theory]
    [InlineData(1500, 3000)]   // 1480 + 1480 + 48
    [InlineData(1500, 2952)]   // exactly two full fragments: 1480 + 1480
    [InlineData(1500, 1473)]   // 1481 bytes of ICMP: one byte over
    [InlineData(576, 1000)]    // 552-byte chunks
    public void Large_echo_request_leaves_in_exact_fragments(int mtu, int payload)
    {
        using var h = HarnessWithPeer(mtu: mtu);
        _ = h.Stack.PingAsync(PeerIp, payloadSize: payload);
        h.Poll();
        var sent = h.Device.Sent;
        AssertFragments(sent, mtu, 8 + payload);
        var echo = Reassemble(sent);
        Assert.Equal(IcmpCodes.TypeEchoRequest, echo[0]);
        Assert.True(Checksum.Verify(0, echo));
        Assert.Equal(Frames.Hex(ExpectedEcho(0, payload)), Frames.Hex(echo.AsSpan(8)));
        Assert.Equal(1, h.Stack.Ip.Counters.DatagramsFragmented);
        Assert.Equal(sent.Count, h.Stack.Ip.Counters.FragmentsSent);
    }

    [Fact]
    public void Datagram_that_fits_leaves_whole()
    {
        using var h = HarnessWithPeer();
        _ = h.Stack.PingAsync(PeerIp, payloadSize: 1472); // 1500 bytes exactly
        h.Poll();
        var f = Assert.Single(h.Device.Sent);
        Assert.Equal(1514, f.Length);
        Assert.Equal(0, Ipv4Header.FlagsAndOffset(f.AsSpan(Ethernet.HeaderLength)));
        Assert.Equal(0, h.Stack.Ip.Counters.DatagramsFragmented);
    }

    [Fact]
    public void Dont_fragment_and_too_big_is_message_too_long()
    {
        using var h = HarnessWithPeer();
        var r = h.Run(h.Stack.InvokeAsync(now => h.Stack.Ip.Send(PeerIp, IpProtocol.Udp, 1481, now, dontFragment: true)));
        Assert.Equal(StackError.MessageTooLong, r);
        Assert.Empty(h.Device.Sent);
        Assert.Equal(1, h.Stack.Ip.Counters.DroppedTooBig);

        r = h.Run(h.Stack.InvokeAsync(now => h.Stack.Ip.Send(PeerIp, IpProtocol.Udp, 1480, now, dontFragment: true)));
        Assert.Equal(StackError.None, r);
        var f = Assert.Single(h.Device.Sent);
        Assert.Equal(Ipv4Header.FlagDontFragment, Ipv4Header.FlagsAndOffset(f.AsSpan(Ethernet.HeaderLength)));
    }

    [Fact]
    public void Payload_beyond_65515_is_message_too_long()
    {
        using var h = HarnessWithPeer();
        var r = h.Run(h.Stack.InvokeAsync(now => h.Stack.Ip.Send(PeerIp, IpProtocol.Udp, Ipv4Layer.MaxPayload + 1, now)));
        Assert.Equal(StackError.MessageTooLong, r);
        var e = Assert.Throws<StackException>(() => h.Run(h.Stack.PingAsync(PeerIp, payloadSize: Ipv4Layer.MaxPayload - 7)));
        Assert.Equal(StackError.InvalidArgument, e.Error);
    }

    [Fact]
    public void Largest_datagram_fragments_into_45_pieces()
    {
        using var h = HarnessWithPeer();
        _ = h.Stack.PingAsync(PeerIp, payloadSize: Ipv4Layer.MaxPayload - 8);
        h.Poll();
        AssertFragments(h.Device.Sent, 1500, Ipv4Layer.MaxPayload);
        Assert.Equal(45, h.Device.Sent.Count);
        Assert.Equal(Ipv4Layer.MaxPayload, Reassemble(h.Device.Sent).Length);
    }

    [Fact]
    public void Datagram_queued_for_arp_is_fragmented_when_flushed()
    {
        using var h = new StackHarness();
        _ = h.Stack.PingAsync(PeerIp, payloadSize: 3000);
        h.Poll();
        Assert.Equal(Ethernet.TypeArp, Ethernet.EtherType(Assert.Single(h.Device.Sent)));
        var sent = h.Feed(Frames.Arp(ArpPacket.OpReply, PeerMac, OurMac, PeerMac, PeerIp, OurMac, OurIp));
        AssertFragments(sent, 1500, 3008);
        Assert.Equal(Frames.Hex(ExpectedEcho(0, 3000)), Frames.Hex(Reassemble(sent).AsSpan(8)));
        Assert.Equal(1, h.Stack.Arp.Counters.PendingFlushed);
    }
}
