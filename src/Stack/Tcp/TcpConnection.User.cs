namespace NetStack.Tcp;

/// <summary>The user's operations on a connection, loop side (RFC 9293 3.10: SEND, RECEIVE, CLOSE, ABORT); the socket API posts them here.</summary>
internal sealed partial class TcpConnection
{
    /// <summary>The value <see cref="Receive(Memory{byte}, TimeSpan, IOperationWaiter{int})"/> returns when the receive waits.</summary>
    public const int Parked = -1;

    /// <summary>SEND: true when all of <paramref name="data"/> is queued; else the rest waits with <paramref name="waiter"/>.</summary>
    public bool Send(ReadOnlyMemory<byte> data, TimeSpan now, IOperationWaiter<bool> waiter)
    {
        var n = Queue(data, now);
        if (n == data.Length) return true;
        _pending.WaitSend(data[n..], waiter);
        Kick(now);
        return false;
    }

    /// <param name="waiter">The caller's own completion source when the call can be cancelled (see CancelSend), else null.</param>
    public Task<bool> Send(ReadOnlyMemory<byte> data, TimeSpan now, TaskWaiter<bool>? waiter = null)
    {
        var n = Queue(data, now);
        if (n == data.Length) return PendingOperations.Done;
        waiter ??= new TaskWaiter<bool>(); // loop-side: continuations run on the loop, for the loop's own callers
        _pending.WaitSend(data[n..], waiter);
        Kick(now);
        return waiter.Task;
    }

    /// <summary>Checks a send may go and queues what fits; sends at once when all of it did.</summary>
    private int Queue(ReadOnlyMemory<byte> data, TimeSpan now)
    {
        ThrowIfFailed();
        if (Snd.FinQueued) throw new StackException(StackError.Shutdown, "Sending was shut down on this socket (ShutdownSend or Close); no more data can be sent.");
        if (State is TcpState.Closed or TcpState.Listen) throw new StackException(StackError.NotConnected, "The socket is not connected; call ConnectAsync first.");
        if (_pending.HasSend) throw new InvalidOperationException("A SendAsync is already pending on this socket; await it before sending more.");
        var n = Snd.Buffer.Write(data.Span);
        if (n == data.Length) Kick(now);
        return n;
    }

    /// <summary>RECEIVE: the byte count (0: the peer has closed), or <see cref="Parked"/> when it waits with <paramref name="waiter"/>.</summary>
    /// <remarks>A receive that waits is filled in its waiter's own buffer, <paramref name="buffer"/>'s memory.</remarks>
    public int Receive(Memory<byte> buffer, TimeSpan now, IReceiveWaiter waiter)
    {
        if (TryReceiveNow(buffer, now, out var n)) return n;
        System.Diagnostics.Debug.Assert(waiter.ReceiveBuffer.Equals(buffer), "a receive waits with its own buffer");
        _pending.WaitReceive(waiter);
        return Parked;
    }

    /// <summary>RECEIVE on the loop, as a Task (a loop-side caller's).</summary>
    public Task<int> Receive(Memory<byte> buffer, TimeSpan now)
    {
        if (TryReceiveNow(buffer, now, out var n)) return Task.FromResult(n);
        var waiter = new TaskReceiveWaiter(buffer);
        _pending.WaitReceive(waiter);
        return waiter.Task;
    }

    /// <summary>Takes what the buffer holds, or tells the end of the stream; false when the receive has to wait.</summary>
    private bool TryReceiveNow(Memory<byte> buffer, TimeSpan now, out int n)
    {
        if (_pending.HasReceive) throw new InvalidOperationException("A ReceiveAsync is already pending on this socket; await it before receiving again.");
        n = 0;
        if (Rcv.BufferCount > 0)
        {
            n = Rcv.Buffer.Read(buffer.Span);
            BytesRead(now);
            return true;
        }
        if (Error != StackError.None) throw MakeError();
        if (Rcv.PeerFin || (State == TcpState.Closed && Key.LocalPort != 0)) return true;
        if (State is TcpState.Closed) throw new StackException(StackError.NotConnected, "The socket is not connected; call ConnectAsync first.");
        return buffer.Length == 0;
    }

    /// <summary>Cancels the pending receive if it is <paramref name="which"/> (any when null).</summary>
    public void CancelReceive(IOperationWaiter<int>? which = null) => _pending.CancelReceive(which);

