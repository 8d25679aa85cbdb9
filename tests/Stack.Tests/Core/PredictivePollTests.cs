using System.Diagnostics;
using NetStack;
using NetStack.Icmp;
using NetStack.Link;

namespace Stack.Tests.Core;

/// <summary>
/// The predictive poll (StackConfig.PredictivePollMicroseconds): a pool thread polls around a steady sender's next frame.
/// Its rule (when a window opens, the back-off) is ArrivalPredictorTests'; these are the stack's side: it is on by
/// default and off when asked, and whatever its windows do (hit, miss, preempted on a loaded machine), every frame is
/// still taken and the loop is left watching the device.
/// </summary>
public class PredictivePollTests
{
    private static (NetworkStack A, NetworkStack B) Pair(StackConfig bConfig)
    {
        var wire = new VirtualWire(1);
        var a = new NetworkStack(wire.CreatePort("a", new MacAddress(0x020000000001)), new StackConfig { Address = Ipv4Address.Parse("192.0.2.1") });
        var b = new NetworkStack(wire.CreatePort("b", new MacAddress(0x020000000002)), bConfig with { Address = Ipv4Address.Parse("192.0.2.2") });
        a.Start();
        b.Start();
        return (a, b);
    }

    [Fact]
    public async Task Pings_at_a_steady_pace_are_all_answered_and_the_loop_is_left_watching_the_device()
    {
        var (a, b) = Pair(new StackConfig { PredictivePollMicroseconds = 200 });
        using var _ = a;
        using var __ = b;
        Assert.NotNull(b.Predictor);
        // 150 pings 2 ms apart on an absolute schedule (the pace a window is predicted from); each answered, whether B's
        // windows caught the request, missed it or were preempted by a loaded machine.
        var clock = Stopwatch.StartNew();
        var next = TimeSpan.Zero;
        for (var i = 0; i < 150; i++)
        {
            next += TimeSpan.FromMilliseconds(2);
            var wait = next - clock.Elapsed;
            if (wait > TimeSpan.FromMilliseconds(1)) Thread.Sleep(wait - TimeSpan.FromMilliseconds(1));
            while (clock.Elapsed < next) Thread.SpinWait(20);
            var reply = await a.PingAsync(b.Config.Address, timeout: TimeSpan.FromSeconds(10)).WaitAsync(TimeSpan.FromSeconds(30));
            Assert.Equal(PingStatus.Success, reply.Status);
        }
        // No poller left running: B's loop watches the device again (a window lasts at most its budget, 200 µs).
        Assert.True(SpinWait.SpinUntil(() => b.BusyWaiters == 0 && !b.LoopNapping, TimeSpan.FromSeconds(30)), "B's loop still napping");
        // And a frame after the pace ends is taken as before.
        Assert.Equal(PingStatus.Success, (await a.PingAsync(b.Config.Address, timeout: TimeSpan.FromSeconds(10)).WaitAsync(TimeSpan.FromSeconds(30))).Status);
    }

    [Fact]
    public void It_is_off_at_zero_and_while_fixed_busy_polling_is_on()
    {
        var (a, b) = Pair(new StackConfig { PredictivePollMicroseconds = 0 });
        using (a)
        using (b) Assert.Null(b.Predictor);
        var (c, d) = Pair(new StackConfig { BusyPollMicroseconds = 100 });
        using (c)
        using (d) Assert.Null(d.Predictor);
        Assert.Equal(0, new StackConfig().PredictivePollMicroseconds); // opt-in: it did not pay in the quiet benchmark
        var (f, g) = Pair(new StackConfig());
        using (f)
        using (g) Assert.Null(g.Predictor);
    }

    [Theory]
    [InlineData(-1)]
    [InlineData(100_001)]
    public void An_out_of_range_setting_is_refused_with_the_range(int value)
    {
        var e = Assert.Throws<StackConfigurationException>(() =>
            new StackConfig { Address = Ipv4Address.Parse("192.0.2.2"), PredictivePollMicroseconds = value }.Validate(1500));
        Assert.Equal(nameof(StackConfig.PredictivePollMicroseconds), e.Field);
        Assert.Contains("between 0", e.Message);
    }
}
