using System.Buffers.Binary;
using NetStack;
using NetStack.IPv4;
using NetStack.Icmp;
using NetStack.Link;
using NetStack.Udp;
using Stack.Tests.Support;
using static Stack.Tests.Support.StackHarness;

namespace Stack.Tests.Udp;

/// <summary>Crafted UDP datagram in, exact reply (or exact silence and a counter) out.</summary>
public class UdpRuleTests
{
    /// <summary>A UDP datagram built by hand (RFC 768), checksum over the pseudo-header unless told otherwise.</summary>
    internal static byte[] Udp(Ipv4Address src, ushort srcPort, Ipv4Address dst, ushort dstPort, ReadOnlySpan<byte> data,
        int? lengthField = null, ushort? checksum = null)
    {
        var d = new byte[8 + data.Length];
        BinaryPrimitives.WriteUInt16BigEndian(d, srcPort);
        BinaryPrimitives.WriteUInt16BigEndian(d.AsSpan(2), dstPort);
        BinaryPrimitives.WriteUInt16BigEndian(d.AsSpan(4), (ushort)(lengthField ?? d.Length));
        data.CopyTo(d.AsSpan(8));
        if (checksum is { } c) BinaryPrimitives.WriteUInt16BigEndian(d.AsSpan(6), c);
        else
        {
            // Sum by hand: pseudo-header (src, dst, zero, protocol 17, UDP length) then the datagram, 16 bits at a time.
            long sum = (src.Value >> 16) + (src.Value & 0xFFFF) + (dst.Value >> 16) + (dst.Value & 0xFFFF) + 17 + d.Length;
            for (int i = 0; i < d.Length; i += 2) sum += (d[i] << 8) | (i + 1 < d.Length ? d[i + 1] : 0);
            while (sum >> 16 != 0) sum = (sum & 0xFFFF) + (sum >> 16);
            var v = (ushort)~sum;
            BinaryPrimitives.WriteUInt16BigEndian(d.AsSpan(6), v == 0 ? (ushort)0xFFFF : v);
        }
        return d;
    }

    private static byte[] FromPeer(byte[] udp, Ipv4Address? dst = null, MacAddress? ethDst = null) =>
        Frames.Ipv4(PeerMac, ethDst ?? OurMac, PeerIp, dst ?? OurIp, (byte)IpProtocol.Udp, udp, id: 0x1234);

    /// <summary>ICMP destination unreachable, port unreachable (type 3 code 3), quoting <paramref name="quote"/>.</summary>
    private static byte[] PortUnreachable(ReadOnlySpan<byte> quote)
    {
        var icmp = new byte[8 + quote.Length];
        icmp[0] = 3;
        icmp[1] = 3;
        quote.CopyTo(icmp.AsSpan(8));
        BinaryPrimitives.WriteUInt16BigEndian(icmp.AsSpan(2), Checksum.Compute(icmp));
        return icmp;
    }

    /// <summary>What the peer sends back about our datagram 192.0.2.2:5000 -> 192.0.2.1:7 (IP header + 8 bytes quoted).</summary>
    private static byte[] PortUnreachableFromPeerAboutOurs()
    {
        var ours = Frames.Ipv4(OurMac, PeerMac, OurIp, PeerIp, (byte)IpProtocol.Udp, Udp(OurIp, 5000, PeerIp, 7, "x"u8));
        return Frames.Ipv4(PeerMac, OurMac, PeerIp, OurIp, (byte)IpProtocol.Icmp, PortUnreachable(ours.AsSpan(Ethernet.HeaderLength, 28)));
    }

    private static StackHarness WithPeerKnown()
    {
        var h = new StackHarness();
        h.Run(h.Stack.AddArpEntryAsync(PeerIp, PeerMac));
        return h;
    }

