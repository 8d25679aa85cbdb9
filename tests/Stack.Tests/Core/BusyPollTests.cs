using NetStack;
using NetStack.Icmp;
using NetStack.Link;

namespace Stack.Tests.Core;

/// <summary>The low-latency mode (StackConfig.BusyPollMicroseconds): the loop polls instead of sleeping after work.</summary>
public class BusyPollTests
{
    /// <summary>Counts how often the loop went to sleep in the device.</summary>
    private sealed class SleepCountingLink(ILinkDevice inner) : ForwardingLink(inner)
    {
        public int Sleeps;

        public override void WaitForFrames(TimeSpan timeout)
        {
            Interlocked.Increment(ref Sleeps);
            Inner.WaitForFrames(timeout);
        }
    }

    /// <summary>B is pinged 20 times a few ms apart; returns how often B's loop slept meanwhile.</summary>
    private static async Task<int> SleepsWhilePinged(int busyPollMicroseconds)
    {
        var wire = new VirtualWire(1);
        var link = new SleepCountingLink(wire.CreatePort("b", new MacAddress(0x020000000002)));
        using var a = new NetworkStack(wire.CreatePort("a", new MacAddress(0x020000000001)), new StackConfig { Address = Ipv4Address.Parse("192.0.2.1") });
        using var b = new NetworkStack(link, new StackConfig { Address = Ipv4Address.Parse("192.0.2.2"), BusyPollMicroseconds = busyPollMicroseconds });
        a.Start();
        b.Start();
        Assert.Equal(PingStatus.Success, (await a.PingAsync(b.Config.Address, timeout: TimeSpan.FromSeconds(10)).WaitAsync(TimeSpan.FromSeconds(30))).Status);
        var before = Volatile.Read(ref link.Sleeps);
        for (var i = 0; i < 20; i++)
        {
            await Task.Delay(3);
            var reply = await a.PingAsync(b.Config.Address, timeout: TimeSpan.FromSeconds(10)).WaitAsync(TimeSpan.FromSeconds(30));
            Assert.Equal(PingStatus.Success, reply.Status);
        }
        return Volatile.Read(ref link.Sleeps) - before;
    }

    [Fact]
    public async Task A_busy_polling_loop_takes_frames_that_come_within_its_window_without_sleeping()
    {
        // Without it the loop sleeps in the device between every two pings (and wakes for each).
        Assert.True(await SleepsWhilePinged(0) >= 20);
        // A one-second window covers the gaps (a few ms): the loop keeps polling. A stall of the loaded machine longer
        // than the window would let it sleep once, hence the allowance.
        var sleeps = await SleepsWhilePinged(1_000_000);
        Assert.True(sleeps <= 5, $"the busy-polling loop slept {sleeps} times between 20 pings");
    }

    [Theory]
    [InlineData(-1)]
    [InlineData(1_000_001)]
    public void An_out_of_range_busy_poll_setting_is_refused_with_the_range(int value)
    {
        var e = Assert.Throws<StackConfigurationException>(() =>
            new StackConfig { Address = Ipv4Address.Parse("192.0.2.2"), BusyPollMicroseconds = value }.Validate(1500));
        Assert.Equal(nameof(StackConfig.BusyPollMicroseconds), e.Field);
        Assert.Contains("between 0", e.Message);
    }
}
