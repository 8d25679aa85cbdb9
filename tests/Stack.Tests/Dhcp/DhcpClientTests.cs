using NetStack;
using NetStack.Dhcp;
using Xunit.Abstractions;

namespace Stack.Tests.Dhcp;

/// <summary>The DHCP client's exchange on the virtual wire, in virtual time, against the lab's server logic (RFC 2131, RFC 5227).</summary>
public class DhcpClientTests(ITestOutputHelper output)
{
    private static readonly Ipv4Address First = new(192, 0, 2, 100);

    [Fact]
    public void Discover_offer_request_ack_then_probe_and_bind()
    {
        using var d = new DhcpSim(1);
        d.Client.Event += e => output.WriteLine($"{e.Time.TotalSeconds,8:F3} {e.Layer}: {e.Message}");
        Assert.Equal(Ipv4Address.Any, d.Client.Config.Address);
        var lease = d.Bind();

        // DISCOVER and REQUEST: from 0.0.0.0:68 to 255.255.255.255:67 in a broadcast frame, no BROADCAST flag needed.
        var discover = d.Log.DhcpFrames(DhcpMessageType.Discover).First();
        var request = d.Log.DhcpFrames(DhcpMessageType.Request).First();
        foreach (var f in new[] { discover, request })
        {
            Assert.Equal(Ipv4Address.Any, f.IpSource);
            Assert.Equal(Ipv4Address.Broadcast, f.IpDestination);
            Assert.Equal(MacAddress.Broadcast, f.Destination);
            Assert.Equal(68, f.UdpSourcePort);
            Assert.False(f.Dhcp.Broadcast);
            Assert.Equal(DhcpSim.ClientMac, f.Dhcp.ClientMac);
        }
        // The REQUEST answers the OFFER: same xid, option 50 the offered address, option 54 the server, ciaddr 0.
        var offer = Assert.Single(d.Dhcp.Received, r => r.Message.Type == DhcpMessageType.Discover);
        Assert.Equal(discover.Dhcp.TransactionId, request.Dhcp.TransactionId);
        Assert.Equal(First, request.Dhcp.RequestedAddress);
        Assert.Equal(DhcpSim.ServerAddress, request.Dhcp.ServerId);
        Assert.Equal(Ipv4Address.Any, request.Dhcp.ClientAddress);
        Assert.Equal(Ipv4Address.Any, offer.Source);

        // RFC 5227: three probes from 0.0.0.0 for the address after the ACK, then it is taken and announced.
        var ack = d.Log.Sent.IndexOf(request);
        var probes = d.Log.Sent.Skip(ack).Where(f => f.IsArp && f.Arp.Sender.IsUnspecified && f.Arp.Target == First).ToList();
        Assert.Equal(3, probes.Count);
        var announcement = d.Log.Sent.First(f => f.IsArp && f.Arp.Sender == First && f.Arp.Target == First);
        Assert.True(announcement.At >= probes[^1].At + TimeSpan.FromSeconds(2)); // ANNOUNCE_WAIT after the last probe

        // The lease, applied: address, prefix, router, DNS, and the stack uses it.
        Assert.Equal(DhcpState.Bound, lease.State);
        Assert.Equal(First, lease.Address);
        Assert.Equal(24, lease.PrefixLength);
        Assert.Equal(DhcpSim.ServerAddress, lease.Server);
        Assert.Equal(TimeSpan.FromSeconds(120), lease.LeaseTime);
        Assert.Equal(lease.Obtained + TimeSpan.FromSeconds(60), lease.Renewal);
        Assert.Equal(lease.Obtained + TimeSpan.FromSeconds(105), lease.Rebinding);
        Assert.Equal(lease.Obtained + TimeSpan.FromSeconds(120), lease.Expiry);
        Assert.Equal(request.At, lease.Obtained); // RFC 2131 4.4.1: the lease runs from the REQUEST
        Assert.Equal("lab.test", lease.DomainName);
        var cfg = d.Client.Config;
        Assert.Equal(First, cfg.Address);
        Assert.Equal(24, cfg.PrefixLength);
        Assert.Equal(DhcpSim.ServerAddress, cfg.Gateway);
        Assert.Equal([DhcpSim.ServerAddress], cfg.DnsServers);
        Assert.Equal(["lab.test"], cfg.DnsSearch); // the domain (option 15) as the search list
        var ping = d.Sim.Run(d.Client.PingAsync(DhcpSim.ServerAddress));
        Assert.Equal(NetStack.Icmp.PingStatus.Success, ping.Status);
        Assert.Equal(1, d.Counter(d.Client, "Dhcp", "LeasesObtained"));
        Assert.Equal(3, d.Counter(d.Client, "Arp", "ProbesSent"));
        Assert.Equal(0, d.Counter(d.Client, "IPv4", "DroppedNoAddress"));
    }

