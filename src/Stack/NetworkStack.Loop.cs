using System.Collections.Concurrent;
using System.Diagnostics;
using System.Runtime.ExceptionServices;

namespace NetStack;

/// <summary>
/// Work for the loop that carries its own state, so posting it allocates nothing: a socket's reusable operation, a
/// call's completion source. <see cref="Run"/> must not throw (it completes its caller with the error instead).
/// </summary>
internal interface ILoopWork
{
    /// <summary>Runs with the loop's state in hand: on the loop thread, or inline on a caller's (see NetworkStack.Execute).</summary>
    void Run(TimeSpan now);
    /// <summary>The stack stopped before the work could run.</summary>
    void Abandon(StackException stopped);
}

/// <summary>
/// The loop: one turn (<see cref="Poll"/>), the posted work, the real-time thread, and calls that run inline.
/// </summary>
/// <remarks>
/// One owner at a time holds the loop's state: the turn lock <see cref="_turn"/>. The loop thread holds it for each
/// turn and releases it while it sleeps in the device. A call from another thread (<see cref="Execute"/>) that finds
/// the loop asleep, the lock free and no posted work waiting takes it and runs a turn itself — its own operation, then
/// the frames, timers and flush of a turn; posted work is the loop thread's alone — so a send leaves and a receive of buffered data returns
/// without a thread hand-off (lwIP's core locking, Linux's process context holding the socket lock). When the loop is
/// busy the call is posted as before, and the running loop takes it without being woken. docs/design.md has the why.
/// </remarks>
public sealed partial class NetworkStack
{
    /// <summary>Frames taken from the device per loop turn before timers and API work get their go.</summary>
    public const int ReceiveBatch = 256;

    private readonly struct Posted(Action<TimeSpan>? run, Action<Exception>? cancel, ILoopWork? work)
    {
        public void Run(TimeSpan now)
        {
            if (work != null) work.Run(now);
            else run!(now);
        }

        public void Cancel(StackException stopped)
        {
            if (work != null) work.Abandon(stopped);
            else cancel?.Invoke(stopped);
        }
    }

    private readonly ConcurrentQueue<Posted> _posted = new();
    // How many are posted, kept here: ConcurrentQueue.Count over more than one segment freezes them, and the next
    // Enqueue then allocates a new segment of twice the size (256 KiB and more, again and again under many posts).
    private int _postedCount;
    /// <summary>Held by whoever runs a turn: the loop thread, or a caller running one inline.</summary>
    private readonly object _turn = new();
    private Thread? _thread;
    private volatile bool _inline;       // the real-time loop runs (Start) and calls may run inline
    private volatile bool _stopping;
    private volatile bool _disposed;
    private long _turns;                 // turns begun, by anyone (the loop checks it before it sleeps)
    private int _sleeping;               // 1 while the loop thread waits in the device, or is about to
    private long _sleepUntil;            // the clock time (ticks) it waits until

    /// <summary>
    /// One turn of the loop at <paramref name="now"/>: runs posted API work, takes a batch of frames from
    /// the device, runs due timers and flushes what was sent. Returns when it next has something to do
    /// (null: nothing scheduled). Call from one thread at a time only.
    /// </summary>
    public TimeSpan? Poll(TimeSpan now)
    {
        ObjectDisposedException.ThrowIf(_disposed, this);
        BeginTurn(now);
        return EndTurn(now, out _);
    }

    /// <summary>The first half of a turn: the posted work, in order. Returns how many ran.</summary>
    private int BeginTurn(TimeSpan now)
    {
        StartTurn(now);
        var budget = Volatile.Read(ref _postedCount);
        var ran = 0;
        while (budget-- > 0 && _posted.TryDequeue(out var work))
        {
            Interlocked.Decrement(ref _postedCount);
            ran++;
            work.Run(now);
        }
        return ran;
    }

    private void StartTurn(TimeSpan now)
    {
        Interlocked.Increment(ref _turns);
        _context.Now = now;
    }

