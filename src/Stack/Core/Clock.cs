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

/// <summary>Monotonic wall time, starting at zero when created.</summary>
public sealed class SystemClock : IClock
{
    private readonly long _start = Stopwatch.GetTimestamp();
    public TimeSpan Now => Stopwatch.GetElapsedTime(_start);
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
