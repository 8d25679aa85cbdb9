using NetStack;
using NetStack.Arp;
using NetStack.Icmp;
using NetStack.Link;
using Stack.Tests.Support;
using static Stack.Tests.Support.StackHarness;

namespace Stack.Tests.Arp;

public class ArpRuleTests
{
    [Fact]
    public void Request_for_our_address_gets_exact_reply_and_teaches_the_cache()
    {
        using var h = new StackHarness();
        var sent = h.Feed(Frames.Arp(ArpPacket.OpRequest, PeerMac, MacAddress.Broadcast, PeerMac, PeerIp, MacAddress.Zero, OurIp));

        var expected = Frames.Arp(ArpPacket.OpReply, OurMac, PeerMac, OurMac, OurIp, PeerMac, PeerIp);
        Assert.Equal(Frames.Hex(expected), Frames.Hex(Assert.Single(sent)));
        var entry = Assert.Single(h.Run(h.Stack.GetArpCacheAsync()));
        Assert.Equal(PeerIp, entry.IPAddress);
        Assert.Equal(PeerMac, entry.LinkLayerAddress);
        Assert.Equal(ArpState.Reachable, entry.State);
    }

    [Fact]
    public void Request_for_another_address_is_ignored_and_not_learned()
    {
        using var h = new StackHarness();
        var sent = h.Feed(Frames.Arp(ArpPacket.OpRequest, PeerMac, MacAddress.Broadcast, PeerMac, PeerIp, MacAddress.Zero, Ipv4Address.Parse("192.0.2.77")));
        Assert.Empty(sent);
        Assert.Empty(h.Run(h.Stack.GetArpCacheAsync()));
        Assert.Equal(1, h.Stack.Arp.Counters.DroppedNotForUs);
    }

    [Fact]
    public void Malformed_arp_is_counted_and_dropped()
    {
        using var h = new StackHarness();
        var f = Frames.Arp(ArpPacket.OpRequest, PeerMac, MacAddress.Broadcast, PeerMac, PeerIp, MacAddress.Zero, OurIp);
        f[Ethernet.HeaderLength + 4] = 8; // hardware length lies
        Assert.Empty(h.Feed(f));
        Assert.Empty(h.Feed(f[..30])); // truncated
        Assert.Equal(2, h.Stack.Arp.Counters.DroppedMalformed);
    }

    [Fact]
    public void Gratuitous_arp_is_sent_on_start()
    {
        var device = new TestDevice(OurMac);
        using var stack = new NetworkStack(device, new StackConfig { Address = OurIp }, new ManualClock(), seed: 1);
        stack.Poll(TimeSpan.Zero);
        var expected = Frames.Arp(ArpPacket.OpRequest, OurMac, MacAddress.Broadcast, OurMac, OurIp, MacAddress.Zero, OurIp);
        Assert.Equal(Frames.Hex(expected), Frames.Hex(Assert.Single(device.Sent)));
    }

    [Fact]
    public void Unresolved_address_gets_three_requests_one_second_apart_then_host_unreachable()
    {
        using var h = new StackHarness();
        var ping = h.Stack.PingAsync(PeerIp, timeout: TimeSpan.FromSeconds(10));
        h.Poll();
        var request = Frames.Arp(ArpPacket.OpRequest, OurMac, MacAddress.Broadcast, OurMac, OurIp, MacAddress.Zero, PeerIp);
        Assert.Equal(Frames.Hex(request), Frames.Hex(Assert.Single(h.Device.Sent)));
        Assert.Equal(ArpState.Incomplete, h.Run(h.Stack.GetArpCacheAsync())[0].State);

        h.Device.Sent.Clear();
        h.Advance(TimeSpan.FromSeconds(1));
        h.Advance(TimeSpan.FromSeconds(1));
        Assert.Equal(2, h.Device.Sent.Count);
        Assert.False(ping.IsCompleted);
        h.Advance(TimeSpan.FromSeconds(1));
        var reply = h.Run(ping);
        Assert.Equal(PingStatus.HostUnreachable, reply.Status);
        Assert.Equal(ArpState.Failed, h.Run(h.Stack.GetArpCacheAsync())[0].State);
        Assert.Equal(1, h.Stack.Arp.Counters.ResolutionFailures);

        // While Failed, senders are told at once; after the hold time the address is tried afresh.
        Assert.Equal(PingStatus.HostUnreachable, h.Run(h.Stack.PingAsync(PeerIp)).Status);
        h.Advance(TimeSpan.FromSeconds(3));
        Assert.Empty(h.Run(h.Stack.GetArpCacheAsync()));
    }

