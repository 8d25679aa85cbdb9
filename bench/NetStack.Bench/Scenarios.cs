using System.Diagnostics;
using System.Globalization;
using System.Net;
using System.Net.Sockets;
using System.Runtime.InteropServices;
using NetStack.Icmp;
using NetStack.Link;
using NetStack.Sockets;
using NetStack.Tcp;

namespace NetStack.Bench;

/// <summary>
/// The clients: the same work done by our stack on u0 and by the kernel in U (sockets created on a thread that
/// entered U, so they live there). The peer in K is the same for both.
/// </summary>
internal static class Scenarios
{
    private static readonly Ipv4Address Kernel = BenchLab.KernelAddress;

    // ---------------- our stack ----------------

    private static bool _warnedNoNft;

    /// <summary>
    /// Our stack on u0 (default StackConfig unless <paramref name="config"/> changes it), with the host ingress drop
    /// unless the options turn it off, its ARP for K resolved before timing starts.
    /// </summary>
    internal static async Task<NetworkStack> StartStack(BenchLab lab, BenchOptions o, Func<StackConfig, StackConfig>? config = null)
    {
        var options = new PcapDeviceOptions { NetworkNamespace = lab.StackNamespace, HostIngressDrop = o.HostDrop ? BenchLab.StackAddress : (Ipv4Address?)null };
        // A/B of the capture ring's size in one build: NETSTACK_BENCH_RING_KIB=N sets PcapDeviceOptions.KernelBufferSize.
        if (int.TryParse(Environment.GetEnvironmentVariable("NETSTACK_BENCH_RING_KIB"), out var ringKib)) options = options with { KernelBufferSize = ringKib * 1024 };
        // A/B of PACKET_QDISC_BYPASS in one build: NETSTACK_BENCH_BYPASS_QDISC=1 sets PcapDeviceOptions.BypassQdisc.
        if (Environment.GetEnvironmentVariable("NETSTACK_BENCH_BYPASS_QDISC") == "1") options = options with { BypassQdisc = true };
        PcapDevice device;
        try { device = PcapDevice.Open(BenchLab.StackInterface, options); }
        catch (HostIngressDropException e) when (e.Reason == HostIngressDropFailure.NftMissing)
        {
            if (!_warnedNoNft) Console.WriteLine($"  ({e.Message} Measuring without it.)");
            _warnedNoNft = true;
            device = PcapDevice.Open(BenchLab.StackInterface, options with { HostIngressDrop = null });
        }
        var c = new StackConfig { Address = BenchLab.StackAddress, PrefixLength = 24, MacAddress = BenchLab.StackMac };
        // A/B of congestion controls in one build: NETSTACK_BENCH_CONGESTION=cubic (or newreno, bbr) for the stacks the scenarios start.
        if (Environment.GetEnvironmentVariable("NETSTACK_BENCH_CONGESTION") is { Length: > 0 } cc) c = c with { Tcp = c.Tcp with { CongestionControl = cc } };
        var stack = new NetworkStack(device, config is null ? c : config(c), name: "bench");
        try
        {
            stack.Start();
            var reply = await stack.PingAsync(Kernel, timeout: TimeSpan.FromSeconds(5)); // ARP resolved before timing starts
            if (reply.Status != PingStatus.Success) throw new InvalidOperationException($"the kernel in K does not answer our ping: {reply.Status}");
        }
        catch
        {
            // Not left running: its host drop would refuse the next run's stack and drop the kernel side's frames.
            stack.Dispose();
            throw;
        }
        return stack;
    }

    /// <summary>What the loop thread has allocated and spent, read on the loop itself.</summary>
    internal sealed record LoopSnapshot(long Allocated, TimeSpan Cpu, long FramesIn, long FramesOut, long ProcessAllocated, TimeSpan ProcessCpu, TimeSpan At, int Gen0, long RunQueueWaitNs,
        PcapCalls Pcap = default);