    /// <summary>The rest of a turn: frames, timers, batch-end ACKs, the device flush; the next deadline.</summary>
    private TimeSpan? EndTurn(TimeSpan now, out int received)
    {
        received = Device.Receive(Ethernet, now, ReceiveBatch);

        var next = Min(Arp.Poll(now), Ip.Poll(now));
        next = Min(next, Icmp.Poll(now));
        next = Min(next, Udp.Poll(now));
        next = Min(next, Dns.Poll(now));
        next = Min(next, Tcp.Poll(now));
        if (Dhcp != null) next = Min(next, Dhcp.Poll(now));
        Tcp.FlushPendingAcks(now); // one ACK per connection for the whole receive batch (sending them only clears timers)
        Device.Flush(now);
        next = Min(next, Device.NextArrival);
        if (received == ReceiveBatch || !_posted.IsEmpty) next = now;
        Volatile.Write(ref _nextDeadline, next?.Ticks ?? long.MaxValue); // a caller waiting on the device wakes for it
        return next;
    }

    /// <summary>True while the loop thread sleeps in the device, or is about to: a call made now runs inline (tests wait for it).</summary>
    internal bool LoopSleeping => Volatile.Read(ref _sleeping) == 1;

    /// <summary>
    /// True once <see cref="Start"/> runs the loop on its own thread. A stack driven by the caller's <see cref="Poll"/>
    /// (a simulation) completes every call's task as a Task, in the turn that finishes it, so the caller sees it
    /// complete before the next turn; the reusable ValueTask operations (whose continuations are queued) are for the
    /// real-time loop.
    /// </summary>
    internal bool HasLoopThread => _thread != null;

    private static TimeSpan? Min(TimeSpan? a, TimeSpan? b) => a is null ? b : b is null ? a : (a < b ? a : b);

    /// <summary>Runs <paramref name="work"/> on the loop at its next turn. Any thread.</summary>
    public void Post(Action<TimeSpan> work) => Post(new Posted(work, null, null));

    /// <summary>Posts work that carries its own state (no closure); abandoned if the stack stops before it runs.</summary>
    internal void Post(ILoopWork work) => Post(new Posted(null, null, work));

    private void Post(in Posted work)
    {
        if (_disposed) throw Stopped();
        _posted.Enqueue(work);
        Interlocked.Increment(ref _postedCount);
        if (_disposed) CancelPosted(); // raced with Dispose: do not leave the caller waiting
        // A running loop takes the work at its next turn; only a sleeping one needs the device's wake-up (a system
        // call, and a thread hand-off). Enqueue is a full fence, as is the loop's flag write before it checks the queue.
        else if (!_inline || Volatile.Read(ref _sleeping) == 1) WakeLoop();
    }

    /// <summary>Wakes the loop thread from its sleep in the device, or from its nap while a caller spins or waits on the device.</summary>
    /// <remarks>
    /// A napping loop needs only its event: the device's wake-up would also wake a caller waiting on the device, for
    /// nothing (measured: a second ppoll per request/response round trip, a pacing or retransmission timer set by the
    /// reply's turn waking the loop). A loop that naps sets <see cref="_napping"/> after it resets its nap's event: a
    /// wake-up that reads the flag set comes after the reset, so its Set is not lost; one that reads it clear wakes both.
    /// </remarks>
    private void WakeLoop()
    {
        if (!_napping) Device.Wake();
        _nap.Set();
    }

    private StackException Stopped() => new(StackError.StackStopped, $"Stack '{Name}' has been stopped; start a new one.");

    private void CancelPosted()
    {
        while (_posted.TryDequeue(out var w))
        {
            Interlocked.Decrement(ref _postedCount);
            w.Cancel(Stopped());
        }
    }

    /// <summary>
    /// Runs <paramref name="call"/> as soon as the loop's state is free: inline on the calling thread when the real-time
    /// loop is asleep or between turns and no posted work waits (the call, then the frames, timers and flush of a turn,
    /// under <see cref="_turn"/>), else posted to the loop. Never inline on the
    /// loop thread, inside a turn, or on a stack driven by the caller's own <see cref="Poll"/> (simulations), where every
    /// call is posted and runs in the loop's order as before. Any thread. Work that is a struct runs inline as it is and
    /// is boxed only when it has to be posted (issue 18: a pending receive costs its completion source and task, not the
    /// socket and buffer besides).
    /// </summary>
    internal void Execute<TWork>(TWork call) where TWork : ILoopWork
    {
        if (!TryEnterTurn())
        {
            Post(call);
            return;
        }
        InlineTurn(call);
    }

