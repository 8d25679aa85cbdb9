using System.Diagnostics;
using System.Globalization;
using System.Net;
using System.Net.Sockets;
using NetStack.Sockets;
using NetStack.Tcp;

namespace NetStack.Bench;

/// <summary>
/// Issue 18's figures at scale: process memory (RSS, and the managed heap) per idle connection at 100,000 against the
/// 10,000 figure, a pending 4 KiB ReceiveAsync on each of 10,000 connections, and bulk/connect/request-response with
/// 100,000 idle connections open against none. Our stack opens the idle connections to a listener the harness makes in
/// K per run (port 5008 on k0's primary and secondary addresses, so the 4-tuples suffice: 64,512 ports per address)
/// and never accepts from: the kernel holds them in its accept queue without a descriptor each (this machine caps a
/// process at 20,000 descriptors, so the kernel cannot be the one holding 100,000 sockets in one process).
/// </summary>
internal static class Scale
{
    private static int _flatRuns;

    /// <summary>Enough room in the table and the port range for the scale figures.</summary>
    private static StackConfig Roomy(StackConfig c, int connections) =>
        c with { EphemeralPortFirst = 1024, Tcp = c.Tcp with { MaxConnections = connections + 50_000 } };

    /// <summary>The non-accepting listener in K; closing it resets whatever is left in its queue.</summary>
    private static Socket HoldListener(BenchLab lab)
    {
        lab.EnsureSecondaryAddresses();
        return lab.InKernel(() =>
        {
            var l = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
            l.SetSocketOption(SocketOptionLevel.Socket, SocketOptionName.ReuseAddress, true);
            l.Bind(new IPEndPoint(IPAddress.Any, Peer.ScaleHoldPort));
            l.Listen(262_144);
            return l;
        });
    }

    /// <summary>Opens connections <paramref name="from"/>..<paramref name="to"/> (64 at a time), spread over K's addresses.</summary>
    private static async Task Open(NetworkStack stack, TcpSocket[] sockets, int from, int to)
    {
        Ipv4Address[] targets = [BenchLab.KernelAddress, .. BenchLab.KernelSecondaryAddresses];
        var next = from - 1;
        async Task Worker()
        {
            int i;
            while ((i = Interlocked.Increment(ref next)) < to)
                sockets[i] = await stack.ConnectTcpAsync(targets[i % targets.Length], Peer.ScaleHoldPort);
        }
        await Task.WhenAll(Enumerable.Range(0, 64).Select(_ => Task.Run(Worker)));
        await Task.Delay(300); // the last ACKs and timers settle: the connections are idle
    }

    private static async Task CloseAll(NetworkStack stack, IEnumerable<TcpSocket?> sockets)
    {
        foreach (var s in sockets) s?.Abort(); // RST: K drops its side too
        await stack.InvokeAsync(_ => { });
        await Task.Delay(200);
    }

    /// <summary>
    /// Managed heap after a full compacting collection, GC heap size and process RSS. The collection is the aggressive
    /// kind, which also gives free heap memory back to the system: otherwise what earlier scenarios left committed is
    /// released at some later point and the RSS deltas come out negative.
    /// </summary>
    internal static (long Heap, long GcHeap, long Rss) Memory()
    {
        GC.Collect(2, GCCollectionMode.Aggressive, blocking: true, compacting: true);
        GC.WaitForPendingFinalizers();
        var heap = GC.GetTotalMemory(forceFullCollection: true);
        var info = GC.GetGCMemoryInfo(GCKind.Any);
        var statm = File.ReadAllText("/proc/self/statm").Split(' ');
        var rss = long.Parse(statm[1], CultureInfo.InvariantCulture) * Environment.SystemPageSize;
        return (heap, info.HeapSizeBytes, rss);
    }

    /// <summary>
    /// What the caller of a pending 4 KiB receive holds itself, per connection, in the pending-recv scenario: the buffer
    /// (4,096 B and a byte array's 24 B header) and its slots for the buffer (8 B) and the ValueTask (16 B) — the
    /// detail application_heap_per_connection measures it (4,144 B). Issue 18's line, "no more than the caller's buffer
    /// on top", is judged against what those objects cost in RSS in the same run (the reference): the GC lays out 40 MB
    /// of 4 KiB arrays at 4,137-4,195 B of RSS each (pendrss, measured), not at their 4,144 B of heap; this figure stays
    /// as the details' over_the_4144_mark.
    /// </summary>
    public const int CallersBytesPerPendingReceive = 4096 + 24 + 8 + 16;