    /// <summary>The pcap device's system calls, sleeps and GSO packets (all zero for another device).</summary>
    internal readonly record struct PcapCalls(long TransmitCalls, long GsoPackets, long GsoFrames, long ReceiveCalls, long Waits)
    {
        public static PcapCalls Of(ILinkDevice device) => device is PcapDevice p
            ? new(p.TransmitCalls, p.SegmentationPackets, p.FramesSegmentedByKernel, p.ReceiveCalls, p.Waits)
            : default;
    }

    internal static Task<LoopSnapshot> Snapshot(NetworkStack stack, Stopwatch clock) => stack.InvokeAsync(_ => new LoopSnapshot(
        GC.GetAllocatedBytesForCurrentThread(), Native.ThreadCpuTime(), stack.EthernetCounters.FramesReceived, stack.EthernetCounters.FramesSent,
        GC.GetTotalAllocatedBytes(precise: true), Process.GetCurrentProcess().TotalProcessorTime, clock.Elapsed, GC.CollectionCount(0), RunQueueWait(),
        PcapCalls.Of(stack.Device)));

    /// <summary>Nanoseconds this thread has spent runnable but waiting for a CPU (/proc/thread-self/schedstat, 2nd field).</summary>
    private static long RunQueueWait()
    {
        try { return long.Parse(File.ReadAllText("/proc/thread-self/schedstat").Split(' ')[1], CultureInfo.InvariantCulture); }
        catch (Exception e) when (e is IOException or FormatException or IndexOutOfRangeException) { return 0; }
    }

    internal static async Task<Dictionary<string, double>> LoopDetails(NetworkStack stack, LoopSnapshot a, LoopSnapshot b, long calls)
    {
        var frames = Math.Max(1, (b.FramesIn - a.FramesIn) + (b.FramesOut - a.FramesOut));
        var counters = await stack.GetStatisticsAsync();
        long C(string layer, string name) => counters.FirstOrDefault(c => c.Layer == layer && c.Name == name)?.Value ?? 0;
        var pcap = (PcapDevice)stack.Device;
        await stack.InvokeAsync(_ => pcap.RefreshStatistics());
        return new Dictionary<string, double>
        {
            ["frames_in"] = b.FramesIn - a.FramesIn,
            ["frames_out"] = b.FramesOut - a.FramesOut,
            ["api_calls"] = calls,
            ["loop_alloc_bytes_per_frame"] = (double)(b.Allocated - a.Allocated) / frames,
            ["loop_alloc_bytes_per_api_call"] = (double)(b.Allocated - a.Allocated) / Math.Max(1, calls),
            ["process_alloc_bytes_per_frame"] = (double)(b.ProcessAllocated - a.ProcessAllocated) / frames,
            ["gen0_collections"] = b.Gen0 - a.Gen0,
            ["loop_cpu_us_per_frame"] = (b.Cpu - a.Cpu).TotalMicroseconds / frames,
            ["loop_cpu_share"] = (b.Cpu - a.Cpu) / (b.At - a.At),
            // Runnable but not running: CPU taken by other work on the machine, not the loop's own waiting.
            ["loop_runqueue_wait_share"] = (b.RunQueueWaitNs - a.RunQueueWaitNs) / 1e9 / (b.At - a.At).TotalSeconds,
            ["process_cpu_us_per_frame"] = (b.ProcessCpu - a.ProcessCpu).TotalMicroseconds / frames,
            ["tcp_retransmits"] = C("Tcp", "SegmentsRetransmitted"),
            ["pcap_dropped"] = pcap.Statistics.DroppedByDevice,
            ["loop_faults"] = stack.LoopFaults,
            // How the frames crossed into the kernel: system calls per frame each way, the loop's sleeps, GSO packets' size.
            ["send_calls_per_frame_out"] = (double)(b.Pcap.TransmitCalls - a.Pcap.TransmitCalls) / Math.Max(1, b.FramesOut - a.FramesOut),
            ["gso_frames_share"] = (double)(b.Pcap.GsoFrames - a.Pcap.GsoFrames) / Math.Max(1, b.FramesOut - a.FramesOut),
            ["frames_per_gso_packet"] = (double)(b.Pcap.GsoFrames - a.Pcap.GsoFrames) / Math.Max(1, b.Pcap.GsoPackets - a.Pcap.GsoPackets),
            ["dispatch_calls_per_frame_in"] = (double)(b.Pcap.ReceiveCalls - a.Pcap.ReceiveCalls) / Math.Max(1, b.FramesIn - a.FramesIn),
            ["loop_sleeps_per_frame"] = (double)(b.Pcap.Waits - a.Pcap.Waits) / frames,
        };
    }

