using System.Diagnostics;
using System.Globalization;
using System.Net;
using System.Net.Sockets;
using System.Runtime.InteropServices;

namespace NetStack.Bench;

/// <summary>CPU use of the peer process and of the whole machine over a window (from /proc), to show who was the limit.</summary>
internal readonly record struct CpuProbe(long PeerTicks, long BusyTicks, long TotalTicks, long At)
{
    public static int PeerPid { get; set; }

    public static CpuProbe Take()
    {
        long peer = 0;
        try
        {
            var stat = File.ReadAllText($"/proc/{PeerPid}/stat");
            var f = stat[(stat.LastIndexOf(')') + 2)..].Split(' ');
            peer = long.Parse(f[11], CultureInfo.InvariantCulture) + long.Parse(f[12], CultureInfo.InvariantCulture); // utime, stime
        }
        catch (Exception e) when (e is IOException or FormatException or IndexOutOfRangeException) { }
        var cpu = File.ReadLines("/proc/stat").First().Split(' ', StringSplitOptions.RemoveEmptyEntries).Skip(1).Select(x => long.Parse(x, CultureInfo.InvariantCulture)).ToArray();
        var total = cpu.Take(8).Sum();
        var idle = cpu[3] + cpu[4];
        return new CpuProbe(peer, total - idle, total, Stopwatch.GetTimestamp());
    }

    /// <summary>Adds peer_cpu_cores (cores' worth the peer used) and machine_busy_share (all CPUs, everyone's work).</summary>
    public static void Describe(CpuProbe a, CpuProbe b, Dictionary<string, double> into)
    {
        var seconds = Stopwatch.GetElapsedTime(a.At, b.At).TotalSeconds;
        if (PeerPid != 0 && seconds > 0) into["peer_cpu_cores"] = (b.PeerTicks - a.PeerTicks) / 100.0 / seconds; // USER_HZ = 100
        if (b.TotalTicks > a.TotalTicks) into["machine_busy_share"] = (double)(b.BusyTicks - a.BusyTicks) / (b.TotalTicks - a.TotalTicks);
    }
}

/// <summary>
/// A process's threads summed from /proc/PID/task/*: CPU (schedstat, ns), voluntary and involuntary context switches,
/// and the CPU split by kind of thread (the stack's loop, the thread pool's workers, the rest). Threads that ended
/// between two readings drop out of the sums (the figures here are read around windows whose threads live on).
/// </summary>
/// <summary>
/// NETSTACK_BENCH_MARKS=1: the connect scenario and our bulk runs print "MARK &lt;side&gt; start|end &lt;ns&gt;" (CLOCK_MONOTONIC,
/// Stopwatch's clock on Linux) to standard error around their timed windows (our bulk runs also "FRAMES ours in N out N"
/// of the window), so a trace taken with <c>perf record -k CLOCK_MONOTONIC</c> can be cut to them.
/// </summary>
internal static class WindowMarks
{
    public static readonly bool On = Environment.GetEnvironmentVariable("NETSTACK_BENCH_MARKS") == "1";

    public static void Mark(string side, string edge)
    {
        if (On) Console.Error.WriteLine($"MARK {side} {edge} {Stopwatch.GetTimestamp()}");
    }
}

