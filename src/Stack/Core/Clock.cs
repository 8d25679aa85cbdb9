using System.Diagnostics;

namespace NetStack;

/// <summary>
/// Where the stack reads time. Instants are <see cref="TimeSpan"/>s since the clock's own epoch,
/// so a simulation can run ten minutes of virtual time in a second and replay exactly.
/// </summary>
public interface IClock
{
    TimeSpan Now { get; }
}

/// <summary>
/// Monotonic wall time since one epoch shared by every SystemClock in the process. Stacks on one
/// <see cref="Link.VirtualWire"/> stamp frames with the sender's time and take them at the receiver's: clocks with
/// epochs of their own (each at its construction) made every frame look as far in the future as the stacks were
/// started apart, an artificial one-way delay of tens of milliseconds on a loaded machine.
/// </summary>
public sealed class SystemClock : IClock
{
    private static readonly long s_epoch = Stopwatch.GetTimestamp();
    public TimeSpan Now => Stopwatch.GetElapsedTime(s_epoch);
}

/// <summary>Virtual time that only moves when told: for deterministic tests.</summary>
public sealed class ManualClock : IClock
{
    private long _ticks;
    public ManualClock(TimeSpan start = default) => _ticks = start.Ticks;
    public TimeSpan Now
    {
        get => TimeSpan.FromTicks(Interlocked.Read(ref _ticks));
        set => Interlocked.Exchange(ref _ticks, value.Ticks);
    }
    public void Advance(TimeSpan by) => Interlocked.Add(ref _ticks, by.Ticks);
}
