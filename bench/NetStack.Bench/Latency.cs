using System.Diagnostics;
using System.Globalization;
using System.Net;
using System.Net.Sockets;

namespace NetStack.Bench;

/// <summary>
/// Issue 18's latency figures taken by the kernel's side, as an independent harness would: the kernel in K pings us
/// (iputils ping) and sends 1-byte requests to an echo server on our side (a kernel socket in this process, on a
/// thread in K), either back to back or <see cref="BenchOptions.PacedInterval"/> (2 ms) apart, idle in between as an
/// admin's ping is. Against the kernel in U answering the same pings and requests.
/// </summary>
internal static class Latency
{
    internal const ushort RequestPort = 7000;
    private static readonly IPAddress Target = IPAddress.Parse("192.0.2.2");

    /// <summary>The busy-poll window of the *-busypoll variants: above the 2 ms gap, so the loop never sleeps between requests.</summary>
    public const int BusyPoll = 2500;

    /// <summary>The short window of rr-busypoll-100 and ping-busypoll-100: a reply back to back comes within it, a 2 ms gap does not.</summary>
    public const int ShortBusyPoll = 100;

    /// <summary>The caller's wait on the device of the *-wait variants (StackConfig.CallerWaitMicroseconds): above the 2 ms gap.</summary>
    public const int CallerWait = 2500;

    internal static Func<StackConfig, StackConfig>? WithBusyPoll(int busyPoll, int callerWait = 0) =>
        busyPoll == 0 && callerWait == 0 ? null : c => c with { BusyPollMicroseconds = busyPoll, CallerWaitMicroseconds = callerWait };

    /// <summary>
    /// Counted events of the stack's idle path: the loop's naps, the device's waits (ppoll, by the loop or a waiting
    /// caller) and pcap_dispatch calls, the calls done while their caller waited on the device and those parked after it.
    /// </summary>
    internal static async Task<Dictionary<string, long>> IdlePathCounts(NetworkStack stack)
    {
        var c = await stack.GetStatisticsAsync();
        long C(string name) => c.FirstOrDefault(x => x.Layer == "Stack" && x.Name == name)?.Value ?? 0;
        var (voluntary, involuntary) = ContextSwitches();
        var d = new Dictionary<string, long>
        {
            ["context_switches"] = voluntary, ["involuntary_context_switches"] = involuntary,
            ["loop_naps"] = C("LoopNaps"), ["caller_waits_done"] = C("CallerWaitCallsDone"), ["caller_waits_parked"] = C("CallerWaitCallsParked"),
        };
        if (stack.Device is NetStack.Link.PcapDevice p)
        {
            d["device_waits"] = p.Waits;
            d["pcap_dispatch_calls"] = p.ReceiveCalls;
        }
        return d;
    }

    /// <summary>The process's context switches so far, voluntary and not, summed over its threads (/proc/self/task/*/status; Linux).</summary>
    private static (long Voluntary, long Involuntary) ContextSwitches()
    {
        long v = 0, n = 0;
        if (!Directory.Exists("/proc/self/task")) return (0, 0);
        foreach (var task in Directory.GetDirectories("/proc/self/task"))
        {
            try
            {
                foreach (var line in File.ReadLines(Path.Combine(task, "status")))
                {
                    if (line.StartsWith("voluntary_ctxt_switches:", StringComparison.Ordinal)) v += long.Parse(line.AsSpan(24).Trim(), CultureInfo.InvariantCulture);
                    else if (line.StartsWith("nonvoluntary_ctxt_switches:", StringComparison.Ordinal)) n += long.Parse(line.AsSpan(27).Trim(), CultureInfo.InvariantCulture);
                }
            }
            catch (IOException) { } // the thread ended meanwhile
        }
        return (v, n);
    }