internal readonly record struct ThreadCounters(long CpuNs, long Voluntary, long Involuntary, long LoopCpuNs, long PoolCpuNs)
{
    public static ThreadCounters Take(int pid = 0)
    {
        long cpu = 0, vol = 0, invol = 0, loop = 0, pool = 0;
        var dir = pid == 0 ? "/proc/self/task" : $"/proc/{pid}/task";
        string[] tasks;
        try { tasks = Directory.GetDirectories(dir); }
        catch (IOException) { return default; }
        foreach (var task in tasks)
        {
            try
            {
                var ns = long.Parse(File.ReadAllText(Path.Combine(task, "schedstat")).Split(' ')[0], CultureInfo.InvariantCulture);
                var comm = File.ReadAllText(Path.Combine(task, "comm")).Trim();
                cpu += ns;
                if (comm.StartsWith("NetStack loop", StringComparison.Ordinal)) loop += ns;
                else if (comm.StartsWith(".NET TP Worker", StringComparison.Ordinal)) pool += ns;
                foreach (var line in File.ReadLines(Path.Combine(task, "status")))
                {
                    if (line.StartsWith("voluntary_ctxt_switches:", StringComparison.Ordinal)) vol += long.Parse(line.AsSpan(24).Trim(), CultureInfo.InvariantCulture);
                    else if (line.StartsWith("nonvoluntary_ctxt_switches:", StringComparison.Ordinal)) invol += long.Parse(line.AsSpan(27).Trim(), CultureInfo.InvariantCulture);
                }
            }
            catch (Exception e) when (e is IOException or FormatException or UnauthorizedAccessException) { /* the thread ended */ }
        }
        return new ThreadCounters(cpu, vol, invol, loop, pool);
    }

    /// <summary>Per-connection (per-<paramref name="n"/>) details of the counters between <paramref name="a"/> and <paramref name="b"/>, names prefixed.</summary>
    public static void Describe(string prefix, ThreadCounters a, ThreadCounters b, double n, Dictionary<string, double> into, bool split)
    {
        into[prefix + "cpu_us"] = (b.CpuNs - a.CpuNs) / 1e3 / n;
        if (split)
        {
            into[prefix + "pool_threads_cpu_us"] = (b.PoolCpuNs - a.PoolCpuNs) / 1e3 / n;
            into[prefix + "other_threads_cpu_us"] = (b.CpuNs - a.CpuNs - (b.PoolCpuNs - a.PoolCpuNs) - (b.LoopCpuNs - a.LoopCpuNs)) / 1e3 / n;
        }
        into[prefix + "voluntary_switches"] = (b.Voluntary - a.Voluntary) / n;
        into[prefix + "involuntary_switches"] = (b.Involuntary - a.Involuntary) / n;
    }
}

internal static class Native
{
    [DllImport("libc")] private static extern unsafe int clock_gettime(int clock, long* timespec);
    [DllImport("libc")] public static extern int kill(int pid, int signal);


    [DllImport("libc", SetLastError = true)] private static extern int sched_setaffinity(int pid, nint size, ulong[] mask);
    [DllImport("libc", SetLastError = true)] private static extern int sched_getaffinity(int pid, nint size, ulong[] mask);

    /// <summary>
    /// Pins every thread of this process to <paramref name="processor"/> until disposed, then gives each the mask the
    /// calling thread had. A thread made meanwhile inherits its creator's mask, so the pool's new workers are pinned too;
    /// the threads are listed twice each way, for one made while the first pass ran.
    /// </summary>
    public static IDisposable PinProcess(int processor)
    {
        var original = new ulong[16];
        if (sched_getaffinity(0, original.Length * 8, original) != 0) throw new InvalidOperationException($"sched_getaffinity failed: errno {Marshal.GetLastPInvokeError()}");
        SetAll(OneProcessorMask(processor));
        return new Restore(() => SetAll(original));
    }

    /// <summary>A 1,024-bit cpu_set_t naming <paramref name="processor"/> alone.</summary>
    private static ulong[] OneProcessorMask(int processor)
    {
        var mask = new ulong[16];
        mask[processor / 64] = 1UL << (processor % 64);
        return mask;
    }

    private static void SetAll(ulong[] mask)
    {
        for (int pass = 0; pass < 2; pass++)
            foreach (var task in Directory.GetDirectories("/proc/self/task"))
                sched_setaffinity(int.Parse(Path.GetFileName(task), CultureInfo.InvariantCulture), mask.Length * 8, mask); // a thread that ended meanwhile: ESRCH, nothing to do
    }

    private sealed class Restore(Action restore) : IDisposable
    {
        public void Dispose() => restore();
    }

    /// <summary>Runs <paramref name="work"/> on a new thread pinned to <paramref name="processor"/> and returns its result.</summary>
    public static T OnPinnedThread<T>(int processor, Func<T> work)
    {
        T result = default!;
        Exception? error = null;
        var thread = new Thread(() =>
        {
            try
            {
                var mask = OneProcessorMask(processor);
                if (sched_setaffinity(0, mask.Length * 8, mask) != 0) throw new InvalidOperationException($"sched_setaffinity({processor}) failed: errno {Marshal.GetLastPInvokeError()}");
                result = work();
            }
            catch (Exception e) { error = e; }
        }) { IsBackground = true, Name = "pinned bench thread" };
        thread.Start();
        thread.Join();
        if (error != null) System.Runtime.ExceptionServices.ExceptionDispatchInfo.Throw(error);
        return result;
    }

    /// <summary>CPU time of the calling thread (CLOCK_THREAD_CPUTIME_ID).</summary>
    public static unsafe TimeSpan ThreadCpuTime()
    {
        long* ts = stackalloc long[2];
        clock_gettime(3, ts);
        return TimeSpan.FromTicks(ts[0] * TimeSpan.TicksPerSecond + ts[1] / 100);
    }
}
