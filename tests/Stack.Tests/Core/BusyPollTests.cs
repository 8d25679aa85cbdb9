using NetStack;
using NetStack.Icmp;
using NetStack.Link;
using static Stack.Tests.Core.RealTimePairs;

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
        // Without it the loop sleeps in the device between every two pings (and wakes for each): 19 gaps, and once more
        // after the last reply unless the count is read before B's loop is back in the device (a loaded fresh-clone CI
        // run read 19 once).
        var idleSleeps = await SleepsWhilePinged(0);
        Assert.True(idleSleeps >= 19, $"the loop slept {idleSleeps} times between 20 pings 3 ms apart");
        // A one-second window covers the gaps (a few ms): the loop keeps polling. A stall of the loaded machine longer
        // than the window would let it sleep once, hence the allowance.
        var sleeps = await SleepsWhilePinged(1_000_000);
        Assert.True(sleeps <= 5, $"the busy-polling loop slept {sleeps} times between 20 pings");
    }

    /// <summary>Notes the thread of each receive from the device that took frames.</summary>
    private sealed class ReceiverThreadLink(ILinkDevice inner) : ForwardingLink(inner)
    {
        public readonly System.Collections.Concurrent.ConcurrentQueue<int> Takers = new();

        public override int Receive(IFrameSink sink, TimeSpan now, int max)
        {
            var n = Inner.Receive(sink, now, max);
            if (n > 0) Takers.Enqueue(Environment.CurrentManagedThreadId);
            return n;
        }
    }

    /// <summary>A running on the wire with B; A busy-polls with <paramref name="busyPollMicroseconds"/>; ARP resolved both ways.</summary>
    private static async Task<(NetworkStack A, NetworkStack B)> Pair(int busyPollMicroseconds, Func<ILinkDevice, ILinkDevice>? wrapA = null)
    {
        var wire = new VirtualWire(1);
        ILinkDevice portA = wire.CreatePort("a", new MacAddress(0x020000000001));
        var a = new NetworkStack(wrapA?.Invoke(portA) ?? portA, new StackConfig { Address = Ipv4Address.Parse("192.0.2.1"), BusyPollMicroseconds = busyPollMicroseconds });
        var b = new NetworkStack(wire.CreatePort("b", new MacAddress(0x020000000002)), new StackConfig { Address = Ipv4Address.Parse("192.0.2.2") });
        a.Start();
        b.Start();
        Assert.Equal(PingStatus.Success, (await a.PingAsync(b.Config.Address, timeout: TimeSpan.FromSeconds(10)).WaitAsync(TimeSpan.FromSeconds(30))).Status);
        return (a, b);
    }

    [Fact]
    public async Task A_busy_polling_caller_takes_its_reply_itself_and_gets_its_call_back_completed()
    {
        var (a, b) = await Pair(1_000_000);
        using var _ = a;
        using var __ = b;
        var (c, s) = await Connect(a, b);
        using var client = c;
        using var server = s;
        var buffer = new byte[1];
        // A's receive spins on A's caller thread (window 1 s) until B's byte comes: the call returns completed, with no
        // wake-up of A's loop and no thread-pool hand-off. A stall of the loaded machine longer than the window would
        // park the call instead (it then completes from the loop), hence three tries.
        var completedOnReturn = 0;
        for (var i = 0; i < 3 && completedOnReturn == 0; i++)
        {
            var receive = Task.Run(() =>
            {
                var t = client.ReceiveAsync(buffer).AsTask();
                return (Done: t.IsCompleted, Task: t);
            });
            Until(() => a.BusyWaiters == 1 || receive.IsCompleted, "A's caller spins on its receive");
            await server.SendAsync(new byte[] { (byte)(i + 1) }).WaitAsync(TimeSpan.FromSeconds(30));
            var (done, task) = await receive.WaitAsync(TimeSpan.FromSeconds(30));
            Assert.Equal(1, await task.WaitAsync(TimeSpan.FromSeconds(30)));
            Assert.Equal(i + 1, buffer[0]);
            if (done) completedOnReturn++;
        }
        Assert.Equal(1, completedOnReturn);
        Assert.True(await Counter(a, "BusyPollCallsDone") >= 1);
        Assert.Equal(0, a.BusyWaiters);
    }

    [Fact]
    public async Task While_a_caller_spins_the_loop_naps_and_the_frame_that_ends_the_spin_is_taken_on_the_callers_thread()
    {
        ReceiverThreadLink? link = null;
        var (a, b) = await Pair(1_000_000, inner => link = new ReceiverThreadLink(inner));
        using var _ = a;
        using var __ = b;
        var (c, s) = await Connect(a, b);
        using var client = c;
        using var server = s;
        var buffer = new byte[1];
        // The caller spins (window 1 s) on a dedicated thread; once A's loop naps, B's byte comes, and only the spinning
        // thread may take it from the device (one thread woken, not the loop racing the caller). A try proves nothing when
        // A's loop woke meanwhile (a timer of A's: its turn may take the frame by right) or the loaded machine stalled the
        // caller past the window (the call parks, the loop takes it): hence up to five tries.
        var takenBySpinner = false;
        for (var i = 0; i < 5 && !takenBySpinner; i++)
        {
            // A's ACK of the last try's byte is out first, or its delayed-ACK timer would wake A's loop in this try.
            Until(() => b.GetConnectionsAsync().GetAwaiter().GetResult().Single(r => r.Id == server.Id).Tcp is { } t && t.SndUna == t.SndNxt,
                "A acknowledged every byte B sent");
            var spinner = 0;
            var receive = Task.Factory.StartNew(() =>
            {
                spinner = Environment.CurrentManagedThreadId;
                var t = client.ReceiveAsync(buffer).AsTask();
                return (Done: t.IsCompleted, Task: t);
            }, TaskCreationOptions.LongRunning);
            Until(() => a.BusyWaiters == 1 && a.LoopNapping || receive.IsCompleted, "A's caller spins and its loop naps");
            var naps = a.LoopNaps;
            link!.Takers.Clear();
            await server.SendAsync(new byte[] { (byte)(i + 1) }).WaitAsync(TimeSpan.FromSeconds(30));
            var (done, task) = await receive.WaitAsync(TimeSpan.FromSeconds(30));
            Assert.Equal(1, await task.WaitAsync(TimeSpan.FromSeconds(30)));
            // Its call done, the spin leaves the loop napping: the same nap still on means the loop did not wake in the try.
            var loopWoke = a.LoopNaps != naps || !a.LoopNapping;
            if (!done || loopWoke) continue;
            Assert.All(link.Takers, t => Assert.Equal(spinner, t));
            takenBySpinner = link.Takers.Contains(spinner);
        }
        Assert.True(takenBySpinner, "the spinning caller never took its frame in five tries with A's loop napping throughout");
        // A spin that ended with its call done leaves the loop napping (the caller comes back within µs, as a server's
        // next receive does); the nap ends by itself within the window, and the loop then watches the device again.
        Until(() => !a.LoopNapping, "the loop watches the device again within the window after the spin");
    }

    [Fact]
    public async Task A_busy_polling_caller_gives_the_thread_back_when_its_window_ends_and_the_call_completes_later()
    {
        var (a, b) = await Pair(20_000); // 20 ms
        using var _ = a;
        using var __ = b;
        var (c, s) = await Connect(a, b);
        using var client = c;
        using var server = s;
        var parkedBefore = await Counter(a, "BusyPollCallsParked");
        var buffer = new byte[1];
        // Nothing is sent: the caller spins for its window, then returns with the receive parked, its thread its own again.
        var receive = client.ReceiveAsync(buffer).AsTask();
        Assert.False(receive.IsCompleted);
        Assert.Equal(0, a.BusyWaiters);
        Assert.Equal(parkedBefore + 1, await Counter(a, "BusyPollCallsParked"));
        // The parked receive completes from A's loop as without the mode.
        await server.SendAsync(new byte[] { 9 }).WaitAsync(TimeSpan.FromSeconds(30));
        Assert.Equal(1, await receive.WaitAsync(TimeSpan.FromSeconds(30)));
        Assert.Equal(9, buffer[0]);
    }

    [Fact]
    public async Task A_ping_from_a_busy_polling_caller_is_answered_and_counted()
    {
        var (a, b) = await Pair(1_000_000);
        using var _ = a;
        using var __ = b;
        var doneBefore = await Counter(a, "BusyPollCallsDone");
        for (var i = 0; i < 5; i++)
            Assert.Equal(PingStatus.Success, (await a.PingAsync(b.Config.Address, timeout: TimeSpan.FromSeconds(10)).WaitAsync(TimeSpan.FromSeconds(30))).Status);
        // Every ping's caller spun until its reply (the statistics call, done inline at once, spins not at all).
        Assert.True(await Counter(a, "BusyPollCallsDone") - doneBefore >= 1);
        Assert.Equal(0, a.BusyWaiters);
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