    /// <summary>The idle path's counts since <paramref name="before"/>: per <paramref name="unit"/> (round trip, echo), the done/parked counts whole.</summary>
    internal static async Task AddIdlePathDetails(NetworkStack stack, Dictionary<string, long> before, double count, string unit, Measurement m)
    {
        var after = await IdlePathCounts(stack);
        foreach (var (k, v) in after)
        {
            var delta = v - before.GetValueOrDefault(k);
            if (k.StartsWith("caller_waits_", StringComparison.Ordinal)) { if (stack.Config.CallerWaitMicroseconds > 0) m.Details[k] = delta; }
            else m.Details[$"{k}_per_{unit}"] = delta / Math.Max(1, count);
        }
    }

    /// <summary>The stack's counts of calls done while their caller spun, and of calls that parked after it (busy polling).</summary>
    internal static async Task<(long Done, long Parked)> BusyPollCounts(NetworkStack stack)
    {
        var c = await stack.GetStatisticsAsync();
        long C(string name) => c.FirstOrDefault(x => x.Layer == "Stack" && x.Name == name)?.Value ?? 0;
        return (C("BusyPollCallsDone"), C("BusyPollCallsParked"));
    }

    /// <summary>The link's summed wait of received frames in the capture ring (µs) and its frames received.</summary>
    internal static async Task<(long WaitUs, long Frames)> RingWait(NetworkStack stack)
    {
        var c = await stack.GetStatisticsAsync();
        long C(string name) => c.FirstOrDefault(x => x.Layer == "Link" && x.Name == name)?.Value ?? 0;
        return (C("ReceiveWaitMicroseconds"), C("FramesReceived"));
    }

    /// <summary>
    /// Where a round trip's µs go, the first part: the mean time a received frame waited in the capture ring, from the
    /// kernel's capture to the stack taking it (the loop's wake-up, or a spinning poller's next look).
    /// </summary>
    internal static async Task AddRingWait(NetworkStack stack, (long WaitUs, long Frames) before, Measurement m)
    {
        var after = await RingWait(stack);
        var frames = after.Frames - before.Frames;
        if (frames > 0) m.Details["ring_wait_us_per_frame"] = (double)(after.WaitUs - before.WaitUs) / frames;
    }

    /// <summary>In the busy-poll mode, how many of the API's waiting calls their callers' spin finished (no wake-up, no hand-off).</summary>
    internal static async Task AddBusyPollDetails(NetworkStack stack, (long Done, long Parked) before, Measurement m)
    {
        if (stack.Config.BusyPollMicroseconds == 0) return;
        var after = await BusyPollCounts(stack);
        m.Details["caller_spins_done"] = after.Done - before.Done;
        m.Details["caller_spins_parked"] = after.Parked - before.Parked;
    }

    /// <summary>
    /// The processor of the pinned variants: our loop (StackConfig.LoopProcessor) and K's ping both run there, as a loop
    /// pinned to the processor that takes a real adapter's interrupts (on veth, frames arrive on the sender's processor).
    /// The kernel's reference pins its ping the same way.
    /// </summary>
    public const int PinnedProcessor = 0;

    public static async Task<Measurement> OursPingedByKernel(BenchLab lab, BenchOptions o, bool paced, int busyPoll = 0, bool pinned = false)
    {
        var configure = WithBusyPoll(busyPoll);
        if (pinned) configure = c => c with { LoopProcessor = PinnedProcessor };
        using var stack = await Scenarios.StartStack(lab, o, configure);
        var clock = Stopwatch.StartNew();
        var ring = await RingWait(stack);
        var idlePath = await IdlePathCounts(stack);
        var a = await Scenarios.Snapshot(stack, clock);
        var m = KernelPings(lab, o, paced, pinned);
        var b = await Scenarios.Snapshot(stack, clock);
        await AddRingWait(stack, ring, m);
        await AddIdlePathDetails(stack, idlePath, m.Details["echoes"], "echo", m);
        m.Details["process_cpu_us_per_echo"] = (b.ProcessCpu - a.ProcessCpu).TotalMicroseconds / Math.Max(1, m.Details["echoes"]);
        m.Details["loop_cpu_us_per_echo"] = (b.Cpu - a.Cpu).TotalMicroseconds / Math.Max(1, m.Details["echoes"]);
        m.Details["loop_cpu_share"] = (b.Cpu - a.Cpu) / (b.At - a.At);
        m.Details["process_cpu_share"] = (b.ProcessCpu - a.ProcessCpu) / (b.At - a.At);
        return m;
    }

