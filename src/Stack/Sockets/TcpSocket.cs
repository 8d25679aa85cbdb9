using NetStack.Tcp;

namespace NetStack.Sockets;

/// <summary>
/// A TCP connection endpoint. Methods may be called from any thread; they run on the stack's loop and return
/// tasks. One SendAsync and one ReceiveAsync may be pending at a time (as with a stream).
/// </summary>
public sealed partial class TcpSocket : StackSocket, IDisposable
{
    private volatile int _state;
    private int _closedPublished;

    internal TcpSocket(NetworkStack stack) : base(stack, SocketProtocol.Tcp)
    {
        Tcb = new TcpConnection(stack.Tcp, this);
    }

    internal TcpConnection Tcb { get; }

    /// <summary>The connection's state as of the loop's last change (RFC 9293 names).</summary>
    public TcpState State => (TcpState)_state;

    public IpEndPoint LocalEndPoint => new(Tcb.Key.LocalPort == 0 ? Ipv4Address.Any : Stack.Config.Address, Tcb.Key.LocalPort);
    public IpEndPoint RemoteEndPoint => new(Tcb.Remote, Tcb.Key.RemotePort);

    internal void PublishState(TcpState s) => _state = (int)s;

    internal void OnClosed()
    {
        if (Interlocked.Exchange(ref _closedPublished, 1) == 0) ReleaseDescriptor();
    }

    // ---------------- options ----------------

    /// <summary>Disables Nagle's algorithm (RFC 896): small segments go at once even with data in flight.</summary>
    public bool NoDelay
    {
        get => Tcb.NoDelay;
        set => Stack.Post(now => { Tcb.NoDelay = value; });
    }

    /// <summary>Sends keepalive probes after Tcp.KeepaliveIdle of silence (RFC 1122 4.2.3.6); off by default.</summary>
    public bool Keepalive
    {
        get => Tcb.Keepalive;
        set => Stack.Post(now =>
        {
            Tcb.Keepalive = value;
            Tcb.KeepAt = value && Tcb.State is TcpState.Established or TcpState.CloseWait ? now + Stack.Config.Tcp.KeepaliveIdle : TimeSpan.MaxValue;
            Stack.Tcp.Schedule(Tcb);
        });
    }

    /// <summary>Send buffer size in bytes; settable before ConnectAsync only.</summary>
    public int SendBufferSize
    {
        get => Tcb.SndBuf.Limit;
        set => SetBufferSize(value, send: true);
    }

    /// <summary>Receive buffer size in bytes (bounds the window); settable before ConnectAsync only, since the window scale is fixed by the SYN.</summary>
    public int ReceiveBufferSize
    {
        get => Tcb.RcvBuf.Limit;
        set => SetBufferSize(value, send: false);
    }

    private void SetBufferSize(int value, bool send)
    {
        if (value is < 2048 or > 64 * 1024 * 1024)
            throw new ArgumentOutOfRangeException(send ? nameof(SendBufferSize) : nameof(ReceiveBufferSize), value, "Buffer sizes must be between 2048 bytes and 64 MiB.");
        if (State != TcpState.Closed || Tcb.Key.LocalPort != 0)
            throw new StackException(StackError.InvalidState, "Buffer sizes can only be changed before the socket connects.");
        if (send) Tcb.SndBuf.Limit = value;
        else Tcb.RcvBuf.Limit = value;
    }

    // ---------------- operations ----------------

    /// <summary>Uses <paramref name="localPort"/> for the next ConnectAsync instead of an ephemeral port (checked at connect).</summary>
    public void Bind(ushort localPort)
    {
        if (localPort == 0) throw new ArgumentException("Bind needs a port from 1 to 65535.", nameof(localPort));
        if (State != TcpState.Closed || Tcb.Key.LocalPort != 0) throw new StackException(StackError.InvalidState, "Bind must come before ConnectAsync.");
        Tcb.BoundPort = localPort;
    }

