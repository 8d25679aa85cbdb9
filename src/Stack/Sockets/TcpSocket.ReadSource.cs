using System.Runtime.ExceptionServices;
using System.Threading.Tasks.Sources;
using NetStack.Tcp;

namespace NetStack.Sockets;

/// <summary>
/// The socket is its own receive's <see cref="IValueTaskSource{TResult}"/>, loop work and parked waiter (issue 18: "a
/// connection with a pending ReceiveAsync costs no more than the caller's buffer on top"): a few fields in the socket
/// and no object per call or per socket, so a pending receive holds the caller's buffer and nothing else. The fields
/// are those of <see cref="ManualResetValueTaskSourceCore{TResult}"/> less what is rare — an error, a captured context,
/// a token and its registration live in <see cref="ReadExtras"/>, made the first time one is needed and kept.
/// </summary>
/// <remarks>
/// One receive at a time (<see cref="_readUse"/>: taken until its result is); a receive that finds it taken goes the
/// Task way (<see cref="ReceiveTaskAsync"/>), so the connection's rule and error for a second pending receive stay.
/// Continuations run off the loop (the thread pool, or the captured context), as the Task paths'. The socket is also
/// Dispose's background close (<see cref="ILoopWork"/>): <see cref="_readUse"/> at 2 says its next run is a receive.
/// A cancel runs on the loop after the receive's own work, and a late cancel of an earlier receive is told apart by
/// the version: a cancelled receive takes nothing, one completed as the token fired returns its data.
/// </remarks>
public sealed partial class TcpSocket : IValueTaskSource<int>, IReceiveWaiter, IBusyWaitable
{
    private static readonly Action<object?> s_readDone = static _ => { };

    /// <summary>Tests only: called between a receive's claim of its continuation slot and its completion flag (<see cref="SignalRead"/>).</summary>
    internal static Action<TcpSocket>? s_betweenClaimAndFlagForTests;

    /// <summary>The receive's buffer, from the caller to the loop, and the one the connection fills while it waits.</summary>
    private Memory<byte> _readBuffer;
    /// <summary>The awaiter's continuation; <see cref="s_readDone"/> when the receive completed before one came.</summary>
    private Action<object?>? _readContinuation;
    private object? _readContinuationState;
    private ReadExtras? _readExtras;
    private int _readResult;
    /// <summary>0: free; 1: a receive's, until its result is taken; 2: its loop work is requested (the next run of this socket's work).</summary>
    private int _readUse;
    private short _readVersion;
    private volatile bool _readCompleted;

    private bool TryTakeRead() => Interlocked.CompareExchange(ref _readUse, 1, 0) == 0;

    /// <summary>Starts a receive after <see cref="TryTakeRead"/>: runs it inline or posts it, and returns its ValueTask.</summary>
    private ValueTask<int> StartRead(Memory<byte> buffer, CancellationToken cancellationToken)
    {
        var version = ++_readVersion;
        _readCompleted = false;
        _readContinuation = null;
        _readContinuationState = null;
        _readResult = 0;
        _readExtras?.Reset();
        _readBuffer = buffer;
        var extras = cancellationToken.CanBeCanceled ? Extras() : null;
        if (extras != null) extras.Token = cancellationToken;
        Volatile.Write(ref _readUse, 2);
        try { Stack.Execute(this); }
        catch (StackException e)
        {
            if (Interlocked.CompareExchange(ref _readUse, 1, 2) == 2) ((IOperationWaiter<int>)this).Fail(e);
        }
        Stack.BusyWait(this); // the busy-poll mode: the caller spins on it before it parks
        if (extras != null && !_readCompleted)
            extras.Registration = cancellationToken.UnsafeRegister(static s => ((ReadExtras)s!).RequestCancel(), extras);
        return new ValueTask<int>(this, version);
    }

