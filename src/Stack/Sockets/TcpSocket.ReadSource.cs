using System.Threading.Tasks.Sources;
using NetStack.Tcp;

namespace NetStack.Sockets;

/// <summary>
/// The socket is its own receive's <see cref="IValueTaskSource{TResult}"/>, loop work and parked waiter (issue 18: "a
/// connection with a pending ReceiveAsync costs no more than the caller's buffer on top"): an <see cref="OperationCore{T}"/>
/// and the buffer in the socket, and no object per call or per socket, so a pending receive holds the caller's buffer
/// and nothing else.
/// </summary>
/// <remarks>
/// One receive at a time (<see cref="_readUse"/>: taken until its result is); a receive that finds it taken goes the
/// Task way (<see cref="ReceiveTaskAsync"/>), so the connection's rule and error for a second pending receive stay.
/// The socket is also Dispose's background close (<see cref="ILoopWork"/>): <see cref="_readUse"/> at 2 says its next
/// run is a receive. A cancel runs on the loop after the receive's own work (<see cref="OperationExtras"/>).
/// </remarks>
public sealed partial class TcpSocket : IValueTaskSource<int>, IReceiveWaiter, IBusyWaitable, IReusableOperation
{
    /// <summary>The receive's buffer, from the caller to the loop, and the one the connection fills while it waits.</summary>
    private Memory<byte> _readBuffer;
    private OperationCore<int> _read;
    /// <summary>0: free; 1: a receive's, until its result is taken; 2: its loop work is requested (the next run of this socket's work).</summary>
    private int _readUse;

    private bool TryTakeRead() => Interlocked.CompareExchange(ref _readUse, 1, 0) == 0;

    /// <summary>Starts a receive after <see cref="TryTakeRead"/>: runs it inline or posts it, and returns its ValueTask.</summary>
    private ValueTask<int> StartRead(Memory<byte> buffer, CancellationToken cancellationToken)
    {
        var version = _read.Reset(this, cancellationToken);
        _readBuffer = buffer;
        Volatile.Write(ref _readUse, 2);
        try { Stack.Execute(this); }
        catch (StackException e)
        {
            if (Interlocked.CompareExchange(ref _readUse, 1, 2) == 2) ((IOperationWaiter<int>)this).Fail(e);
        }
        Stack.BusyWait(this); // the busy-poll mode: the caller spins on it before it parks
        _read.RegisterCancel(cancellationToken);
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
        _read.SetResult(this, result);
    }

    void IOperationWaiter<int>.Fail(Exception error)
    {
        _readBuffer = default;
        _read.SetException(this, error);
    }

    void IOperationWaiter<int>.Cancel()
    {
        _readBuffer = default;
        _read.SetCanceled(this);
    }

    bool IBusyWaitable.IsDone => _read.IsCompleted;

    Memory<byte> IReceiveWaiter.ReceiveBuffer => _readBuffer;

    NetworkStack IReusableOperation.Stack => Stack;
    short IReusableOperation.CurrentVersion => _read.Version;
    bool IReusableOperation.CurrentCompleted => _read.IsCompleted;
    void IReusableOperation.CancelOnLoop() => Tcb.CancelReceive(this);

    ValueTaskSourceStatus IValueTaskSource<int>.GetStatus(short token) => _read.GetStatus(token);

    void IValueTaskSource<int>.OnCompleted(Action<object?> continuation, object? state, short token, ValueTaskSourceOnCompletedFlags flags) =>
        _read.OnCompleted(this, continuation, state, token, flags);

    int IValueTaskSource<int>.GetResult(short token)
    {
        _read.Check(token); // a stale token frees nothing
        try { return _read.GetResult(this, token); }
        finally { Volatile.Write(ref _readUse, 0); } // the next receive may start
    }
}
