using System.Runtime.InteropServices;

namespace NetStack.Tests.Lab;

/// <summary>
/// A test against the Linux kernel in network namespaces (see <see cref="KernelLab"/>). Skipped, with the reason,
/// when the machine cannot host the lab: not Linux, not root, no <c>ip</c>, or no libpcap. Never silently passed.
/// </summary>
public sealed class KernelFactAttribute : FactAttribute
{
    public KernelFactAttribute()
    {
        if (KernelLab.WhyUnavailable() is { } reason) Skip = reason;
    }
}

/// <summary>Kernel-lab tests share two cores: they run one at a time, never alongside other collections.</summary>
[CollectionDefinition(Name, DisableParallelization = true)]
public sealed class KernelLabCollection
{
    public const string Name = "Kernel lab";
}

internal static partial class LibC
{
    [DllImport("libc")] public static extern uint geteuid();
    [DllImport("libc")] private static extern unsafe int clock_gettime(int clock, long* timespec);

    /// <summary>CPU time the calling thread has used (CLOCK_THREAD_CPUTIME_ID).</summary>
    public static unsafe TimeSpan ThreadCpuTime()
    {
        long* ts = stackalloc long[2];
        clock_gettime(3, ts);
        return TimeSpan.FromTicks(ts[0] * TimeSpan.TicksPerSecond + ts[1] / 100);
    }
}
