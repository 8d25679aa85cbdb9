using System.Diagnostics;
using NetStack;
using NetStack.Link;
using NetStack.Sockets;
using NetStack.Tcp;
using Xunit.Abstractions;

namespace Stack.Tests.Tcp;

/// <summary>
/// A lossless zero-latency link between two stacks whose frame buffers are preallocated, so an allocation
/// measurement sees the stacks' allocations only (the virtual wire rents a pooled array per frame in flight,
/// and the shared pool allocates when hundreds of frames are in flight at once).
/// </summary>
public sealed class PipeDevice : ILinkDevice
{
    private readonly Queue<(byte[] Buffer, int Length)> _inbound = new();
    private readonly Stack<byte[]> _free;
    public PipeDevice(string name, MacAddress mac, Stack<byte[]> free) { Name = name; HardwareAddress = mac; _free = free; }
    public PipeDevice? Peer { get; set; }
    public string Name { get; }
    public MacAddress HardwareAddress { get; }
    public int Mtu => 1500;
    public LinkStatistics Statistics { get; } = new();
    public TimeSpan? NextArrival => _inbound.Count > 0 ? TimeSpan.Zero : null;

    public static (PipeDevice, PipeDevice) Pair(MacAddress a, MacAddress b)
    {
        var free = new Stack<byte[]>();
        for (int i = 0; i < 4096; i++) free.Push(new byte[1600]);
        var x = new PipeDevice("pipe-a", a, free);
        var y = new PipeDevice("pipe-b", b, free);
        x.Peer = y;
        y.Peer = x;
        return (x, y);
    }

    public int Receive(IFrameSink sink, TimeSpan now, int max)
    {
        int n = 0;
        while (n < max && _inbound.TryDequeue(out var f))
        {
            sink.OnFrame(f.Buffer.AsSpan(0, f.Length), now);
            _free.Push(f.Buffer);
            n++;
        }
        return n;
    }

    /// <summary>When above zero, every DropEvery-th frame sent is lost (deterministic loss for recovery measurements).</summary>
    public int DropEvery { get; set; }
    private int _transmitted;

    public void Transmit(ReadOnlySpan<byte> frame, TimeSpan now)
    {
        if (DropEvery > 0 && ++_transmitted % DropEvery == 0) return;
        var buf = _free.Pop();
        frame.CopyTo(buf);
        Peer!._inbound.Enqueue((buf, frame.Length));
    }

    public void Flush(TimeSpan now) { }
    public void WaitForFrames(TimeSpan timeout) { }
    public void Wake() { }
    public void Dispose() { }
}

/// <summary>Runs alone: process-wide memory figures are meaningless while other tests allocate in parallel.</summary>
[CollectionDefinition(nameof(TcpPerformanceTests), DisableParallelization = true)]
public sealed class TcpPerformanceCollection { }

/// <summary>Figures the brief asks for: allocation per segment at steady state, memory per idle connection, throughput.</summary>
[Collection(nameof(TcpPerformanceTests))]
public class TcpPerformanceTests
{
    private readonly ITestOutputHelper _out;
    public TcpPerformanceTests(ITestOutputHelper output) => _out = output;

    /// <summary>Sends <paramref name="bytes"/> from c to s in 64 KiB writes, reading into one 256 KiB buffer, driven by <paramref name="run"/>.</summary>
    private static void Transfer(Func<Func<bool, bool>, Func<bool>, bool> run, TcpSocket c, TcpSocket s, byte[] chunk, long bytes, byte[] rbuf)
    {
        long sent = 0, received = 0;
        Task? send = null;
        Task<int>? recv = null;
        // The reader reads when a write has completed or when nothing else can happen, so each read takes many
        // segments, as a real application reading 256 KiB at a time against a busy loop would.
        bool Pump(bool idle)
        {
            var issued = false;
            var wrote = false;
            if (send is { IsCompleted: true }) { send = null; wrote = true; }
            if (send is null && sent < bytes) { send = c.SendAsync(chunk); sent += chunk.Length; issued = true; }
            if (recv is { IsCompleted: true }) { received += ResultOf(recv); recv = null; }
            if (recv is null && received < bytes && (wrote || idle || sent >= bytes)) { recv = s.ReceiveAsync(rbuf).AsTask(); issued = true; }
            return issued;
        }
        Assert.True(run(Pump, () => received >= bytes));
    }

    [Fact]
    public void Steady_state_bulk_transfer_allocates_nothing_per_segment()
    {
        var (allocated, _, segs, wall, _) = MeasureTransfer(dropEvery: 0, 64 << 20);
        var perSegment = (double)allocated / segs;
        _out.WriteLine($"64 MiB: {segs} segments (data and ACKs), {allocated} bytes allocated in all (socket API calls included) = {perSegment:F2} B/segment; " +
                       $"{64 / wall.TotalSeconds:F0} MiB/s of wall time for both stacks on one thread");
        Assert.True(perSegment < 32, $"{perSegment:F1} bytes allocated per segment");
    }

