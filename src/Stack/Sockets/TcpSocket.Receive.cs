using System.Buffers;
using NetStack.Tcp;

namespace NetStack.Sockets;

/// <summary>
/// Receiving: recv()-like <see cref="ReceiveAsync"/>, and the bounded receives (through a delimiter, exactly a count,
/// to the end) that keep in the socket whatever they do not return. One byte stream: bytes a bounded receive read
/// past its boundary, or gathered before it was cancelled, timed out or failed, go back to the socket's push-back
/// buffer, which every receive path (ReceiveAsync, <see cref="TcpStream"/>, the cmdlets) reads first and Recv-Q counts.
/// </summary>
public sealed partial class TcpSocket
{
    /// <summary>Bytes given back to the stream, read before the connection's buffer; created at the first push-back. Loop only.</summary>
    private PushbackBuffer? _unread;
    /// <summary>Bytes in <see cref="_unread"/>, published by the loop (a bounded receive checks it before a hop to the loop).</summary>
    private long _unreadBytes;

    private long UnreadBytes => Volatile.Read(ref _unreadBytes);

    /// <summary>
    /// Receives up to buffer.Length bytes; waits for at least one. Returns 0 once the peer has closed and everything
    /// was read. Bytes given back to the socket come first, then what the connection holds, as far as the buffer goes.
    /// Cancelling (<paramref name="cancellationToken"/>) takes nothing: if the loop completed the receive as the token
    /// fired, the await returns the data; otherwise the data stays for the next receive.
    /// </summary>
    /// <remarks>
    /// A <see cref="ValueTask{TResult}"/> whose source is the socket itself (as <see cref="System.Net.Sockets.Socket"/>'s
    /// receive into a <see cref="Memory{T}"/> returns one): no allocation per call, and a pending receive holds nothing
    /// but the caller's buffer (issue 18). Await each once, or call <c>AsTask()</c> once for a Task; <c>GetAwaiter().GetResult()</c>
    /// (PowerShell's way) waits for it. One receive at a time: a second while one is pending fails.
    /// </remarks>
    public ValueTask<int> ReceiveAsync(Memory<byte> buffer, CancellationToken cancellationToken = default)
    {
        if (!Stack.HasLoopThread) return new ValueTask<int>(ReceiveTaskAsync(buffer, cancellationToken)); // see NetworkStack.HasLoopThread
        // Taken: the previous receive's result was not taken yet (or one is pending: the connection refuses this one).
        return TryTakeRead() ? StartRead(buffer, cancellationToken) : new ValueTask<int>(ReceiveTaskAsync(buffer, cancellationToken));
    }

    /// <summary><see cref="ReceiveAsync"/> under <see cref="System.IO.Stream"/>'s name: the same call.</summary>
    public ValueTask<int> ReadAsync(Memory<byte> buffer, CancellationToken cancellationToken = default) =>
        ReceiveAsync(buffer, cancellationToken);

    /// <summary>
    /// <see cref="ReceiveAsync"/> as a Task of its own (a <see cref="TcpStream"/>'s array reads, a simulation's calls, a
    /// receive while the reusable operation is in use): the Task and its completion source per call.
    /// </summary>
    internal Task<int> ReceiveTaskAsync(Memory<byte> buffer, CancellationToken cancellationToken = default)
    {
        if (cancellationToken.CanBeCanceled) return new ReceiveCall(this, buffer).Start(cancellationToken);
        // A receive no token can cancel waits as its completion source alone (the Task<int> and 24 B); the socket and
        // buffer go to the loop in a struct, run inline or boxed for the post, and the connection parks the buffer itself.
        var waiter = new ReceiveWaiter(buffer);
        try { Stack.Execute(new ReceiveWork(this, waiter)); }
        catch (StackException e) { waiter.Fail(e); }
        Stack.BusyWait(waiter); // the busy-poll mode: the caller spins on it before it parks
        return waiter.Task;
    }

