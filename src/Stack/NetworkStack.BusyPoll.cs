using System.Diagnostics;

namespace NetStack;

/// <summary>A call a caller can spin on: done once its result (or error) is in.</summary>
internal interface IBusyWaitable
{
    bool IsDone { get; }
}

/// <summary>
/// A call whose wait ends with the peer's answer to what it sent (a connect's SYN-ACK, a ping's reply, a lookup's
/// response): run inline, it takes a second receive in its turn when it sent frames (NetworkStack.InlineTurn). Not a
/// send waiting for buffer space: its wait ends with the loop's own work on ACKs, which the second receive only moved
/// onto the caller's thread (bulk send's process CPU per frame read ~10% higher with it).
/// </summary>
internal interface IAwaitsAnswer : IBusyWaitable;

/// <summary>
/// The low-latency mode (<see cref="StackConfig.BusyPollMicroseconds"/>): the loop's spin after work, and the caller's
/// spin on a call that waits (Linux's SO_BUSY_POLL: a blocking read polls the device itself).
/// </summary>
/// <remarks>
/// Without it a call that has to wait (a receive before the data, a ping before its reply) parks; the frame that
/// finishes it wakes the loop thread from its sleep in the device, and the loop hands the completion to a thread-pool
/// thread for the caller's continuation: two wake-ups, the larger part of a round trip that comes 2 ms after the last
/// one (docs/benchmarks.md has the breakdown). With it the caller's thread polls the device itself, running turns
/// when the turn lock is free, until its call is done or the window ends; a call done so returns completed, and its
/// continuation runs on at once on the same thread: no wake-up and no hand-off. While a caller spins, the loop thread
/// sleeps instead of spinning too, and not in the device: one core busy, not two, and a frame wakes one thread.
/// </remarks>
public sealed partial class NetworkStack
{
    private int _busyWaiters;     // callers spinning now
    private long _busyWaitHits;   // calls that finished while their caller spun
    private long _busyWaitMisses; // calls still waiting when their caller's window ended (they park as usual)
    private long _lastCallerSpin; // Stopwatch timestamp of the end of the last caller's spin
    // The loop thread's sleep while callers spin: it does not watch the device then (the frame is the spinner's to
    // take, and one wake-up, not two). Set when the last spinner leaves and by WakeLoop.
    private readonly ManualResetEventSlim _nap = new(false, 1);
    private volatile bool _napping;

    /// <summary>True while the loop thread naps because callers spin (it does not watch the device meanwhile).</summary>
    internal bool LoopNapping => _napping;

    /// <summary>Callers spinning on their calls now (the busy-poll mode).</summary>
    internal int BusyWaiters => Volatile.Read(ref _busyWaiters);

    /// <summary>
    /// Called after <see cref="Execute"/> on the caller's thread: in the busy-poll mode, spins until
    /// <paramref name="call"/> is done or the window ends, taking frames (turns) whenever the loop's state is free.
    /// Does nothing outside the mode, on the loop thread, inside a turn, or on a stack driven by Poll.
    /// </summary>
    internal void BusyWait(IBusyWaitable call)
    {
        var window = _context.Config.BusyPollMicroseconds;
        if (window <= 0 || call.IsDone || !_inline || _stopping || Thread.CurrentThread == _thread || Monitor.IsEntered(_turn)) return;
        var limit = window * Stopwatch.Frequency / 1_000_000;
        var start = Stopwatch.GetTimestamp();
        Interlocked.Increment(ref _busyWaiters);
        try
        {
            while (!call.IsDone && !_stopping && Stopwatch.GetTimestamp() - start < limit)
            {
                if (TryEnterTurn()) InlineTurn(null);
                if (!call.IsDone) Thread.SpinWait(32); // a breath between turns: the loop or another caller may take one
            }
        }
        finally
        {
            Volatile.Write(ref _lastCallerSpin, Stopwatch.GetTimestamp());
            if (Interlocked.Decrement(ref _busyWaiters) == 0) _nap.Set(); // the loop watches the device again
        }
        if (call.IsDone) Interlocked.Increment(ref _busyWaitHits);
        else Interlocked.Increment(ref _busyWaitMisses);
    }

    /// <summary>
    /// Low-latency mode (<see cref="StackConfig.BusyPollMicroseconds"/>): true while the last turn with frames or work
    /// is more recent than the setting, so the loop turns again at once instead of sleeping in the device. False while
    /// a caller spins (<see cref="BusyWait"/>): its turns take the frames. False too within the window after a caller's
    /// spin: that caller will spin on its next call and take its frames itself, and the loop spinning meanwhile would
    /// only fight it for the turn lock and the CPU (a second busy core; measured: request/response 2-8x slower).
    /// </summary>
    private bool BusyPolling(long lastWork)
    {
        var spin = _context.Config.BusyPollMicroseconds;
        if (spin <= 0 || lastWork == 0 || BusyWaiters > 0) return false;
        var window = spin * TimeSpan.TicksPerMicrosecond;
        if (Stopwatch.GetElapsedTime(lastWork).Ticks >= window) return false;
        if (Volatile.Read(ref _lastCallerSpin) is var caller and not 0 && Stopwatch.GetElapsedTime(caller).Ticks < window) return false;
        Thread.SpinWait(32); // a breath between turns: a caller waiting for the turn lock gets it
        return true;
    }
}
