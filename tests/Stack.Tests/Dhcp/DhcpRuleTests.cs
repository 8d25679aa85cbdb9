using System.Buffers.Binary;
using NetStack;
using NetStack.Dhcp;
using NetStack.Services;

namespace Stack.Tests.Dhcp;

/// <summary>The DHCP rules alone: the message codec (RFC 2131 2, RFC 2132, RFC 3397), the timings (RFC 2131 4.1, 4.4.5), the server's choices (4.3).</summary>
public class DhcpRuleTests
{
    private static readonly MacAddress Mac = MacAddress.Parse("02-00-00-00-dc-01");

    private static byte[] Write(DhcpMessage m)
    {
        var b = new byte[DhcpMessage.MaxWrittenLength];
        return b.AsSpan(0, m.Write(b)).ToArray();
    }

    [Fact]
    public void Message_round_trips_every_option_it_writes()
    {
        var m = new DhcpMessage
        {
            Op = DhcpMessage.OpReply, Type = DhcpMessageType.Ack, TransactionId = 0xdeadbeef, Seconds = 7, Flags = DhcpMessage.FlagBroadcast,
            ClientAddress = new(192, 0, 2, 5), YourAddress = new(192, 0, 2, 100), ClientMac = Mac, ServerId = new(192, 0, 2, 1),
            RequestedAddress = new(192, 0, 2, 100), LeaseSeconds = 120, RenewalSeconds = 50, RebindingSeconds = 90,
            SubnetMask = new(255, 255, 255, 0), Routers = [new(192, 0, 2, 1)], DnsServers = [new(192, 0, 2, 1), new(192, 0, 2, 2)],
            DomainName = "lab.test", InterfaceMtu = 1400, HostName = "box", Message = "hi", ClientId = [1, 2, 0, 0, 0, 0xdc, 1],
            ParameterList = DhcpMessage.ParametersWanted,
        };
        var bytes = Write(m);
        Assert.True(bytes.Length >= 300); // RFC 1542 2.1: at least a BOOTP message's size
        Assert.Equal(0x63825363u, BinaryPrimitives.ReadUInt32BigEndian(bytes.AsSpan(236)));
        Assert.True(DhcpMessage.TryParse(bytes, out var r, out var error), error);
        Assert.Equivalent(m, r, strict: false);
        Assert.Equal(24, r.PrefixLength);
        Assert.True(r.Broadcast);
    }

    [Fact]
    public void Options_in_the_overloaded_file_field_and_a_compressed_search_list_are_read()
    {
        var b = Write(new DhcpMessage { Op = DhcpMessage.OpReply, Type = DhcpMessageType.Offer, ClientMac = Mac, YourAddress = new(10, 0, 0, 9) });
        var options = 240;
        while (b[options] != 255) options += b[options] == 0 ? 1 : 2 + b[options + 1];
        // Option 52 = 1: more options in the 'file' field (offset 108): the lease time and a router.
        byte[] overload = [52, 1, 1, 255];
        overload.CopyTo(b, options);
        byte[] file = [51, 4, 0, 0, 0, 60, 3, 4, 10, 0, 0, 1, 255];
        file.CopyTo(b, 108);
        Assert.True(DhcpMessage.TryParse(b, out var m, out var error), error);
        Assert.Equal(60u, m.LeaseSeconds);
        Assert.Equal([new Ipv4Address(10, 0, 0, 1)], m.Routers);

        // RFC 3397: "lab.test" then "x.lab.test" as a label and a pointer to offset 0 of the option's data.
        var search = new List<byte> { 119, 0 };
        byte[] names = [3, (byte)'l', (byte)'a', (byte)'b', 4, (byte)'t', (byte)'e', (byte)'s', (byte)'t', 0, 1, (byte)'x', 0xC0, 0];
        search.AddRange(names);
        search[1] = (byte)names.Length;
        search.Add(255);
        var b2 = Write(new DhcpMessage { Op = DhcpMessage.OpReply, Type = DhcpMessageType.Ack, ClientMac = Mac });
        var end = Array.IndexOf(b2, (byte)255, 240);
        search.ToArray().CopyTo(b2, end);
        Assert.True(DhcpMessage.TryParse(b2, out var m2, out error), error);
        Assert.Equal(["lab.test", "x.lab.test"], m2.SearchList);
    }