    public static async Task<Measurement> OursBulk(BenchLab lab, BenchOptions o, bool receive)
    {
        using var stack = await StartStack(lab, o);
        return await BulkOn(stack, o, receive);
    }

    internal static async Task<Measurement> BulkOn(NetworkStack stack, BenchOptions o, bool receive, bool sampleWindows = true)
    {
        var s = await stack.ConnectTcpAsync(Kernel, receive ? (ushort)Peer.SourcePort : (ushort)Peer.SinkPort);
        // NETSTACK_BENCH_RECV_REQUEST=1: the receiving connection sends a byte first, as a request before a download
        // (its sender then has records and a recovery: the ACK path of a connection that has sent, not the short one).
        if (receive && Environment.GetEnvironmentVariable("NETSTACK_BENCH_RECV_REQUEST") == "1") await s.SendAsync(new byte[1]);
        var buffer = new byte[o.BulkChunk];
        new Random(2).NextBytes(buffer);
        var clock = Stopwatch.StartNew();
        long bytes = 0, calls = 0;
        LoopSnapshot? start = null;
        var probe = default(CpuProbe);
        var tcp = new WindowSamples();
        ThreadCounters threads0 = default;
        long pool0 = 0, pending = 0, pendingBytes = 0;
        (long Batch, long Delayed) acks0 = default;
        while (true)
        {
            if (start is null && clock.Elapsed >= o.BulkWarmup)
            {
                start = await Snapshot(stack, clock); probe = CpuProbe.Take(); bytes = 0; calls = 0; pending = 0; pendingBytes = 0;
                (threads0, pool0) = (ThreadCounters.Take(), ThreadPool.CompletedWorkItemCount);
                acks0 = await AckCounts(stack);
                WindowMarks.Mark("ours", "start");
            }
            if (start is not null && clock.Elapsed - start.At >= o.BulkDuration) break;
            if (receive)
            {
                var receiving = s.ReceiveAsync(buffer);
                var parked = !receiving.IsCompleted; // parked: the loop completes it, a hop back through the thread pool
                var n = await receiving;
                if (parked) { pending++; pendingBytes += n; }
                if (n == 0) throw new InvalidOperationException("the peer closed the bulk connection early");
                bytes += n;
            }
            else
            {
                await s.SendAsync(buffer);
                bytes += buffer.Length;
            }
            calls++;
            if (sampleWindows && start is not null && (calls & 255) == 0) await SampleWindow(s, tcp);
        }
        var (threads1, pool1) = (ThreadCounters.Take(), ThreadPool.CompletedWorkItemCount);
        var end = await Snapshot(stack, clock);
        WindowMarks.Mark("ours", "end");
        var details = await LoopDetails(stack, start!, end, calls);
        // Per frame (in and out): the process's threads split (loop, thread pool, the rest), their sleeps and
        // preemptions; per API call: the thread pool's work items and the calls that did not complete at return.
        ThreadCounters.Describe("per_frame_", threads0, threads1, Math.Max(1, details["frames_in"] + details["frames_out"]), details, split: true);
        details["pool_work_items_per_api_call"] = (double)(pool1 - pool0) / Math.Max(1, calls);
        details["calls_pending_at_return_share"] = (double)pending / Math.Max(1, calls);
        if (receive)
        {
            details["bytes_per_pending_receive"] = (double)pendingBytes / Math.Max(1, pending);
            // What a receiving connection's frames out are: ACKs at a receive batch's end, on the delayed-ACK timer,
            // and the rest (window updates after reads, ACKs owed at once), per frame out.
            var acks1 = await AckCounts(stack);
            var outFrames = Math.Max(1, details["frames_out"]);
            details["batch_acks_per_frame_out"] = (acks1.Batch - acks0.Batch) / outFrames;
            details["delayed_acks_per_frame_out"] = (acks1.Delayed - acks0.Delayed) / outFrames;
        }
        CpuProbe.Describe(probe, CpuProbe.Take(), details);
        if (WindowMarks.On) Console.Error.WriteLine($"FRAMES ours in {details["frames_in"]} out {details["frames_out"]}");
        if (tcp.Samples > 0)
        {
            details["avg_in_flight_kib"] = tcp.InFlight / tcp.Samples / 1024;
            details["avg_cwnd_kib"] = tcp.Cwnd / tcp.Samples / 1024;
            details["avg_peer_window_kib"] = tcp.SndWnd / tcp.Samples / 1024;
            details["avg_send_queue_kib"] = tcp.SendQ / tcp.Samples / 1024;
            details["avg_srtt_us"] = tcp.Srtt / tcp.Samples;
            // The receiving side: our buffer, the window we offer, and what waits unread in it (the reader behind).
            details["avg_rcv_buf_kib"] = tcp.RcvBuf / tcp.Samples / 1024;
            details["avg_rcv_wnd_kib"] = tcp.RcvWnd / tcp.Samples / 1024;
            details["avg_recv_q_kib"] = tcp.RecvQ / tcp.Samples / 1024;
        }
        var gbps = bytes * 8 / (end.At - start!.At).TotalSeconds / 1e9;
        details["bytes"] = bytes;
        details["loop_alloc_bytes_per_frame_excluding_api"] = receive
            ? await ReceiveAllocationPerFrame(stack, s, clock, o)
            : await SendAllocationPerFrame(stack, s, clock);
        s.Abort();
        return new Measurement(gbps, details);
    }

