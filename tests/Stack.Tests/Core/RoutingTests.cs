using NetStack;
using NetStack.Arp;
using NetStack.Icmp;
using NetStack.Link;
using Stack.Tests.Support;
using static Stack.Tests.Support.StackHarness;

namespace Stack.Tests.Core;

public class RoutingTests
{
    [Fact]
    public void Off_subnet_destination_goes_to_the_gateway_mac_with_the_final_ip()
    {
        using var h = new StackHarness(c => c with { Gateway = PeerIp });
        _ = h.Stack.PingAsync(Ipv4Address.Parse("198.51.100.7"));
        h.Poll();
        // ARP is for the gateway, not the far destination.
        var who = Assert.Single(h.Device.Sent);
        Assert.Equal(PeerIp, ArpPacket.TargetProtocol(who.AsSpan(Ethernet.HeaderLength)));

        var sent = h.Feed(Frames.Arp(ArpPacket.OpReply, PeerMac, OurMac, PeerMac, PeerIp, OurMac, OurIp));
        var echo = Assert.Single(sent);
        Assert.Equal(PeerMac, Ethernet.Destination(echo));
        Assert.Equal(Ipv4Address.Parse("198.51.100.7"), NetStack.IPv4.Ipv4Header.Destination(echo.AsSpan(Ethernet.HeaderLength)));
    }

    [Fact]
    public void Subnet_broadcast_goes_to_the_broadcast_mac_without_arp()
    {
        using var h = new StackHarness();
        _ = h.Stack.PingAsync(Ipv4Address.Parse("192.0.2.255"));
        h.Poll();
        var f = Assert.Single(h.Device.Sent);
        Assert.Equal(MacAddress.Broadcast, Ethernet.Destination(f));
        Assert.Equal(Ethernet.TypeIpv4, Ethernet.EtherType(f));
    }

    [Fact]
    public void Frames_for_other_macs_and_our_own_echoes_are_dropped_and_counted()
    {
        using var h = new StackHarness();
        var other = MacAddress.Parse("02-99-99-99-99-99");
        var echo = Frames.Ipv4(PeerMac, other, PeerIp, OurIp, 1, Frames.IcmpEcho(8, 1, 1, new byte[8]));
        Assert.Empty(h.Feed(echo));
        var own = Frames.Ipv4(OurMac, OurMac, PeerIp, OurIp, 1, Frames.IcmpEcho(8, 1, 1, new byte[8]));
        Assert.Empty(h.Feed(own));
        Assert.Equal(1, h.Stack.EthernetCounters.DroppedNotForUs);
        Assert.Equal(1, h.Stack.EthernetCounters.DroppedOwnSource);
    }
}

public class LinkBroadcastErrorTests
{
    [Fact]
    public void No_port_unreachable_for_a_unicast_datagram_that_came_in_a_broadcast_frame()
    {
        using var h = new Support.StackHarness();
        h.Run(h.Stack.AddArpEntryAsync(PeerIp, PeerMac));
        var udp = new byte[12];
        System.Buffers.Binary.BinaryPrimitives.WriteUInt16BigEndian(udp, 1234);
        System.Buffers.Binary.BinaryPrimitives.WriteUInt16BigEndian(udp.AsSpan(2), 9);
        System.Buffers.Binary.BinaryPrimitives.WriteUInt16BigEndian(udp.AsSpan(4), 12);
        // The same datagram to a closed port: in a unicast frame it draws port unreachable, in a broadcast frame nothing.
        Assert.Empty(h.Feed(Frames.Ipv4(PeerMac, MacAddress.Broadcast, PeerIp, OurIp, 17, udp)));
        var reply = Assert.Single(h.Feed(Frames.Ipv4(PeerMac, OurMac, PeerIp, OurIp, 17, udp)));
        Assert.Equal(IcmpCodes.TypeDestinationUnreachable, reply[Ethernet.HeaderLength + 20]);
        Assert.Equal(IcmpCodes.PortUnreachable, reply[Ethernet.HeaderLength + 21]);
    }
}