    /// <summary>The receive's work on the loop: the data there, or this socket parked as the connection's waiter.</summary>
    private void RunRead(TimeSpan now)
    {
        try
        {
            var n = ReceiveOnLoop(_readBuffer, now, this);
            if (n != TcpConnection.Parked) ((IOperationWaiter<int>)this).Complete(n);
        }
        catch (Exception e) { ((IOperationWaiter<int>)this).Fail(e); }
    }

    /// <summary>A receive requested (<see cref="_readUse"/> 2) takes this run; else it is Dispose's close.</summary>
    private bool TakeReadRun() => Interlocked.CompareExchange(ref _readUse, 1, 2) == 2;

    void IOperationWaiter<int>.Complete(int result)
    {
        _readBuffer = default;
        _readResult = result;
        SignalRead();
    }

    void IOperationWaiter<int>.Fail(Exception error)
    {
        _readBuffer = default;
        Extras().Error = error;
        SignalRead();
    }

    void IOperationWaiter<int>.Cancel()
    {
        _readBuffer = default;
        var extras = Extras();
        extras.Error = new OperationCanceledException(extras.Token);
        SignalRead();
    }

    bool IBusyWaitable.IsDone => _readCompleted;

    Memory<byte> IReceiveWaiter.ReceiveBuffer => _readBuffer;

    /// <remarks>
    /// The continuation slot is claimed before the completion is published: a caller that sees <see cref="_readCompleted"/>
    /// may take the result and start the next receive at once, whose start clears the slot, so a claim made after it
    /// (completed first, claimed second, as <see cref="ManualResetValueTaskSourceCore{TResult}"/> orders them) could
    /// mark the next receive done before it ran: its await then returned 0, a false end of stream, with the receive still
    /// parked in the connection. A caller that finds <see cref="s_readDone"/> in the slot before the flag is set has the
    /// result already (written before the claim's fence), and waits for the flag in <see cref="IValueTaskSource{TResult}.GetResult"/>
    /// before it lets the next receive start, so the flag's write cannot land on that receive either.
    /// </remarks>
    private void SignalRead()
    {
        var continuation = Volatile.Read(ref _readContinuation) ?? Interlocked.CompareExchange(ref _readContinuation, s_readDone, null);
        var state = _readContinuationState;
        s_betweenClaimAndFlagForTests?.Invoke(this);
        _readCompleted = true; // a volatile write, after the claim: the result or error above is seen with it
        if (continuation != null) InvokeRead(continuation, state);
    }

    private void InvokeRead(Action<object?> continuation, object? state)
    {
        if (_readExtras is { Context: not null } or { Flow: not null }) _readExtras.Invoke(continuation, state);
        else ThreadPool.UnsafeQueueUserWorkItem(continuation, state, preferLocal: true);
    }

    ValueTaskSourceStatus IValueTaskSource<int>.GetStatus(short token)
    {
        CheckRead(token);
        if (!_readCompleted) return ValueTaskSourceStatus.Pending;
        return _readExtras?.Error switch
        {
            null => ValueTaskSourceStatus.Succeeded,
            OperationCanceledException => ValueTaskSourceStatus.Canceled,
            _ => ValueTaskSourceStatus.Faulted,
        };
    }

    void IValueTaskSource<int>.OnCompleted(Action<object?> continuation, object? state, short token, ValueTaskSourceOnCompletedFlags flags)
    {
        CheckRead(token);
        if ((flags & (ValueTaskSourceOnCompletedFlags.FlowExecutionContext | ValueTaskSourceOnCompletedFlags.UseSchedulingContext)) != 0)
            CaptureContext(flags);
        var stored = _readContinuation;
        if (stored is null)
        {
            _readContinuationState = state;
            stored = Interlocked.CompareExchange(ref _readContinuation, continuation, null);
            if (stored is null) return;
        }
        if (!ReferenceEquals(stored, s_readDone)) throw new InvalidOperationException("This receive is already awaited; a ValueTask from ReceiveAsync can be awaited once.");
        InvokeRead(continuation, state); // completed before the continuation came
    }

