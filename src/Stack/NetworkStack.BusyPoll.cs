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
/// The low-latency modes: the loop's spin after work and the caller's spin on a call that waits
/// (<see cref="StackConfig.BusyPollMicroseconds"/>: Linux's SO_BUSY_POLL, a blocking read polls the device itself), and
/// the caller's wait on the device (<see cref="StackConfig.CallerWaitMicroseconds"/>: the blocking read sleeps where the
/// frame will wake it, and takes it itself).
/// </summary>
/// <remarks>
/// Without them a call that has to wait (a receive before the data, a ping before its reply) parks; the frame that
/// finishes it wakes the loop thread from its sleep in the device, and the loop hands the completion to a thread-pool
/// thread for the caller's continuation: two wake-ups, the larger part of a round trip that comes 2 ms after the last
/// one (docs/benchmarks.md has the breakdown). With the spin the caller's thread polls the device itself, running turns
/// when the turn lock is free, until its call is done or the window ends; with the wait it sleeps in the device (epoll
/// on the capture socket and the wake-up eventfd), one caller at a time, and runs the turn when a frame or a timer
/// comes. A call done so returns completed, and its continuation runs on at once on the same thread: one wake-up (the
/// caller's, or none for the spin) and no hand-off, as the kernel wakes a blocking reader once. Meanwhile the loop thread
/// naps without watching the device (a frame wakes one thread, not two): until posted work, the last waiter leaving
/// without its call done, or the longest window from its nap (a timer too, while no caller waits on the device).
/// </remarks>
public sealed partial class NetworkStack
{
    private int _busyWaiters;     // callers spinning or waiting on the device now
    private long _busyWaitHits;   // calls that finished while their caller spun
    private long _busyWaitMisses; // calls still waiting when their caller's spin ended, and no wait on the device followed (they park as usual)
    private long _callerWaitHits;   // calls that finished while their caller waited on the device
    private long _callerWaitMisses; // calls that parked after the caller's wait (its window ended, or another caller had the device)
    private long _lastCallerSpin; // Stopwatch timestamp of the end of the last caller's spin
    // The loop thread's sleep while callers spin or wait on the device: it does not watch the device then (the frame is
    // the caller's to take, and one wake-up, not two). Set when the last of them leaves without its call done, and by WakeLoop.
    private readonly ManualResetEventSlim _nap = new(false, 1);
    private volatile bool _napping;
    // The caller waiting on the device (one at a time): 1 while it does, its call, and its managed thread id.
    private int _deviceWaiter;
    private IBusyWaitable? _waitingCall;
    private int _waiterThread;
    private long _nextDeadline = long.MaxValue; // the last turn's next deadline (clock ticks), whoever ran it: the waiter's timer
    private long _loopNaps;       // the loop thread's naps (each a wake-up of it, by time or by a Set)

    /// <summary>True while the loop thread naps because callers spin or wait on the device (it does not watch the device meanwhile).</summary>
    internal bool LoopNapping => _napping;

    /// <summary>The loop thread's naps so far (the LoopNaps counter): a nap that ends and another that begins count two.</summary>
    internal long LoopNaps => Volatile.Read(ref _loopNaps);

    /// <summary>Callers spinning on their calls, or waiting on the device for them, now.</summary>
    internal int BusyWaiters => Volatile.Read(ref _busyWaiters);

    /// <summary>True while a caller waits on the device for its call (<see cref="StackConfig.CallerWaitMicroseconds"/>).</summary>
    internal bool CallerWaitsOnDevice => Volatile.Read(ref _deviceWaiter) == 1;

    /// <summary>
    /// Called after <see cref="Execute{TWork}"/> on the caller's thread: in the busy-poll mode, spins until
    /// <paramref name="call"/> is done or the window ends, taking frames (turns) whenever the loop's state is free; then,
    /// with <see cref="StackConfig.CallerWaitMicroseconds"/>, waits on the device for it (<see cref="WaitOnDevice"/>).
    /// Does nothing outside the modes, on the loop thread, inside a turn, or on a stack driven by Poll.
    /// </summary>
    internal void BusyWait(IBusyWaitable call)
    {
        var spin = _context.Config.BusyPollMicroseconds;
        var wait = _context.Config.CallerWaitMicroseconds;
        if (spin <= 0 && wait <= 0 || call.IsDone || !_inline || _stopping || Thread.CurrentThread == _thread || Monitor.IsEntered(_turn)) return;
        var waited = false;
        Interlocked.Increment(ref _busyWaiters);
        try
        {
            if (spin > 0) Spin(call, spin);
            if (wait > 0 && !call.IsDone && !_stopping) waited = WaitOnDevice(call, wait);
        }
        finally
        {
            if (spin > 0) Volatile.Write(ref _lastCallerSpin, Stopwatch.GetTimestamp());
            // The last one gone: the loop watches the device again, at once — unless this caller's spin or wait ended
            // with its call done. Its continuation runs on here, and a server's next receive comes within µs and spins
            // or waits on the device again: waking the loop for that moment would cost a wake-up per round trip (and the
            // woken loop's turn then fights the caller's next one for the turn lock). The loop's nap ends by itself
            // within the longest window (or at the next timer), which bounds how long the device goes unwatched.
            if (Interlocked.Decrement(ref _busyWaiters) == 0 && !call.IsDone) _nap.Set();
        }
        if (call.IsDone && waited) Interlocked.Increment(ref _callerWaitHits);
        else if (call.IsDone) Interlocked.Increment(ref _busyWaitHits);
        else if (wait > 0) Interlocked.Increment(ref _callerWaitMisses);
        else Interlocked.Increment(ref _busyWaitMisses);
    }