    /// <summary>A receive on the loop: what was given back first, then the connection's data; <see cref="TcpConnection.Parked"/> when it waits.</summary>
    private int ReceiveOnLoop(Memory<byte> buffer, TimeSpan now, IReceiveWaiter waiter)
    {
        if (_unread is not { Count: > 0 } unread) return Tcb.Receive(buffer, now, waiter);
        var n = unread.Read(buffer.Span);
        PublishUnread();
        // Like recv(): also what the connection holds, as far as the buffer goes (it is there: no wait).
        if (n < buffer.Length && Tcb.RcvBuf.Count > 0) n += Tcb.Receive(buffer[n..], now, waiter);
        return n;
    }

    private sealed class ReceiveCall(TcpSocket socket, Memory<byte> buffer) : SocketCall<int>(socket), IReceiveWaiter
    {
        public Memory<byte> ReceiveBuffer => buffer;

        protected override void RunOnLoop(TimeSpan now)
        {
            var n = Socket.ReceiveOnLoop(buffer, now, this);
            if (n != TcpConnection.Parked) Complete(n);
        }

        protected override void CancelOnLoop() => Socket.Tcb.CancelReceive(this);
    }

    /// <summary>An uncancellable <see cref="ReceiveTaskAsync"/> while it waits: its completion source, nothing else.</summary>
    private sealed class ReceiveWaiter(Memory<byte> buffer) : TaskReceiveWaiter(buffer, TaskCreationOptions.RunContinuationsAsynchronously), IBusyWaitable
    {
        bool IBusyWaitable.IsDone => Task.IsCompleted;
    }

    /// <summary>The loop's work of an uncancellable <see cref="ReceiveTaskAsync"/>: the data there, or the waiter parked.</summary>
    private readonly struct ReceiveWork(TcpSocket socket, ReceiveWaiter waiter) : ILoopWork
    {
        public void Run(TimeSpan now)
        {
            try
            {
                var n = socket.ReceiveOnLoop(waiter.ReceiveBuffer, now, waiter);
                if (n != TcpConnection.Parked) waiter.Complete(n);
            }
            catch (Exception e) { waiter.Fail(e); }
        }

        public void Abandon(StackException stopped) => waiter.Fail(stopped);
    }

    /// <summary>
    /// Gives bytes back to the stream: the next receive (of any kind) returns them first, before anything the socket
    /// still holds. For a caller that read more than it could use, or whose use of them was stopped. Counted in
    /// Recv-Q; they may exceed the receive buffer's size (the window is not shrunk for them). The bytes are copied.
    /// Any thread; takes effect on the loop in order with receives posted after it.
    /// </summary>
    public void Unread(ReadOnlyMemory<byte> data)
    {
        if (data.IsEmpty) return;
        var copy = data.ToArray();
        Stack.Post(_ => PushFront(new[] { new ArraySegment<byte>(copy) }));
    }

    /// <summary>Bytes through the first <paramref name="delimiter"/> (included), waiting for them.</summary>
    /// <param name="maxLength">Returns this many bytes instead when the delimiter has not come within them.</param>
    /// <param name="progress">Told the count gathered so far after each read (on the thread that completes it).</param>
    /// <returns>
    /// The bytes through the delimiter; fewer, without it, only when the peer closed first (empty when nothing was left).
    /// </returns>
    /// <remarks>
    /// Bytes read past the delimiter stay in the socket. Cancelled, timed out or failed (a reset), the receive returns
    /// nothing and leaves every byte it had gathered in the socket, in order, for the next receive.
    /// </remarks>
    public Task<byte[]> ReceiveUntilAsync(ReadOnlyMemory<byte> delimiter, int maxLength = int.MaxValue,
        CancellationToken cancellationToken = default, IProgress<long>? progress = null)
    {
        if (delimiter.IsEmpty) throw new ArgumentException("The delimiter must hold at least one byte.", nameof(delimiter));
        if (maxLength < 1) throw new ArgumentOutOfRangeException(nameof(maxLength), maxLength, "Give a length of at least 1.");
        return ReceiveBoundedAsync(Math.Min(maxLength, Array.MaxLength), delimiter.ToArray(), cancellationToken, progress);
    }