    /// <summary>
    /// The pending-recv figure's allowance over its reference, per connection: the spread of an RSS reading of 10,000
    /// connections after a full collection (the GC's regions and the tier-up compiler move it by a few pages: the two
    /// halves of one run differed by up to 11 B per connection, pendrss). The stack's own figure before pendrss read
    /// 18-25 B above the reference, so this still tells that apart.
    /// </summary>
    public const double PendingReceiveRssSpread = 8;

    public static async Task<Measurement> OursIdleAtScale(BenchLab lab, BenchOptions o)
    {
        using var listener = HoldListener(lab);
        using var stack = await Scenarios.StartStack(lab, o, c => Roomy(c, o.ScaleConnections));
        var sockets = new TcpSocket[o.ScaleConnections];
        (await stack.ConnectTcpAsync(BenchLab.KernelAddress, Peer.ScaleHoldPort)).Abort(); // warm-up: code paths and pools exist before "before"
        await Task.Delay(100);
        var m0 = Memory();
        var small = Math.Min(o.IdleConnections, sockets.Length);
        var clock = Stopwatch.StartNew();
        await Open(stack, sockets, 0, small);
        var m1 = Memory();
        await Open(stack, sockets, small, sockets.Length);
        var connectTime = clock.Elapsed;
        var m2 = Memory();
        var open = sockets.Count(s => s.State == TcpState.Established);
        await CloseAll(stack, sockets);
        double n1 = small, n2 = sockets.Length;
        return new Measurement((m2.Rss - m0.Rss) / n2, new Dictionary<string, double>
        {
            ["connections"] = n2,
            ["established"] = open,
            ["rss_bytes_per_connection_small"] = (m1.Rss - m0.Rss) / n1,
            ["heap_bytes_per_connection_small"] = (m1.Heap - m0.Heap) / n1,
            ["heap_bytes_per_connection"] = (m2.Heap - m0.Heap) / n2,
            ["gc_heap_size_bytes_per_connection"] = (m2.GcHeap - m0.GcHeap) / n2,
            ["connects_per_second_64_parallel"] = n2 / connectTime.TotalSeconds,
        }, Reference: (m1.Rss - m0.Rss) / n1);
    }

