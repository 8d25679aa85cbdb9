using NetStack;
using NetStack.Dhcp;

namespace Stack.Tests.Dhcp;

/// <summary>
/// What the DHCP client does when things go wrong or end (RFC 2131 3.1.4, 3.1.5, 4.4.6; RFC 5227): NAK, an address in
/// use, RELEASE, stray and malformed replies, and how the lease's settings meet the user's.
/// </summary>
public class DhcpRecoveryTests
{
    private static readonly Ipv4Address First = new(192, 0, 2, 100);
    private static readonly Ipv4Address Second = new(192, 0, 2, 101);

    [Fact]
    public void Address_that_answers_arp_is_declined_and_another_is_taken_after_ten_seconds()
    {
        using var d = new DhcpSim(11);
        var squatter = d.Sim.AddStack("192.0.2.100/24", name: "squatter"); // holds the pool's first address without a lease
        var lease = d.Bind();

        var decline = Assert.Single(d.Log.DhcpFrames(DhcpMessageType.Decline));
        Assert.Equal(Ipv4Address.Any, decline.IpSource);
        Assert.Equal(Ipv4Address.Broadcast, decline.IpDestination);
        Assert.Equal(First, decline.Dhcp.RequestedAddress);   // RFC 2131 table 5: option 50 names the address, 54 the server
        Assert.Equal(DhcpSim.ServerAddress, decline.Dhcp.ServerId);
        Assert.Contains(squatter.MacAddress.ToString(), decline.Dhcp.Message);
        // RFC 2131 3.1.5: at least ten seconds before starting over.
        var restart = d.Log.DhcpFrames(DhcpMessageType.Discover).First(f => f.At > decline.At);
        Assert.Equal(decline.At + DhcpClient.DeclineWait, restart.At);
        Assert.NotEqual(decline.Dhcp.TransactionId, restart.Dhcp.TransactionId);

        Assert.Equal(Second, lease.Address); // the server keeps the declined address out of its pool
        Assert.Contains(d.Dhcp.Logic.Leases(d.Sim.Now), l => l.Address == First && l.State == "Declined");
        Assert.Equal(1, d.Counter(d.Client, "Arp", "Conflicts"));
        Assert.Equal(1, d.Counter(d.Client, "Dhcp", "DeclinesSent"));
        Assert.Equal(First, squatter.Config.Address); // and the squatter was never disturbed
    }

    [Fact]
    public void Nak_while_requesting_starts_over_at_once_then_less_and_less_often()
    {
        using var d = new DhcpSim(12);
        d.Dhcp.NakRequests = true;
        d.Sim.Advance(TimeSpan.FromSeconds(20));
        var discovers = d.Log.DhcpFrames(DhcpMessageType.Discover).Select(f => f.At).ToList();
        // RFC 2131 3.1.4: restart; the first time at once, then 1, 2, 4, 8 s later (a server that keeps refusing).
        Assert.Equal(TimeSpan.Zero, discovers[1] - discovers[0]);
        Assert.Equal([1.0, 2.0, 4.0, 8.0], discovers.Skip(1).Zip(discovers.Skip(2), (a, b) => (b - a).TotalSeconds).Take(4));
        Assert.Equal(Ipv4Address.Any, d.Client.Config.Address);
        Assert.True(d.Counter(d.Client, "Dhcp", "NaksReceived") >= 5);

        d.Dhcp.NakRequests = false;
        Assert.Equal(First, d.Bind().Address);
    }

    [Fact]
    public void Nak_on_renewal_removes_the_address_and_starts_over()
    {
        using var d = new DhcpSim(13);
        var lease = d.Bind();
        d.Dhcp.NakRequests = true;
        d.Sim.RunUntil(() => d.Counter(d.Client, "Dhcp", "NaksReceived") >= 1, TimeSpan.FromMinutes(2));
        Assert.Equal(Ipv4Address.Any, d.Client.Config.Address);
        Assert.Null(d.Lease.Address);
        var rediscover = d.Log.DhcpFrames(DhcpMessageType.Discover).First(f => f.At > lease.Obtained!.Value);
        Assert.Equal(lease.Renewal, rediscover.At);
        Assert.Null(rediscover.Dhcp.RequestedAddress); // refused: not asked for again

        d.Dhcp.NakRequests = false;
        d.Sim.RunUntil(() => d.Lease.State == DhcpState.Bound, TimeSpan.FromMinutes(1));
        Assert.Equal(First, d.Client.Config.Address);
    }