    [Fact]
    public void Datagram_to_a_closed_port_gets_port_unreachable_quoting_the_whole_datagram()
    {
        using var h = WithPeerKnown();
        var offending = FromPeer(Udp(PeerIp, 5000, OurIp, 9999, "hello"u8));
        var reply = Assert.Single(h.Feed(offending));

        // ICMP type 3 code 3, then the offending IP datagram (it is short, so all of it: RFC 1812 4.3.2.3).
        var icmp = PortUnreachable(offending.AsSpan(Ethernet.HeaderLength));
        var id = Ipv4Header.Identification(reply.AsSpan(Ethernet.HeaderLength)); // the stack's own IP id counter
        var expected = Frames.Ipv4(OurMac, PeerMac, OurIp, PeerIp, (byte)IpProtocol.Icmp, icmp, id: id);
        Assert.Equal(Frames.Hex(expected), Frames.Hex(reply));
        Assert.Equal(1, h.Stack.Udp.Counters.DroppedNoSocket);
        Assert.Equal(1, h.Stack.Icmp.Counters.DestinationUnreachableSent);
    }

    [Fact]
    public void Broadcast_to_a_closed_port_is_dropped_silently()
    {
        using var h = WithPeerKnown();
        Assert.Empty(h.Feed(FromPeer(Udp(PeerIp, 5000, Ipv4Address.Broadcast, 9999, "x"u8), Ipv4Address.Broadcast, MacAddress.Broadcast)));
        var subnet = h.Stack.Config.SubnetBroadcast;
        Assert.Empty(h.Feed(FromPeer(Udp(PeerIp, 5000, subnet, 9999, "x"u8), subnet, MacAddress.Broadcast)));
        Assert.Equal(2, h.Stack.Udp.Counters.DroppedNoSocket);
        Assert.Equal(0, h.Stack.Icmp.Counters.DestinationUnreachableSent);
    }

    [Fact]
    public void Bound_socket_receives_data_and_sender()
    {
        using var h = WithPeerKnown();
        using var s = h.Run(h.Stack.CreateUdpSocketAsync(7));
        Assert.Empty(h.Feed(FromPeer(Udp(PeerIp, 5000, OurIp, 7, "hello"u8))));
        var d = h.Run(s.ReceiveAsync());
        Assert.Equal(PeerIp, d.RemoteAddress);
        Assert.Equal(5000, d.RemotePort);
        Assert.Equal("hello"u8.ToArray(), d.Data);
        Assert.Equal(1, h.Stack.Udp.Counters.DatagramsDelivered);
    }

    [Fact]
    public void Bad_checksum_is_dropped_and_counted()
    {
        using var h = WithPeerKnown();
        using var s = h.Run(h.Stack.CreateUdpSocketAsync(7));
        var udp = Udp(PeerIp, 5000, OurIp, 7, "hello"u8);
        udp[^1] ^= 0x01; // one bit flipped in the data after the checksum was computed
        Assert.Empty(h.Feed(FromPeer(udp)));
        Assert.Equal(1, h.Stack.Udp.Counters.DroppedBadChecksum);
        Assert.Equal(0, h.Stack.Udp.Counters.DatagramsDelivered);
        var row = Assert.Single(h.Run(h.Stack.GetConnectionsAsync()));
        Assert.Equal(0, row.RecvQ);
    }

    [Fact]
    public void Zero_checksum_means_none_and_is_accepted()
    {
        using var h = WithPeerKnown();
        using var s = h.Run(h.Stack.CreateUdpSocketAsync(7));
        h.Feed(FromPeer(Udp(PeerIp, 5000, OurIp, 7, "no checksum"u8, checksum: 0)));
        Assert.Equal("no checksum"u8.ToArray(), h.Run(s.ReceiveAsync()).Data);
        Assert.Equal(0, h.Stack.Udp.Counters.DroppedBadChecksum);
    }