    /// <summary>
    /// A pending 4 KiB receive on each of n connections: first <c>ReceiveAsync</c> (a ValueTask whose source is the socket)
    /// held as it is on n connections, then the same turned into a Task (<c>AsTask()</c>, what an application that wants a
    /// Task pays) on n more. The figure is ReceiveAsync's RSS per connection against the idle one's; the details give both
    /// kinds, and "ours" per pending receive: the heap after the receives start against the heap with the buffers and the
    /// arrays of tasks already made, so only what the receive allocates counts.
    /// </summary>
    public static async Task<Measurement> OursPendingReceive(BenchLab lab, BenchOptions o)
    {
        using var listener = HoldListener(lab);
        using var stack = await Scenarios.StartStack(lab, o, c => Roomy(c, 2 * o.IdleConnections));
        var n = o.IdleConnections;
        var sockets = new TcpSocket[2 * n];
        await WarmReceives(stack);
        var m0 = Memory();
        await Open(stack, sockets, 0, n);
        var m1 = Memory();
        // The application's side: a 4 KiB buffer and a receive waiting on it, per connection.
        var buffers = Enumerable.Range(0, n).Select(_ => new byte[4096]).ToArray();
        var pending = new ValueTask<int>[n];
        // Its slots written before "after the buffers" (pendrss, measured): an array this large (160 KB at 10,000) is made
        // in the large object heap on fresh zero pages that the OS maps only when written, so its first store, the
        // receive's ValueTask, made the application's 16 B per connection read as RSS the receives added.
        Array.Fill(pending, default);
        var m1b = Memory();
        // The receives on half the connections, then on the rest: the two halves' figures tell what is per connection
        // (in both) from what the process pays once (in the first: code, the runtime's tables).
        var half = n / 2;
        for (int i = 0; i < half; i++) pending[i] = sockets[i].ReceiveAsync(buffers[i]);
        await stack.InvokeAsync(_ => { });
        await Task.Delay(300);
        var m2a = Memory();
        for (int i = half; i < n; i++) pending[i] = sockets[i].ReceiveAsync(buffers[i]);
        await stack.InvokeAsync(_ => { });
        await Task.Delay(300);
        var m2 = Memory();
        var stillPending = pending.Count(t => !t.IsCompleted);

        // The same as Tasks (AsTask) on n fresh connections.
        await Open(stack, sockets, n, 2 * n);
        var m3 = Memory();
        var readBuffers = Enumerable.Range(0, n).Select(_ => new byte[4096]).ToArray();
        var reads = new Task<int>[n];
        Array.Fill(reads, null); // written before, as above
        var m3b = Memory();
        for (int i = 0; i < n; i++) reads[i] = sockets[n + i].ReceiveAsync(readBuffers[i]).AsTask();
        await stack.InvokeAsync(_ => { });
        await Task.Delay(300);
        var m4 = Memory();
        var readsPending = reads.Count(r => !r.IsCompleted);

        await CloseAll(stack, sockets);
        try { await Task.WhenAll(pending.Select(r => r.AsTask()).Concat(reads)).WaitAsync(TimeSpan.FromSeconds(30)); } catch (Exception) { /* reset: expected */ }
        GC.KeepAlive(buffers);
        GC.KeepAlive(readBuffers);
        double d = n;
        // The application's own heap per connection: its 4 KiB buffer with the array's header, and its slot for the task
        // (measured: the heap after making them, before any receive). What RSS adds on top of idle beyond that is the stack's.
        var application = (m1b.Heap - m1.Heap) / d;
        var readApplication = (m3b.Heap - m3.Heap) / d;
        return new Measurement((m2.Rss - m0.Rss) / d, new Dictionary<string, double>
        {
            ["connections"] = d,
            ["application_heap_per_connection"] = application,
            ["application_beyond_the_4kib_per_connection"] = application - 4096,
            ["stack_rss_per_pending_receiveasync"] = (m2.Rss - m1.Rss) / d - application,
            ["stack_rss_per_pending_astask"] = (m4.Rss - m3.Rss) / d - readApplication,
            ["receives_pending"] = stillPending,
            ["rss_on_top_of_idle_per_connection"] = (m2.Rss - m1.Rss) / d,
            ["rss_per_connection_idle"] = (m1.Rss - m0.Rss) / d,
            // The mark as a constant (idle + 4,144 B of the caller's heap): what the figure reads against it.
            ["over_the_4144_mark"] = (m2.Rss - m1.Rss) / d - CallersBytesPerPendingReceive,
            // RSS read after the application made its buffers and arrays, before any receive: what the application's own
            // objects cost in RSS (the GC's overhead on 40 MB of buffers included), and what the receives added on top.
            ["application_rss_per_connection"] = (m1b.Rss - m1.Rss) / d,
            ["rss_per_pending_receive_after_the_buffers"] = (m2.Rss - m1b.Rss) / d,
            ["rss_per_pending_receive_first_half"] = (m2a.Rss - m1b.Rss) / (double)half,
            ["rss_per_pending_receive_second_half"] = (m2.Rss - m2a.Rss) / (double)(n - half),
            ["heap_bytes_per_connection_idle"] = (m1.Heap - m0.Heap) / d,
            ["heap_bytes_per_connection_pending"] = (m2.Heap - m0.Heap) / d,
            ["heap_on_top_of_idle_and_buffer_per_connection"] = (m2.Heap - m1.Heap) / d - 4096,
            ["heap_ours_per_pending_receiveasync"] = (m2.Heap - m1b.Heap) / d,
            ["astask_pending"] = readsPending,
            ["astask_rss_on_top_of_idle_per_connection"] = (m4.Rss - m3.Rss) / d,
            ["astask_heap_on_top_of_idle_and_buffer_per_connection"] = (m4.Heap - m3.Heap) / d - 4096,
            ["heap_per_pending_astask"] = (m4.Heap - m3b.Heap) / d,
        }, Reference: (m1b.Rss - m0.Rss) / d); // idle + the application's buffers and slots, in RSS, before any receive
    }

