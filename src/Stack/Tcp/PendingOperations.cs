namespace NetStack.Tcp;

/// <summary>
/// The user's operations waiting on one connection: a connect, one send (the part of its data not yet in the
/// send buffer), one receive (its buffer) and a close. The loop completes each in the turn that finishes it, so a
/// simulation completes them deterministically; each waits as the caller's <see cref="IOperationWaiter{T}"/> (no
/// allocation of its own: the socket API's call object is the waiter), or, for the loop's own callers, as a
/// <see cref="TaskWaiter{T}"/>. <see cref="FailAll"/> is the one way
/// they end with an error (a failed connection, an abort, the stack stopping). A struct held in place by the connection
/// (no object of its own per connection: issue 18's memory per idle connection), used only through that field or by
/// ref. Loop only.
/// </summary>
internal struct PendingOperations
{
    private static readonly Task<bool> s_true = Task.FromResult(true);
    private IOperationWaiter<bool>? _connect, _close, _send;
    private IReceiveWaiter? _receive; // it carries its buffer
    private ReadOnlyMemory<byte> _sendRest;

    /// <summary>An already completed operation.</summary>
    public static Task<bool> Done => s_true;

    public bool HasSend => _send != null;
    public bool HasReceive => _receive != null;

    /// <summary>Parks the connect's waiter until the handshake ends (<see cref="CompleteConnect"/>, or <see cref="FailAll"/>).</summary>
    public void WaitConnect(IOperationWaiter<bool> waiter) => _connect = waiter;

    public void CompleteConnect()
    {
        var t = _connect;
        _connect = null;
        t?.Complete(true);
    }

    /// <summary>Parks the rest of a send that did not fit the buffer until <see cref="PumpSend"/> has queued all of it.</summary>
    public void WaitSend(ReadOnlyMemory<byte> rest, IOperationWaiter<bool> waiter)
    {
        _sendRest = rest;
        _send = waiter;
    }

    /// <summary>
    /// Buffer space was freed: once a third of the buffer is free (Linux's sk_stream_write_space: the writer is woken at
    /// free >= queued / 2), takes more of the waiting send, which completes once all of it is queued. Not per ACK: a
    /// send completed as soon as its rest fits leaves the caller a full buffer, so its next call parks again at once,
    /// a hand-off to the caller's continuation per call; with a third free it goes on inline for several.
    /// </summary>
    public void PumpSend(ByteRing buffer)
    {
        if (_send is null || buffer.Free < Math.Max(1, buffer.Limit / 3)) return; // at least a byte free, however small the buffer
        var n = buffer.Write(_sendRest.Span);
        _sendRest = _sendRest[n..];
        if (_sendRest.Length > 0) return;
        var t = _send;
        _send = null;
        _sendRest = default;
        t.Complete(true);
    }

    /// <summary>Cancels the pending send if it is <paramref name="which"/> (any when null); what was queued stays queued.</summary>
    public void CancelSend(IOperationWaiter<bool>? which)
    {
        var t = _send;
        if (t is null || (which != null && t != which)) return;
        _send = null;
        _sendRest = default;
        t.Cancel();
    }

    /// <summary>Ends a waiting send with <paramref name="error"/> (sending was shut down while it waited).</summary>
    public void FailSend(StackException error)
    {
        var t = _send;
        _send = null;
        _sendRest = default;
        t?.Fail(error);
    }

    public void WaitReceive(IReceiveWaiter waiter) => _receive = waiter;

    /// <summary>Fills the waiting receive's buffer from <paramref name="data"/> and completes it with the byte count.</summary>
    public void CompleteReceive(ByteRing data) => CompleteReceive(data.Read(_receive!.ReceiveBuffer.Span));

    /// <summary>Completes the waiting receive with <paramref name="n"/> (0: end of stream).</summary>
    public void CompleteReceive(int n)
    {
        var t = _receive!;
        _receive = null;
        t.Complete(n);
    }

    /// <summary>Cancels the pending receive if it is <paramref name="which"/> (any when null).</summary>
    public void CancelReceive(IOperationWaiter<int>? which)
    {
        var t = _receive;
        if (t is null || (which != null && t != which)) return;
        _receive = null;
        t.Cancel();
    }

    /// <summary>Parks a close's waiter until our FIN is acknowledged; a second close while one waits completes with the first.</summary>
    public void WaitClose(IOperationWaiter<bool> waiter)
    {
        if (_close is null) _close = waiter;
        else _close = new BothWaiters(_close, waiter);
    }

    public void CompleteClose()
    {
        var t = _close;
        _close = null;
        t?.Complete(true);
    }

    /// <summary>
    /// The connection ended with <paramref name="error"/>: a waiting connect, send and receive fail with it, a
    /// waiting close completes (the connection is gone either way).
    /// </summary>
    public void FailAll(StackException error)
    {
        var connect = _connect;
        _connect = null;
        connect?.Fail(error);
        var receive = _receive;
        _receive = null;
        receive?.Fail(error);
        var send = _send;
        _send = null;
        _sendRest = default;
        send?.Fail(error);
        CompleteClose();
    }

    /// <summary>Two closes waiting on one FIN (rare: the second close of a socket whose first still waits).</summary>
    private sealed class BothWaiters(IOperationWaiter<bool> first, IOperationWaiter<bool> second) : IOperationWaiter<bool>
    {
        public void Complete(bool result) { first.Complete(result); second.Complete(result); }
        public void Fail(Exception error) { first.Fail(error); second.Fail(error); }
        public void Cancel() { first.Cancel(); second.Cancel(); }
    }
}