    /// <summary>
    /// Exactly <paramref name="count"/> bytes, waiting for them; fewer only when the peer closed first (empty when nothing
    /// was left). Cancelled, timed out or failed, it returns nothing and leaves every byte it had in the socket.
    /// </summary>
    public Task<byte[]> ReceiveExactlyAsync(int count, CancellationToken cancellationToken = default, IProgress<long>? progress = null)
    {
        if (count < 1 || count > Array.MaxLength) throw new ArgumentOutOfRangeException(nameof(count), count, $"Give a count from 1 to {Array.MaxLength}.");
        return ReceiveBoundedAsync(count, null, cancellationToken, progress);
    }

    /// <summary>
    /// Everything until the peer closes (at most Array.MaxLength bytes, the rest staying in the socket). Cancelled,
    /// timed out or failed, it returns nothing and leaves every byte it had in the socket.
    /// </summary>
    public Task<byte[]> ReceiveToEndAsync(CancellationToken cancellationToken = default, IProgress<long>? progress = null) =>
        ReceiveBoundedAsync(Array.MaxLength, null, cancellationToken, progress);

    private async Task<byte[]> ReceiveBoundedAsync(int maxLength, byte[]? delimiter, CancellationToken ct, IProgress<long>? progress)
    {
        // Leftovers of an earlier receive that already hold the answer are taken on the loop, without a copy of the rest.
        if (UnreadBytes > 0 && await Stack.CallAsync(_ => TakeFromUnread(maxLength, delimiter)).ConfigureAwait(false) is { } early)
        {
            progress?.Report(early.Length);
            return early;
        }
        var received = new ReceiveAccumulator();
        try
        {
            while (true)
            {
                if (delimiter != null && received.IndexOf(delimiter) is var at and >= 0)
                    return Take(received, Math.Min(at + delimiter.Length, maxLength));
                if (received.Length >= maxLength) return Take(received, maxLength);
                var before = received.Length;
                var n = await ReceiveIntoAsync(received, maxLength - received.Length, ct).ConfigureAwait(false);
                if (n == 0) return received.ToArray(); // the peer closed: what came
                if (received.Length == before) received.Commit(n); // it had to wait: the data landed in the room reserved
                progress?.Report(received.Length);
            }
        }
        catch
        {
            GiveBack(received, 0);
            throw;
        }
    }

    /// <summary>
    /// One hop to the loop for a bounded receive: everything buffered (given back, then the connection's), up to
    /// <paramref name="max"/>, copied into the accumulator and committed there on the loop (the receive awaits this hop, so
    /// nothing else touches the accumulator meanwhile); or, with nothing buffered, a wait for data into one reserved room,
    /// which the caller commits. Returns the bytes taken (0: the peer closed). Cancellable as <see cref="ReceiveAsync"/>.
    /// </summary>
    private Task<int> ReceiveIntoAsync(ReceiveAccumulator received, int max, CancellationToken ct) =>
        new ReceiveIntoCall(this, received, max).Start(ct);

    private sealed class ReceiveIntoCall(TcpSocket socket, ReceiveAccumulator received, int max) : SocketCall<int>(socket), IReceiveWaiter
    {
        /// <summary>The room reserved in the accumulator while it waits.</summary>
        public Memory<byte> ReceiveBuffer { get; set; }

        protected override void RunOnLoop(TimeSpan now)
        {
            var n = Socket.ReceiveIntoOnLoop(received, max, now, this);
            if (n != TcpConnection.Parked) Complete(n);
        }

        protected override void CancelOnLoop() => Socket.Tcb.CancelReceive(this);
    }

