using NetStack;
using NetStack.Link;
using PacketDotNet;
using Stack.Tests.Support;
using static Stack.Tests.Support.StackHarness;

namespace Stack.Tests.Core;

/// <summary>
/// The stack writes frames with its own span-based codec (no allocation per packet); PacketDotNet, an
/// independent implementation, must read them back with the same field values.
/// </summary>
public class PacketDotNetOracleTests
{
    [Fact]
    public void Arp_reply_we_send_reads_back_in_PacketDotNet()
    {
        using var h = new StackHarness();
        var sent = h.Feed(Frames.Arp(NetStack.Arp.ArpPacket.OpRequest, PeerMac, MacAddress.Broadcast, PeerMac, PeerIp, MacAddress.Zero, OurIp));
        var eth = (EthernetPacket)Packet.ParsePacket(LinkLayers.Ethernet, Assert.Single(sent));
        var arp = eth.Extract<ArpPacket>();
        Assert.NotNull(arp);
        Assert.Equal(ArpOperation.Response, arp.Operation);
        Assert.Equal(OurIp.ToIPAddress(), arp.SenderProtocolAddress);
        Assert.Equal(OurMac.ToPhysicalAddress(), arp.SenderHardwareAddress);
        Assert.Equal(PeerIp.ToIPAddress(), arp.TargetProtocolAddress);
        Assert.Equal(PeerMac.ToPhysicalAddress(), arp.TargetHardwareAddress);
    }

    [Fact]
    public void Echo_reply_we_send_has_valid_checksums_in_PacketDotNet()
    {
        using var h = new StackHarness();
        h.Run(h.Stack.AddArpEntryAsync(PeerIp, PeerMac));
        var payload = Enumerable.Range(0, 56).Select(i => (byte)i).ToArray();
        var sent = h.Feed(Frames.Ipv4(PeerMac, OurMac, PeerIp, OurIp, 1, Frames.IcmpEcho(8, 0x1234, 7, payload), ttl: 63));
        var eth = (EthernetPacket)Packet.ParsePacket(LinkLayers.Ethernet, Assert.Single(sent));
        var ip = eth.Extract<IPv4Packet>();
        Assert.True(ip.ValidIPChecksum);
        Assert.Equal(OurIp.ToIPAddress(), ip.SourceAddress);
        Assert.Equal(PeerIp.ToIPAddress(), ip.DestinationAddress);
        Assert.Equal(64, ip.TimeToLive);
        var icmp = eth.Extract<IcmpV4Packet>();
        Assert.Equal(IcmpV4TypeCode.EchoReply, icmp.TypeCode);
        Assert.Equal(0x1234, icmp.Id);
        Assert.Equal(7, icmp.Sequence);
        Assert.True(icmp.ValidIcmpChecksum);
        Assert.Equal(payload, icmp.PayloadData);
    }

    [Fact]
    public void Fragments_we_send_carry_offsets_and_flags_PacketDotNet_agrees_with()
    {
        using var h = new StackHarness();
        h.Run(h.Stack.AddArpEntryAsync(PeerIp, PeerMac));
        h.Device.Sent.Clear();
        _ = h.Stack.PingAsync(PeerIp, payloadSize: 4000);
        h.Poll();
        var ips = h.Device.Sent.Select(f => ((EthernetPacket)Packet.ParsePacket(LinkLayers.Ethernet, f)).Extract<IPv4Packet>()).ToList();
        // 4008 bytes of ICMP in 1480-byte pieces: 1480 + 1480 + 1048.
        Assert.Equal(new[] { 0, 1480 / 8, 2960 / 8 }, ips.Select(p => p.FragmentOffset));
        Assert.Equal(new[] { 1500, 1500, 20 + 1048 }, ips.Select(p => (int)p.TotalLength));
        Assert.All(ips, p => Assert.True(p.ValidIPChecksum));
        Assert.Equal(new[] { true, true, false }, ips.Select(p => (p.FragmentFlags & 0x1) != 0));
        Assert.Single(ips.Select(p => p.Id).Distinct());
        Assert.True(h.Device.Sent.All(f => f.Length <= 1514));
    }
}