    [Theory]
    [InlineData("short", "shorter than a DHCP message")]
    [InlineData("cookie", "no DHCP magic cookie")]
    [InlineData("overrun", "runs past the end")]
    [InlineData("untyped", "no DHCP message type")]
    public void Malformed_messages_are_refused_with_the_reason(string how, string reason)
    {
        var b = Write(new DhcpMessage { Op = DhcpMessage.OpReply, Type = DhcpMessageType.Offer, ClientMac = Mac });
        switch (how)
        {
            case "short": b = b[..200]; break;
            case "cookie": b[236] = 0; break;
            case "overrun": b = [.. b[..243], 6, 200, 1, 2]; break; // after option 53: a DNS option claiming 200 bytes
            case "untyped": b[240] = 0; b[241] = 0; b[242] = 0; break; // option 53 padded away
        }
        Assert.False(DhcpMessage.TryParse(b, out _, out var error));
        Assert.Contains(reason, error);
    }

    [Fact]
    public void Retransmissions_double_from_4_to_64_seconds_with_a_second_of_jitter()
    {
        var random = new Random(1);
        foreach (var (sent, seconds) in new[] { (1, 4), (2, 8), (3, 16), (4, 32), (5, 64), (6, 64), (20, 64) })
            for (var i = 0; i < 200; i++)
                Assert.InRange(DhcpBackoff.Retransmit(sent, random).TotalSeconds, seconds - 1, seconds + 1);
    }

    [Fact]
    public void Renewal_retries_halve_the_time_left_but_wait_at_least_60_seconds()
    {
        static TimeSpan s(double seconds) => TimeSpan.FromSeconds(seconds);
        Assert.Equal(s(1000 + 2000), DhcpBackoff.NextLeaseRetry(s(1000), s(5000)));  // half of 4000 s left
        Assert.Equal(s(1000 + 60), DhcpBackoff.NextLeaseRetry(s(1000), s(1100)));   // half is 50: at least 60
        Assert.Equal(s(1030), DhcpBackoff.NextLeaseRetry(s(1000), s(1030)));        // but not past the deadline
        Assert.Equal((s(60), s(105)), DhcpBackoff.Timers(s(120), null, null));       // T1 1/2, T2 7/8 of the lease
        Assert.Equal((s(10), s(20)), DhcpBackoff.Timers(s(120), 10, 20));            // the server's own, in order
        Assert.Equal((s(60), s(100)), DhcpBackoff.Timers(s(120), 110, 100));         // T1 after T2: half the lease
    }

    private static DhcpServer Server() => new(new DhcpServerSettings(new(192, 0, 2, 1), 24, new(192, 0, 2, 100), new(192, 0, 2, 101),
        TimeSpan.FromSeconds(120), new(192, 0, 2, 1), [new(192, 0, 2, 1)], "lab.test", null));

    private static DhcpMessage Ask(DhcpMessageType type, MacAddress mac, Action<DhcpMessage>? set = null)
    {
        var m = new DhcpMessage { Type = type, ClientMac = mac, TransactionId = 1 };
        set?.Invoke(m);
        return m;
    }

