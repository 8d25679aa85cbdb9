using System.Runtime.ExceptionServices;
using System.Threading.Tasks.Sources;

namespace NetStack.Sockets;

/// <summary>The owner of an <see cref="OperationCore{T}"/>: a socket call reused call after call.</summary>
internal interface IReusableOperation
{
    /// <summary>The stack the call runs on (its cancel is loop work there).</summary>
    NetworkStack Stack { get; }

    /// <summary>The current call's version and whether it has completed (read by a cancel on the loop).</summary>
    short CurrentVersion { get; }
    bool CurrentCompleted { get; }

    /// <summary>Unparks the current call if it still waits (the connection then cancels it). Loop only.</summary>
    void CancelOnLoop();
}

/// <summary>Tests only: hooks into <see cref="OperationCore{T}"/>'s completion.</summary>
internal static class OperationCoreTestHooks
{
    /// <summary>Called between a completion's claim of the continuation slot and its flag, with the operation's owner.</summary>
    internal static Action<IReusableOperation>? BetweenClaimAndFlag;
}

/// <summary>
/// The one <see cref="IValueTaskSource{TResult}"/> core of a socket's reusable calls: its receive's (the core lives in
/// the socket itself, TcpSocket.ReadSource.cs) and its send's (<see cref="ReusableOperation{T}"/>). The fields of
/// <see cref="ManualResetValueTaskSourceCore{TResult}"/> less what is rare: an error, a captured context, a token and its
/// registration live in <see cref="OperationExtras"/>, made the first time one is needed and kept (issue 18: a pending
/// receive holds the caller's buffer and nothing else). Continuations always run off the completing thread (the thread
/// pool, or the captured context), so user code never runs on the loop.
/// </summary>
/// <remarks>
/// Reuse is safe in both orders a caller may take: a completion claims the continuation slot before it sets the flag
/// a caller polls (<see cref="Signal"/>). ManualResetValueTaskSourceCore sets the flag first and claims second, so a
/// caller that saw the flag in between could take the result and start the next call, whose <see cref="Reset"/> clears
/// the slot, and the late claim then completed that next call before it ran: a receive's await returned 0, a false end
/// of stream, while it still waited in the connection (ReceiveSignalOrderTests).
/// </remarks>
internal struct OperationCore<T>
{
    private static readonly Action<object?> s_done = static _ => { };

    /// <summary>The awaiter's continuation; <see cref="s_done"/> when the call completed before one came.</summary>
    private Action<object?>? _continuation;
    private object? _continuationState;
    private OperationExtras? _extras;
    private T _result;
    private short _version;
    private volatile bool _completed;

    public readonly short Version => _version;

    /// <summary>The current call's completion (a volatile read: its result or error is seen with it).</summary>
    public readonly bool IsCompleted => _completed;

    /// <summary>Starts the next call (after the last one's result was taken) and returns its version.</summary>
    public short Reset(IReusableOperation owner, CancellationToken cancellationToken)
    {
        var version = ++_version;
        _completed = false;
        _continuation = null;
        _continuationState = null;
        _result = default!;
        _extras?.Reset();
        if (cancellationToken.CanBeCanceled) Extras(owner).Token = cancellationToken;
        return version;
    }

    /// <summary>After the call's start: a token that can fire registers its cancel, unless the call completed already.</summary>
    public void RegisterCancel(CancellationToken cancellationToken)
    {
        if (cancellationToken.CanBeCanceled && !_completed)
            _extras!.Registration = cancellationToken.UnsafeRegister(static s => ((OperationExtras)s!).RequestCancel(), _extras);
    }

    public void SetResult(IReusableOperation owner, T result)
    {
        _result = result;
        Signal(owner);
    }

    public void SetException(IReusableOperation owner, Exception error)
    {
        Extras(owner).Error = error;
        Signal(owner);
    }

    public void SetCanceled(IReusableOperation owner)
    {
        var extras = Extras(owner);
        extras.Error = new OperationCanceledException(extras.Token);
        Signal(owner);
    }

    private void Signal(IReusableOperation owner)
    {
        var continuation = Volatile.Read(ref _continuation) ?? Interlocked.CompareExchange(ref _continuation, s_done, null);
        var state = _continuationState;
        OperationCoreTestHooks.BetweenClaimAndFlag?.Invoke(owner);
        _completed = true; // a volatile write, after the claim: the result or error above is seen with it
        if (continuation != null) Invoke(continuation, state);
    }

    private readonly void Invoke(Action<object?> continuation, object? state)
    {
        if (_extras is { Context: not null } or { Flow: not null }) _extras.Invoke(continuation, state);
        else ThreadPool.UnsafeQueueUserWorkItem(continuation, state, preferLocal: true);
    }

    public readonly ValueTaskSourceStatus GetStatus(short token)
    {
        Check(token);
        if (!_completed) return ValueTaskSourceStatus.Pending;
        return _extras?.Error switch
        {
            null => ValueTaskSourceStatus.Succeeded,
            OperationCanceledException => ValueTaskSourceStatus.Canceled,
            _ => ValueTaskSourceStatus.Faulted,
        };
    }

