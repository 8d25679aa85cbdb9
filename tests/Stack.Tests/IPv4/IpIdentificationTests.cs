using NetStack;
using NetStack.IPv4;

namespace Stack.Tests.IPv4;

/// <summary>RFC 7739 5.3: IP ids count per destination from a keyed offset, so they neither repeat early nor leak across hosts.</summary>
public class IpIdentificationTests
{
    private static readonly Ipv4Address Us = Ipv4Address.Parse("192.0.2.2");
    private static readonly Ipv4Address[] Peers = Enumerable.Range(1, 200).Select(i => Ipv4Address.Parse($"198.51.100.{i}")).ToArray();

    private static ushort[] Sequence(IpIdentification ids, Ipv4Address to, int n) =>
        Enumerable.Range(0, n).Select(_ => ids.Next(Us, to, IpProtocol.Udp)).ToArray();

    [Fact]
    public void Ids_to_one_destination_count_up_and_each_destination_starts_elsewhere()
    {
        var ids = new IpIdentification(new SeededRandomSource(new Random(11))); // seeded: which buckets collide is fixed
        var a = Sequence(ids, Peers[0], 100);
        for (int i = 1; i < a.Length; i++) Assert.Equal((ushort)(a[i - 1] + 1), a[i]); // no repeat within 65,536 datagrams
        // Traffic to other hosts does not move this destination's counter (no global counter to read off: RFC 7739 4).
        foreach (var p in Peers.Skip(1)) Sequence(ids, p, 3);
        var next = ids.Next(Us, Peers[0], IpProtocol.Udp);
        Assert.Equal((ushort)(a[^1] + 1), next);
        // The starting points are spread over the id space, not one shared counter's neighbourhood.
        var starts = Peers.Skip(1).Select(p => (int)ids.Next(Us, p, IpProtocol.Tcp)).ToList();
        Assert.True(starts.Distinct().Count() >= starts.Count - 5);
        Assert.InRange(starts.Count(s => s < 32768), 60, 140);
        // Another protocol to the same host is another counter.
        Assert.NotEqual((ushort)(next + 1), ids.Next(Us, Peers[0], IpProtocol.Icmp));
    }

    [Fact]
    public void Interleaved_flows_get_the_ids_they_get_one_after_the_other()
    {
        // The generator keeps the last flow's hash: switching flows (destination or protocol) must not change any id.
        var interleaved = new IpIdentification(new SeededRandomSource(new Random(5)));
        var grouped = new IpIdentification(new SeededRandomSource(new Random(5)));
        (Ipv4Address To, IpProtocol Protocol)[] flows = [(Peers[0], IpProtocol.Tcp), (Peers[1], IpProtocol.Tcp), (Peers[0], IpProtocol.Udp)];
        var a = new List<ushort>[flows.Length];
        for (int f = 0; f < flows.Length; f++) a[f] = [];
        for (int i = 0; i < 4; i++)
            for (int f = 0; f < flows.Length; f++) a[f].Add(interleaved.Next(Us, flows[f].To, flows[f].Protocol));
        for (int f = 0; f < flows.Length; f++)
            Assert.Equal(a[f], Enumerable.Range(0, 4).Select(_ => grouped.Next(Us, flows[f].To, flows[f].Protocol)));
    }

    [Fact]
    public void Two_cryptographic_generators_give_different_ids_and_two_seeded_ones_the_same()
    {
        Assert.NotEqual(Sequence(new IpIdentification(CryptoRandomSource.Instance), Peers[0], 8),
                        Sequence(new IpIdentification(CryptoRandomSource.Instance), Peers[0], 8));
        Assert.Equal(Sequence(new IpIdentification(new SeededRandomSource(new Random(4))), Peers[0], 8),
                     Sequence(new IpIdentification(new SeededRandomSource(new Random(4))), Peers[0], 8));
    }
}
