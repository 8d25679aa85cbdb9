using NetStack.Diagnostics;
using NetStack;
using NetStack.Link;
using Stack.Tests.Support;
using static Stack.Tests.Support.StackHarness;

namespace Stack.Tests.Link;

/// <summary>
/// The Ethernet layer on its own, with no stack around it: a device below, recording protocols above. What it
/// keeps, what it drops (counted), what it tells the layers above about how a frame arrived, and how it frames.
/// </summary>
public class EthernetLayerTests
{
    private sealed class Recorder : ILinkProtocolHandler
    {
        public readonly List<(byte[] Packet, LinkInfo Link)> Packets = new();
        public void OnPacket(ReadOnlySpan<byte> packet, in LinkInfo link, TimeSpan now) => Packets.Add((packet.ToArray(), link));
    }

    private readonly TestDevice _device = new(OurMac);
    private readonly EthernetLayer _ethernet;
    private readonly Recorder _ip = new(), _arp = new();

    public EthernetLayerTests()
    {
        _ethernet = new EthernetLayer(_device, OurMac, 1500, new PacketLog(16));
        _ethernet.Register(Ethernet.TypeIpv4, _ip);
        _ethernet.Register(Ethernet.TypeArp, _arp);
    }

    private static byte[] Frame(MacAddress dst, MacAddress src, ushort type, int payload = 46)
    {
        var f = new byte[Ethernet.HeaderLength + payload];
        Ethernet.WriteHeader(f, dst, src, type);
        for (int i = 0; i < payload; i++) f[Ethernet.HeaderLength + i] = (byte)i;
        return f;
    }

    [Fact]
    public void Unicast_to_us_goes_to_the_protocol_of_its_EtherType_with_how_it_arrived()
    {
        _ethernet.OnFrame(Frame(OurMac, PeerMac, Ethernet.TypeIpv4), TimeSpan.Zero);
        _ethernet.OnFrame(Frame(MacAddress.Broadcast, PeerMac, Ethernet.TypeArp), TimeSpan.Zero);

        var (packet, link) = Assert.Single(_ip.Packets);
        Assert.Equal(46, packet.Length); // the payload only
        Assert.Equal(PeerMac, link.Source);
        Assert.False(link.IsBroadcast);
        Assert.Equal(_device.Name, link.Interface);
        var (_, arpLink) = Assert.Single(_arp.Packets);
        Assert.True(arpLink.IsBroadcast);
    }

    [Fact]
    public void Frames_not_for_us_are_counted_and_dropped()
    {
        var other = MacAddress.Parse("02-00-00-00-00-09");
        _ethernet.OnFrame(Frame(other, PeerMac, Ethernet.TypeIpv4), TimeSpan.Zero);                 // someone else's
        _ethernet.OnFrame(Frame(MacAddress.Broadcast, OurMac, Ethernet.TypeArp), TimeSpan.Zero);    // claims our MAC
        _ethernet.OnFrame(Frame(OurMac, PeerMac, Ethernet.TypeIpv6), TimeSpan.Zero);                // nobody speaks it
        _ethernet.OnFrame(new byte[10], TimeSpan.Zero);                                           // shorter than a header

        Assert.Empty(_ip.Packets);
        Assert.Empty(_arp.Packets);
        var c = _ethernet.Counters;
        Assert.Equal(4, c.FramesReceived);
        Assert.Equal(1, c.DroppedNotForUs);
        Assert.Equal(1, c.DroppedOwnSource);
        Assert.Equal(1, c.DroppedUnknownEtherType);
        Assert.Equal(1, c.DroppedTruncated);
    }

    [Fact]
    public void A_multicast_group_is_accepted_once_joined_and_marked_as_a_link_broadcast()
    {
        var group = MacAddress.ForIpv4Multicast(Ipv4Address.Parse("239.1.2.3"));
        _ethernet.OnFrame(Frame(group, PeerMac, Ethernet.TypeIpv4), TimeSpan.Zero);
        Assert.Empty(_ip.Packets);
        Assert.Equal(1, _ethernet.Counters.DroppedNotForUs);

        _ethernet.AcceptMulticast(group);
        _ethernet.OnFrame(Frame(group, PeerMac, Ethernet.TypeIpv4), TimeSpan.Zero);
        Assert.True(Assert.Single(_ip.Packets).Link.IsBroadcast);
    }

    [Fact]
    public void Send_writes_the_header_in_the_room_in_front_and_transmits()
    {
        var frame = new byte[Ethernet.HeaderLength + 20];
        frame[Ethernet.HeaderLength] = 0x45;
        _ethernet.Send(frame, PeerMac, Ethernet.TypeIpv4, TimeSpan.Zero);

        var sent = Assert.Single(_device.Sent);
        Assert.Equal(PeerMac, Ethernet.Destination(sent));
        Assert.Equal(OurMac, Ethernet.Source(sent));
        Assert.Equal(Ethernet.TypeIpv4, Ethernet.EtherType(sent));
        Assert.Equal(0x45, sent[Ethernet.HeaderLength]);
        Assert.Equal(1, _ethernet.Counters.FramesSent);
        Assert.Equal(sent.Length, _ethernet.Counters.BytesSent);
    }
}