    /// <summary>
    /// A turn on the calling thread, which holds <see cref="_turn"/> (<see cref="TryEnterTurn"/>) and lets it go here:
    /// <paramref name="call"/> (if any), then the frames, timers and flush. Wakes the loop if it sleeps past what the
    /// turn left for it.
    /// </summary>
    private void InlineTurn(ILoopWork? call) => InlineTurn<ILoopWork?>(call);

    private void InlineTurn<TWork>(TWork call) where TWork : ILoopWork?
    {
        TimeSpan? next = null;
        var received = 0;
        var held = false;
        try
        {
            // No posted work is waiting (TryEnterTurn): the call is next in order. Work posted meanwhile stays for the
            // loop thread, which alone runs posted work (what InvokeAsync's function reads of its thread is the loop's).
            var now = Clock.Now;
            StartTurn(now);
            // A call that will wait for the peer's answer (a connect for its SYN-ACK, a ping for its reply), while the
            // loop thread sleeps in the device: a peer on this host (veth) answers inside our send's system call, and its
            // answer arriving would wake the loop for a frame this turn takes itself (the loop would then only find the
            // turn held, block on it and be woken again at its release). The device holds that wake-up back for the
            // turn; what is still unread at the release wakes the loop as usual. Read after StartTurn's fence: a loop
            // that sets _sleeping after this read sees the turn count move and goes round instead of sleeping.
            if (call is IAwaitsAnswer && Volatile.Read(ref _sleeping) == 1)
            {
                Device.HoldArrivalWake();
                held = true;
            }
            var sent = Ethernet.Counters.FramesSent;
            call?.Run(now);
            // Such a call's question leaves before the turn's receive, which then takes the answer that came inside
            // the send: one receive, not an empty one before the flush and a second after it.
            // The answer is taken at a fresh clock reading: at the send's own, its round trip (a ping's latency, a
            // connect's first RTT sample) would read 0.
            if (call is IAwaitsAnswer { IsDone: false } && Ethernet.Counters.FramesSent != sent)
            {
                Device.Flush(now);
                now = Clock.Now;
                StartTurn(now);
            }
            sent = Ethernet.Counters.FramesSent;
            next = EndTurn(now, out received);
            // Still waiting and the turn sent frames (the question itself after an ARP answer): the answer to those is
            // in the device already, for the same reason; a second receive takes it in this turn and completes the call
            // here, instead of after the loop thread's wake-up and a hop back to the caller's continuation.
            if (call is IAwaitsAnswer { IsDone: false } && Ethernet.Counters.FramesSent != sent)
            {
                now = Clock.Now;
                StartTurn(now);
                next = EndTurn(now, out received);
            }
        }
        catch (Exception e)
        {
            LoopFault(e);
            next = Clock.Now;
        }
        finally
        {
            try { if (held) Device.ReleaseArrivalWake(); }
            finally { Monitor.Exit(_turn); }
        }
        WakeDeviceWaiter();
        // The loop may be asleep until a deadline this turn moved earlier, or with frames or work this turn left.
        if (Volatile.Read(ref _sleeping) == 1 && (received == ReceiveBatch || !_posted.IsEmpty || next is { } n && n.Ticks < Volatile.Read(ref _sleepUntil)))
            WakeLoop();
    }

    private bool TryEnterTurn()
    {
        if (!_inline || _stopping || Thread.CurrentThread == _thread || Monitor.IsEntered(_turn) || !_posted.IsEmpty || !Monitor.TryEnter(_turn)) return false;
        // Work posted before this call (by this thread too, when the loop was busy) runs first, on the loop thread.
        if (!_stopping && _posted.IsEmpty) return true;
        Monitor.Exit(_turn);
        return false;
    }

