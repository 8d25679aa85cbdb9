using NetStack.Icmp;
using Xunit.Abstractions;

namespace NetStack.Tests.Lab;

/// <summary>
/// Traceroute and path-MTU discovery through a real Linux router (<see cref="KernelRouter"/>): our stack in
/// 192.0.2.0/24 with the kernel's 192.0.2.1 as gateway, the target 198.51.100.2 in a namespace behind it.
/// </summary>
[Collection(KernelLabCollection.Name)]
public sealed class KernelRouteTests(ITestOutputHelper output)
{
    private static readonly TimeSpan Generous = TimeSpan.FromSeconds(60);

    private static NetworkStack StartStack(KernelLab lab) => lab.StartTcpStack(c => c with { Gateway = KernelRouter.RouterAddress });

    private async Task<List<TraceProbe>> Trace(NetworkStack stack, TimeSpan timeout)
    {
        var probes = new List<TraceProbe>();
        using var cts = new CancellationTokenSource(Generous);
        await foreach (var p in stack.TraceRouteAsync(KernelRouter.TargetAddress, new TraceRouteOptions { Timeout = timeout }, cts.Token))
        {
            output.WriteLine($"{p.Hop,2} {p.Probe} {p.Address?.ToString() ?? "*",-15} {p.Status,-10} {p.RoundTripTime.TotalMilliseconds:0.000} ms");
            probes.Add(p);
        }
        return probes;
    }

    [KernelFact(Programs = ["nft"])]
    public async Task Traceroute_through_the_kernel_router_shows_it_then_the_target_and_a_silent_router_as_timeouts()
    {
        using var lab = new KernelLab();
        using var router = new KernelRouter(lab);
        using var stack = StartStack(lab);

        var probes = await Trace(stack, TimeSpan.FromSeconds(5));
        Assert.Equal([1, 1, 1, 2, 2, 2], probes.Select(p => p.Hop));
        Assert.All(probes.Take(3), p => Assert.Equal((KernelRouter.RouterAddress, PingStatus.TtlExpired), (p.Address!.Value, p.Status)));
        Assert.All(probes.Skip(3), p => Assert.Equal((KernelRouter.TargetAddress, PingStatus.Success), (p.Address!.Value, p.Status)));
        Assert.All(probes, p => Assert.InRange(p.RoundTripTime, TimeSpan.Zero, TimeSpan.FromSeconds(5)));

        // The router's ICMP time exceeded dropped on its way out: hop 1 is three timeouts, and the trace goes on.
        router.SilenceTimeExceeded();
        probes = await Trace(stack, TimeSpan.FromSeconds(1));
        Assert.Equal([1, 1, 1, 2, 2, 2], probes.Select(p => p.Hop));
        Assert.All(probes.Take(3), p => Assert.Equal((null, PingStatus.TimedOut), (p.Address, p.Status)));
        Assert.All(probes.Skip(3), p => Assert.Equal((KernelRouter.TargetAddress, PingStatus.Success), (p.Address!.Value, p.Status)));
    }

    [KernelFact]
    public async Task Path_mtu_through_the_kernel_router_is_its_far_link_mtu_from_its_fragmentation_needed()
    {
        using var lab = new KernelLab();
        using var router = new KernelRouter(lab, farMtu: 1400);
        using var stack = StartStack(lab);

        var result = await stack.DiscoverPathMtuAsync(KernelRouter.TargetAddress, TimeSpan.FromSeconds(5)).WaitAsync(Generous);
        foreach (var p in result.Probes) output.WriteLine($"{p.Size} {p.Status} next-hop MTU {p.NextHopMtu} from {p.ReportedBy}");
        Assert.Equal((1400, PingStatus.Success), (result.Mtu, result.Status));
        Assert.Equal([1500, 1400], result.Probes.Select(p => p.Size));
        Assert.Equal((PingStatus.PacketTooBig, 1400, KernelRouter.RouterAddress), (result.Probes[0].Status, result.Probes[0].NextHopMtu, result.Probes[0].ReportedBy!.Value));
        // The kernel's own ping agrees: 1372 bytes of data with DF pass, 1373 do not.
        Assert.Equal(0, router.RunInTarget($"ping -c 1 -W 5 -M do -s 1372 {KernelLab.StackAddress}", Generous).ExitCode);
    }
}
