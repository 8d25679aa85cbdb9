using System.Threading.Tasks.Sources;
using NetStack.Tcp;

namespace NetStack.Sockets;

/// <summary>
/// A socket call that returns a Task: its own completion source (continuations off the loop), the work the loop runs
/// (<see cref="ILoopWork"/>, so posting it needs no closure) and the waiter a connection parks (<see cref="IOperationWaiter{T}"/>):
/// one object per call. The loop completes it in the turn that finishes it, so simulations stay deterministic.
/// </summary>
/// <remarks>
/// Cancellation runs on the loop (<see cref="CancelOnLoop"/>), after the call's own work: the loop runs either the
/// completion or the cancel first, never half of each, so a cancelled receive takes nothing and one completed as the
/// token fired returns its data. The token's registration is dropped by whichever comes second, the completion (on the
/// loop) or the registering caller, so a long-lived token does not collect one registration per call.
/// </remarks>
internal abstract class LoopCall<T>() : TaskWaiter<T>(TaskCreationOptions.RunContinuationsAsynchronously), ILoopWork, IBusyWaitable
{
    // Only what every call needs (issue 18: a pending receive costs its object and task); a token that can fire gets its
    // own small object, so an uncancellable call carries no token or registration.
    private CancelState? _cancel;

    private sealed class CancelState(CancellationToken token)
    {
        public readonly CancellationToken Token = token;
        public CancellationTokenRegistration Registration;
        public int Handshake; // 1: completed; 2: registered — the second to arrive unregisters
    }

    /// <summary>The stack the call runs on: its owner's (a socket's or a listener's), so the call holds no field for it.</summary>
    protected abstract NetworkStack Stack { get; }

    /// <summary>The call's work on the loop: complete this, fail it, or park it with a connection as its waiter.</summary>
    protected abstract void RunOnLoop(TimeSpan now);

    /// <summary>Unparks this call if it still waits (the connection then calls <see cref="Cancel"/>). Loop only.</summary>
    protected abstract void CancelOnLoop();

    /// <summary>Runs the call (inline when the loop is free, else posted) and returns its task.</summary>
    public Task<T> Start(CancellationToken cancellationToken)
    {
        try { Stack.Execute(this); }
        catch (StackException e) { Fail(e); }
        Stack.BusyWait(this); // the busy-poll mode: the caller spins on it before it parks
        if (!cancellationToken.CanBeCanceled || Task.IsCompleted) return Task;
        var c = new CancelState(cancellationToken);
        Volatile.Write(ref _cancel, c);
        c.Registration = cancellationToken.UnsafeRegister(static s => ((LoopCall<T>)s!).RequestCancel(), this);
        // Completed before the state was seen (Task.IsCompleted), or after and saw it registered: unregister here.
        if (Interlocked.Exchange(ref c.Handshake, 2) == 1 || Task.IsCompleted) c.Registration.Unregister();
        return Task;
    }

    bool IBusyWaitable.IsDone => Task.IsCompleted;

    private void RequestCancel()
    {
        try { Stack.Execute(new CancelWork(this)); }
        catch (StackException) { /* the stack stopped: its Dispose fails the call */ }
    }

    void ILoopWork.Run(TimeSpan now)
    {
        try { RunOnLoop(now); }
        catch (Exception e) { Fail(e); }
    }

    void ILoopWork.Abandon(StackException stopped) => Fail(stopped);

    public override void Complete(T result)
    {
        base.Complete(result);
        Completed();
    }

    public override void Fail(Exception error)
    {
        base.Fail(error);
        Completed();
    }

    public override void Cancel()
    {
        TrySetCanceled(Volatile.Read(ref _cancel)?.Token ?? default);
        Completed();
    }

    private void Completed()
    {
        if (Volatile.Read(ref _cancel) is { } c && Interlocked.Exchange(ref c.Handshake, 1) == 2) c.Registration.Unregister();
    }

    private sealed class CancelWork(LoopCall<T> call) : ILoopWork
    {
        public void Run(TimeSpan now) => call.CancelOnLoop();
        public void Abandon(StackException stopped) { }
    }
}