    [Fact]
    public void Transaction_ids_are_random_per_exchange()
    {
        var xids = new HashSet<uint>();
        for (var seed = 1; seed <= 5; seed++)
        {
            using var d = new DhcpSim(seed);
            d.Bind();
            xids.Add(d.Log.Dhcp(DhcpMessageType.Discover).First().TransactionId);
        }
        Assert.Equal(5, xids.Count);
    }

    [Fact]
    public void Unicast_offer_and_ack_to_the_offered_address_are_taken_before_it_is_configured()
    {
        using var d = new DhcpSim(2);
        d.Dhcp.UnicastReplies = true;
        var lease = d.Bind();
        Assert.Equal(First, lease.Address);
        Assert.Equal(0, d.Counter(d.Client, "IPv4", "DroppedNotForUs"));
    }

    [Fact]
    public void Broadcast_flag_is_set_when_configured()
    {
        using var d = new DhcpSim(3, c => c with { Dhcp = c.Dhcp with { BroadcastFlag = true } });
        d.Bind();
        Assert.All(d.Log.Sent.Where(f => f.IsDhcp).Select(f => f.Dhcp), m => Assert.True(m.Broadcast));
    }

    [Fact]
    public void Discover_is_retransmitted_with_exponential_backoff_and_jitter()
    {
        using var d = new DhcpSim(4);
        d.Dhcp.Silent = true;
        d.Sim.Advance(TimeSpan.FromMinutes(6));
        var times = d.Log.DhcpFrames(DhcpMessageType.Discover).Select(f => f.At).ToList();
        Assert.True(times.Count >= 7, $"{times.Count} DISCOVERs");
        // RFC 2131 4.1: 4, 8, 16, 32, 64, 64... seconds, each +-1 s; the jitter makes them differ from the bases.
        var expected = new[] { 4, 8, 16, 32, 64, 64 };
        var jitters = new List<double>();
        for (var i = 0; i < expected.Length; i++)
        {
            var gap = (times[i + 1] - times[i]).TotalSeconds;
            Assert.InRange(gap, expected[i] - 1, expected[i] + 1);
            jitters.Add(gap - expected[i]);
        }
        Assert.True(jitters.Distinct().Count() > 1, "the delays are randomized");
        Assert.Single(d.Log.Dhcp(DhcpMessageType.Discover).Select(m => m.TransactionId).Distinct()); // one exchange, one xid
        Assert.Equal(DhcpState.Selecting, d.Lease.State);
        Assert.Equal(times.Count - 1, d.Counter(d.Client, "Dhcp", "Retransmissions"));
    }

    [Fact]
    public void Without_an_address_only_broadcasts_leave()
    {
        using var d = new DhcpSim(5);
        d.Dhcp.Silent = true;
        d.Sim.Advance(TimeSpan.FromSeconds(1));
        // RFC 1122 3.2.1.3: 0.0.0.0 only as the source of the acquisition's broadcasts.
        var connect = d.Client.CreateTcpSocket().ConnectAsync(DhcpSim.ServerAddress, 80);
        d.Sim.RunUntil(() => connect.IsCompleted, TimeSpan.FromSeconds(1));
        Assert.False(connect.IsCompletedSuccessfully);
        Assert.True(d.Counter(d.Client, "IPv4", "DroppedNoAddress") >= 1);
        Assert.DoesNotContain(d.Log.Sent, f => f.IsIpv4 && !f.IpDestination.IsBroadcast);
    }