    private int ReceiveIntoOnLoop(ReceiveAccumulator received, int max, TimeSpan now, ReceiveIntoCall waiter)
    {
        var total = 0;
        while (total < max && _unread is { Count: > 0 } unread)
        {
            var n = unread.Read(received.Reserve(max - total).Span);
            received.Commit(n);
            total += n;
        }
        PublishUnread();
        var buffered = Math.Min(Tcb.RcvBuf.Count, max - total);
        if (buffered > 0)
        {
            // One read from the connection per turn, so the window opens once, as one recv() would: reading it chunk by
            // chunk sent a window update per chunk and made a 100 MiB -Count 1.75 times slower. Straight into the
            // accumulator when the room there holds it, else through a pooled array (one copy more, no garbage).
            // (Data is buffered, so these receives never wait.)
            var room = received.Reserve(buffered);
            if (room.Length >= buffered) received.Commit(Tcb.Receive(room[..buffered], now, waiter));
            else
            {
                var scratch = ArrayPool<byte>.Shared.Rent(buffered);
                try { received.Write(scratch.AsSpan(0, Tcb.Receive(scratch.AsMemory(0, buffered), now, waiter))); }
                finally { ArrayPool<byte>.Shared.Return(scratch); }
            }
            total += buffered;
        }
        if (total > 0) return total;
        var wait = waiter.ReceiveBuffer = received.Reserve(max);
        return Tcb.Receive(wait, now, waiter);
    }

    /// <summary>The first <paramref name="count"/> bytes; the rest goes back to the socket.</summary>
    private byte[] Take(ReceiveAccumulator received, int count)
    {
        var result = received.ToArray(0, count);
        GiveBack(received, count);
        return result;
    }

    /// <summary>
    /// Puts the accumulator's bytes from <paramref name="start"/> back in front of the stream. Posted before the
    /// receive's task completes, so a receive the caller starts after it sees them first.
    /// </summary>
    private void GiveBack(ReceiveAccumulator received, int start)
    {
        if (received.Length <= start) return;
        var slices = received.Slices(start);
        try { Stack.Post(_ => PushFront(slices)); }
        catch (StackException) { /* the stack stopped: nothing can be received any more */ }
    }

    // ---------------- loop side ----------------

    private void PushFront(IReadOnlyList<ArraySegment<byte>> slices)
    {
        if (IsClosedOnLoop) return;
        (_unread ??= new PushbackBuffer()).PushFront(slices);
        PublishUnread();
    }

    /// <summary>The user closed or aborted the socket: nobody will read these bytes.</summary>
    private bool IsClosedOnLoop => Tcb.UserClosed;

    /// <summary>What a bounded receive wants, when the push-back buffer alone holds it; else null (and nothing taken).</summary>
    private byte[]? TakeFromUnread(int maxLength, byte[]? delimiter)
    {
        if (_unread is not { Count: > 0 } unread) return null;
        long take = delimiter is null ? -1 : unread.EndOf(delimiter, maxLength);
        if (take < 0) take = unread.Count >= maxLength ? maxLength : -1;
        if (take < 0) return null;
        var result = new byte[take];
        unread.Read(result);
        PublishUnread();
        return result;
    }

    private void PublishUnread() => Volatile.Write(ref _unreadBytes, _unread?.Count ?? 0);

    private void DropUnread()
    {
        _unread?.Clear();
        PublishUnread();
    }

    /// <summary>Close on the loop: bytes given back and unread count as unread data (a reset, as for the connection's own).</summary>
    /// <summary>The close on the loop: true when done at once, else <paramref name="waiter"/> (if any) waits for our FIN's ACK.</summary>
    private bool CloseOnLoop(TimeSpan now, IOperationWaiter<bool>? waiter)
    {
        var unread = _unread is { Count: > 0 };
        DropUnread();
        if (unread && Tcb.State is not (TcpState.Closed or TcpState.SynSent or TcpState.TimeWait or TcpState.FinWait2))
        {
            // RFC 2525 2.17 / RFC 1122 4.2.2.13: closing with unread data resets, so the peer knows it was lost.
            Tcb.Abort(now);
            return true;
        }
        return Tcb.Close(now, waiter);
    }
}
