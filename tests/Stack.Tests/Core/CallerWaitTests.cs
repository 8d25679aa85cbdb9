using NetStack;
using NetStack.Icmp;
using NetStack.Link;
using static Stack.Tests.Core.RealTimePairs;

namespace Stack.Tests.Core;

/// <summary>
/// The caller's wait on the device (StackConfig.CallerWaitMicroseconds): a call that has to wait sleeps in the device on
/// its caller's thread and runs the turn when its frame comes, so the frame wakes one thread and the call returns completed.
/// </summary>
public class CallerWaitTests
{
    /// <summary>
    /// Notes the thread of each receive from the device that took frames. The sleeps in the device of one thread can be
    /// made deaf to frames: they then end only by a wake-up (<see cref="Wake"/>) or after ten minutes.
    /// </summary>
    private sealed class WatchedLink(ILinkDevice inner) : ForwardingLink(inner)
    {
        public readonly System.Collections.Concurrent.ConcurrentQueue<int> Takers = new();
        /// <summary>The managed thread whose sleeps in the device hear only wake-ups (0: none).</summary>
        public int DeafThread;
        private readonly SemaphoreSlim _woken = new(0, 1);

        public override int Receive(IFrameSink sink, TimeSpan now, int max)
        {
            var n = Inner.Receive(sink, now, max);
            if (n > 0) Takers.Enqueue(Environment.CurrentManagedThreadId);
            return n;
        }

        public override void WaitForFrames(TimeSpan timeout)
        {
            if (Environment.CurrentManagedThreadId == Volatile.Read(ref DeafThread)) _woken.Wait(TimeSpan.FromMinutes(10));
            else Inner.WaitForFrames(timeout);
        }

        public override void Wake()
        {
            if (_woken.CurrentCount == 0) try { _woken.Release(); } catch (SemaphoreFullException) { }
            Inner.Wake();
        }
    }

    /// <summary>A running on the wire with B; A's callers wait on the device up to <paramref name="callerWaitMicroseconds"/>; ARP resolved both ways.</summary>
    private static async Task<(NetworkStack A, NetworkStack B, WatchedLink Link)> Pair(int callerWaitMicroseconds, Func<StackConfig, StackConfig>? configA = null)
    {
        var wire = new VirtualWire(1);
        var link = new WatchedLink(wire.CreatePort("a", new MacAddress(0x020000000001)));
        var ca = new StackConfig { Address = Ipv4Address.Parse("192.0.2.1"), CallerWaitMicroseconds = callerWaitMicroseconds };
        var a = new NetworkStack(link, configA?.Invoke(ca) ?? ca);
        var b = new NetworkStack(wire.CreatePort("b", new MacAddress(0x020000000002)), new StackConfig { Address = Ipv4Address.Parse("192.0.2.2") });
        a.Start();
        b.Start();
        Assert.Equal(PingStatus.Success, (await a.PingAsync(b.Config.Address, timeout: TimeSpan.FromSeconds(10)).WaitAsync(TimeSpan.FromSeconds(30))).Status);
        return (a, b, link);
    }

    /// <summary>Starts <paramref name="call"/> on a thread of its own; the thread's id is known before the call begins.</summary>
    private static (Task<(bool Done, T Result)> Task, Func<int> Thread) OnOwnThread<T>(Func<T> call, Func<T, bool> done)
    {
        var id = 0;
        var started = new ManualResetEventSlim();
        var task = System.Threading.Tasks.Task.Factory.StartNew(() =>
        {
            Volatile.Write(ref id, Environment.CurrentManagedThreadId);
            started.Set();
            var r = call();
            return (done(r), r);
        }, TaskCreationOptions.LongRunning);
        Assert.True(started.Wait(TimeSpan.FromSeconds(30)));
        return (task, () => Volatile.Read(ref id));
    }