    private void LoopFault(Exception e)
    {
        LoopFaults++;
        LastLoopFault = e;
        _context.Trace("Stack", $"loop fault: {e.GetType().Name}: {e.Message}");
    }

    /// <summary>Runs <paramref name="fn"/> on the loop thread and returns its result. Any thread.</summary>
    /// <remarks>Always posted, never inline: what <paramref name="fn"/> reads of its thread (CPU time, allocation) is the loop thread's.</remarks>
    public Task<T> InvokeAsync<T>(Func<TimeSpan, T> fn)
    {
        var call = new Call<T>(fn);
        try { Post(call); }
        catch (StackException e) { call.TrySetException(e); }
        return call.Task;
    }

    /// <summary>Runs <paramref name="fn"/> (which itself returns a task started on the loop) and unwraps it.</summary>
    /// <remarks>
    /// Loop-side operations complete their tasks on the loop with synchronous continuations (a plain
    /// TaskCompletionSource), so the caller's task here is complete by the end of that loop turn — which keeps
    /// simulations deterministic — while the caller's own continuations still run off the loop.
    /// </remarks>
    public Task<T> InvokeAsync<T>(Func<TimeSpan, Task<T>> fn)
    {
        var call = new UnwrapCall<T>(fn);
        try { Post(call); }
        catch (StackException e) { call.TrySetException(e); }
        return call.Task;
    }

    public Task InvokeAsync(Action<TimeSpan> action) => InvokeAsync<bool>(now => { action(now); return true; });

    /// <summary>As <see cref="InvokeAsync{T}(Func{TimeSpan, T})"/>, but inline when the loop is free (<see cref="Execute"/>): the API's own calls.</summary>
    internal Task<T> CallAsync<T>(Func<TimeSpan, T> fn)
    {
        var call = new Call<T>(fn);
        try { Execute(call); }
        catch (StackException e) { call.TrySetException(e); }
        BusyWait(call);
        return call.Task;
    }

    /// <summary>As <see cref="InvokeAsync{T}(Func{TimeSpan, Task{T}})"/>, but inline when the loop is free.</summary>
    internal Task<T> CallAsync<T>(Func<TimeSpan, Task<T>> fn)
    {
        var call = new UnwrapCall<T>(fn);
        try { Execute(call); }
        catch (StackException e) { call.TrySetException(e); }
        BusyWait(call);
        return call.Task;
    }

    internal Task CallAsync(Action<TimeSpan> action) => CallAsync<bool>(now => { action(now); return true; });

    /// <summary>A function run on the loop; its caller's continuations run off the loop.</summary>
    private sealed class Call<T>(Func<TimeSpan, T> fn) : TaskCompletionSource<T>(TaskCreationOptions.RunContinuationsAsynchronously), ILoopWork, IAwaitsAnswer
    {
        public bool IsDone => Task.IsCompleted;

        public void Run(TimeSpan now)
        {
            try { TrySetResult(fn(now)); }
            catch (Exception e) { TrySetException(e); }
        }

        public void Abandon(StackException stopped) => TrySetException(stopped);
    }

    /// <summary>A function that starts a loop-side task; the caller's task follows it (completed in the same loop turn).</summary>
    private sealed class UnwrapCall<T>(Func<TimeSpan, Task<T>> fn) : TaskCompletionSource<T>(TaskCreationOptions.RunContinuationsAsynchronously), ILoopWork, IAwaitsAnswer
    {
        public bool IsDone => Task.IsCompleted;

        public void Run(TimeSpan now)
        {
            Task<T> inner;
            try { inner = fn(now); }
            catch (Exception e)
            {
                TrySetException(e);
                return;
            }
            if (inner.IsCompleted) Follow(inner, this);
            else inner.ContinueWith(static (t, state) => Follow(t, (UnwrapCall<T>)state!), this, CancellationToken.None,
                TaskContinuationOptions.ExecuteSynchronously, TaskScheduler.Default);
        }