    /// <summary>Active open. Fails with ConnectionRefused (RST), TimedOut (no answer), HostUnreachable or NetworkUnreachable.</summary>
    public Task ConnectAsync(Ipv4Address remote, ushort port, CancellationToken cancellationToken = default)
    {
        var task = Stack.InvokeAsync(now => Tcb.Connect(remote, port, now));
        return cancellationToken.CanBeCanceled ? WithCancel(task, cancellationToken, now => Tcb.Abort(now)) : task;
    }

    /// <summary>Queues <paramref name="data"/> in the send buffer; completes when all of it is queued (waits for space).</summary>
    public Task SendAsync(ReadOnlyMemory<byte> data, CancellationToken cancellationToken = default)
    {
        if (data.Length == 0) return Task.CompletedTask;
        if (!cancellationToken.CanBeCanceled) return Stack.InvokeAsync(now => Tcb.Send(data, now));
        var waiter = new TaskCompletionSource<bool>(); // completed on the loop: see NetworkStack.InvokeAsync
        return WithCancel(Stack.InvokeAsync(now => Tcb.Send(data, now, waiter)), cancellationToken, _ => Tcb.CancelSend(waiter));
    }

    /// <summary>Receives up to buffer.Length bytes; waits for at least one. Returns 0 once the peer has closed and everything was read.</summary>
    public Task<int> ReceiveAsync(Memory<byte> buffer, CancellationToken cancellationToken = default)
    {
        if (!cancellationToken.CanBeCanceled) return Stack.InvokeAsync(now => Tcb.Receive(buffer, now));
        var waiter = new TaskCompletionSource<int>(); // completed on the loop: see NetworkStack.InvokeAsync
        return WithCancel(Stack.InvokeAsync(now => Tcb.Receive(buffer, now, waiter)), cancellationToken, _ => Tcb.CancelReceive(waiter));
    }

    /// <summary>Half-close: a FIN follows the queued data; receiving continues.</summary>
    public void ShutdownSend()
    {
        if (State == TcpState.Closed && Tcb.Key.LocalPort == 0)
            throw new StackException(StackError.NotConnected, "The socket is not connected; there is nothing to shut down.");
        // Posted work must not throw on the loop: a race with the connection ending is simply nothing to do.
        Stack.Post(now =>
        {
            try { Tcb.ShutdownSend(now); }
            catch (StackException) { }
        });
    }

    /// <summary>Orderly close: FIN after the queued data; completes when the peer has acknowledged it. Unread data makes it a reset.</summary>
    public Task CloseAsync() => Stack.InvokeAsync(now => Tcb.Close(now));

    /// <summary>Abortive close: RST at once; pending operations fail with ConnectionAborted.</summary>
    public void Abort()
    {
        try { Stack.Post(now => Tcb.Abort(now)); }
        catch (StackException) { /* the stack stopped: nothing left to abort */ }
    }

    /// <summary>A System.IO.Stream over this socket (for SslStream, HttpClient's ConnectCallback, StreamReader…).</summary>
    public TcpStream GetStream(bool ownsSocket = true) => new(this, ownsSocket);

    /// <summary>Closes the connection in the background (orderly, as closing a kernel socket does).</summary>
    public void Dispose()
    {
        if (State == TcpState.Closed && Volatile.Read(ref _closedPublished) == 1) return;
        try { _ = CloseAsync(); }
        catch (StackException) { }
    }

    internal override ConnectionInfo Snapshot(TimeSpan now) => Tcb.Snapshot(now);

    private Task<T> WithCancel<T>(Task<T> task, CancellationToken ct, Action<TimeSpan> cancel) => CancelOnLoop(Stack, task, ct, cancel);

    /// <summary>Awaits a loop operation; cancellation runs <paramref name="cancel"/> on the loop, which ends it.</summary>
    internal static async Task<T> CancelOnLoop<T>(NetworkStack stack, Task<T> task, CancellationToken ct, Action<TimeSpan> cancel)
    {
        using (ct.Register(() =>
        {
            try { stack.Post(cancel); }
            catch (StackException) { }
        }))
        {
            try { return await task.ConfigureAwait(false); }
            catch (TaskCanceledException) when (ct.IsCancellationRequested) { throw new OperationCanceledException(ct); }
            catch (StackException) when (ct.IsCancellationRequested) { throw new OperationCanceledException(ct); }
        }
    }
}