    private void Spin(IBusyWaitable call, int microseconds)
    {
        var limit = microseconds * Stopwatch.Frequency / 1_000_000;
        var start = Stopwatch.GetTimestamp();
        while (!call.IsDone && !_stopping && Stopwatch.GetTimestamp() - start < limit)
        {
            if (TryEnterTurn()) InlineTurn(null);
            if (!call.IsDone) Thread.SpinWait(32); // a breath between turns: the loop or another caller may take one
        }
    }

    /// <summary>
    /// The caller's wait on the device: sleeps where the loop would (<see cref="ILinkDevice.WaitForFrames"/>), up to
    /// <paramref name="microseconds"/> or until the next timer, and runs a turn when it wakes, until
    /// <paramref name="call"/> is done. One caller at a time (false: another has the device, this call parks). The loop
    /// naps meanwhile (this caller counts among the busy waiters), so a frame wakes this thread alone; a turn of another
    /// thread that completes the call (a cancel, a close, the loop's turn for posted work) wakes it (<see cref="WakeDeviceWaiter"/>).
    /// </summary>
    private bool WaitOnDevice(IBusyWaitable call, int microseconds)
    {
        if (Interlocked.CompareExchange(ref _deviceWaiter, 1, 0) != 0) return false;
        Volatile.Write(ref _waiterThread, Environment.CurrentManagedThreadId);
        Volatile.Write(ref _waitingCall, call);
        try
        {
            LoopOutOfDevice();
            var until = Clock.Now + TimeSpan.FromTicks(microseconds * TimeSpan.TicksPerMicrosecond);
            while (!call.IsDone && !_stopping)
            {
                var now = Clock.Now;
                if (now >= until) break;
                // Until the window's end or the next timer, whichever comes first: the loop naps, so this thread runs it.
                var wake = Math.Min(until.Ticks, Volatile.Read(ref _nextDeadline));
                if (wake > now.Ticks) Device.WaitForFrames(TimeSpan.FromTicks(wake - now.Ticks));
                if (call.IsDone || _stopping) break;
                if (TryEnterTurn()) InlineTurn(null);
                else Thread.SpinWait(32); // the loop (posted work, or its nap's end) or another caller has the turn: it takes the frames
            }
        }
        finally
        {
            Volatile.Write(ref _waitingCall, null);
            Volatile.Write(ref _deviceWaiter, 0);
        }
        return true;
    }

    /// <summary>
    /// Before the caller's wait on the device: a loop thread asleep in the device is woken (it naps instead, as this
    /// caller counts among the busy waiters), and the caller waits until it has left, at most 1 ms: two threads in the
    /// device would both wake for a frame, and one of them could take the other's wake-up (the eventfd) for itself.
    /// </summary>
    private void LoopOutOfDevice()
    {
        if (!LoopInDevice()) return;
        Device.Wake();
        var start = Stopwatch.GetTimestamp();
        var spin = new SpinWait();
        while (LoopInDevice() && Stopwatch.GetElapsedTime(start).Ticks < TimeSpan.TicksPerMillisecond) spin.SpinOnce(sleep1Threshold: -1); // yields, never a 1 ms sleep
    }

    private bool LoopInDevice() => Volatile.Read(ref _sleeping) == 1 && !_napping;

    /// <summary>After a turn: the call a caller waits on the device for is done, by another thread's turn: wake it.</summary>
    private void WakeDeviceWaiter()
    {
        if (Volatile.Read(ref _waitingCall) is { IsDone: true } && Volatile.Read(ref _waiterThread) != Environment.CurrentManagedThreadId) Device.Wake();
    }

    /// <summary>
    /// The loop thread's nap while callers spin or wait on the device, up to <paramref name="wait"/>. The event's wait
    /// counts whole milliseconds, truncating: a nap under 1 ms returned at once, and the loop then ran turn after turn
    /// until its timer (fighting the spinning caller for the turn lock); so a nap is at least 1 ms, rounded up (a
    /// timer then fires up to 1 ms late only if no caller runs it first: callers' turns run the timers too). When it
    /// times out while a caller still waits on the device and no timer is due and no work posted, it naps on without a
    /// turn (the caller's turns take the frames and run the timers).
    /// </summary>
    private void Nap(TimeSpan wait, TimeSpan cap)
    {
        while (true)
        {
            _loopNaps++;
            if (_nap.Wait(NapMilliseconds(wait)) || _stopping || !CallerWaitsOnDevice || !_posted.IsEmpty) return;
            var now = Clock.Now;
            var due = Volatile.Read(ref _nextDeadline);
            if (due <= now.Ticks) return;
            wait = TimeSpan.FromTicks(Math.Min(due - now.Ticks, cap.Ticks));
            Volatile.Write(ref _sleepUntil, (now + wait).Ticks);
        }
    }

    /// <summary>Whole milliseconds for the nap's event wait: rounded up, at least 1 (see <see cref="Nap"/>).</summary>
    internal static int NapMilliseconds(TimeSpan wait) =>
        (int)Math.Clamp((wait.Ticks + TimeSpan.TicksPerMillisecond - 1) / TimeSpan.TicksPerMillisecond, 1, int.MaxValue);

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
