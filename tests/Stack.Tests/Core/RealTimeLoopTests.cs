using NetStack;
using NetStack.Icmp;
using NetStack.Link;

namespace Stack.Tests.Core;

/// <summary>The real-time driver: each stack on its own loop thread, real clock, the API called from the test thread.</summary>
public class RealTimeLoopTests
{
    [Fact]
    public async Task Two_running_stacks_ping_each_other_on_a_virtual_wire()
    {
        var wire = new VirtualWire(1);
        using var a = new NetworkStack(wire.CreatePort("a", new MacAddress(0x020000000001)), new StackConfig { Address = Ipv4Address.Parse("192.0.2.1") });
        using var b = new NetworkStack(wire.CreatePort("b", new MacAddress(0x020000000002)), new StackConfig { Address = Ipv4Address.Parse("192.0.2.2") });
        a.Start();
        b.Start();
        for (int i = 0; i < 20; i++)
        {
            var reply = await a.PingAsync(b.Config.Address, timeout: TimeSpan.FromSeconds(10)).WaitAsync(TimeSpan.FromSeconds(30));
            Assert.Equal(PingStatus.Success, reply.Status);
            Assert.InRange(reply.RoundTripTime, TimeSpan.Zero, TimeSpan.FromSeconds(5));
        }
        var stats = await b.GetStatisticsAsync();
        Assert.Equal(20, stats.Single(c => c.Layer == "Icmp" && c.Name == "EchoRepliesSent").Value);
        Assert.Equal(0, stats.Single(c => c.Name == "LoopFaults").Value);
    }

    [Fact]
    public async Task Posted_work_wakes_an_idle_loop_promptly()
    {
        var wire = new VirtualWire(1);
        using var a = new NetworkStack(wire.CreatePort("a", new MacAddress(0x020000000001)), new StackConfig { Address = Ipv4Address.Parse("192.0.2.1") });
        a.Start();
        await a.GetArpCacheAsync().WaitAsync(TimeSpan.FromSeconds(30));
        // The loop idles up to 250 ms per wait; a wake must cut that short. 50 calls would take 12 s without it.
        var sw = System.Diagnostics.Stopwatch.StartNew();
        for (int i = 0; i < 50; i++) await a.GetArpCacheAsync().WaitAsync(TimeSpan.FromSeconds(30));
        Assert.True(sw.Elapsed < TimeSpan.FromSeconds(6), $"50 API calls took {sw.Elapsed}");
    }

    [Fact]
    public async Task Operations_pending_when_the_stack_stops_fail_with_StackStopped()
    {
        var wire = new VirtualWire(1);
        var a = new NetworkStack(wire.CreatePort("a", new MacAddress(0x020000000001)), new StackConfig { Address = Ipv4Address.Parse("192.0.2.1") });
        a.Start();
        var ping = a.PingAsync(Ipv4Address.Parse("192.0.2.50"), timeout: TimeSpan.FromSeconds(60));
        await a.GetArpCacheAsync().WaitAsync(TimeSpan.FromSeconds(30)); // the ping is on the loop now
        a.Dispose();
        var e = await Assert.ThrowsAsync<StackException>(() => ping.WaitAsync(TimeSpan.FromSeconds(30)));
        Assert.Equal(StackError.StackStopped, e.Error);
        var after = await Assert.ThrowsAsync<StackException>(() => a.GetArpCacheAsync());
        Assert.Equal(StackError.StackStopped, after.Error);
    }
}