    [Fact]
    public void Release_gives_the_lease_back_and_removes_the_address()
    {
        using var d = new DhcpSim(14);
        d.Bind();
        Assert.True(d.Sim.Run(d.Client.ReleaseDhcpLeaseAsync()));

        var release = Assert.Single(d.Log.DhcpFrames(DhcpMessageType.Release));
        Assert.Equal(First, release.IpSource);             // RFC 2131 4.4.6: unicast to the server, ciaddr set
        Assert.Equal(DhcpSim.ServerAddress, release.IpDestination);
        Assert.Equal(d.Server.MacAddress, release.Destination);
        Assert.Equal(First, release.Dhcp.ClientAddress);
        Assert.Equal(DhcpSim.ServerAddress, release.Dhcp.ServerId);
        Assert.Contains(d.Dhcp.Logic.Leases(d.Sim.Now), l => l.Address == First && l.State == "Released");
        Assert.Equal(DhcpState.Released, d.Lease.State);
        Assert.Equal(Ipv4Address.Any, d.Client.Config.Address);
        Assert.False(d.Sim.Run(d.Client.ReleaseDhcpLeaseAsync())); // nothing left to give back
        d.Sim.Advance(TimeSpan.FromMinutes(5));
        Assert.Single(d.Log.DhcpFrames(DhcpMessageType.Discover)); // released stays released
    }

    [Fact]
    public void Stray_and_malformed_replies_are_counted_and_ignored()
    {
        using var d = new DhcpSim(15);
        d.Dhcp.SendFirst = (request, reply) =>
        [
            LoopDhcpServer.Bytes(Copy(reply, xid: reply.TransactionId + 1)),          // another transaction
            LoopDhcpServer.Bytes(Copy(reply, mac: MacAddress.Parse("02-00-00-00-00-99"))), // another client
            new byte[40],                                                            // not a DHCP message
        ];
        var lease = d.Bind();
        Assert.Equal(First, lease.Address);
        Assert.Equal(4, d.Counter(d.Client, "Dhcp", "DroppedUnexpected")); // two per reply, OFFER and ACK
        Assert.Equal(2, d.Counter(d.Client, "Dhcp", "DroppedMalformed"));
    }

    private static DhcpMessage Copy(DhcpMessage m, uint? xid = null, MacAddress? mac = null) => new()
    {
        Op = m.Op, Type = m.Type, TransactionId = xid ?? m.TransactionId, ClientMac = mac ?? m.ClientMac, YourAddress = m.YourAddress,
        ServerId = m.ServerId, LeaseSeconds = m.LeaseSeconds, SubnetMask = m.SubnetMask,
    };

    [Fact]
    public void Interface_mtu_option_lowers_the_mtu_and_the_users_own_settings_win()
    {
        using (var d = new DhcpSim(16, server: s => s with { Mtu = 1400 }))
        {
            Assert.Equal(1500, d.Client.Mtu);
            Assert.Equal(1400, d.Bind().Mtu);
            Assert.Equal(1400, d.Client.Mtu);
        }
        var own = new Ipv4Address(198, 51, 100, 53);
        using (var d = new DhcpSim(17, c => c with { Mtu = 1300, DnsServers = [own] }, s => s with { Mtu = 1400 }))
        {
            var lease = d.Bind();
            Assert.Equal([DhcpSim.ServerAddress], lease.DnsServers);
            Assert.Equal([own], d.Client.Config.DnsServers);
            Assert.Equal(1300, d.Client.Mtu);
        }
        using (var d = new DhcpSim(18, server: s => s with { Mtu = 500 })) // below IPv4's 576: not applied
        {
            Assert.Null(d.Bind().Mtu);
            Assert.Equal(1500, d.Client.Mtu);
        }
    }

    [Fact]
    public void Before_an_address_only_dhcp_replies_unicast_to_another_address_are_taken()
    {
        using var d = new DhcpSim(19);
        d.Dhcp.Silent = true;
        var somebody = new Ipv4Address(192, 0, 2, 77);
        var socket = d.Sim.Run(d.Server.CreateUdpSocketAsync(67 + 1000));
        d.Sim.Run(d.Server.AddArpEntryAsync(somebody, DhcpSim.ClientMac));
        var notForUs = d.Counter(d.Client, "IPv4", "DroppedNotForUs");
        d.Sim.Run(socket.SendToAsync(somebody, 69, new byte[300]));   // UDP to another port: not for us
        d.Sim.Run(socket.SendToAsync(somebody, 68, new byte[300]));   // to DHCP's port: handed to the client, which reads it
        d.Sim.Advance(TimeSpan.FromMilliseconds(10));
        Assert.Equal(notForUs + 1, d.Counter(d.Client, "IPv4", "DroppedNotForUs"));
        Assert.Equal(1, d.Counter(d.Client, "Dhcp", "DroppedMalformed"));
    }
}
