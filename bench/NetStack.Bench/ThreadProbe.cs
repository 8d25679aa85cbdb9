using System.Globalization;
using System.Runtime.InteropServices;
using System.Text;

namespace NetStack.Bench;

/// <summary>
/// Per-thread costs of a window (NETSTACK_BENCH_WIRE_THREADS=1, cpu-wire only; off by default): for every thread of the
/// process, CPU (schedstat run time), run-queue wait (schedstat), time slices, voluntary / involuntary switches, and a
/// sampler's view every 5 ms of which processor each thread was last on and whether it was runnable. Printed to stderr.
/// </summary>
internal sealed class ThreadProbe : IDisposable
{
    public static readonly bool On = Environment.GetEnvironmentVariable("NETSTACK_BENCH_WIRE_THREADS") == "1";
    [DllImport("libc")] public static extern int gettid();

    /// <summary>Continuations per OS thread of the sender (0) and the receiver (1), counted by the stream while On.</summary>
    private static readonly int[,]? Continuations = On ? new int[2, 1 << 16] : null;
    public static void Count(int side) { if (Continuations is { } c) Interlocked.Increment(ref c[side, gettid() & 0xFFFF]); }

    private record struct Snap(string Comm, long RunNs, long WaitNs, long Slices, long Vol, long Invol);
    private readonly Dictionary<int, Snap> _start;
    private readonly Dictionary<int, (int[] Running, int[] Last, int Samples)> _samples = new();
    private readonly Thread _sampler;
    private volatile bool _stop;
    private int _joint, _together;
    private int _samplerTidSet;
    private readonly Dictionary<int, string> _labels;
    private readonly (long Busy, long All) _system0;

    /// <summary>All processors' busy and total ticks (USER_HZ) from /proc/stat.</summary>
    private static (long Busy, long All) SystemTicks()
    {
        var f = File.ReadLines("/proc/stat").First().Split(' ', StringSplitOptions.RemoveEmptyEntries);
        long all = 0, idle = 0;
        for (int i = 1; i < f.Length; i++) { var v = long.Parse(f[i], CultureInfo.InvariantCulture); if (i <= 8) all += v; if (i is 4 or 5) idle += v; }
        return (all - idle, all);
    }

    public ThreadProbe(Dictionary<int, string> labels)
    {
        _labels = labels;
        if (Continuations is not null) Array.Clear(Continuations);
        _system0 = SystemTicks();
        _start = Take();
        _sampler = new Thread(Sample) { IsBackground = true, Name = "bench sampler" };
        _sampler.Start();
    }

    private void Sample()
    {
        Volatile.Write(ref _samplerTidSet, gettid());
        var cpus = Environment.ProcessorCount;
        var dirs = Directory.GetDirectories("/proc/self/task");
        for (var round = 0; !_stop; round++)
        {
            if (round % 20 == 19) dirs = Directory.GetDirectories("/proc/self/task");
            int cpuA = -1, cpuB = -2;
            foreach (var dir in dirs)
            {
                try
                {
                    var tid = int.Parse(Path.GetFileName(dir), CultureInfo.InvariantCulture);
                    var stat = File.ReadAllText(Path.Combine(dir, "stat"));
                    var f = stat[(stat.LastIndexOf(')') + 2)..].Split(' '); // f[0] = state (field 3); processor = field 39 -> f[36]
                    var cpu = int.Parse(f[36], CultureInfo.InvariantCulture);
                    if (!_samples.TryGetValue(tid, out var s)) s = (new int[cpus], new int[cpus], 0);
                    if (f[0] == "R") s.Running[cpu]++;
                    s.Last[cpu]++;
                    s.Samples++;
                    _samples[tid] = s;
                    if (_labels.TryGetValue(tid, out var lab)) { if (lab.StartsWith("loop-A", StringComparison.Ordinal)) cpuA = cpu; else cpuB = cpu; }
                }
                catch (Exception) { /* ended */ }
            }
            _joint++;
            if (cpuA == cpuB) _together++;
            Thread.Sleep(10);
        }
    }

