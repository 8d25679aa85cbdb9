using System.Diagnostics;
using System.Globalization;
using System.Runtime;
using NetStack.Link;
using NetStack.Sockets;

namespace NetStack.Bench;

/// <summary>
/// Issue 18's costs without pcap: two stacks in this process on the in-memory <see cref="VirtualWire"/> (MTU 1500),
/// each on its own real-time loop thread, one TCP connection between them. The CPU figure is Gbit/s of payload per
/// core of process CPU actually used (/proc: all threads, GC included); the API figures are bytes allocated and
/// thread hand-offs per SendAsync / ReceiveAsync call at steady state.
/// </summary>
internal static class WireCost
{
    private static readonly Ipv4Address A = new(198, 51, 100, 1);
    private static readonly Ipv4Address B = new(198, 51, 100, 2);
    private const ushort Port = 9;

    /// <summary>A device that counts what crosses threads: Wake (work posted to the loop from another thread) and the loop's sleeps.</summary>
    private sealed class CountingDevice(ILinkDevice inner) : ILinkDevice
    {
        public long Wakes;
        public long Waits;
        public string Name => inner.Name;
        public MacAddress HardwareAddress => inner.HardwareAddress;
        public int Mtu => inner.Mtu;
        public long ReceiveBatches, FramesIn; // Receive calls that returned frames, and the frames (the loop's thread only)
        public int Receive(IFrameSink sink, TimeSpan now, int max)
        {
            var n = inner.Receive(sink, now, max);
            if (n > 0) { ReceiveBatches++; FramesIn += n; }
            return n;
        }
        public void Transmit(ReadOnlySpan<byte> frame, TimeSpan now) => inner.Transmit(frame, now);
        // The port's capabilities pass through, so the counted stacks run as on a bare port.
        public bool CompletesTcpChecksum => inner.CompletesTcpChecksum;
        public void TransmitChecksumPending(ReadOnlySpan<byte> frame, TimeSpan now) => inner.TransmitChecksumPending(frame, now);
        public Memory<byte> LendTransmitBuffer(int frameLength) => inner.LendTransmitBuffer(frameLength);
        public void Flush(TimeSpan now) => inner.Flush(now);
        public TimeSpan? NextArrival => inner.NextArrival;
        public void WaitForFrames(TimeSpan timeout)
        {
            Interlocked.Increment(ref Waits);
            inner.WaitForFrames(timeout);
        }
        public void Wake()
        {
            Interlocked.Increment(ref Wakes);
            inner.Wake();
        }
        public LinkStatistics Statistics => inner.Statistics;
        public void SetStackAddress(MacAddress mac) => inner.SetStackAddress(mac);
        public void Dispose() => inner.Dispose();
    }

    private sealed class Pair : IDisposable
    {
        public required NetworkStack StackA, StackB;
        public required CountingDevice DeviceA, DeviceB;
        public required VirtualWire Wire;
        public required TcpSocket Client, Server;
        public void Dispose()
        {
            Client.Abort();
            Server.Abort();
            StackA.Dispose();
            StackB.Dispose();
        }
    }

    private static async Task<Pair> Connect()
    {
        var wire = new VirtualWire(seed: 7);
        var da = new CountingDevice(wire.CreatePort("a", MacAddress.Parse("02-00-00-00-00-01")));
        var db = new CountingDevice(wire.CreatePort("b", MacAddress.Parse("02-00-00-00-00-02")));
        // One clock for both: each stack's own would start at its construction, and the wire would hold A's frames
        // for B until B's clock caught up (a one-way delay of the gap between the two constructions).
        var clock = new SystemClock();
        var a = new NetworkStack(da, new StackConfig { Address = A }, clock, name: "wire-a");
        var b = new NetworkStack(db, new StackConfig { Address = B }, clock, name: "wire-b");
        a.Start();
        b.Start();
        var listener = b.Listen(Port);
        var accept = listener.AcceptAsync();
        var client = await a.ConnectTcpAsync(B, Port);
        var server = await accept.WaitAsync(TimeSpan.FromSeconds(30));
        return new Pair { Wire = wire, StackA = a, StackB = b, DeviceA = da, DeviceB = db, Client = client, Server = server };
    }