    private static async Task<(long Batch, long Delayed)> AckCounts(NetworkStack stack)
    {
        var counters = await stack.GetStatisticsAsync();
        long C(string name) => counters.FirstOrDefault(c => c.Layer == "Tcp" && c.Name == name)?.Value ?? 0;
        return (C("BatchAcks"), C("DelayedAcks"));
    }

    /// <summary>What limits a bulk connection: averages of the congestion window, the peer's window, bytes in flight.</summary>
    private sealed class WindowSamples
    {
        public int Samples;
        public double InFlight, Cwnd, SndWnd, SendQ, Srtt, RcvBuf, RcvWnd, RecvQ;
    }

    private static async Task SampleWindow(TcpSocket s, WindowSamples into)
    {
        var info = (await s.Stack.GetConnectionsAsync()).FirstOrDefault(c => c.Id == s.Id);
        if (info?.Tcp is not { } t) return;
        into.Samples++;
        into.InFlight += unchecked(t.SndNxt - t.SndUna);
        into.Cwnd += t.Cwnd;
        into.SndWnd += t.SndWnd;
        into.SendQ += info.SendQ;
        into.Srtt += t.Srtt.TotalMicroseconds;
        into.RcvBuf += t.RcvBuf;
        into.RcvWnd += t.RcvWnd;
        into.RecvQ += info.RecvQ;
    }

