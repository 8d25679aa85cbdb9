using System.Buffers.Binary;
using NetStack;
using NetStack.Link;
using Stack.Tests.Support;

namespace Stack.Tests.Core;

/// <summary>
/// The IP identification (RFC 7739), the ICMP echo identifier and the DHCP xid (RFC 2131) of a stack without a seed come
/// from the cryptographic generator, so two such stacks never share them; a seeded stack replays them exactly.
/// </summary>
public class UnpredictableValuesTests
{
    private static readonly Ipv4Address Router = Ipv4Address.Parse("192.0.2.1");
    private const int Ip = Ethernet.HeaderLength;

    /// <summary>The (IP id, echo identifier) of each of five pings to one far host and two to another.</summary>
    private static List<(ushort IpId, ushort EchoId)> PingIds(int? seed)
    {
        using var h = new StackHarness(c => c with { Gateway = Router }, seed: seed);
        h.Run(h.Stack.AddArpEntryAsync(Router, StackHarness.PeerMac));
        h.Device.Sent.Clear();
        foreach (var to in new[] { "198.51.100.7", "198.51.100.7", "198.51.100.7", "198.51.100.7", "198.51.100.7", "203.0.113.9", "203.0.113.9" })
        {
            _ = h.Stack.PingAsync(Ipv4Address.Parse(to), payloadSize: 8, timeout: TimeSpan.FromSeconds(5));
            h.Poll();
        }
        Assert.Equal(7, h.Device.Sent.Count);
        return h.Device.Sent.Select(f => (BinaryPrimitives.ReadUInt16BigEndian(f.AsSpan(Ip + 4)),
                                          BinaryPrimitives.ReadUInt16BigEndian(f.AsSpan(Ip + 20 + 4)))).ToList();
    }

    /// <summary>The transaction id of the DISCOVER a DHCP stack sends first.</summary>
    private static uint DiscoverXid(int? seed)
    {
        using var h = new StackHarness(c => c with { Address = Ipv4Address.Any, Dhcp = new DhcpSettings { Enabled = true } }, seed: seed);
        h.Poll();
        var discover = Assert.Single(h.Device.Sent, f => f.Length > Ip + 28 + 8 && f[Ip + 9] == 17 && f[Ip + 28] == 1); // UDP, BOOTREQUEST
        return BinaryPrimitives.ReadUInt32BigEndian(discover.AsSpan(Ip + 28 + 4));
    }

    [Fact]
    public void Ip_ids_count_per_destination_and_two_unseeded_stacks_differ_while_a_seed_replays()
    {
        var a = PingIds(null);
        var b = PingIds(null);
        for (int i = 1; i < 5; i++) Assert.Equal((ushort)(a[i - 1].IpId + 1), a[i].IpId); // one destination: one counter
        Assert.NotEqual(a.Select(x => x.IpId), b.Select(x => x.IpId));
        Assert.Equal(PingIds(5).Select(x => x.IpId), PingIds(5).Select(x => x.IpId));
    }

    [Fact]
    public void The_echo_identifier_of_two_unseeded_stacks_differs_while_a_seed_replays()
    {
        // Two 16-bit draws: equal once in 65,535; three pairs all equal never.
        var unseeded = Enumerable.Range(0, 3).Select(_ => (PingIds(null)[0].EchoId, PingIds(null)[0].EchoId)).ToList();
        Assert.Contains(unseeded, p => p.Item1 != p.Item2);
        Assert.Equal(PingIds(5)[0].EchoId, PingIds(5)[0].EchoId);
        Assert.All(PingIds(null), x => Assert.NotEqual(0, x.EchoId));
    }

    [Fact]
    public void The_dhcp_xid_of_two_unseeded_stacks_differs_while_a_seed_replays()
    {
        Assert.NotEqual(DiscoverXid(null), DiscoverXid(null)); // 32-bit draws: equal once in four billion
        Assert.Equal(DiscoverXid(8), DiscoverXid(8));
        Assert.NotEqual(0u, DiscoverXid(null));
    }
}