    /// <summary>What one side's calls cost, counted on the calling thread: bytes allocated synchronously by the call, calls that returned pending.</summary>
    private sealed class CallerCost
    {
        public long Calls, Allocated, Pending;
    }

    /// <summary>
    /// Streams A to B for <paramref name="duration"/> (A sends <paramref name="sendChunk"/> per call, B reads
    /// <paramref name="readChunk"/> per call); with <paramref name="close"/> A then shuts down and B reads to the end.
    /// Returns the bytes B read and each side's call costs.
    /// </summary>
    private static async Task<(long Bytes, CallerCost Send, CallerCost Receive)> Stream(Pair p, TimeSpan duration, int sendChunk, int readChunk, bool close,
        bool valueTasks = false)
    {
        var data = new byte[sendChunk];
        var buffer = new byte[readChunk];
        var sendCost = new CallerCost();
        var receiveCost = new CallerCost();
        var stop = false;
        long sent = 0, received = 0;
        long final = -1; // without close: the bytes the sender will have sent in all, published before its last send
        var sender = Task.Run(async () =>
        {
            // Without close, one send more after stop is seen: the receiver may have drained everything and asked for more
            // just before stop was set (it then waited forever: a warm-up window hung, about once in 50 runs), and that
            // last send answers it. Its total is published before it is sent, so the receiver knows where the window
            // ends without waiting for the sender: the last send may itself wait for the receiver to read (a parked
            // send is woken once a third of the buffer is free, as Linux's is), and a receiver that waited for the
            // sender first deadlocked with it (the api scenario hung so, about once in 10 runs).
            for (var last = false; !last;)
            {
                last = Volatile.Read(ref stop);
                if (last && close) break;
                if (last) Volatile.Write(ref final, sent + sendChunk);
                var before = GC.GetAllocatedBytesForCurrentThread();
                var t = valueTasks ? p.Client.WriteAsync(data) : new ValueTask(p.Client.SendAsync(data));
                sendCost.Allocated += GC.GetAllocatedBytesForCurrentThread() - before;
                sendCost.Calls++;
                if (!t.IsCompleted) sendCost.Pending++;
                await t;
                ThreadProbe.Count(0);
                sent += sendChunk;
            }
            if (close) p.Client.ShutdownSend();
        });
        var receiver = Task.Run(async () =>
        {
            while (true)
            {
                // Without close: once the sender's total is known, the window ends with its last byte. Until then more
                // is coming (the sender's last send has not been made yet), so the receive below gets data.
                if (!close && Volatile.Read(ref final) is >= 0 and var total && received >= total) break;
                var before = GC.GetAllocatedBytesForCurrentThread();
                var t = valueTasks ? p.Server.ReadAsync(buffer) : p.Server.ReceiveAsync(buffer); // the same call now (a ValueTask over the socket)
                receiveCost.Allocated += GC.GetAllocatedBytesForCurrentThread() - before;
                receiveCost.Calls++;
                if (!t.IsCompleted) receiveCost.Pending++;
                var n = await t;
                ThreadProbe.Count(1);
                if (n == 0) break;
                received += n;
            }
        });
        await Task.Delay(duration);
        Volatile.Write(ref stop, true);
        try
        {
            await Task.WhenAll(sender, receiver).WaitAsync(duration + TimeSpan.FromSeconds(30));
        }
        catch (TimeoutException)
        {
            // A hang is a lost wake-up somewhere: say where each side stands (the run is then reported as timed out).
            Console.Error.WriteLine($"wire stream hung: sent {Volatile.Read(ref sent)} received {Volatile.Read(ref received)} (of {Volatile.Read(ref final)}), " +
                $"send calls {sendCost.Calls} (pending {sendCost.Pending}, done {sender.IsCompleted}), " +
                $"receive calls {receiveCost.Calls} (pending {receiveCost.Pending}, done {receiver.IsCompleted}), value tasks {valueTasks}");
            foreach (var (name, stack) in new[] { ("a", p.StackA), ("b", p.StackB) })
                foreach (var c in await stack.GetConnectionsAsync().WaitAsync(TimeSpan.FromSeconds(10)))
                    Console.Error.WriteLine($"  {name}: {c}");
            throw;
        }
        return (received, sendCost, receiveCost);
    }