    public static Measurement KernelPingedByKernel(BenchLab lab, BenchOptions o, bool paced, bool pinned = false) => KernelPings(lab, o, paced, pinned);

    /// <summary>
    /// ping in K towards 192.0.2.2 (whoever answers there): a warm-up of 20, then the timed ones; rtt avg in µs. Pinned:
    /// ping runs on <see cref="PinnedProcessor"/> (taskset).
    /// </summary>
    private static Measurement KernelPings(BenchLab lab, BenchOptions o, bool paced, bool pinned = false)
    {
        ProcessResult Ping(TimeSpan timeout, params string[] args) => pinned
            ? lab.RunInKernelNamespace(timeout, "taskset", ["-c", PinnedProcessor.ToString(CultureInfo.InvariantCulture), "ping", .. args])
            : lab.RunInKernelNamespace(timeout, "ping", args);
        Ping(TimeSpan.FromSeconds(30), "-q", "-c", "20", "-i", "0.01", "-W", "2", Target.ToString()).EnsureSuccess();
        var count = (paced ? o.PacedSamples : o.Pings).ToString(CultureInfo.InvariantCulture);
        var interval = (paced ? o.PacedInterval.TotalSeconds : 0).ToString("0.###", CultureInfo.InvariantCulture);
        string[] args = paced ? ["-q", "-c", count, "-i", interval, "-W", "2", Target.ToString()] : ["-q", "-f", "-c", count, "-W", "2", Target.ToString()];
        var r = Ping(TimeSpan.FromMinutes(5), args).EnsureSuccess();
        // rtt min/avg/max/mdev = 0.004/0.006/0.080/0.002 ms
        var line = r.Output.Split('\n').FirstOrDefault(l => l.Contains("min/avg/max", StringComparison.Ordinal))
                   ?? throw new InvalidOperationException("ping printed no rtt line: " + r.Output);
        var v = line.Split('=')[1].Trim().Split(' ')[0].Split('/').Select(x => double.Parse(x, CultureInfo.InvariantCulture) * 1000).ToArray();
        return new Measurement(v[1], new Dictionary<string, double>
        {
            ["rtt_min_us"] = v[0], ["rtt_max_us"] = v[2], ["rtt_mdev_us"] = v[3], ["echoes"] = double.Parse(count, CultureInfo.InvariantCulture),
        });
    }

    /// <summary>Our stack serves 1-byte echoes on port 7000; the kernel in K requests.</summary>
    public static async Task<Measurement> OursServesRequests(BenchLab lab, BenchOptions o, bool paced, int busyPoll = 0, int callerWait = 0, bool pinned = false)
    {
        var configure = WithBusyPoll(busyPoll, callerWait);
        if (pinned) configure = c => c with { LoopProcessor = PinnedProcessor };
        using var stack = await Scenarios.StartStack(lab, o, configure);
        var spins = await BusyPollCounts(stack);
        var ring = await RingWait(stack);
        var listener = stack.Listen(RequestPort);
        var server = Task.Run(async () =>
        {
            using var s = await listener.AcceptAsync();
            s.NoDelay = true;
            var b = new byte[1];
            while (await s.ReceiveAsync(b) == 1) await s.SendAsync(b);
        });
        var clock = Stopwatch.StartNew();
        var idlePath = await IdlePathCounts(stack);
        var a = await Scenarios.Snapshot(stack, clock);
        var m = pinned ? Native.OnPinnedThread(PinnedProcessor, () => RequestsFromKernel(lab, o, paced)) : RequestsFromKernel(lab, o, paced);
        var z = await Scenarios.Snapshot(stack, clock);
        await server.WaitAsync(TimeSpan.FromSeconds(10));
        await listener.StopAsync();
        m.Details["loop_cpu_us_per_round_trip"] = (z.Cpu - a.Cpu).TotalMicroseconds / m.Details["round_trips"];
        m.Details["process_cpu_us_per_round_trip"] = (z.ProcessCpu - a.ProcessCpu).TotalMicroseconds / m.Details["round_trips"];
        m.Details["loop_cpu_share"] = (z.Cpu - a.Cpu) / (z.At - a.At);
        m.Details["process_cpu_share"] = (z.ProcessCpu - a.ProcessCpu) / (z.At - a.At);
        await AddBusyPollDetails(stack, spins, m);
        await AddRingWait(stack, ring, m);
        await AddIdlePathDetails(stack, idlePath, m.Details["round_trips"], "round_trip", m);
        return m;
    }

