using NetStack;
using NetStack.Icmp;
using NetStack.Link;

namespace Stack.Tests.Icmp;

/// <summary>
/// Traceroute and path-MTU discovery on the virtual wire, through a <see cref="TestRouter"/> standing for a chain of
/// routers between our stack (192.0.2.2, gateway 192.0.2.1) and a target stack in 198.51.100.0/24.
/// </summary>
public class TracerouteSimulationTests
{
    private static readonly Ipv4Address Near = Ipv4Address.Parse("192.0.2.1");
    private static readonly Ipv4Address Middle = Ipv4Address.Parse("203.0.113.1");
    private static readonly Ipv4Address FarGateway = Ipv4Address.Parse("198.51.100.1");

    private sealed record Net(Simulation Sim, NetworkStack Client, NetworkStack Target, TestRouter Router) : IDisposable
    {
        public void Dispose() => Sim.Dispose();
    }

    private static Net Build(int seed, params (Ipv4Address Address, bool Answers)[] hops) => Build(seed, true, hops);

    private static Net Build(int seed, bool targetAnswers, params (Ipv4Address Address, bool Answers)[] hops)
    {
        var sim = new Simulation(seed, new WireFaults { Delay = TimeSpan.FromMilliseconds(1) });
        TestRouter? router = null;
        sim.AddStack("192.0.2.1/24", link: port => router = new TestRouter(port, FarGateway));
        router!.Hops.AddRange(hops.Length > 0 ? hops : [(Near, true)]);
        var client = sim.AddStack("192.0.2.2/24", c => c with { Gateway = Near });
        var target = sim.AddStack("198.51.100.2/24", c => c with { Gateway = FarGateway, Icmp = c.Icmp with { AnswerEcho = targetAnswers } });
        // Neighbours resolved first (the client's gateway, the target's), so round trips below are the path's alone.
        sim.Run(client.ResolveArpAsync(Near));
        sim.Run(target.ResolveArpAsync(FarGateway));
        return new Net(sim, client, target, router);
    }

    /// <summary>
    /// Runs the traceroute logic with the client stack's own pings, each run to completion in virtual time before the
    /// logic sees it, so the whole trace runs on this thread, deterministically (what NetworkStack.TraceRouteAsync
    /// composes, minus the thread hops that a real-time loop takes in its stride).
    /// </summary>
    private static List<TraceProbe> Trace(Net net, TraceRouteOptions? options = null)
    {
        var o = options ?? new TraceRouteOptions();
        var target = net.Target.Config.Address;
        var e = Traceroute.RunAsync(target, o, (ttl, _) => Task.FromResult(net.Sim.Run(net.Client.PingAsync(target, o.PayloadSize, o.Timeout, ttl))))
            .GetAsyncEnumerator();
        var probes = new List<TraceProbe>();
        while (e.MoveNextAsync().AsTask().GetAwaiter().GetResult()) probes.Add(e.Current);
        return probes;
    }

    private static PathMtuResult DiscoverMtu(Net net) =>
        PathMtuDiscovery.RunAsync(net.Target.Config.Address, net.Client.Mtu, (payload, _) =>
            Task.FromResult(net.Sim.Run(net.Client.PingAsync(net.Target.Config.Address, payload, TimeSpan.FromSeconds(1), dontFragment: true))))
        .GetAwaiter().GetResult();

    [Theory]
    [InlineData(1)]
    [InlineData(2)]
    public void Trace_through_one_router_shows_two_hops_three_probes_each(int seed)
    {
        using var net = Build(seed);
        var probes = Trace(net);
        Assert.Equal(6, probes.Count);
        Assert.Equal([1, 1, 1, 2, 2, 2], probes.Select(p => p.Hop));
        Assert.Equal([1, 2, 3, 1, 2, 3], probes.Select(p => p.Probe));
        Assert.All(probes.Take(3), p => Assert.Equal((Near, PingStatus.TtlExpired), (p.Address!.Value, p.Status)));
        Assert.All(probes.Skip(3), p => Assert.Equal((net.Target.Config.Address, PingStatus.Success), (p.Address!.Value, p.Status)));
        Assert.All(probes, p => Assert.Equal(net.Target.Config.Address, p.Target));
        // One wire crossing each way for the router's answer, two for the target's (via the router): 2 and 4 ms.
        Assert.All(probes.Take(3), p => Assert.Equal(TimeSpan.FromMilliseconds(2), p.RoundTripTime));
        Assert.All(probes.Skip(4), p => Assert.Equal(TimeSpan.FromMilliseconds(4), p.RoundTripTime));
        Assert.Equal(3, net.Client.Icmp.Counters.TimeExceededReceived);
    }