    [Fact]
    public void Renews_at_t1_by_unicast_to_the_server()
    {
        using var d = new DhcpSim(6);
        var lease = d.Bind();
        d.Sim.RunUntil(() => d.Counter(d.Client, "Dhcp", "LeasesExtended") == 1, TimeSpan.FromMinutes(2));
        var renew = d.Log.DhcpFrames(DhcpMessageType.Request).Last();
        Assert.Equal(lease.Renewal, renew.At);
        Assert.Equal(First, renew.IpSource);
        Assert.Equal(DhcpSim.ServerAddress, renew.IpDestination);
        Assert.Equal(First, renew.Dhcp.ClientAddress);      // RFC 2131 4.3.2 RENEWING: ciaddr, no 50 or 54
        Assert.Null(renew.Dhcp.RequestedAddress);
        Assert.Null(renew.Dhcp.ServerId);
        var renewed = d.Lease;
        Assert.Equal(DhcpState.Bound, renewed.State);
        Assert.Equal(renew.At + TimeSpan.FromSeconds(120), renewed.Expiry);
        Assert.Equal(First, d.Client.Config.Address);
        Assert.Equal(3, d.Counter(d.Client, "Arp", "ProbesSent")); // no new probe for the same address
    }

    [Fact]
    public void Rebinds_at_t2_by_broadcast_when_the_server_is_silent_then_expires()
    {
        using var d = new DhcpSim(7);
        var lease = d.Bind();
        d.Server.Listen(7);
        var connection = d.Client.CreateTcpSocket();
        d.Sim.Run(connection.ConnectAsync(DhcpSim.ServerAddress, 7), TimeSpan.FromSeconds(5));
        var receive = connection.ReceiveAsync(new byte[16]).AsTask();
        d.Dhcp.Silent = true;
        d.Sim.RunUntil(() => d.Lease.State == DhcpState.Selecting, TimeSpan.FromMinutes(3));

        var requests = d.Log.DhcpFrames(DhcpMessageType.Request).Where(f => f.At > lease.Obtained!.Value).ToList();
        // RENEWING at T1 (60 s): unicast; the next try would be at least 60 s later, past T2, so REBINDING at T2 (105 s)
        // broadcasts; its next try would be past the expiry (120 s), where the address goes.
        Assert.Equal(2, requests.Count);
        Assert.Equal(lease.Renewal, requests[0].At);
        Assert.Equal(DhcpSim.ServerAddress, requests[0].IpDestination);
        Assert.Equal(lease.Rebinding, requests[1].At);
        Assert.Equal(Ipv4Address.Broadcast, requests[1].IpDestination);
        Assert.Equal(First, requests[1].IpSource);
        Assert.Equal(First, requests[1].Dhcp.ClientAddress);
        var rediscover = d.Log.DhcpFrames(DhcpMessageType.Discover).Last();
        Assert.Equal(lease.Expiry, rediscover.At);
        Assert.Equal(First, rediscover.Dhcp.RequestedAddress); // it asks for its old address back
        Assert.Equal(Ipv4Address.Any, d.Client.Config.Address);
        Assert.Null(d.Client.Config.Gateway);
        Assert.Equal(1, d.Counter(d.Client, "Dhcp", "LeasesExpired"));
        // The connection that used the address fails at once, and no new one can be made without an address.
        Assert.True(receive.IsFaulted);
        Assert.Equal(StackError.AddressNotAvailable, Assert.IsType<StackException>(receive.Exception!.InnerException).Error);
        var connect = d.Client.CreateTcpSocket().ConnectAsync(DhcpSim.ServerAddress, 7);
        d.Sim.RunUntil(() => connect.IsCompleted, TimeSpan.FromSeconds(2));
        Assert.False(connect.IsCompletedSuccessfully);
    }
}