/// <summary>A call on a connection's socket (connect, send, receive, close).</summary>
internal abstract class SocketCall<T>(TcpSocket socket) : LoopCall<T>
{
    /// <summary>The socket the call is for (and so its stack).</summary>
    protected TcpSocket Socket { get; } = socket;

    protected sealed override NetworkStack Stack => Socket.Stack;
}

/// <summary>
/// A socket's reusable operation behind a <see cref="ValueTask"/> (the send's; a receive's source is the socket itself,
/// on the same <see cref="OperationCore{T}"/>), allocated at its first use and reset for each call, so a steady stream
/// of calls allocates nothing (the issue 18 target). The loop completes it, continuations run off the loop, so user code
/// never runs there; the awaiter's <c>GetResult</c> frees it for the next call. A call that finds it still in use (a
/// second one while the first is pending) falls back to a <see cref="LoopCall{T}"/>, so the rules and errors stay the
/// connection's. Cancelling works as in <see cref="LoopCall{T}"/>; a late cancel of an earlier call is told apart by the
/// version and does nothing.
/// </summary>
internal abstract class ReusableOperation<T> : IValueTaskSource<T>, IValueTaskSource, ILoopWork, IOperationWaiter<T>, IBusyWaitable, IReusableOperation
{
    private OperationCore<T> _core;
    private int _inUse;

    /// <summary>The stack the operation runs on: its socket's (no field of its own).</summary>
    public abstract NetworkStack Stack { get; }

    /// <summary>The call's work on the loop: complete this, fail it, or park it with a connection as its waiter.</summary>
    protected abstract void RunOnLoop(TimeSpan now);

    /// <summary>Unparks this operation if it still waits (the connection then calls <see cref="Cancel"/>). Loop only.</summary>
    protected abstract void CancelOnLoop();

    /// <summary>Drops the references to the caller's memory.</summary>
    protected abstract void Clear();

    /// <summary>True when this thread may start the next call (the previous one's result was taken).</summary>
    public bool TryAcquire() => Interlocked.CompareExchange(ref _inUse, 1, 0) == 0;

    /// <summary>Starts a call after <see cref="TryAcquire"/> and the subclass has stored its arguments; returns the version.</summary>
    protected short Begin(CancellationToken cancellationToken)
    {
        var version = _core.Reset(this, cancellationToken);
        try { Stack.Execute(this); }
        catch (StackException e) { Fail(e); }
        Stack.BusyWait(this); // the busy-poll mode: the caller spins on it before it parks
        _core.RegisterCancel(cancellationToken);
        return version;
    }

    bool IBusyWaitable.IsDone => _core.IsCompleted;

    short IReusableOperation.CurrentVersion => _core.Version;
    bool IReusableOperation.CurrentCompleted => _core.IsCompleted;
    void IReusableOperation.CancelOnLoop() => CancelOnLoop();

    void ILoopWork.Run(TimeSpan now)
    {
        try { RunOnLoop(now); }
        catch (Exception e) { Fail(e); }
    }

    void ILoopWork.Abandon(StackException stopped) => Fail(stopped);

    public void Complete(T result)
    {
        Clear();
        _core.SetResult(this, result);
    }

    public void Fail(Exception error)
    {
        Clear();
        _core.SetException(this, error);
    }

    public void Cancel()
    {
        Clear();
        _core.SetCanceled(this);
    }

    public ValueTaskSourceStatus GetStatus(short token) => _core.GetStatus(token);

    public void OnCompleted(Action<object?> continuation, object? state, short token, ValueTaskSourceOnCompletedFlags flags) =>
        _core.OnCompleted(this, continuation, state, token, flags);

    T IValueTaskSource<T>.GetResult(short token)
    {
        _core.Check(token); // a stale token frees nothing
        try { return _core.GetResult(this, token); }
        finally { Volatile.Write(ref _inUse, 0); }
    }

    void IValueTaskSource.GetResult(short token) => ((IValueTaskSource<T>)this).GetResult(token);
}