    [Fact]
    public void Length_field_that_lies_is_dropped_and_counted()
    {
        using var h = WithPeerKnown();
        using var s = h.Run(h.Stack.CreateUdpSocketAsync(7));
        // Longer than the IP payload (the datagram was cut short), and shorter than the header itself.
        Assert.Empty(h.Feed(FromPeer(Udp(PeerIp, 5000, OurIp, 7, "hello"u8, lengthField: 14, checksum: 0))));
        Assert.Empty(h.Feed(FromPeer(Udp(PeerIp, 5000, OurIp, 7, "hello"u8, lengthField: 7, checksum: 0))));
        // Shorter than a UDP header at all.
        Assert.Empty(h.Feed(FromPeer(new byte[] { 0x13, 0x88, 0x00, 0x07, 0x00, 0x08 })));
        Assert.Equal(2, h.Stack.Udp.Counters.DroppedBadLength);
        Assert.Equal(1, h.Stack.Udp.Counters.DroppedTruncated);
        Assert.Equal(0, h.Stack.Udp.Counters.DatagramsDelivered);
    }

    [Fact]
    public void Bytes_beyond_the_length_field_are_not_data()
    {
        using var h = WithPeerKnown();
        using var s = h.Run(h.Stack.CreateUdpSocketAsync(7));
        var udp = Udp(PeerIp, 5000, OurIp, 7, "abc"u8);
        h.Feed(FromPeer([.. udp, 0xEE, 0xEE, 0xEE]));
        Assert.Equal("abc"u8.ToArray(), h.Run(s.ReceiveAsync()).Data);
    }

    [Fact]
    public void Sent_datagram_is_exact_with_checksum()
    {
        using var h = WithPeerKnown();
        using var s = h.Run(h.Stack.CreateUdpSocketAsync(5000));
        h.Device.Sent.Clear();
        h.Run(s.SendToAsync(PeerIp, 7, "abc"u8.ToArray()));
        var frame = Assert.Single(h.Device.Sent);
        var id = Ipv4Header.Identification(frame.AsSpan(Ethernet.HeaderLength));
        var expected = Frames.Ipv4(OurMac, PeerMac, OurIp, PeerIp, (byte)IpProtocol.Udp, Udp(OurIp, 5000, PeerIp, 7, "abc"u8), id: id);
        Assert.Equal(Frames.Hex(expected), Frames.Hex(frame));
        Assert.Equal(1, h.Stack.Udp.Counters.DatagramsSent);
    }

    [Fact]
    public void Checksum_that_computes_to_zero_is_sent_as_all_ones()
    {
        using var h = WithPeerKnown();
        using var s = h.Run(h.Stack.CreateUdpSocketAsync(5000));
        // Choose two data bytes that make the one's-complement sum 0xFFFF, so the computed checksum is 0.
        var probe = Udp(OurIp, 5000, PeerIp, 7, new byte[2], checksum: 0);
        long sum = (OurIp.Value >> 16) + (OurIp.Value & 0xFFFF) + (PeerIp.Value >> 16) + (PeerIp.Value & 0xFFFF) + 17 + probe.Length;
        for (int i = 0; i < probe.Length; i += 2) sum += (probe[i] << 8) | probe[i + 1];
        while (sum >> 16 != 0) sum = (sum & 0xFFFF) + (sum >> 16);
        var fill = (ushort)(0xFFFF - sum);
        var data = new byte[2];
        BinaryPrimitives.WriteUInt16BigEndian(data, fill);

        h.Device.Sent.Clear();
        h.Run(s.SendToAsync(PeerIp, 7, data));
        var udp = Assert.Single(h.Device.Sent).AsSpan(Ethernet.HeaderLength + 20);
        Assert.Equal(0xFFFF, BinaryPrimitives.ReadUInt16BigEndian(udp[6..]));
    }

    [Fact]
    public void Datagram_above_the_mtu_leaves_in_fragments_that_reassemble_to_it()
    {
        using var h = WithPeerKnown();
        using var s = h.Run(h.Stack.CreateUdpSocketAsync(5000));
        var data = new byte[8000];
        new Random(5).NextBytes(data);
        h.Device.Sent.Clear();
        h.Run(s.SendToAsync(PeerIp, 7, data));

        Assert.Equal(6, h.Device.Sent.Count); // 8008 bytes of UDP in 1480-byte pieces
        var whole = new byte[8008];
        foreach (var f in h.Device.Sent)
        {
            var ip = f.AsSpan(Ethernet.HeaderLength);
            ip[20..Ipv4Header.TotalLength(ip)].CopyTo(whole.AsSpan(Ipv4Header.FragmentOffset(ip)));
        }
        Assert.Equal(Udp(OurIp, 5000, PeerIp, 7, data), whole);
    }