    /// <summary>
    /// Allocation per frame on the loop during bulk send, without the API's own per-call objects: one SendAsync of
    /// 32 MiB moves ~23,000 frames between two snapshots, so whatever the loop allocated is per frame (or fixed).
    /// </summary>
    private static async Task<double> SendAllocationPerFrame(NetworkStack stack, TcpSocket s, Stopwatch clock)
    {
        var big = new byte[32 * 1024 * 1024];
        var a = await Snapshot(stack, clock);
        await s.SendAsync(big);
        var b = await Snapshot(stack, clock);
        return (double)(b.Allocated - a.Allocated) / Math.Max(1, (b.FramesIn - a.FramesIn) + (b.FramesOut - a.FramesOut));
    }

    /// <summary>
    /// Allocation per frame on the loop during bulk receive, without the API's per-call objects: a receive returns
    /// as soon as data is there, so calls cannot be avoided; a second window with 4 KiB reads (many more calls per
    /// frame) separates the two: allocated = perCall * calls + perFrame * frames, solved for perFrame.
    /// </summary>
    private static async Task<double> ReceiveAllocationPerFrame(NetworkStack stack, TcpSocket s, Stopwatch clock, BenchOptions o)
    {
        var window = TimeSpan.FromSeconds(Math.Max(0.3, o.BulkDuration.TotalSeconds / 4));
        var (a1, f1, c1) = await Window(Peer.ChunkSize);
        var (a2, f2, c2) = await Window(4096);
        var det = f1 * c2 - f2 * c1;
        return det == 0 ? double.NaN : (a1 * c2 - a2 * c1) / det;

        async Task<(double Alloc, double Frames, double Calls)> Window(int size)
        {
            var buffer = new byte[size];
            var a = await Snapshot(stack, clock);
            long calls = 0;
            while (clock.Elapsed - a.At < window)
            {
                if (await s.ReceiveAsync(buffer) == 0) break;
                calls++;
            }
            var b = await Snapshot(stack, clock);
            return (b.Allocated - a.Allocated, (b.FramesIn - a.FramesIn) + (b.FramesOut - a.FramesOut), calls + 1); // + the snapshot's own call
        }
    }

    public static async Task<Measurement> OursConnect(BenchLab lab, BenchOptions o)
    {
        using var stack = await StartStack(lab, o);
        return await ConnectOn(stack, o);
    }

    internal static async Task<Measurement> ConnectOn(NetworkStack stack, BenchOptions o)
    {
        for (int i = 0; i < 100; i++) (await stack.ConnectTcpAsync(Kernel, Peer.ClosePort)).Dispose(); // warm-up (JIT, pools)
        var clock = Stopwatch.StartNew();
        var start = await Snapshot(stack, clock);
        var (threads0, peer0, pool0) = (ThreadCounters.Take(), ThreadCounters.Take(CpuProbe.PeerPid), ThreadPool.CompletedWorkItemCount);
        var pending = 0;
        WindowMarks.Mark("ours", "start");
        for (int i = 0; i < o.Connects; i++)
        {
            var connect = stack.ConnectTcpAsync(Kernel, Peer.ClosePort);
            if (!connect.IsCompleted) pending++; // not completed inline: the loop thread's wake-up and a hop back
            var s = await connect;
            s.Dispose(); // close as the kernel's close(2) does: FIN in the background
        }
        var (threads1, peer1, pool1) = (ThreadCounters.Take(), ThreadCounters.Take(CpuProbe.PeerPid), ThreadPool.CompletedWorkItemCount);
        WindowMarks.Mark("ours", "end");
        var end = await Snapshot(stack, clock);
        var details = await LoopDetails(stack, start, end, o.Connects);
        details["loop_cpu_us_per_connection"] = (end.Cpu - start.Cpu).TotalMicroseconds / o.Connects;
        details["process_cpu_us_per_connection"] = (end.ProcessCpu - start.ProcessCpu).TotalMicroseconds / o.Connects;
        // Per connection: where the process's CPU went, its threads' sleeps (voluntary switches: each a wake-up to
        // come) and preemptions, the thread pool's work items, the loop's sleeps in ppoll, the device's system calls,
        // connects that did not complete inline; and the peer process's CPU and switches (the same peer for the kernel).
        ThreadCounters.Describe("per_connection_", threads0, threads1, o.Connects, details, split: true);
        ThreadCounters.Describe("peer_per_connection_", peer0, peer1, o.Connects, details, split: false);
        details["pool_work_items_per_connection"] = (double)(pool1 - pool0) / o.Connects;
        details["connects_pending_at_return_share"] = (double)pending / o.Connects;
        details["loop_sleeps_per_connection"] = (double)(end.Pcap.Waits - start.Pcap.Waits) / o.Connects;
        details["send_calls_per_connection"] = (double)(end.Pcap.TransmitCalls - start.Pcap.TransmitCalls) / o.Connects;
        details["dispatch_calls_per_connection"] = (double)(end.Pcap.ReceiveCalls - start.Pcap.ReceiveCalls) / o.Connects;
        details["still_closing_after_1s"] = await SettleCloses(stack);
        return new Measurement(o.Connects / (end.At - start.At).TotalSeconds, details);
    }