    [Fact]
    public void Sack_loss_recovery_allocates_nothing_per_segment()
    {
        // One data segment in 97 lost: every recovery runs the scoreboard (SACK blocks on each duplicate ACK).
        // Under loss reads more often find no data and park a TaskCompletionSource on the loop, so the loop's
        // own figure is a few bytes per segment from the socket API; one object per SACK-carrying ACK or per
        // retransmission would add well over the margin allowed here.
        var (allocated, inPoll, segs, wall, sender) = MeasureTransfer(dropEvery: 97, 16 << 20);
        _out.WriteLine($"16 MiB with 1 segment in 97 lost: {segs} segments, {allocated} bytes allocated in all, {inPoll} inside the loops = " +
                       $"{(double)inPoll / segs:F2} B/segment; {sender.FastRetransmits} fast retransmits, {sender.Timeouts} timeouts, " +
                       $"{sender.BytesRetransmitted} bytes resent, wall {wall.TotalMilliseconds:F0} ms");
        Assert.True(sender.FastRetransmits > 50, "the transfer should have gone through many SACK recoveries");
        Assert.True((double)inPoll / segs < 16, $"{(double)inPoll / segs:F1} bytes allocated per segment inside the loops");
    }

    /// <summary>Two stacks over the preallocated pipe; after a 16 MiB warm-up, the allocation over <paramref name="bytes"/> more, in all and inside Poll.</summary>
    private static (long Allocated, long InPoll, long Segments, TimeSpan Wall, TcpCounters Sender) MeasureTransfer(int dropEvery, long bytes)
    {
        var clock = new ManualClock();
        long inPoll = 0; // allocated inside the stacks' loops (segments, timers, and the loop side of socket calls)
        var (da, db) = PipeDevice.Pair(MacAddress.Parse("02-00-00-00-00-01"), MacAddress.Parse("02-00-00-00-00-02"));
        using var a = new NetworkStack(da, new StackConfig { Address = TcpSim.A, PacketLogCapacity = 0 }, clock, seed: 1);
        using var b = new NetworkStack(db, new StackConfig { Address = TcpSim.B, PacketLogCapacity = 0 }, clock, seed: 2);
        bool Run(Func<bool, bool> pump, Func<bool> done)
        {
            for (int i = 0; i < 10_000_000; i++)
            {
                var issued = pump(false);
                var t0 = GC.GetAllocatedBytesForCurrentThread();
                var next = Min(a.Poll(clock.Now), b.Poll(clock.Now));
                inPoll += GC.GetAllocatedBytesForCurrentThread() - t0;
                if (done()) return true;
                if (issued) continue;
                // Idle: no frame on its way and no timer due, so nothing can happen before time moves on.
                var quiet = da.NextArrival is null && db.NextArrival is null && (next is null || next > clock.Now);
                if (!quiet || pump(true)) continue;
                if (next is null) return false;
                if (next > clock.Now) clock.Now = next.Value;
            }
            return false;
        }
        void WaitFor(Task t) => Assert.True(Run(_ => false, () => t.IsCompleted));

        var l = b.Listen(80);
        var accept = l.AcceptAsync();
        var c = a.CreateTcpSocket();
        WaitFor(c.ConnectAsync(TcpSim.B, 80));
        WaitFor(accept);
        var s = ResultOf(accept);
        var chunk = TcpSim.Data(64 * 1024, 1);
        var rbuf = new byte[256 * 1024];

        da.DropEvery = dropEvery;
        Transfer(Run, c, s, chunk, 16 << 20, rbuf); // warm up: pools, heaps, JIT
        long Segs() => a.Tcp.Counters.SegmentsSent + b.Tcp.Counters.SegmentsSent;
        var segs0 = Segs();
        var before = GC.GetAllocatedBytesForCurrentThread();
        inPoll = 0;
        var wall = Stopwatch.StartNew();
        Transfer(Run, c, s, chunk, bytes, rbuf);
        wall.Stop();
        var allocated = GC.GetAllocatedBytesForCurrentThread() - before;
        return (allocated, inPoll, Segs() - segs0, wall.Elapsed, a.Tcp.Counters);
    }

    private static T ResultOf<T>(Task<T> t) => t.GetAwaiter().GetResult();

    private static TimeSpan? Min(TimeSpan? x, TimeSpan? y) => x is null ? y : y is null ? x : (x < y ? x : y);

    [Fact]
    public void Idle_connections_cost_little_memory()
    {
        var (sim, a, b) = TcpSim.Pair(2, new WireFaults { Delay = TimeSpan.FromMilliseconds(0.05) }, t => t with { DefaultBacklog = 4096 });
        using var _ = sim;
        var l = b.Listen(80);
        var clients = new List<TcpSocket>();
        var servers = new List<TcpSocket>();
        void Open(int count)
        {
            for (int i = 0; i < count; i++)
            {
                var c = a.CreateTcpSocket();
                var connect = c.ConnectAsync(b.Config.Address, 80);
                var accept = l.AcceptAsync();
                sim.Run(connect);
                var s = sim.Run(accept);
                // A little data each way, so the buffers have been used (and given back) as on a real idle connection.
                sim.Run(c.SendAsync(new byte[] { 1, 2, 3 }));
                sim.Run(s.ReceiveAsync(new byte[16]).AsTask());
                clients.Add(c);
                servers.Add(s);
            }
            sim.Advance(TimeSpan.FromSeconds(1));
        }
        static long Settled()
        {
            GC.Collect();
            GC.WaitForPendingFinalizers();
            return GC.GetTotalMemory(true);
        }
        // The marginal cost between 500 and 2500 connections, so pools and tables warmed by the first ones do not count.
        Open(500);
        var before = Settled();
        Open(2000);
        var after = Settled();
        var perConnection = (after - before) / (2.0 * 2000); // both ends of each connection live in this process
        _out.WriteLine($"2000 more idle connections: {perConnection:F0} bytes per connection end");
        Assert.InRange(perConnection, 1, 16 * 1024);
        GC.KeepAlive(clients);
        GC.KeepAlive(servers);
    }
}
