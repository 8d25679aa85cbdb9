using System.Runtime.InteropServices;

namespace NetStack;

/// <summary>
/// Pins the calling thread to one processor (<see cref="StackConfig.LoopProcessor"/>): Linux's sched_setaffinity on
/// the thread itself (pid 0). A loop woken for a frame on the processor where the frame arrived is woken there, without
/// an interprocessor interrupt (docs/benchmarks.md: ICMP echo 2 ms apart).
/// </summary>
internal static partial class LoopAffinity
{
    /// <summary>The processors a mask here can name (a 1,024-bit cpu_set_t, glibc's CPU_SETSIZE).</summary>
    public const int MaxProcessors = 1024;

    [LibraryImport("libc", SetLastError = true)]
    private static unsafe partial int sched_setaffinity(int pid, nint cpusetsize, ulong* mask);

    /// <summary>Pins the calling thread to <paramref name="processor"/>; throws when the system refuses it.</summary>
    public static unsafe void PinCurrentThread(int processor)
    {
        var mask = stackalloc ulong[MaxProcessors / 64];
        new Span<ulong>(mask, MaxProcessors / 64).Clear();
        mask[processor / 64] = 1UL << (processor % 64);
        if (sched_setaffinity(0, MaxProcessors / 8, mask) == 0) return;
        var errno = Marshal.GetLastPInvokeError();
        throw new StackConfigurationException(nameof(StackConfig.LoopProcessor),
            $"LoopProcessor {processor} cannot be used here ({Marshal.GetPInvokeErrorMessage(errno)}): it is not a processor this process may run on; "
            + $"give one of this machine's online processors it is allowed (0 to {Environment.ProcessorCount - 1} unless taskset or a cgroup limits it).");
    }
}