    /// <summary>
    /// Waits (bounded) until every connection has finished its close handshake before the stack is disposed: a
    /// connection cut off in FIN-WAIT leaves the kernel's end in LAST-ACK, and the next run's SYN from the same port
    /// would meet it and stall a second on the retransmission timer (seen once as 3,900 connections/s).
    /// </summary>
    internal static async Task<int> SettleCloses(NetworkStack stack)
    {
        var deadline = Stopwatch.StartNew();
        while (true)
        {
            var closing = (await stack.GetConnectionsAsync()).Count(c => c.RemotePort == Peer.ClosePort && c.State is not ("TimeWait" or "Closed" or "Listen"));
            if (closing == 0 || deadline.Elapsed > TimeSpan.FromSeconds(1)) return closing;
            await Task.Delay(20);
        }
    }

    public static async Task<Measurement> OursRequestResponse(BenchLab lab, BenchOptions o, int busyPoll = 0)
    {
        using var stack = await StartStack(lab, o, Latency.WithBusyPoll(busyPoll));
        var done = await Latency.BusyPollCounts(stack);
        var m = await RequestResponseOn(stack, o);
        await Latency.AddBusyPollDetails(stack, done, m);
        return m;
    }

    internal static async Task<Measurement> RequestResponseOn(NetworkStack stack, BenchOptions o)
    {
        var s = stack.CreateTcpSocket();
        s.NoDelay = true;
        await s.ConnectAsync(Kernel, Peer.EchoPort);
        var one = new byte[1] { 42 };
        var back = new byte[1];
        async Task Exchange()
        {
            await s.SendAsync(one);
            if (await s.ReceiveAsync(back) != 1) throw new InvalidOperationException("the echo peer closed");
        }
        for (int i = 0; i < 1000; i++) await Exchange();
        var clock = Stopwatch.StartNew();
        var start = await Snapshot(stack, clock);
        for (int i = 0; i < o.RoundTrips; i++) await Exchange();
        var end = await Snapshot(stack, clock);
        var details = await LoopDetails(stack, start, end, 2L * o.RoundTrips);
        details["loop_cpu_us_per_round_trip"] = (end.Cpu - start.Cpu).TotalMicroseconds / o.RoundTrips;
        details["process_cpu_us_per_round_trip"] = (end.ProcessCpu - start.ProcessCpu).TotalMicroseconds / o.RoundTrips;
        details["process_cpu_share"] = (end.ProcessCpu - start.ProcessCpu) / (end.At - start.At);
        // The same exchange with the receive posted before the send: both reach the loop in one wake-up, so the
        // difference is the cost of one API hop (post, eventfd wake, loop turn, thread-pool continuation). Not in the
        // busy-poll mode: there the receive spins on this thread for its window before the send can go.
        if (stack.Config.BusyPollMicroseconds == 0) await Pipelined();
        s.Abort();
        return new Measurement((end.At - start.At).TotalMicroseconds / o.RoundTrips, details);

        async Task Pipelined()
        {
            var t0 = clock.Elapsed;
            for (int i = 0; i < o.RoundTrips; i++)
            {
                var r = s.ReceiveAsync(back);
                await s.SendAsync(one);
                if (await r != 1) throw new InvalidOperationException("the echo peer closed");
            }
            details["pipelined_us_per_round_trip"] = (clock.Elapsed - t0).TotalMicroseconds / o.RoundTrips;
        }
    }