    /// <summary>The processor of <see cref="OursCpuPerCoreOnOneProcessor"/>.</summary>
    public const int OneProcessor = 0;

    /// <summary><see cref="OursCpuPerCore"/> with every thread of the process on <see cref="OneProcessor"/>; restored after.</summary>
    public static async Task<Measurement> OursCpuPerCoreOnOneProcessor(BenchLab lab, BenchOptions o)
    {
        using var pinned = Native.PinProcess(OneProcessor);
        return await OursCpuPerCore(lab, o);
    }

    public static async Task<Measurement> OursCpuPerCore(BenchLab lab, BenchOptions o)
    {
        using var p = await Connect();
        var warmups = await WarmUp(() => Stream(p, TimeSpan.FromSeconds(0.3), 128 * 1024, 256 * 1024, close: false));
        var proc = Process.GetCurrentProcess();
        proc.Refresh();
        var jit0 = JitInfo.GetCompilationTime();
        var cpu0 = proc.TotalProcessorTime;
        var loopA0 = await p.StackA.InvokeAsync(_ => Native.ThreadCpuTime());
        var loopB0 = await p.StackB.InvokeAsync(_ => Native.ThreadCpuTime());
        var (frames0, pool0, switches0) = (Interlocked.Read(ref p.Wire.FramesCarried), ThreadPool.CompletedWorkItemCount, VoluntaryContextSwitches());
        var (wakes0, waits0) = (Interlocked.Read(ref p.DeviceA.Wakes) + Interlocked.Read(ref p.DeviceB.Wakes), Interlocked.Read(ref p.DeviceA.Waits) + Interlocked.Read(ref p.DeviceB.Waits));
        var (batchesB0, framesInB0) = await p.StackB.InvokeAsync(_ => (p.DeviceB.ReceiveBatches, p.DeviceB.FramesIn));
        ThreadProbe? probe = null;
        if (ThreadProbe.On)
            probe = new ThreadProbe(new Dictionary<int, string>
            {
                [await p.StackA.InvokeAsync(_ => ThreadProbe.gettid())] = "loop-A(sender)",
                [await p.StackB.InvokeAsync(_ => ThreadProbe.gettid())] = "loop-B(receiver)",
            });
        MarkWindowStart();
        var clock = Stopwatch.StartNew();
        var (bytes, send, receive) = await Stream(p, o.WireDuration, 128 * 1024, 256 * 1024, close: true);
        var wall = clock.Elapsed;
        MarkWindowEnd();
        var loopA = await p.StackA.InvokeAsync(_ => Native.ThreadCpuTime()) - loopA0;
        var loopB = await p.StackB.InvokeAsync(_ => Native.ThreadCpuTime()) - loopB0;
        proc.Refresh();
        var cpu = proc.TotalProcessorTime - cpu0;
        var jit = JitInfo.GetCompilationTime() - jit0;
        // Counted events of the window (steadier under load than the rates): frames the wire carried (both ways), thread-pool
        // work items (each a continuation hop, and a worker that may spin after it), voluntary context switches (sleeps),
        // the loops' wake-ups (Wake: a frame or work for a loop that may sleep) and sleeps (WaitForFrames).
        var frames = Interlocked.Read(ref p.Wire.FramesCarried) - frames0;
        var (pool, switches) = (ThreadPool.CompletedWorkItemCount - pool0, VoluntaryContextSwitches() - switches0);
        var wakes = Interlocked.Read(ref p.DeviceA.Wakes) + Interlocked.Read(ref p.DeviceB.Wakes) - wakes0;
        var waits = Interlocked.Read(ref p.DeviceA.Waits) + Interlocked.Read(ref p.DeviceB.Waits) - waits0;
        var (batchesB, framesInB) = await p.StackB.InvokeAsync(_ => (p.DeviceB.ReceiveBatches - batchesB0, p.DeviceB.FramesIn - framesInB0));
        var segments = Math.Max(1.0, bytes / 1448.0); // full-sized data segments at MTU 1500 (MSS 1448 with timestamps)
        var mib = Math.Max(1e-9, bytes / 1048576.0);
        var stats = await p.StackA.GetStatisticsAsync();
        probe?.Report(string.Create(CultureInfo.InvariantCulture, $"gbit_per_core {bytes * 8 / cpu.TotalSeconds / 1e9:F2} cpu_us/seg {cpu.TotalMicroseconds / segments:F3} wall_gbit {bytes * 8 / wall.TotalSeconds / 1e9:F2} recv_KiB/call {bytes / 1024.0 / Math.Max(1, receive.Calls):F1} send_pending {send.Pending / Math.Max(1.0, send.Calls):F2} recv_pending {receive.Pending / Math.Max(1.0, receive.Calls):F2} pool/MiB {pool / mib:F2} sleeps/MiB {waits / mib:F2} wakes/MiB {wakes / mib:F2}"), segments, mib);
        return new Measurement(bytes * 8 / cpu.TotalSeconds / 1e9, new Dictionary<string, double>
        {
            ["process_cpu_us_per_segment"] = cpu.TotalMicroseconds / segments,
            ["sender_loop_cpu_us_per_segment"] = loopA.TotalMicroseconds / segments,
            ["receiver_loop_cpu_us_per_segment"] = loopB.TotalMicroseconds / segments,
            ["other_threads_cpu_us_per_segment"] = (cpu - loopA - loopB).TotalMicroseconds / segments, // the callers' pool threads, spinning workers, GC, JIT
            ["frames_per_segment"] = frames / segments,
            ["pool_work_items_per_mib"] = pool / mib,
            ["voluntary_switches_per_mib"] = switches / mib,
            ["loop_wakes_per_mib"] = wakes / mib,
            ["loop_sleeps_per_mib"] = waits / mib,
            ["send_calls_pending_share"] = send.Pending / Math.Max(1.0, send.Calls),
            ["receive_calls_pending_share"] = receive.Pending / Math.Max(1.0, receive.Calls),
            ["receive_calls_per_mib"] = receive.Calls / mib,
            ["receiver_frames_per_batch"] = framesInB / Math.Max(1.0, batchesB), // frames per Receive of the receiving stack's device that returned any
            ["sender_retransmissions"] = stats.FirstOrDefault(c => c.Layer == "Tcp" && c.Name == "SegmentsRetransmitted")?.Value ?? 0,
            ["sender_timeouts"] = stats.FirstOrDefault(c => c.Layer == "Tcp" && c.Name == "Timeouts")?.Value ?? 0,
            ["wire_frames_overflowed"] = p.Wire.FramesOverflowed,
            ["gbit_per_s"] = bytes * 8 / wall.TotalSeconds / 1e9,
            ["process_cpu_cores"] = cpu / wall,
            ["sender_loop_cpu_share"] = loopA / wall,
            ["receiver_loop_cpu_share"] = loopB / wall,
            ["bytes"] = bytes,
            ["warmup_windows"] = warmups,
            ["jit_ms"] = jit.TotalMilliseconds, // time in the JIT on any thread (wall time: more than its CPU when descheduled)
        });
    }