    [Fact]
    public void Reply_flushes_the_queued_datagram_to_the_resolved_mac()
    {
        using var h = new StackHarness();
        var ping = h.Stack.PingAsync(PeerIp, payloadSize: 8);
        h.Poll();
        var sent = h.Feed(Frames.Arp(ArpPacket.OpReply, PeerMac, OurMac, PeerMac, PeerIp, OurMac, OurIp));
        var echo = Assert.Single(sent);
        Assert.Equal(PeerMac, Ethernet.Destination(echo));
        Assert.Equal(Ethernet.TypeIpv4, Ethernet.EtherType(echo));
        Assert.Equal(1, h.Stack.Arp.Counters.PendingFlushed);
        Assert.False(ping.IsCompleted);
    }

    [Fact]
    public void A_full_queue_drops_its_oldest_datagram_and_keeps_the_latest()
    {
        // RFC 1122 2.3.2.2: the latest datagram for an unresolved address is saved. Before, the sender that found the
        // queue full failed with NoBufferSpace (the bench's first ping did, after RSTs to the peer filled the queue).
        using var h = new StackHarness(c => c with { Arp = c.Arp with { PendingPerAddress = 2 } });
        var pings = new[] { 0, 1, 2 }.Select(_ => h.Stack.PingAsync(PeerIp, payloadSize: 8, timeout: TimeSpan.FromSeconds(5))).ToArray();
        h.Poll();
        Assert.DoesNotContain(pings, p => p.IsFaulted);
        Assert.Equal(1, h.Stack.Arp.Counters.DroppedPendingOverflow);

        var flushed = h.Feed(Frames.Arp(ArpPacket.OpReply, PeerMac, OurMac, PeerMac, PeerIp, OurMac, OurIp));
        Assert.Equal(2, flushed.Count);
        foreach (var request in flushed)
        {
            var icmp = request.AsSpan(Ethernet.HeaderLength + 20).ToArray();
            icmp[0] = IcmpCodes.TypeEchoReply;
            icmp[2] = icmp[3] = 0;
            System.Buffers.Binary.BinaryPrimitives.WriteUInt16BigEndian(icmp.AsSpan(2), Checksum.Compute(icmp));
            h.Feed(Frames.Ipv4(PeerMac, OurMac, PeerIp, OurIp, 1, icmp));
        }
        Assert.Equal(PingStatus.Success, h.Run(pings[1]).Status);
        Assert.Equal(PingStatus.Success, h.Run(pings[2]).Status);
        Assert.False(pings[0].IsCompleted); // its request was the one dropped: lost, as on a wire
        h.Advance(TimeSpan.FromSeconds(5));
        Assert.Equal(PingStatus.TimedOut, h.Run(pings[0]).Status);
    }

    [Fact]
    public void Reachable_ages_to_stale_and_stale_in_use_is_reprobed_by_unicast()
    {
        using var h = new StackHarness();
        h.Feed(Frames.Arp(ArpPacket.OpRequest, PeerMac, MacAddress.Broadcast, PeerMac, PeerIp, MacAddress.Zero, OurIp));
        h.Advance(TimeSpan.FromSeconds(31));
        Assert.Equal(ArpState.Stale, h.Run(h.Stack.GetArpCacheAsync())[0].State);

        h.Device.Sent.Clear();
        _ = h.Stack.PingAsync(PeerIp);
        h.Poll();
        // The echo request goes out at once to the stale MAC, and a unicast probe checks the entry.
        Assert.Contains(h.Device.Sent, f => Ethernet.EtherType(f) == Ethernet.TypeIpv4 && Ethernet.Destination(f) == PeerMac);
        var probe = Assert.Single(h.Device.Sent, f => Ethernet.EtherType(f) == Ethernet.TypeArp);
        Assert.Equal(PeerMac, Ethernet.Destination(probe));

        h.Feed(Frames.Arp(ArpPacket.OpReply, PeerMac, OurMac, PeerMac, PeerIp, OurMac, OurIp));
        Assert.Equal(ArpState.Reachable, h.Run(h.Stack.GetArpCacheAsync())[0].State);
    }

    [Fact]
    public void Static_entry_is_never_replaced_by_the_wire_and_can_be_removed()
    {
        using var h = new StackHarness();
        var staticMac = MacAddress.Parse("02-AA-BB-CC-DD-EE");
        h.Run(h.Stack.AddArpEntryAsync(PeerIp, staticMac));
        h.Feed(Frames.Arp(ArpPacket.OpReply, PeerMac, OurMac, PeerMac, PeerIp, OurMac, OurIp));
        h.Advance(TimeSpan.FromMinutes(5));
        var e = Assert.Single(h.Run(h.Stack.GetArpCacheAsync()));
        Assert.Equal(ArpState.Permanent, e.State);
        Assert.Equal(staticMac, e.LinkLayerAddress);
        Assert.Equal(0, h.Run(h.Stack.ClearArpCacheAsync()));
        Assert.True(h.Run(h.Stack.RemoveArpEntryAsync(PeerIp)));
        Assert.Empty(h.Run(h.Stack.GetArpCacheAsync()));
    }
}