    public void OnCompleted(IReusableOperation owner, Action<object?> continuation, object? state, short token, ValueTaskSourceOnCompletedFlags flags)
    {
        Check(token);
        if ((flags & (ValueTaskSourceOnCompletedFlags.FlowExecutionContext | ValueTaskSourceOnCompletedFlags.UseSchedulingContext)) != 0)
            CaptureContext(owner, flags);
        var stored = _continuation;
        if (stored is null)
        {
            _continuationState = state;
            stored = Interlocked.CompareExchange(ref _continuation, continuation, null);
            if (stored is null) return;
        }
        if (!ReferenceEquals(stored, s_done)) throw new InvalidOperationException("This call is already awaited; a ValueTask from a socket can be awaited once.");
        Invoke(continuation, state); // completed before the continuation came
    }

    /// <summary>The call's result (waits for it if still pending, as a Task's does); the owner frees the call after it.</summary>
    public T GetResult(IReusableOperation owner, short token)
    {
        Check(token);
        // GetAwaiter().GetResult() (PowerShell's way) or Result on a call still pending waits for it.
        if (!_completed)
        {
            WaitForCompletion(owner, token);
            // Woken through the claimed slot, the signaller may not have set the flag yet: it is its next write, and it
            // must land before the next call's reset.
            var spin = new SpinWait();
            while (!_completed) spin.SpinOnce();
        }
        var error = _extras?.Error;
        var result = _result;
        if (_extras is { } extras)
        {
            extras.Registration.Dispose(); // waits for a cancel callback that is running: none can come after this
            extras.Registration = default;
            extras.Token = default;
        }
        if (error != null) ExceptionDispatchInfo.Throw(error);
        return result;
    }

    public readonly void Check(short token)
    {
        if (token != _version) throw new InvalidOperationException("This call was already awaited; a ValueTask from a socket can be awaited once.");
    }

    private void WaitForCompletion(IReusableOperation owner, short token)
    {
        using var done = new ManualResetEventSlim();
        OnCompleted(owner, static s => ((ManualResetEventSlim)s!).Set(), done, token, ValueTaskSourceOnCompletedFlags.None);
        done.Wait();
    }

    private void CaptureContext(IReusableOperation owner, ValueTaskSourceOnCompletedFlags flags)
    {
        var flow = (flags & ValueTaskSourceOnCompletedFlags.FlowExecutionContext) != 0 ? ExecutionContext.Capture() : null;
        object? context = null;
        if ((flags & ValueTaskSourceOnCompletedFlags.UseSchedulingContext) != 0)
        {
            if (SynchronizationContext.Current is { } sc && sc.GetType() != typeof(SynchronizationContext)) context = sc;
            else if (TaskScheduler.Current != TaskScheduler.Default) context = TaskScheduler.Current;
        }
        if (flow is null && context is null) return;
        var extras = Extras(owner);
        extras.Flow = flow;
        extras.Context = context;
    }

    private OperationExtras Extras(IReusableOperation owner) =>
        _extras ?? Interlocked.CompareExchange(ref _extras, new OperationExtras(owner), null) ?? _extras!;
}

/// <summary>
/// What a reusable call rarely needs, made at the first need and kept for the owner's next calls: the error it failed
/// with, the context its continuation runs in, its token, the registration and the cancel's work on the loop.
/// </summary>
/// <remarks>
/// A cancel runs on the loop after the call's own work, and a late cancel of an earlier call is told apart by the
/// version: a cancelled call takes nothing, one completed as the token fired returns its result.
/// </remarks>
internal sealed class OperationExtras(IReusableOperation owner) : ILoopWork
{
    public Exception? Error;
    public object? Context; // a SynchronizationContext or a TaskScheduler
    public ExecutionContext? Flow;
    public CancellationToken Token;
    public CancellationTokenRegistration Registration;
    private int _cancelVersion = -1; // the call a cancel was requested for

    public void Reset()
    {
        Error = null;
        Context = null;
        Flow = null;
    }

    public void RequestCancel()
    {
        // The registration is disposed before the next call starts, so this is the current call's version.
        Volatile.Write(ref _cancelVersion, owner.CurrentVersion);
        try { owner.Stack.Execute(this); }
        catch (StackException) { /* the stack stopped: its Dispose fails the call */ }
    }

    public void Run(TimeSpan now)
    {
        if (Volatile.Read(ref _cancelVersion) == owner.CurrentVersion && !owner.CurrentCompleted) owner.CancelOnLoop();
    }

    public void Abandon(StackException stopped) { }

    public void Invoke(Action<object?> continuation, object? state)
    {
        if (Flow is { } flow)
            ExecutionContext.Run(flow, static s =>
            {
                var (extras, c, st) = ((OperationExtras, Action<object?>, object?))s!;
                extras.Dispatch(c, st, flowing: true);
            }, (this, continuation, state));
        else Dispatch(continuation, state, flowing: false);
    }

    private void Dispatch(Action<object?> continuation, object? state, bool flowing)
    {
        switch (Context)
        {
            case SynchronizationContext sc:
                sc.Post(static s =>
                {
                    var (c, st) = ((Action<object?>, object?))s!;
                    c(st);
                }, (continuation, state));
                break;
            case TaskScheduler ts:
                Task.Factory.StartNew(continuation, state, CancellationToken.None, TaskCreationOptions.DenyChildAttach, ts);
                break;
            default:
                if (flowing) ThreadPool.QueueUserWorkItem(continuation, state, preferLocal: true);
                else ThreadPool.UnsafeQueueUserWorkItem(continuation, state, preferLocal: true);
                break;
        }
    }
}