    // Markers for the JIT's method list (DOTNET_JitDisasmSummary): each is compiled when first called.
    // perf's control fifo (perf record -D -1 --control fifo:PATH), NETSTACK_BENCH_PERF_CTL=PATH: the profile covers the window only.
    private static readonly string? PerfControl = Environment.GetEnvironmentVariable("NETSTACK_BENCH_PERF_CTL");
    [System.Runtime.CompilerServices.MethodImpl(System.Runtime.CompilerServices.MethodImplOptions.NoInlining)] private static void MarkWindowStart() { if (PerfControl is not null) File.AppendAllText(PerfControl, "enable\n"); }
    [System.Runtime.CompilerServices.MethodImpl(System.Runtime.CompilerServices.MethodImplOptions.NoInlining)] private static void MarkWindowEnd() { if (PerfControl is not null) File.AppendAllText(PerfControl, "disable\n"); }

    /// <summary>
    /// Runs <paramref name="window"/> until a whole window compiled no method (at most 20 windows): a fixed 0.3 s warm-up on a
    /// loaded machine left the tiered JIT's rejits (tier 1, PGO, OSR) inside the timed window, where the JIT thread took as much
    /// CPU as the two loops together and the figure was a quarter of the steady state's. Returns the windows run.
    /// </summary>
    private static async Task<int> WarmUp(Func<Task> window)
    {
        for (int n = 1; ; n++)
        {
            var compiled = JitInfo.GetCompiledMethodCount();
            await window();
            if (n >= 2 && JitInfo.GetCompiledMethodCount() == compiled || n == 20) return n;
        }
    }