    [Fact]
    public async Task A_caller_waiting_on_the_device_takes_its_frame_itself_and_gets_its_call_back_completed()
    {
        var (a, b, link) = await Pair(1_000_000);
        using var _ = a;
        using var __ = b;
        var (c, s) = await Connect(a, b);
        using var client = c;
        using var server = s;
        var buffer = new byte[1];
        var doneBefore = await Counter(a, "CallerWaitCallsDone");
        // The receive waits on the device on its own thread (window 1 s) while A's loop naps; B's byte wakes that thread
        // alone, which takes it and returns the call completed. A stall of the loaded machine past the window parks the
        // call instead (the loop then takes the frame, as it should), hence up to three tries.
        var takenByCaller = false;
        for (var i = 0; i < 3 && !takenByCaller; i++)
        {
            var (receive, thread) = OnOwnThread(() => client.ReceiveAsync(buffer).AsTask(), t => t.IsCompleted);
            Until(() => a.CallerWaitsOnDevice && a.LoopNapping || receive.IsCompleted, "A's caller waits on the device and its loop naps");
            link.Takers.Clear();
            await server.SendAsync(new byte[] { (byte)(i + 1) }).WaitAsync(TimeSpan.FromSeconds(30));
            var (done, task) = await receive.WaitAsync(TimeSpan.FromSeconds(30));
            Assert.Equal(1, await task.WaitAsync(TimeSpan.FromSeconds(30)));
            Assert.Equal(i + 1, buffer[0]);
            if (!done) continue;
            Assert.All(link.Takers, t => Assert.Equal(thread(), t));
            takenByCaller = link.Takers.Contains(thread());
        }
        Assert.True(takenByCaller, "the waiting caller never took its frame in three tries");
        Assert.True(await Counter(a, "CallerWaitCallsDone") > doneBefore);
        Assert.False(a.CallerWaitsOnDevice);
        Assert.Equal(0, a.BusyWaiters);
    }

    [Fact]
    public async Task A_call_another_threads_turn_completes_wakes_the_caller_waiting_on_the_device_for_it()
    {
        // A acknowledges data at once: a delayed-ACK timer set by the turn that takes B's byte would wake the loop (and
        // with it the device) by itself, standing in for the wake-up tested here.
        var (a, b, link) = await Pair(1_000_000, c => c with { Tcp = c.Tcp with { DelayedAckTimeout = TimeSpan.Zero } });
        using var _ = a;
        using var __ = b;
        var (c, s) = await Connect(a, b);
        using var client = c;
        using var server = s;
        // The waiting caller's sleep in the device hears no frames, only wake-ups: B's byte stays in A's device until
        // another thread's turn takes it — here the turns that this thread's pings run inline (each ping a turn, which
        // sets no timer earlier than the loop's nap: nothing else wakes anyone). The turn that completes the receive
        // must wake its caller.
        var buffer = new byte[1];
        var (receive, _) = OnOwnThread(() =>
        {
            Volatile.Write(ref link.DeafThread, Environment.CurrentManagedThreadId);
            return client.ReceiveAsync(buffer).AsTask();
        }, t => t.IsCompleted);
        Until(() => a.CallerWaitsOnDevice && a.LoopNapping, "A's caller waits on the device and its loop naps");
        await server.SendAsync(new byte[] { 5 }).WaitAsync(TimeSpan.FromSeconds(30));
        var pings = new List<Task<PingReply>>();
        for (var i = 0; i < 100 && !receive.IsCompleted; i++)
        {
            pings.Add(a.PingAsync(b.Config.Address, timeout: TimeSpan.FromSeconds(30))); // its turn runs here, inline
            await Task.WhenAny(receive, Task.Delay(100));
        }
        Assert.True(receive.IsCompleted, "the caller waiting on the device was not woken when another thread's turn completed its receive");
        var (done, task) = await receive;
        Assert.True(done);
        Assert.Equal(1, await task.WaitAsync(TimeSpan.FromSeconds(30)));
        Assert.Equal(5, buffer[0]);
        Assert.False(a.CallerWaitsOnDevice);
        foreach (var p in pings) Assert.Equal(PingStatus.Success, (await p.WaitAsync(TimeSpan.FromSeconds(30))).Status);
    }

    [Fact]
    public async Task Timers_fire_while_a_caller_waits_on_the_device()
    {
        var (a, b, _) = await Pair(1_000_000);
        using var __ = a;
        using var ___ = b;
        var (c, s) = await Connect(a, b);
        using var client = c;
        using var server = s;
        // A ping to an address nobody answers times out by a timer, 100 ms in, while a receive's caller waits on the device
        // (1 s) and the loop naps: it must end then, not when the wait does. A stall past the window: up to three tries.
        var firedDuringWait = false;
        for (var i = 0; i < 3 && !firedDuringWait; i++)
        {
            var (receive, _) = OnOwnThread(() => client.ReceiveAsync(new byte[1]).AsTask(), t => t.IsCompleted);
            Until(() => a.CallerWaitsOnDevice && a.LoopNapping || receive.IsCompleted, "A's caller waits on the device and its loop naps");
            var reply = await a.PingAsync(Ipv4Address.Parse("192.0.2.9"), timeout: TimeSpan.FromMilliseconds(100)).WaitAsync(TimeSpan.FromSeconds(30));
            Assert.NotEqual(PingStatus.Success, reply.Status);
            firedDuringWait = a.CallerWaitsOnDevice && !receive.IsCompleted;
            await server.SendAsync(new byte[] { 1 }).WaitAsync(TimeSpan.FromSeconds(30));
            var (_, task) = await receive.WaitAsync(TimeSpan.FromSeconds(30));
            Assert.Equal(1, await task.WaitAsync(TimeSpan.FromSeconds(30)));
        }
        Assert.True(firedDuringWait, "the ping's timer never fired while a caller waited on the device in three tries");
    }