        private static void Follow(Task<T> t, UnwrapCall<T> target)
        {
            if (t.IsCanceled) target.TrySetCanceled();
            else if (t.IsFaulted) target.TrySetException(t.Exception!.InnerExceptions);
            else target.TrySetResult(t.Result);
        }

        public void Abandon(StackException stopped) => TrySetException(stopped);
    }

    /// <summary>Starts the real-time loop on its own thread.</summary>
    public void Start()
    {
        ObjectDisposedException.ThrowIf(_disposed, this);
        if (_thread != null) throw new InvalidOperationException($"Stack '{Name}' is already running.");
        _inline = _context.Config.InlineCalls;
        // With StackConfig.LoopProcessor the thread pins itself before its first turn, and Start waits for that: a
        // processor the system refuses fails Start, not the loop.
        var processor = _context.Config.LoopProcessor;
        Exception? refused = null;
        using var pinned = processor is null ? null : new ManualResetEventSlim();
        _thread = new Thread(() =>
        {
            if (processor is { } p)
            {
                try { LoopAffinity.PinCurrentThread(p); }
                catch (Exception e) { refused = e; }
                pinned!.Set();
                if (refused != null) return;
            }
            RunLoop();
        }) { IsBackground = true, Name = $"NetStack loop {Name}" };
        _thread.Start();
        pinned?.Wait();
        if (refused is null) return;
        _thread = null;
        ExceptionDispatchInfo.Throw(refused);
    }

    private void RunLoop()
    {
        var idle = TimeSpan.FromMilliseconds(250);
        var lastWork = 0L; // Stopwatch timestamp of the last turn that had frames or work (busy polling)
        var seen = 0L;     // turns begun by the end of the loop's last one: more means calls ran turns inline since
        while (!_stopping)
        {
            TimeSpan? next;
            long turn;
            lock (_turn)
            {
                if (_stopping) break;
                var before = Volatile.Read(ref _turns);
                var now = Clock.Now;
                try
                {
                    var worked = BeginTurn(now) > 0;
                    next = EndTurn(now, out var received);
                    if (worked || received > 0 || before != seen) lastWork = Stopwatch.GetTimestamp();
                }
                catch (Exception e)
                {
                    LoopFault(e);
                    next = null;
                }
                turn = seen = Volatile.Read(ref _turns); // more before it sleeps: a call ran a turn inline since
            }
            WakeDeviceWaiter();
            if (_stopping) break;
            if (!_posted.IsEmpty) continue;
            var at = Clock.Now;
            var wait = next is { } n ? n - at : idle;
            if (wait > idle) wait = idle;
            if (wait <= TimeSpan.Zero) continue;
            if (BusyPolling(lastWork)) continue; // another turn at once: no sleep, no wake-up to pay for the next frame
            // While a caller spins or waits on the device (NetworkStack.BusyPoll.cs) its turns take the frames: the loop naps
            // without watching the device (a frame wakes the caller alone), until the last of them leaves without its call
            // done, work is posted, or the longest window passes (a caller's turn may have moved a deadline before the loop
            // went to sleep; a caller whose call was done may not call again).
            _nap.Reset(); // before the waiters are counted: one that leaves after the count sets it again
            var napping = BusyWaiters > 0;
            var cap = TimeSpan.FromTicks(Math.Max(_context.Config.BusyPollMicroseconds, _context.Config.CallerWaitMicroseconds) * TimeSpan.TicksPerMicrosecond);
            if (napping && wait > cap) wait = cap;
            _napping = napping; // before the flag below: a caller that sees the loop asleep sees which sleep (LoopInDevice)
            Volatile.Write(ref _sleepUntil, (at + wait).Ticks);
            Interlocked.Exchange(ref _sleeping, 1);
            // A call posted, or a turn run inline, after this loop's turn: go round again instead of sleeping past it. A
            // caller that began to wait after the count: go round too (it may wait on the device, where the loop must not).
            if (_posted.IsEmpty && napping) Nap(wait, cap);
            else if (_posted.IsEmpty && Volatile.Read(ref _turns) == turn && BusyWaiters == 0) Device.WaitForFrames(wait);
            Volatile.Write(ref _sleeping, 0);
            _napping = false;
        }
    }
}