    [Fact]
    public void Largest_datagram_of_65507_bytes_leaves_in_45_fragments()
    {
        using var h = WithPeerKnown();
        using var s = h.Run(h.Stack.CreateUdpSocketAsync(5000));
        h.Device.Sent.Clear();
        h.Run(s.SendToAsync(PeerIp, 7, new byte[UdpHeader.MaxPayload]));
        Assert.Equal(45, h.Device.Sent.Count); // 65515 bytes of UDP in 1480-byte pieces
        var last = h.Device.Sent[^1].AsSpan(Ethernet.HeaderLength);
        Assert.Equal(65515, Ipv4Header.FragmentOffset(last) + Ipv4Header.TotalLength(last) - 20);
    }

    [Fact]
    public void Port_unreachable_about_our_datagram_fails_the_connected_sockets_next_receive_once()
    {
        using var h = WithPeerKnown();
        using var s = h.Stack.CreateUdpSocket();
        h.Run(s.BindAsync(5000));
        h.Run(s.ConnectAsync(PeerIp, 7));
        h.Feed(PortUnreachableFromPeerAboutOurs());

        var e = Assert.Throws<StackException>(() => h.Run(s.ReceiveAsync()));
        Assert.Equal(StackError.PortUnreachable, e.Error);
        Assert.Contains("192.0.2.1:7", e.Message);
        var next = s.ReceiveAsync();
        h.Poll();
        Assert.False(next.IsCompleted); // reported once, like SO_ERROR
        Assert.Equal(1, h.Stack.Udp.Counters.ErrorsDelivered);
    }

    [Fact]
    public void Port_unreachable_does_not_disturb_an_unconnected_socket()
    {
        using var h = WithPeerKnown();
        using var s = h.Run(h.Stack.CreateUdpSocketAsync(5000));
        h.Feed(PortUnreachableFromPeerAboutOurs());
        h.Run(s.SendToAsync(PeerIp, 8, "still fine"u8.ToArray()));
        Assert.Equal(1, h.Stack.Udp.Counters.ErrorsReceived);
        Assert.Equal(0, h.Stack.Udp.Counters.ErrorsDelivered);
    }

    [Fact]
    public void Connected_socket_ignores_other_peers_which_get_port_unreachable()
    {
        using var h = WithPeerKnown();
        using var s = h.Stack.CreateUdpSocket();
        h.Run(s.ConnectAsync(PeerIp, 7));
        var port = s.LocalPort;
        var sent = h.Feed(FromPeer(Udp(PeerIp, 8, OurIp, port, "wrong port"u8)));
        Assert.Equal(IcmpCodes.PortUnreachable, Assert.Single(sent)[Ethernet.HeaderLength + 21]);
        h.Feed(FromPeer(Udp(PeerIp, 7, OurIp, port, "right"u8)));
        Assert.Equal("right"u8.ToArray(), h.Run(s.ReceiveAsync()).Data);
    }

    [Fact]
    public void Netstat_row_shows_bound_endpoint_and_queued_bytes()
    {
        using var h = WithPeerKnown();
        using var s = h.Run(h.Stack.CreateUdpSocketAsync(7));
        h.Feed(FromPeer(Udp(PeerIp, 5000, OurIp, 7, "12345"u8)));
        h.Feed(FromPeer(Udp(PeerIp, 5000, OurIp, 7, "678"u8)));
        var row = Assert.Single(h.Run(h.Stack.GetConnectionsAsync()));
        Assert.Equal(s.Id, row.Id);
        Assert.Equal(NetStack.SocketProtocol.Udp, row.Protocol);
        Assert.Equal(Ipv4Address.Any, row.LocalAddress);
        Assert.Equal(7, row.LocalPort);
        Assert.Equal("Bound", row.State);
        Assert.Equal(8, row.RecvQ);
    }
}