    [Fact]
    public void A_silent_hop_shows_as_timeouts_and_the_trace_goes_on()
    {
        using var net = Build(3, (Near, true), (Middle, false), (Ipv4Address.Parse("203.0.113.2"), true));
        var probes = Trace(net, new TraceRouteOptions { Timeout = TimeSpan.FromSeconds(1) });
        Assert.Equal(12, probes.Count);
        Assert.All(probes.Where(p => p.Hop == 2), p => Assert.Equal((null, PingStatus.TimedOut), (p.Address, p.Status)));
        Assert.All(probes.Where(p => p.Hop == 2), p => Assert.Equal(TimeSpan.FromSeconds(1), p.RoundTripTime));
        Assert.All(probes.Where(p => p.Hop == 3), p => Assert.Equal(Ipv4Address.Parse("203.0.113.2"), p.Address));
        Assert.All(probes.Where(p => p.Hop == 4), p => Assert.Equal(PingStatus.Success, p.Status));
    }

    [Fact]
    public void Trace_stops_at_max_hops_when_the_target_is_never_reached()
    {
        using var net = Build(4, targetAnswers: false, (Near, true), (Middle, true));
        var probes = Trace(net, new TraceRouteOptions { MaxHops = 4, ProbesPerHop = 1, Timeout = TimeSpan.FromMilliseconds(500) });
        Assert.Equal([PingStatus.TtlExpired, PingStatus.TtlExpired, PingStatus.TimedOut, PingStatus.TimedOut], probes.Select(p => p.Status));
    }

    [Fact]
    public void Trace_options_out_of_range_are_refused()
    {
        using var net = Build(5);
        foreach (var bad in new[] { new TraceRouteOptions { MaxHops = 0 }, new TraceRouteOptions { MaxHops = 256 },
                     new TraceRouteOptions { ProbesPerHop = 0 }, new TraceRouteOptions { Timeout = TimeSpan.Zero } })
        {
            var e = Assert.Throws<StackException>(() => net.Client.TraceRouteAsync(net.Target.Config.Address, bad));
            Assert.Equal(StackError.InvalidArgument, e.Error);
        }
    }

    [Theory]
    [InlineData(1400, false, 2)] // 1500 too big, the router names 1400, 1400 passes: two probes (RFC 1191)
    [InlineData(1400, true, 13)] // no ICMP comes back: silence is read as too big, binary search
    [InlineData(576, false, 2)]
    [InlineData(1500, false, 1)]
    public void Path_mtu_is_the_far_link_mtu(int farMtu, bool blackHole, int probeCount)
    {
        using var net = Build(6);
        net.Router.FarMtu = farMtu;
        net.Router.BlackHole = blackHole;
        var result = DiscoverMtu(net);
        Assert.Equal(PingStatus.Success, result.Status);
        Assert.Equal(farMtu, result.Mtu);
        Assert.Equal(probeCount, result.Probes.Count);
        Assert.Equal(1500, result.Probes[0].Size);
        if (farMtu < 1500 && !blackHole)
            Assert.Equal((PingStatus.PacketTooBig, farMtu, Near), (result.Probes[0].Status, result.Probes[0].NextHopMtu, result.Probes[0].ReportedBy!.Value));
        Assert.Equal(TimeSpan.FromMilliseconds(4), result.RoundTripTime);
    }

    [Fact]
    public void Path_mtu_of_a_target_that_never_answers_costs_two_probes()
    {
        using var net = Build(7, targetAnswers: false);
        var result = DiscoverMtu(net);
        Assert.Equal((0, PingStatus.TimedOut), (result.Mtu, result.Status));
        Assert.Equal([1500, 68], result.Probes.Select(p => p.Size));
    }
}