    int IValueTaskSource<int>.GetResult(short token)
    {
        CheckRead(token);
        // GetAwaiter().GetResult() (PowerShell's way) or Result on a receive still pending waits for it, as a Task's does.
        if (!_readCompleted)
        {
            WaitForRead(token);
            // Woken through the claimed slot, the signaller may not have set the flag yet: it is its next write.
            if (!_readCompleted) SpinWaitForFlag();
        }
        var error = _readExtras?.Error;
        var n = _readResult;
        if (_readExtras is { } extras)
        {
            extras.Registration.Dispose(); // waits for a cancel callback that is running: none can come after this
            extras.Registration = default;
            extras.Token = default;
        }
        Volatile.Write(ref _readUse, 0); // the next receive may start
        if (error != null) ExceptionDispatchInfo.Throw(error);
        return n;
    }

    private void CheckRead(short token)
    {
        if (token != _readVersion) throw new InvalidOperationException("This receive was already awaited; a ValueTask from ReceiveAsync can be awaited once.");
    }

    private void SpinWaitForFlag()
    {
        var spin = new SpinWait();
        while (!_readCompleted) spin.SpinOnce();
    }

    private void WaitForRead(short token)
    {
        using var done = new ManualResetEventSlim();
        ((IValueTaskSource<int>)this).OnCompleted(static s => ((ManualResetEventSlim)s!).Set(), done, token, ValueTaskSourceOnCompletedFlags.None);
        done.Wait();
    }

    private void CaptureContext(ValueTaskSourceOnCompletedFlags flags)
    {
        var flow = (flags & ValueTaskSourceOnCompletedFlags.FlowExecutionContext) != 0 ? ExecutionContext.Capture() : null;
        object? context = null;
        if ((flags & ValueTaskSourceOnCompletedFlags.UseSchedulingContext) != 0)
        {
            if (SynchronizationContext.Current is { } sc && sc.GetType() != typeof(SynchronizationContext)) context = sc;
            else if (TaskScheduler.Current != TaskScheduler.Default) context = TaskScheduler.Current;
        }
        if (flow is null && context is null) return;
        var extras = Extras();
        extras.Flow = flow;
        extras.Context = context;
    }

    private ReadExtras Extras() => _readExtras ?? Interlocked.CompareExchange(ref _readExtras, new ReadExtras(this), null) ?? _readExtras!;

    /// <summary>
    /// What a receive rarely needs, made at the first need and kept for the socket's next receives: the error it failed
    /// with, the context its continuation runs in, its token, the registration and the cancel's work on the loop.
    /// </summary>
    private sealed class ReadExtras(TcpSocket socket) : ILoopWork
    {
        public Exception? Error;
        public object? Context; // a SynchronizationContext or a TaskScheduler
        public ExecutionContext? Flow;
        public CancellationToken Token;
        public CancellationTokenRegistration Registration;
        private int _cancelVersion = -1; // the receive a cancel was requested for

        public void Reset()
        {
            Error = null;
            Context = null;
            Flow = null;
        }

        public void RequestCancel()
        {
            // The registration is disposed before the next receive starts, so this is the current receive's version.
            Volatile.Write(ref _cancelVersion, socket._readVersion);
            try { socket.Stack.Execute(this); }
            catch (StackException) { /* the stack stopped: its Dispose fails the receive */ }
        }

        public void Run(TimeSpan now)
        {
            if (Volatile.Read(ref _cancelVersion) == socket._readVersion && !socket._readCompleted) socket.Tcb.CancelReceive(socket);
        }

        public void Abandon(StackException stopped) { }

        public void Invoke(Action<object?> continuation, object? state)
        {
            if (Flow is { } flow)
                ExecutionContext.Run(flow, static s =>
                {
                    var (extras, c, st) = ((ReadExtras, Action<object?>, object?))s!;
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
}