    /// <summary>Bytes the loop thread of <paramref name="stack"/> has allocated so far (read on the loop).</summary>
    private static Task<long> LoopAllocated(NetworkStack stack) => stack.InvokeAsync(_ => GC.GetAllocatedBytesForCurrentThread());

    /// <summary>Voluntary context switches of every thread of this process (each a sleep, so each a wake-up to come).</summary>
    private static long VoluntaryContextSwitches()
    {
        long total = 0;
        foreach (var task in Directory.GetDirectories("/proc/self/task"))
        {
            try
            {
                var line = File.ReadLines(Path.Combine(task, "status")).FirstOrDefault(l => l.StartsWith("voluntary_ctxt_switches:", StringComparison.Ordinal));
                if (line is not null) total += long.Parse(line.Split(':')[1].Trim(), CultureInfo.InvariantCulture);
            }
            catch (IOException) { /* the thread ended */ }
        }
        return total;
    }

    /// <summary>
    /// A streams 4 KiB sends to B's 4 KiB receives, through the allocation-free API (<c>WriteAsync</c>/<c>ReadAsync</c>, ValueTask
    /// over each socket's reusable operation: the figures) and then through the Task API (<c>SendAsync</c>/<c>ReceiveAsync</c>:
    /// the <c>task_api_*</c> details). Each side's cost per call is counted where it arises: bytes the call allocated
    /// synchronously on the calling thread (which includes a loop turn the call ran inline), plus bytes that side's loop
    /// thread allocated, per call (the loop's per-frame share is ~0, its own figure); hand-offs per call = work posted to the
    /// loop that had to wake it (the device's Wake) + completions that come back from the loop (calls that returned
    /// pending: their continuation runs on another thread). The whole process's allocation per call and the thread pool's
    /// work items are details.
    /// </summary>
    public static async Task<Dictionary<string, Measurement>> OursApiCost(BenchOptions o)
    {
        using var p = await Connect();
        await Stream(p, TimeSpan.FromSeconds(0.3), 4096, 4096, close: false, valueTasks: true); // warm-up, both APIs
        await Stream(p, TimeSpan.FromSeconds(0.3), 4096, 4096, close: false);
        var tasks = await ApiWindow(p, o.WireDuration / 2, valueTasks: false);
        var values = await ApiWindow(p, o.WireDuration, valueTasks: true);
        var common = new Dictionary<string, double>(values.Common);
        foreach (var (k, v) in tasks.Common) common["task_api_" + k] = v;
        foreach (var (k, v) in tasks.Figures) common["task_api_" + k.Replace('-', '_')] = v.Value;
        Measurement M(string id, params string[] extra)
        {
            var d = new Dictionary<string, double>(common);
            foreach (var k in extra) d[k] = values.Figures[id].Details[k];
            return new Measurement(values.Figures[id].Value, d);
        }
        return new()
        {
            ["api-alloc-send"] = M("api-alloc-send", "caller_bytes_per_call", "loop_bytes_per_call"),
            ["api-alloc-recv"] = M("api-alloc-recv", "caller_bytes_per_call", "loop_bytes_per_call"),
            ["api-handoffs-send"] = M("api-handoffs-send", "loop_posts_per_call", "pending_at_return_share"),
            ["api-handoffs-recv"] = M("api-handoffs-recv", "loop_posts_per_call", "pending_at_return_share"),
        };
    }