    [Fact]
    public void Server_offers_each_client_its_own_address_and_stays_silent_when_the_pool_is_empty()
    {
        var server = Server();
        var now = TimeSpan.Zero;
        var a = MacAddress.Parse("02-00-00-00-00-0a");
        var b = MacAddress.Parse("02-00-00-00-00-0b");
        var c = MacAddress.Parse("02-00-00-00-00-0c");
        var offerA = server.Answer(Ask(DhcpMessageType.Discover, a), now)!.Value;
        Assert.Equal(new Ipv4Address(192, 0, 2, 100), offerA.Reply.YourAddress);
        Assert.Equal(Ipv4Address.Broadcast, offerA.Destination);
        Assert.Equal(new Ipv4Address(192, 0, 2, 100), server.Answer(Ask(DhcpMessageType.Discover, a), now)!.Value.Reply.YourAddress);
        Assert.Equal(new Ipv4Address(192, 0, 2, 101), server.Answer(Ask(DhcpMessageType.Discover, b), now)!.Value.Reply.YourAddress);
        Assert.Null(server.Answer(Ask(DhcpMessageType.Discover, c), now)); // RFC 2131 4.3.1: nothing to offer
        // An offer not taken within its hold frees the address.
        Assert.NotNull(server.Answer(Ask(DhcpMessageType.Discover, c), now + DhcpServer.OfferHold));
    }

    [Fact]
    public void Server_answers_requests_by_their_kind()
    {
        var server = Server();
        var a = MacAddress.Parse("02-00-00-00-00-0a");
        var b = MacAddress.Parse("02-00-00-00-00-0b");
        var first = new Ipv4Address(192, 0, 2, 100);
        server.Answer(Ask(DhcpMessageType.Discover, a), TimeSpan.Zero);
        // SELECTING another server: our offer is freed, and we say nothing.
        Assert.Null(server.Answer(Ask(DhcpMessageType.Request, a, m => { m.ServerId = new(192, 0, 2, 9); m.RequestedAddress = first; }), TimeSpan.Zero));
        Assert.Empty(server.Leases(TimeSpan.Zero));
        server.Answer(Ask(DhcpMessageType.Discover, a), TimeSpan.Zero);
        var ack = server.Answer(Ask(DhcpMessageType.Request, a, m => { m.ServerId = new(192, 0, 2, 1); m.RequestedAddress = first; }), TimeSpan.Zero)!.Value;
        Assert.Equal(DhcpMessageType.Ack, ack.Reply.Type);
        Assert.Equal(120u, ack.Reply.LeaseSeconds);
        // RENEWING: unicast back to ciaddr; another client's address gets a NAK (broadcast); an unknown one silence.
        var renew = server.Answer(Ask(DhcpMessageType.Request, a, m => m.ClientAddress = first), TimeSpan.FromSeconds(60))!.Value;
        Assert.Equal((DhcpMessageType.Ack, first), (renew.Reply.Type, renew.Destination));
        var stolen = server.Answer(Ask(DhcpMessageType.Request, b, m => m.ClientAddress = first), TimeSpan.FromSeconds(60))!.Value;
        Assert.Equal((DhcpMessageType.Nak, Ipv4Address.Broadcast), (stolen.Reply.Type, stolen.Destination));
        Assert.Null(server.Answer(Ask(DhcpMessageType.Request, b, m => m.ClientAddress = new(192, 0, 2, 101)), TimeSpan.FromSeconds(60)));
        var elsewhere = server.Answer(Ask(DhcpMessageType.Request, b, m => m.RequestedAddress = new(198, 51, 100, 7)), TimeSpan.Zero)!.Value;
        Assert.Equal(DhcpMessageType.Nak, elsewhere.Reply.Type); // INIT-REBOOT on the wrong network
        // RELEASE frees it; the same client gets it back next time.
        Assert.Null(server.Answer(Ask(DhcpMessageType.Release, a, m => { m.ClientAddress = first; m.ServerId = new(192, 0, 2, 1); }), TimeSpan.FromSeconds(70)));
        Assert.Equal("Released", Assert.Single(server.Leases(TimeSpan.FromSeconds(70))).State);
        Assert.Equal(first, server.Answer(Ask(DhcpMessageType.Discover, a), TimeSpan.FromSeconds(80))!.Value.Reply.YourAddress);
    }
}