    /// <summary>
    /// Warm-up before "before": 64 connections, a receive parked on each and ended by an abort, so the receive's code
    /// exists at its steady tier (64 calls: past the runtime's 30 before tier-up) before the figures' first reading;
    /// otherwise the process's one-off JIT (measured: 170-460 methods per 5,000 receives in a cold run, some 0.1-0.5 MB
    /// of RSS) reads as RSS per pending receive.
    /// </summary>
    private static async Task WarmReceives(NetworkStack stack)
    {
        var warm = new TcpSocket[64];
        await Open(stack, warm, 0, warm.Length);
        var reads = warm.Select(s => s.ReceiveAsync(new byte[4096]).AsTask()).ToArray();
        await stack.InvokeAsync(_ => { });
        foreach (var s in warm) s.Abort();
        try { await Task.WhenAll(reads).WaitAsync(TimeSpan.FromSeconds(30)); } catch (Exception) { /* reset: expected */ }
        await Task.Delay(200); // tier-up compiles in the background
    }

    /// <summary>
    /// Bulk receive, connect+close and request/response on one stack with none and with 100,000 idle connections open;
    /// odd runs measure "none" first, even runs the other way round, so warm-up favours neither.
    /// </summary>
    public static async Task<Dictionary<string, Measurement>> OursFlatWithScale(BenchLab lab, BenchOptions o)
    {
        using var listener = HoldListener(lab);
        using var stack = await Scenarios.StartStack(lab, o, c => Roomy(c, o.ScaleConnections));
        var noneFirst = Interlocked.Increment(ref _flatRuns) % 2 == 1;
        var sockets = new TcpSocket[o.ScaleConnections];
        var short_ = o with { BulkDuration = TimeSpan.FromSeconds(Math.Max(1, o.BulkDuration.TotalSeconds / 2)) };

        async Task<(Measurement Recv, Measurement Connect, Measurement Rr)> Figures() =>
            (await Scenarios.BulkOn(stack, short_, receive: true, sampleWindows: false), await Scenarios.ConnectOn(stack, o), await Scenarios.RequestResponseOn(stack, o));

        // Warm-up of the three (JIT, pools), so neither position gets the cold code.
        await Scenarios.BulkOn(stack, o with { BulkDuration = TimeSpan.FromSeconds(0.5), BulkWarmup = TimeSpan.FromSeconds(0.2) }, receive: true, sampleWindows: false);
        await Scenarios.ConnectOn(stack, o with { Connects = 200 });
        await Scenarios.RequestResponseOn(stack, o with { RoundTrips = 1000 });
        (Measurement Recv, Measurement Connect, Measurement Rr) none, many;
        int open;
        if (noneFirst)
        {
            none = await Figures();
            await Open(stack, sockets, 0, sockets.Length);
            open = sockets.Count(s => s.State == TcpState.Established);
            many = await Figures();
            await CloseAll(stack, sockets);
        }
        else
        {
            await Open(stack, sockets, 0, sockets.Length);
            open = sockets.Count(s => s.State == TcpState.Established);
            many = await Figures();
            await CloseAll(stack, sockets);
            none = await Figures();
        }
        return WithAndWithout(many, none, open, noneFirst);
    }

    /// <summary>
    /// The flat-with-scale figures (ours and the kernel's alike): each with its run with none as the reference, and that
    /// run's details beside (prefixed "none_"): the CPU and counts per frame or call compare where the rates, on a
    /// loaded machine, do not.
    /// </summary>
    internal static Dictionary<string, Measurement> WithAndWithout((Measurement Recv, Measurement Connect, Measurement Rr) many,
        (Measurement Recv, Measurement Connect, Measurement Rr) none, int open, bool noneFirst)
    {
        Measurement With(Measurement m, Measurement reference)
        {
            var d = new Dictionary<string, double>(m.Details) { ["idle_connections_established"] = open, ["none_first"] = noneFirst ? 1 : 0 };
            foreach (var (k, v) in reference.Details) d["none_" + k] = v;
            return m with { Details = d, Reference = reference.Value };
        }
        return new()
        {
            ["scale-recv"] = With(many.Recv, none.Recv),
            ["scale-connect"] = With(many.Connect, none.Connect),
            ["scale-rr"] = With(many.Rr, none.Rr),
        };
    }
}