    public static async Task<Measurement> OursPing(BenchLab lab, BenchOptions o, int busyPoll = 0)
    {
        using var stack = await StartStack(lab, o, Latency.WithBusyPoll(busyPoll));
        for (int i = 0; i < 100; i++) await stack.PingAsync(Kernel);
        var wall = new double[o.Pings];
        var stackRtt = new double[o.Pings];
        var clock = Stopwatch.StartNew();
        var done = await Latency.BusyPollCounts(stack);
        var a = await Snapshot(stack, clock);
        for (int i = 0; i < o.Pings; i++)
        {
            var t0 = clock.Elapsed;
            var r = await stack.PingAsync(Kernel, timeout: TimeSpan.FromSeconds(2));
            wall[i] = (clock.Elapsed - t0).TotalMicroseconds;
            if (r.Status != PingStatus.Success) throw new InvalidOperationException($"ping {i}: {r.Status}");
            stackRtt[i] = r.RoundTripTime.TotalMicroseconds;
        }
        var b = await Snapshot(stack, clock);
        Array.Sort(wall);
        Array.Sort(stackRtt);
        var m = new Measurement(wall.Average(), new Dictionary<string, double>
        {
            ["api_rtt_median_us"] = wall[wall.Length / 2],
            ["api_rtt_min_us"] = wall[0],
            ["loop_rtt_avg_us"] = stackRtt.Average(),
            ["loop_rtt_median_us"] = stackRtt[stackRtt.Length / 2],
            ["loop_cpu_share"] = (b.Cpu - a.Cpu) / (b.At - a.At),
            ["process_cpu_share"] = (b.ProcessCpu - a.ProcessCpu) / (b.At - a.At),
        });
        await Latency.AddBusyPollDetails(stack, done, m);
        return m;
    }

    public static async Task<Measurement> OursIdle(BenchLab lab, BenchOptions o)
    {
        using var stack = await StartStack(lab, o);
        var sockets = new TcpSocket[o.IdleConnections];
        (await stack.ConnectTcpAsync(Kernel, Peer.HoldPort)).Abort(); // warm-up: code paths and pools exist before "before"
        await Task.Delay(100);
        var (heap0, gcHeap0, rss0) = Scale.Memory();
        var next = -1;
        async Task Worker()
        {
            int i;
            while ((i = Interlocked.Increment(ref next)) < sockets.Length)
                sockets[i] = await stack.ConnectTcpAsync(Kernel, Peer.HoldPort);
        }
        var clock = Stopwatch.StartNew();
        await Task.WhenAll(Enumerable.Range(0, 64).Select(_ => Task.Run(Worker)));
        var connectTime = clock.Elapsed;
        await Task.Delay(300); // let the last ACKs and timers settle: the connections are idle
        var open = sockets.Count(s => s.State == TcpState.Established);
        var (heap1, gcHeap1, rss1) = Scale.Memory();
        foreach (var s in sockets) s.Abort(); // RST: the peer drops its side too
        await stack.InvokeAsync(_ => { });
        await Task.Delay(200);
        var n = (double)sockets.Length;
        return new Measurement((heap1 - heap0) / n, new Dictionary<string, double>
        {
            ["connections"] = sockets.Length,
            ["established"] = open,
            ["gc_heap_size_bytes_per_connection"] = (gcHeap1 - gcHeap0) / n,
            ["rss_bytes_per_connection"] = (rss1 - rss0) / n,
            ["connects_per_second_64_parallel"] = n / connectTime.TotalSeconds,
        });
    }
}
