using NetStack;
using NetStack.Arp;
using NetStack.Icmp;
using NetStack.Link;

namespace Stack.Tests.Icmp;

public class PingSimulationTests
{
    [Theory]
    [InlineData(1)]
    [InlineData(2)]
    [InlineData(3)]
    public void Two_stacks_resolve_each_other_and_ping(int seed)
    {
        using var sim = new Simulation(seed, new WireFaults { Delay = TimeSpan.FromMilliseconds(1) });
        var a = sim.AddStack("192.0.2.1/24");
        var b = sim.AddStack("192.0.2.2/24");

        // The first ping waits for ARP, as the kernel's first ping does (here B's gratuitous ARP, merged into
        // A's incomplete entry per RFC 826, may resolve it a round trip early).
        var first = sim.Run(a.PingAsync(b.Config.Address, payloadSize: 56));
        Assert.Equal(PingStatus.Success, first.Status);
        Assert.InRange(first.RoundTripTime, TimeSpan.FromMilliseconds(3), TimeSpan.FromMilliseconds(4));
        var reply = sim.Run(a.PingAsync(b.Config.Address, payloadSize: 56));
        Assert.Equal(PingStatus.Success, reply.Status);
        Assert.Equal(TimeSpan.FromMilliseconds(2), reply.RoundTripTime);
        Assert.Equal(64, reply.Ttl);
        Assert.Equal(56, reply.Bytes);

        var aCache = sim.Run(a.GetArpCacheAsync());
        Assert.Contains(aCache, e => e.IPAddress == b.Config.Address && e.LinkLayerAddress == b.MacAddress && e.State == ArpState.Reachable);
        var bCache = sim.Run(b.GetArpCacheAsync());
        Assert.Contains(bCache, e => e.IPAddress == a.Config.Address && e.LinkLayerAddress == a.MacAddress);
    }

    [Fact]
    public void Ping_to_address_nobody_owns_ends_host_unreachable_in_about_three_seconds()
    {
        using var sim = new Simulation(7);
        var a = sim.AddStack("192.0.2.1/24");
        sim.AddStack("192.0.2.2/24");
        var start = sim.Now;
        var reply = sim.Run(a.PingAsync(Ipv4Address.Parse("192.0.2.99"), timeout: TimeSpan.FromSeconds(10)));
        Assert.Equal(PingStatus.HostUnreachable, reply.Status);
        var took = sim.Now - start;
        Assert.InRange(took, TimeSpan.FromSeconds(2.9), TimeSpan.FromSeconds(3.1));
    }

    [Fact]
    public void Ping_times_out_when_every_reply_is_lost()
    {
        using var sim = new Simulation(3);
        var a = sim.AddStack("192.0.2.1/24");
        var b = sim.AddStack("192.0.2.2/24");
        sim.Run(a.ResolveArpAsync(b.Config.Address));
        sim.Wire.Faults = new WireFaults { LossRate = 1 };
        var reply = sim.Run(a.PingAsync(b.Config.Address, timeout: TimeSpan.FromSeconds(2)));
        Assert.Equal(PingStatus.TimedOut, reply.Status);
    }

    [Fact]
    public void Off_subnet_destination_without_gateway_is_network_unreachable()
    {
        using var sim = new Simulation(3);
        var a = sim.AddStack("192.0.2.1/24");
        var reply = sim.Run(a.PingAsync(Ipv4Address.Parse("198.51.100.1")));
        Assert.Equal(PingStatus.NetworkUnreachable, reply.Status);
    }
}