    private static async Task<(Dictionary<string, double> Common, Dictionary<string, Measurement> Figures)> ApiWindow(Pair p, TimeSpan duration, bool valueTasks)
    {
        var (la0, lb0) = (await LoopAllocated(p.StackA), await LoopAllocated(p.StackB));
        var (wa0, wb0) = (Interlocked.Read(ref p.DeviceA.Wakes), Interlocked.Read(ref p.DeviceB.Wakes));
        var (total0, pool0, switches0) = (GC.GetTotalAllocatedBytes(precise: true), ThreadPool.CompletedWorkItemCount, VoluntaryContextSwitches());
        var (bytes, send, receive) = await Stream(p, duration, 4096, 4096, close: false, valueTasks);
        var (total, pool, switches) = (GC.GetTotalAllocatedBytes(precise: true) - total0, ThreadPool.CompletedWorkItemCount - pool0, VoluntaryContextSwitches() - switches0);
        var (wa, wb) = (Interlocked.Read(ref p.DeviceA.Wakes) - wa0, Interlocked.Read(ref p.DeviceB.Wakes) - wb0);
        var (la, lb) = (await LoopAllocated(p.StackA) - la0, await LoopAllocated(p.StackB) - lb0);
        double calls = send.Calls + receive.Calls;
        var common = new Dictionary<string, double>
        {
            ["bytes_moved"] = bytes, ["send_calls"] = send.Calls, ["receive_calls"] = receive.Calls,
            ["process_alloc_bytes_per_call"] = total / calls,
            ["pool_work_items_per_call"] = pool / calls,
            ["voluntary_context_switches_per_call"] = switches / calls,
        };
        Measurement M(double value, params (string, double)[] extra) => new(value, extra.ToDictionary(e => e.Item1, e => e.Item2));
        double Per(double x, CallerCost c) => x / Math.Max(1, c.Calls);
        return (common, new()
        {
            ["api-alloc-send"] = M(Per(send.Allocated + la, send), ("caller_bytes_per_call", Per(send.Allocated, send)), ("loop_bytes_per_call", Per(la, send))),
            ["api-alloc-recv"] = M(Per(receive.Allocated + lb, receive), ("caller_bytes_per_call", Per(receive.Allocated, receive)), ("loop_bytes_per_call", Per(lb, receive))),
            ["api-handoffs-send"] = M(Per(wa + send.Pending, send), ("loop_posts_per_call", Per(wa, send)), ("pending_at_return_share", Per(send.Pending, send))),
            ["api-handoffs-recv"] = M(Per(wb + receive.Pending, receive), ("loop_posts_per_call", Per(wb, receive)), ("pending_at_return_share", Per(receive.Pending, receive))),
        });
    }
}