    [Fact]
    public async Task A_caller_whose_wait_ends_parks_its_call_and_the_loop_watches_the_device_again()
    {
        var (a, b, link) = await Pair(20_000); // 20 ms
        using var _ = a;
        using var __ = b;
        var (c, s) = await Connect(a, b);
        using var client = c;
        using var server = s;
        var parkedBefore = await Counter(a, "CallerWaitCallsParked");
        var buffer = new byte[1];
        // Nothing is sent: the caller waits its window on the device, then returns with the receive parked.
        var receive = client.ReceiveAsync(buffer).AsTask();
        Assert.False(receive.IsCompleted);
        Assert.False(a.CallerWaitsOnDevice);
        Assert.Equal(0, a.BusyWaiters);
        Assert.Equal(parkedBefore + 1, await Counter(a, "CallerWaitCallsParked"));
        Until(() => !a.LoopNapping, "the loop watches the device again once the wait is over");
        // The parked receive completes from A's loop, as without the mode: the loop thread takes the frame.
        link.Takers.Clear();
        await server.SendAsync(new byte[] { 9 }).WaitAsync(TimeSpan.FromSeconds(30));
        Assert.Equal(1, await receive.WaitAsync(TimeSpan.FromSeconds(30)));
        Assert.Equal(9, buffer[0]);
    }

    [Fact]
    public async Task One_caller_at_a_time_waits_on_the_device_and_a_second_parks()
    {
        var (a, b, _) = await Pair(1_000_000);
        using var __ = a;
        using var ___ = b;
        var (c1, s1) = await Connect(a, b);
        var accept = b.Listen(7001).AcceptAsync();
        var c2 = await a.ConnectTcpAsync(b.Config.Address, 7001).WaitAsync(TimeSpan.FromSeconds(30));
        var s2 = await accept.WaitAsync(TimeSpan.FromSeconds(30));
        using var client1 = c1;
        using var server1 = s1;
        using var client2 = c2;
        using var server2 = s2;
        var (first, _) = OnOwnThread(() => client1.ReceiveAsync(new byte[1]).AsTask(), t => t.IsCompleted);
        Until(() => a.CallerWaitsOnDevice || first.IsCompleted, "the first caller waits on the device");
        if (!first.IsCompleted)
        {
            var parkedBefore = await Counter(a, "CallerWaitCallsParked");
            // The device is taken: the second receive parks at once (its call returns pending, counted), and its data
            // still reaches it, taken by the first caller's turn or the loop's.
            var second = client2.ReceiveAsync(new byte[1]).AsTask();
            if (a.CallerWaitsOnDevice && !first.IsCompleted)
            {
                Assert.False(second.IsCompleted);
                Assert.True(await Counter(a, "CallerWaitCallsParked") > parkedBefore);
            }
            await server2.SendAsync(new byte[] { 2 }).WaitAsync(TimeSpan.FromSeconds(30));
            Assert.Equal(1, await second.WaitAsync(TimeSpan.FromSeconds(30)));
        }
        await server1.SendAsync(new byte[] { 1 }).WaitAsync(TimeSpan.FromSeconds(30));
        var (_, task) = await first.WaitAsync(TimeSpan.FromSeconds(30));
        Assert.Equal(1, await task.WaitAsync(TimeSpan.FromSeconds(30)));
    }

    [Theory]
    [InlineData(1, 1)]          // 0.1 µs: at least one whole millisecond (truncated, the event returned at once)
    [InlineData(3_000, 1)]      // 0.3 ms
    [InlineData(10_000, 1)]     // 1 ms
    [InlineData(10_001, 2)]     // just over: rounded up, never cut short
    [InlineData(25_000, 3)]     // 2.5 ms (truncated: 2, the loop woke 0.5 ms early and spun to its timer)
    [InlineData(0, 1)]
    public void The_loops_nap_is_whole_milliseconds_rounded_up_and_never_zero(long ticks, int milliseconds) =>
        Assert.Equal(milliseconds, NetworkStack.NapMilliseconds(TimeSpan.FromTicks(ticks)));

    [Theory]
    [InlineData(-1)]
    [InlineData(1_000_001)]
    public void An_out_of_range_caller_wait_is_refused_with_the_range(int value)
    {
        var e = Assert.Throws<StackConfigurationException>(() =>
            new StackConfig { Address = Ipv4Address.Parse("192.0.2.2"), CallerWaitMicroseconds = value }.Validate(1500));
        Assert.Equal(nameof(StackConfig.CallerWaitMicroseconds), e.Field);
        Assert.Contains("between 0", e.Message);
    }
}