    private static Dictionary<int, Snap> Take()
    {
        var d = new Dictionary<int, Snap>();
        foreach (var dir in Directory.GetDirectories("/proc/self/task"))
        {
            try
            {
                var tid = int.Parse(Path.GetFileName(dir), CultureInfo.InvariantCulture);
                var comm = File.ReadAllText(Path.Combine(dir, "comm")).Trim();
                var ss = File.ReadAllText(Path.Combine(dir, "schedstat")).Trim().Split(' ');
                long vol = 0, invol = 0;
                foreach (var l in File.ReadLines(Path.Combine(dir, "status")))
                {
                    if (l.StartsWith("voluntary_ctxt_switches:", StringComparison.Ordinal)) vol = long.Parse(l.Split(':')[1].Trim(), CultureInfo.InvariantCulture);
                    if (l.StartsWith("nonvoluntary_ctxt_switches:", StringComparison.Ordinal)) invol = long.Parse(l.Split(':')[1].Trim(), CultureInfo.InvariantCulture);
                }
                d[tid] = new Snap(comm, long.Parse(ss[0], CultureInfo.InvariantCulture), long.Parse(ss[1], CultureInfo.InvariantCulture), long.Parse(ss[2], CultureInfo.InvariantCulture), vol, invol);
            }
            catch (Exception) { }
        }
        return d;
    }

    /// <summary>Ends the window and prints one line per thread that ran in it (CPU >= 1 ms), per segment where it says so.</summary>
    public void Report(string tag, double segments, double mib)
    {
        var end = Take();
        var system = SystemTicks();
        _stop = true;
        _sampler.Join();
        var samplerTid = Volatile.Read(ref _samplerTidSet);
        var sb = new StringBuilder();
        long ourNs = 0;
        foreach (var (tid, e) in end) ourNs += e.RunNs - (_start.TryGetValue(tid, out var x0) ? x0.RunNs : 0);
        var allTicks = Math.Max(1, system.All - _system0.All);
        var busyCores = (double)(system.Busy - _system0.Busy) / allTicks * Environment.ProcessorCount;
        var wallS = (double)allTicks / Environment.ProcessorCount / 100.0;
        sb.AppendLine(CultureInfo.InvariantCulture, $"THREADS {tag} machine_busy_cores {busyCores:F2} ours_cores {ourNs / 1e9 / wallS:F2} others_cores {busyCores - ourNs / 1e9 / wallS:F2} loops_same_cpu {(double)_together / Math.Max(1, _joint):F2} loadavg {File.ReadAllText("/proc/loadavg").Trim()}");
        var rows = new List<(long run, string line)>();
        foreach (var (tid, e) in end)
        {
            var s = _start.TryGetValue(tid, out var x) ? x : new Snap(e.Comm, 0, 0, 0, 0, 0);
            var run = e.RunNs - s.RunNs;
            if (run < 1_000_000) continue;
            var label = _labels.TryGetValue(tid, out var l) ? l : tid == samplerTid ? "sampler" : e.Comm.Replace(' ', '_');
            _samples.TryGetValue(tid, out var smp);
            var running = smp.Running is null ? "-" : string.Join('/', smp.Running);
            var last = smp.Last is null ? "-" : string.Join('/', smp.Last);
            var sc = Continuations?[0, tid & 0xFFFF] ?? 0;
            var rc = Continuations?[1, tid & 0xFFFF] ?? 0;
            rows.Add((run, string.Create(CultureInfo.InvariantCulture,
                $"  {tid,7} {label,-22} cpu_us/seg {run / 1e3 / segments,6:F3} rq_wait_us/seg {(e.WaitNs - s.WaitNs) / 1e3 / segments,6:F3} slices/MiB {(e.Slices - s.Slices) / mib,7:F2} vol/MiB {(e.Vol - s.Vol) / mib,7:F2} invol/MiB {(e.Invol - s.Invol) / mib,6:F2} R-on-cpu {running,9} last-cpu {last,9} sendK {sc} recvK {rc}")));
        }
        foreach (var r in rows.OrderByDescending(r => r.run)) sb.AppendLine(r.line);
        Console.Error.Write(sb.ToString());
    }

    public void Dispose() { _stop = true; }
}