    /// <summary>The kernel in U serves the same echoes (a blocking socket on a thread of this process).</summary>
    public static Measurement KernelServesRequests(BenchLab lab, BenchOptions o, bool paced, bool pinned = false)
    {
        using var listener = KernelClients.InU(lab, () =>
        {
            var l = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
            l.SetSocketOption(SocketOptionLevel.Socket, SocketOptionName.ReuseAddress, true);
            l.Bind(new IPEndPoint(Target, RequestPort));
            l.Listen(16);
            return l;
        });
        var server = new Thread(() =>
        {
            try
            {
                using var s = listener.Accept();
                s.NoDelay = true;
                var b = new byte[1];
                while (s.Receive(b) == 1) s.Send(b);
            }
            catch (SocketException) { }
        }) { IsBackground = true, Name = "kernel echo server" };
        server.Start();
        var m = pinned ? Native.OnPinnedThread(PinnedProcessor, () => RequestsFromKernel(lab, o, paced)) : RequestsFromKernel(lab, o, paced);
        server.Join(TimeSpan.FromSeconds(10));
        return m;
    }

    /// <summary>
    /// The client in K: a warm-up of 200 exchanges, then the timed ones (each timed alone), back to back or one per
    /// interval with the thread asleep in between. Mean round trip in µs; median and 99th percentile as details.
    /// </summary>
    private static Measurement RequestsFromKernel(BenchLab lab, BenchOptions o, bool paced)
    {
        using var s = lab.InKernel(() =>
        {
            var c = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp) { NoDelay = true, ReceiveTimeout = 10_000, SendTimeout = 10_000 };
            c.Connect(new IPEndPoint(Target, RequestPort));
            return c;
        });
        var one = new byte[1] { 42 };
        var back = new byte[1];
        void Exchange()
        {
            s.Send(one);
            if (s.Receive(back) != 1) throw new InvalidOperationException("the echo server closed");
        }
        for (int i = 0; i < 200; i++) Exchange();
        var n = paced ? o.PacedSamples : o.RoundTrips;
        var rtt = new double[n];
        var clock = Stopwatch.StartNew();
        var next = clock.Elapsed;
        for (int i = 0; i < n; i++)
        {
            if (paced)
            {
                next += o.PacedInterval;
                var wait = next - clock.Elapsed;
                if (wait > TimeSpan.Zero) Thread.Sleep(wait);
            }
            var t0 = clock.Elapsed;
            Exchange();
            rtt[i] = (clock.Elapsed - t0).TotalMicroseconds;
        }
        s.Shutdown(SocketShutdown.Both);
        Array.Sort(rtt);
        return new Measurement(rtt.Average(), new Dictionary<string, double>
        {
            ["round_trips"] = n,
            ["rtt_median_us"] = rtt[n / 2],
            ["rtt_p99_us"] = rtt[Math.Min(n - 1, (int)(n * 0.99))],
            ["rtt_min_us"] = rtt[0],
        });
    }
}
