using System.Diagnostics;

namespace NetStack;

/// <summary>
/// The predictive poll (<see cref="StackConfig.PredictivePollMicroseconds"/>): when frames come at a steady pace (a
/// ping or a request every few ms), a thread-pool thread is awake and polling the device in a short window around the
/// next frame's expected arrival (<see cref="ArrivalPredictor"/>), instead of the frame waking the loop thread from its
/// sleep in the device — on this kind of machine the larger part of a round trip that comes after an idle gap
/// (docs/benchmarks.md). The poller runs turns as a caller does (<see cref="InlineTurn"/>), so a completed call's
/// continuation is queued on the poller's own thread and runs there next: no second wake-up for a server's receive,
/// and no user code on the loop. While it polls the loop thread naps without watching the device (one thread woken,
/// not two) until the window ends. The CPU spent is the windows': a few percent of a core at a 2 ms pace.
/// </summary>
public sealed partial class NetworkStack
{
    private ArrivalPredictor? _predictor;   // null when the mode is off (or fixed busy polling is on); loop state
    private PredictivePoller? _poller;
    private int _pollerActive;              // 1 from queuing the poller until it ends
    private int _pollerStarted;             // 1 once the queued poller runs (until then the loop thread polls)
    private int _pollerCounted;             // 1 while the poller counts among the busy waiters (the loop naps)
    private bool _hasWindow;                // the turn's prediction (loop state)
    private long _windowFrom;               // µs (PollClock)
    private long _windowUntil;
    private long _pollUntil;                // the running window's end, for the loop's nap (µs)
    private long _wakeLateUs;               // how late the loop thread wakes for a window it slept towards (moving mean)
    private long _poolLateUs;               // how late the poller starts after it is queued (moving mean)
    private long _seenWait;                 // the device's ReceiveWaitMicroseconds and FramesReceived at the last look
    private long _seenFrames;

    private static readonly double MicrosecondsPerTick = 1_000_000.0 / Stopwatch.Frequency;

    /// <summary>The predictive poll's clock: µs of the monotonic Stopwatch.</summary>
    internal static long PollClock() => (long)(Stopwatch.GetTimestamp() * MicrosecondsPerTick);

    /// <summary>The predictor, when the mode is on (tests read its counts).</summary>
    internal ArrivalPredictor? Predictor => _predictor;

    private void StartPredictivePoll()
    {
        var budget = _context.Config.PredictivePollMicroseconds;
        if (budget <= 0 || _context.Config.BusyPollMicroseconds > 0 || !_inline) return;
        _predictor = new ArrivalPredictor(budget);
        _poller = new PredictivePoller(this);
        _seenWait = Device.Statistics.ReceiveWaitMicroseconds;
        _seenFrames = Device.Statistics.FramesReceived;
    }

    /// <summary>In a turn that took frames: tells the predictor when they reached the device (the turn's time less their mean wait there).</summary>
    private void NoteArrivals()
    {
        if (_predictor is not { } p) return;
        var stats = Device.Statistics;
        var frames = stats.FramesReceived - _seenFrames;
        var wait = stats.ReceiveWaitMicroseconds - _seenWait;
        _seenFrames = stats.FramesReceived;
        _seenWait = stats.ReceiveWaitMicroseconds;
        p.OnFrames(PollClock() - (frames > 0 ? wait / frames : 0));
    }

    /// <summary>At the end of the loop thread's turn (under the turn lock): the next window, if one is predicted.</summary>
    private void PlanWindow()
    {
        _hasWindow = _predictor is { } p && Volatile.Read(ref _pollerActive) == 0 && p.TryPredict(PollClock(), out _windowFrom, out _windowUntil);
    }

    /// <summary>
    /// Before the loop thread sleeps: starts the poller if the window is near (then the loop naps until it ends: returns
    /// true), else shortens <paramref name="wait"/> so the loop wakes in time to start it. <paramref name="plannedWake"/>
    /// is when it should wake for that (0: not for a window).
    /// </summary>
    private bool PredictivePoll(ref TimeSpan wait, out long plannedWake)
    {
        plannedWake = 0;
        if (!_hasWindow || _poller is null) return false;
        var now = PollClock();
        // Early enough for the loop's late wake and the poller's start; at most half the budget (a machine slower to
        // wake than that is busy, and the loop's own wake-up is then quick).
        var lead = Math.Min(_wakeLateUs + _poolLateUs, _predictor!.Budget / 2);
        var startAt = _windowFrom - lead;
        if (now >= startAt)
        {
            if (now >= _windowUntil) return false;
            if (Interlocked.CompareExchange(ref _pollerActive, 1, 0) != 0) return false;
            _hasWindow = false;
            Volatile.Write(ref _pollUntil, _windowUntil);
            // Counted as a spinning caller from now: the loop naps from here, not watching the device (the poller's turns take the frames).
            Volatile.Write(ref _pollerCounted, 1);
            Interlocked.Increment(ref _busyWaiters);
            Volatile.Write(ref _pollerStarted, 0);
            _poller.Queue(_windowUntil, _predictor.LastArrival);
            return true;
        }
        var ahead = TimeSpan.FromTicks((startAt - now) * TimeSpan.TicksPerMicrosecond);
        if (ahead < wait)
        {
            wait = ahead;
            plannedWake = startAt;
        }
        return false;
    }

