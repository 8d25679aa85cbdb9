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

    /// <summary>The test also needs the netem qdisc (sch_netem), which some kernels and containers lack.</summary>
    public bool RequiresNetem { get; set; }

    /// <summary>Programs the test runs as peers (e.g. "python3", "dnsmasq"): skipped, naming the package, when missing.</summary>
    public string[] Programs { get; set; } = [];

    public override string Skip
    {
        get => base.Skip ?? KernelLab.WhyProgramsMissing(Programs) ?? (RequiresNetem ? KernelLab.WhyNoNetem() : null)!;
        set => base.Skip = value;
    }
}

/// <summary>A <see cref="TheoryAttribute"/> skipped, with the reason, when the kernel lab cannot run.</summary>
public sealed class KernelTheoryAttribute : TheoryAttribute
{
    public KernelTheoryAttribute()
    {
        if (KernelLab.WhyUnavailable() is { } reason) Skip = reason;
    }

    /// <summary>Programs the test runs as peers: skipped, naming the package, when missing.</summary>
    public string[] Programs { get; set; } = [];

    public override string Skip
    {
        get => base.Skip ?? KernelLab.WhyProgramsMissing(Programs)!;
        set => base.Skip = value;
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

    [DllImport("libc", SetLastError = true)] private static extern unsafe int capget(uint* header, uint* data);
    [DllImport("libc", SetLastError = true)] private static extern unsafe int capset(uint* header, uint* data);

    /// <summary>
    /// Removes capabilities from the calling thread's effective set (Linux capabilities are per thread).
    /// Only for a dedicated thread that ends soon after: threads it creates inherit the reduced set.
    /// </summary>
    public static unsafe void DropEffectiveCapabilities(params int[] capabilities)
    {
        uint* header = stackalloc uint[2];
        uint* data = stackalloc uint[6]; // two 32-bit halves of {effective, permitted, inheritable}
        header[0] = 0x20080522; // _LINUX_CAPABILITY_VERSION_3
        header[1] = 0;          // this thread
        if (capget(header, data) != 0) throw new InvalidOperationException($"capget failed: errno {Marshal.GetLastPInvokeError()}");
        foreach (var cap in capabilities) data[(cap / 32) * 3] &= ~(1u << (cap % 32));
        if (capset(header, data) != 0) throw new InvalidOperationException($"capset failed: errno {Marshal.GetLastPInvokeError()}");
    }

    public const int CAP_NET_ADMIN = 12;
    public const int CAP_NET_RAW = 13;

    /// <summary>CPU time the calling thread has used (CLOCK_THREAD_CPUTIME_ID).</summary>
    public static unsafe TimeSpan ThreadCpuTime()
    {
        long* ts = stackalloc long[2];
        clock_gettime(3, ts);
        return TimeSpan.FromTicks(ts[0] * TimeSpan.TicksPerSecond + ts[1] / 100);
    }
}
