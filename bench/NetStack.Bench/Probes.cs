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

internal static class Native
{
    [DllImport("libc")] private static extern unsafe int clock_gettime(int clock, long* timespec);
    [DllImport("libc")] public static extern int kill(int pid, int signal);

    /// <summary>CPU time of the calling thread (CLOCK_THREAD_CPUTIME_ID).</summary>
    public static unsafe TimeSpan ThreadCpuTime()
    {
        long* ts = stackalloc long[2];
        clock_gettime(3, ts);
        return TimeSpan.FromTicks(ts[0] * TimeSpan.TicksPerSecond + ts[1] / 100);
    }
}