    /// <summary>After the loop thread's sleep towards a window: how late it woke (when the timeout, not a frame, woke it).</summary>
    private void NoteWake(long plannedWake)
    {
        if (plannedWake == 0) return;
        var late = PollClock() - plannedWake;
        if (late < 0) return; // a frame or a call woke it early
        _wakeLateUs += (Math.Min(late, 1000) - _wakeLateUs) / 4;
    }

    /// <summary>
    /// True while a queued poller has not started yet and its window is open: the loop thread polls meanwhile (turn after
    /// turn), so a frame that comes before the pool's thread does finds a thread awake; the woken pool thread then runs
    /// the continuation that frame completed, after its poller sees the frame taken.
    /// </summary>
    private bool BridgingPoller() =>
        Volatile.Read(ref _pollerActive) == 1 && Volatile.Read(ref _pollerStarted) == 0 && PollClock() < Volatile.Read(ref _pollUntil);

    /// <summary>
    /// The poller stops counting as a busy waiter (so the loop sleeps in the device again): when it ends, or when its
    /// window is over before it ran (a loaded machine's pool was late), whichever comes first.
    /// </summary>
    private void ReleasePoller()
    {
        if (Interlocked.Exchange(ref _pollerCounted, 0) == 1) Interlocked.Decrement(ref _busyWaiters);
    }

    /// <summary>Before the loop thread sleeps: a poller whose window is over no longer keeps it napping.</summary>
    private void ReleaseLatePoller()
    {
        if (Volatile.Read(ref _pollerCounted) == 1 && PollClock() >= Volatile.Read(ref _pollUntil)) ReleasePoller();
    }

    /// <summary>How long the loop may nap while the poller runs: until its window ends.</summary>
    private TimeSpan PollerNap()
    {
        var left = Volatile.Read(ref _pollUntil) - PollClock() + ArrivalPredictor.MarginMicroseconds;
        return TimeSpan.FromTicks(Math.Max(1, left) * TimeSpan.TicksPerMicrosecond);
    }

    /// <summary>The thread-pool work item that polls a window: one per stack, reused (queuing it allocates nothing).</summary>
    private sealed class PredictivePoller(NetworkStack stack) : IThreadPoolWorkItem
    {
        /// <summary>A pause between two looks longer than this means the scheduler took the CPU: stop and back off.</summary>
        private const long PreemptedMicroseconds = 50;
        private long _until;
        private long _queuedAt;
        private long _before;   // the predictor's last arrival when queued: a change is the frame taken (by anyone)

        public void Queue(long until, long lastArrival)
        {
            _until = until;
            _before = lastArrival;
            _queuedAt = PollClock();
            ThreadPool.UnsafeQueueUserWorkItem(this, preferLocal: false);
        }

        public void Execute()
        {
            var s = stack;
            Volatile.Write(ref s._pollerStarted, 1);
            var start = PollClock();
            var before = _before;
            var outcome = 0; // 0 miss, 1 hit, 2 interrupted
            try
            {
                var last = start;
                if (start >= _until) outcome = 2; // the pool started it after its window: the machine is busy
                else while (!s._stopping)
                {
                    if (s._predictor!.LastArrival != before) { outcome = 1; break; } // taken by the loop before this started
                    var now = PollClock();
                    if (now - last > PreemptedMicroseconds) { outcome = 2; break; }
                    if (now >= _until) break;
                    if (s.TryEnterTurn())
                    {
                        s.InlineTurn(null);
                        if (s._predictor.LastArrival != before) { outcome = 1; break; }
                        now = PollClock();
                    }
                    last = now;
                    Thread.SpinWait(32); // a breath between turns: another caller may take one
                }
            }
            finally
            {
                lock (s._turn)
                {
                    var p = s._predictor!;
                    s._poolLateUs += (Math.Min(Math.Max(0, start - _queuedAt), 1000) - s._poolLateUs) / 4;
                    var end = PollClock();
                    if (outcome == 1) p.Hit();
                    else if (outcome == 2) p.Interrupted(end);
                    else if (p.LastArrival != before) p.Hit(); // another thread's turn took it
                    else p.Miss(end);
                }
                Volatile.Write(ref s._pollerActive, 0);
                // The loop naps until the window's end (PollerNap) and then watches the device again; after a hit it is
                // not woken sooner, so the thread that took the frame goes on to its continuation without a wake-up to pay.
                s.ReleasePoller();
                if (outcome != 1) s._nap.Set();
            }
        }
    }
}