    /// <summary>Cancels the pending send if it is <paramref name="which"/>; bytes already queued stay queued, as with a kernel socket.</summary>
    public void CancelSend(IOperationWaiter<bool>? which = null) => _pending.CancelSend(which);

    /// <summary>The user took data: give the array back when empty (or let auto-tuning grow it) and open the window if that is worth a segment.</summary>
    private void BytesRead(TimeSpan now)
    {
        Rcv.OnUserRead(now);
        if (!Synchronized || Rcv.PeerFin) return;
        if (Rcv.WindowUpdateDue())
        {
            SendAck(now);
            Layer.Schedule(this);
        }
    }

    public void ShutdownSend(TimeSpan now)
    {
        if (Snd.FinQueued) return;
        switch (State)
        {
            case TcpState.Closed:
            case TcpState.Listen:
                if (Error != StackError.None) return;
                throw new StackException(StackError.NotConnected, "The socket is not connected.");
            case TcpState.SynSent:
            case TcpState.SynReceived:
                Snd.FinQueued = true; // sent once established
                return;
            case TcpState.Established:
                Snd.FinQueued = true;
                SetState(TcpState.FinWait1, now);
                break;
            case TcpState.CloseWait:
                Snd.FinQueued = true;
                SetState(TcpState.LastAck, now);
                break;
            default:
                return;
        }
        if (_pending.HasSend) _pending.FailSend(new StackException(StackError.Shutdown, "Sending was shut down while this send waited for buffer space."));
        Kick(now);
    }

    /// <summary>Orderly close (RFC 9293 3.10.4): FIN after the queued data; the task ends when our FIN is acknowledged.</summary>
    public Task<bool> Close(TimeSpan now)
    {
        if (Close(now, null)) return PendingOperations.Done;
        var waiter = new TaskWaiter<bool>(); // loop-side
        _pending.WaitClose(waiter);
        return waiter.Task;
    }

    /// <summary>
    /// Orderly close (RFC 9293 3.10.4): true when nothing is left to wait for; else our FIN is on its way and
    /// <paramref name="waiter"/> (when given: a close in the background, as Dispose, has none) completes once it is acknowledged.
    /// </summary>
    public bool Close(TimeSpan now, IOperationWaiter<bool>? waiter)
    {
        UserClosed = true;
        CancelReceive();
        switch (State)
        {
            case TcpState.Closed:
                Rcv.ReleaseBuffer();
                User?.OnClosed();
                return true;
            case TcpState.SynSent:
                Fail(StackError.ConnectionAborted, "The connection attempt was closed by the user.", now);
                return true;
            case TcpState.TimeWait:
            case TcpState.FinWait2:
                if (State == TcpState.FinWait2) StateAt = now + Settings.FinWait2Timeout;
                Layer.Schedule(this);
                Rcv.ReleaseBuffer();
                return true;
        }
        if (Rcv.BufferCount > 0)
        {
            // RFC 2525 2.17 / RFC 1122 4.2.2.13: closing with unread data resets, so the peer knows it was lost.
            Abort(now);
            return true;
        }
        Rcv.ReleaseBuffer();
        ShutdownSend(now);
        if (State is TcpState.FinWait2 or TcpState.TimeWait or TcpState.Closed) return true;
        if (waiter != null) _pending.WaitClose(waiter);
        return false;
    }

    /// <summary>Abort (RFC 9293 3.10.5): RST to the peer, everything pending fails with ConnectionAborted.</summary>
    public void Abort(TimeSpan now)
    {
        UserClosed = true;
        SendAbortReset(now);
        if (State == TcpState.Closed)
        {
            Rcv.ReleaseBuffer();
            User?.OnClosed();
            return;
        }
        Fail(StackError.ConnectionAborted, "The connection was aborted by the user.", now);
    }

    private void ThrowIfFailed()
    {
        if (Error != StackError.None) throw MakeError();
    }

    /// <summary>The RST of an abort (RFC 9293 3.10.5), in the states where the peer holds the connection open.</summary>
    internal void SendAbortReset(TimeSpan now)
    {
        if (State is TcpState.SynReceived or TcpState.Established or TcpState.FinWait1 or TcpState.FinWait2 or TcpState.CloseWait)
            SendReset(Snd.Max, now);
    }
}
