using NetStack.Tcp;

namespace NetStack.Sockets;

/// <summary>
/// A TCP connection endpoint. Methods may be called from any thread; they run on the stack's loop and return
/// tasks. One SendAsync and one receive may be pending at a time (as with a stream). Receiving is in
/// TcpSocket.Receive.cs.
/// </summary>
/// <remarks>
/// Threading: the connection (<see cref="Tcb"/>) is the loop's. Every setter here publishes the requested value
/// at once (so a read right after a set returns it) and posts its application to the loop, in the order the
/// setters were called (one lock orders the posts of setters, Bind and ConnectAsync); a setter that can no
/// longer apply is refused. Every getter reads a value published either by such a setter or by the loop.
/// </remarks>
public sealed partial class TcpSocket : StackSocket, IDisposable, ILoopWork
{
    private volatile byte _state; // a TcpState (narrow: memory per idle connection)
    private int _closedPublished;

    private volatile bool _noDelay;
    private volatile bool _keepalive;
    private volatile int _sendBufferSize;
    private volatile int _receiveBufferSize;
    private volatile ushort _boundPort;
    private volatile bool _connectStarted;
    private PublishedEndPoint _localPublished;
    private PublishedEndPoint _remotePublished;

    internal TcpSocket(NetworkStack stack) : base(stack, SocketProtocol.Tcp)
    {
        Tcb = new TcpConnection(stack.Tcp, this);
        _sendBufferSize = Tcb.Snd.BufferLimit;
        _receiveBufferSize = Tcb.Rcv.BufferLimit;
    }

    internal TcpConnection Tcb { get; }

    /// <summary>
    /// Orders the posts of option setters, Bind and ConnectAsync with their checks: the connection object, which only
    /// this socket can reach and the loop never locks (no extra object per socket).
    /// </summary>
    private object Gate => Tcb;

    /// <summary>The connection's state as of the loop's last change (RFC 9293 names).</summary>
    public TcpState State => (TcpState)_state;

    /// <summary>Our address and port once connected (published by the loop); before, 0.0.0.0 and the port given to Bind (or 0).</summary>
    public IpEndPoint LocalEndPoint => _localPublished.Read() ?? new IpEndPoint(Ipv4Address.Any, (ushort)_boundPort);
    /// <summary>The peer once a connection is under way (published by the loop); before, 0.0.0.0:0.</summary>
    public IpEndPoint RemoteEndPoint => _remotePublished.Read() ?? new IpEndPoint(Ipv4Address.Any, 0);

    /// <summary>The loop publishes each state change, with the endpoints the connection has by then. Loop only.</summary>
    internal void PublishState(TcpState s)
    {
        var key = Tcb.Key;
        if (key.LocalPort != 0 && _localPublished.Read() is null)
        {
            _localPublished.Publish(Stack.Config.Address, key.LocalPort);
            _remotePublished.Publish(Tcb.Remote, key.RemotePort);
        }
        _state = (byte)s;
        if (s == TcpState.Closed) PublishClosed(); // only reached from another state: the connection ended
    }

    internal void OnClosed()
    {
        if (Interlocked.Exchange(ref _closedPublished, 1) == 0) ReleaseDescriptor();
    }

    /// <summary>No ConnectAsync yet, and not a connection a listener made.</summary>
    private bool NeverConnected => !_connectStarted && _localPublished.Read() is null && State == TcpState.Closed;

    // ---------------- options ----------------

    /// <summary>Disables Nagle's algorithm (RFC 896): small segments go at once even with data in flight.</summary>
    public bool NoDelay
    {
        get => _noDelay;
        set => SetOption(nameof(NoDelay), () => _noDelay = value, _ => Tcb.NoDelay = value);
    }

    /// <summary>Sends keepalive probes after Tcp.KeepaliveIdle of silence (RFC 1122 4.2.3.6); off by default.</summary>
    public bool Keepalive
    {
        get => _keepalive;
        set => SetOption(nameof(Keepalive), () => _keepalive = value, now =>
        {
            Tcb.Keepalive = value;
            Tcb.KeepAt = value && Tcb.State is TcpState.Established or TcpState.CloseWait ? now + Stack.Config.Tcp.KeepaliveIdle : TimeSpan.MaxValue;
            Stack.Tcp.Schedule(Tcb);
        });
    }

    /// <summary>
    /// Send buffer size in bytes as set (or the default it starts from); settable before ConnectAsync only. Unset, it grows
    /// with the flight up to Tcp.SendBufferMax (the connection's SndBuf shows its size now).
    /// </summary>
    public int SendBufferSize
    {
        get => _sendBufferSize;
        set => SetBufferSize(value, send: true);
    }

    /// <summary>
    /// Receive buffer size in bytes (bounds the window); settable before ConnectAsync only, since the window scale is fixed
    /// by the SYN. Unset, it starts at this size and grows with what the application reads per round trip, up to
    /// Tcp.ReceiveBufferMax (the connection's RcvBuf shows its size now).
    /// </summary>
    public int ReceiveBufferSize
    {
        get => _receiveBufferSize;
        set => SetBufferSize(value, send: false);
    }

    /// <summary>Publishes an option and posts it to the loop; refused once the socket is closed.</summary>
    private void SetOption(string name, Action publish, Action<TimeSpan> apply)
    {
        lock (Gate)
        {
            if (IsClosed) throw new StackException(StackError.SocketClosed, $"Socket {Id} is closed; {name} no longer applies. Set options on a new socket.");
            Stack.Post(apply); // StackStopped when the stack has stopped: then nothing is published either
            publish();
        }
    }

    private void SetBufferSize(int value, bool send)
    {
        if (value is < 2048 or > 64 * 1024 * 1024)
            throw new ArgumentOutOfRangeException(send ? nameof(SendBufferSize) : nameof(ReceiveBufferSize), value, "Buffer sizes must be between 2048 bytes and 64 MiB.");
        lock (Gate)
        {
            if (!NeverConnected || IsClosed)
                throw new StackException(StackError.InvalidState, "Buffer sizes can only be changed before the socket connects.");
            // A size the user chose is kept: no auto-tuning for this socket (as SO_SNDBUF/SO_RCVBUF on Linux).
            Stack.Post(_ =>
            {
                if (send) { Tcb.Snd.BufferLimit = value; Tcb.SendBufferFixed = true; }
                else { Tcb.Rcv.BufferLimit = value; Tcb.Rcv.BufferFixed = true; }
            });
            if (send) _sendBufferSize = value;
            else _receiveBufferSize = value;
        }
    }

    // ---------------- operations ----------------

    /// <summary>Uses <paramref name="localPort"/> for the next ConnectAsync instead of an ephemeral port (checked at connect).</summary>
    public void Bind(ushort localPort)
    {
        if (localPort == 0) throw new ArgumentException("Bind needs a port from 1 to 65535.", nameof(localPort));
        lock (Gate)
        {
            if (!NeverConnected || IsClosed) throw new StackException(StackError.InvalidState, "Bind must come before ConnectAsync.");
            Stack.Post(_ => Tcb.BoundPort = localPort);
            _boundPort = localPort;
        }
    }

    /// <summary>Active open. Fails with ConnectionRefused (RST), TimedOut (no answer), HostUnreachable or NetworkUnreachable.</summary>
    public Task ConnectAsync(Ipv4Address remote, ushort port, CancellationToken cancellationToken = default) =>
        Connect(remote, port, cancellationToken);

    /// <summary>ConnectAsync, its task giving this socket (ConnectTcpAsync's): one call object, which the connection parks as its waiter.</summary>
    internal Task<TcpSocket> Connect(Ipv4Address remote, ushort port, CancellationToken cancellationToken)
    {
        Task<TcpSocket> task;
        lock (Gate)
        {
            _connectStarted = true; // buffer sizes and Bind no longer apply
            task = new ConnectCall(this, remote, port).Start(default);
        }
        return cancellationToken.CanBeCanceled ? WithCancel(task, cancellationToken, now => Tcb.Abort(now)) : task;
    }

    /// <summary>A connect: completed with the socket when the handshake ends (the connection's waiter), failed as the connection fails.</summary>
    private sealed class ConnectCall(TcpSocket socket, Ipv4Address remote, ushort port) : SocketCall<TcpSocket>(socket), IOperationWaiter<bool>, IAwaitsAnswer
    {
        protected override void RunOnLoop(TimeSpan now) => Socket.Tcb.Connect(remote, port, now, this);

        protected override void CancelOnLoop() { } // a cancelled connect aborts the connection instead (WithCancel)

        void IOperationWaiter<bool>.Complete(bool result) => Complete(Socket);
    }

    /// <summary>Queues <paramref name="data"/> in the send buffer; completes when all of it is queued (waits for space).</summary>
    /// <remarks>
    /// <paramref name="data"/> must stay unchanged until then. What did not fit waits until a third of the buffer is
    /// free (as Linux wakes a writer), so the next sends fit at once. A send that completes at once (all of it fit the buffer)
    /// allocates nothing; one that waits allocates its Task. <see cref="WriteAsync"/> never allocates per call.
    /// </remarks>
    public Task SendAsync(ReadOnlyMemory<byte> data, CancellationToken cancellationToken = default)
    {
        if (data.Length == 0) return Task.CompletedTask;
        if (!Stack.HasLoopThread) return new SendCall(this, data).Start(cancellationToken); // see NetworkStack.HasLoopThread
        var op = _write ?? Reusable(ref _write, new WriteOperation(this));
        if (!op.TryAcquire()) return new SendCall(this, data).Start(cancellationToken); // a send is pending: the connection refuses this one
        var sent = op.Start(data, cancellationToken);
        if (!sent.IsCompletedSuccessfully) return sent.AsTask();
        sent.GetAwaiter().GetResult(); // frees the operation for the next call
        return Task.CompletedTask;
    }

    /// <summary>
    /// <see cref="SendAsync"/> as a <see cref="ValueTask"/> over an operation the socket reuses: no allocation per call.
    /// Await each once (as any ValueTask); one send at a time, as with SendAsync.
    /// </summary>
    public ValueTask WriteAsync(ReadOnlyMemory<byte> data, CancellationToken cancellationToken = default)
    {
        if (data.Length == 0) return ValueTask.CompletedTask;
        if (!Stack.HasLoopThread) return new ValueTask(new SendCall(this, data).Start(cancellationToken)); // see NetworkStack.HasLoopThread
        var op = _write ?? Reusable(ref _write, new WriteOperation(this));
        return op.TryAcquire() ? op.Start(data, cancellationToken) : new ValueTask(new SendCall(this, data).Start(cancellationToken));
    }

    private WriteOperation? _write;

    /// <summary>The socket's reusable operation of one kind, made at its first use (an idle connection holds none).</summary>
    private static T Reusable<T>(ref T? field, T made) where T : class => Interlocked.CompareExchange(ref field, made, null) ?? made;

    private sealed class SendCall(TcpSocket socket, ReadOnlyMemory<byte> data) : SocketCall<bool>(socket)
    {
        protected override void RunOnLoop(TimeSpan now)
        {
            if (Socket.Tcb.Send(data, now, (IOperationWaiter<bool>)this)) Complete(true);
        }

        protected override void CancelOnLoop() => Socket.Tcb.CancelSend(this);
    }

    private sealed class WriteOperation(TcpSocket socket) : ReusableOperation<bool>
    {
        public override NetworkStack Stack => socket.Stack;

        private ReadOnlyMemory<byte> _data;

        public ValueTask Start(ReadOnlyMemory<byte> data, CancellationToken cancellationToken)
        {
            _data = data;
            return new ValueTask(this, Begin(cancellationToken));
        }

        protected override void RunOnLoop(TimeSpan now)
        {
            if (socket.Tcb.Send(_data, now, this)) Complete(true);
        }

        protected override void CancelOnLoop() => socket.Tcb.CancelSend(this);

        protected override void Clear() => _data = default;
    }

    /// <summary>Half-close: a FIN follows the queued data; receiving continues.</summary>
    public void ShutdownSend()
    {
        if (NeverConnected)
            throw new StackException(StackError.NotConnected, "The socket is not connected; there is nothing to shut down.");
        // Posted work must not throw on the loop: a race with the connection ending is simply nothing to do.
        Stack.Post(now =>
        {
            try { Tcb.ShutdownSend(now); }
            catch (StackException) { }
        });
    }

    /// <summary>
    /// Orderly close: FIN after the queued data; completes when the peer has acknowledged it. Unread data (in the
    /// connection or given back to the socket) makes it a reset. <see cref="StackSocket.IsClosed"/> is true at once.
    /// </summary>
    public Task CloseAsync()
    {
        PublishClosedByUser();
        return new CloseCall(this).Start(default);
    }

    private sealed class CloseCall(TcpSocket socket) : SocketCall<bool>(socket)
    {
        protected override void RunOnLoop(TimeSpan now)
        {
            if (Socket.CloseOnLoop(now, this)) Complete(true);
        }

        protected override void CancelOnLoop() { }
    }

    /// <summary>Abortive close: RST at once; pending operations fail with ConnectionAborted.</summary>
    public void Abort()
    {
        PublishClosedByUser();
        try
        {
            Stack.Post(now =>
            {
                DropUnread();
                Tcb.Abort(now);
            });
        }
        catch (StackException) { /* the stack stopped: nothing left to abort */ }
    }

    /// <summary>A System.IO.Stream over this socket (for SslStream, HttpClient's ConnectCallback, StreamReader…).</summary>
    public TcpStream GetStream(bool ownsSocket = true) => new(this, ownsSocket);

    /// <summary>Closes the connection in the background (orderly, as closing a kernel socket does).</summary>
    public void Dispose()
    {
        if (State == TcpState.Closed && Volatile.Read(ref _closedPublished) == 1) return;
        PublishClosedByUser();
        try { Stack.Execute(this); } // the socket is its own background close (ILoopWork): nothing allocated, no task
        catch (StackException) { }
    }

    /// <summary>A receive's work (see TcpSocket.ReadSource.cs), else Dispose's close on the loop: nobody waits for that.</summary>
    void ILoopWork.Run(TimeSpan now)
    {
        if (TakeReadRun())
        {
            RunRead(now);
            return;
        }
        try { CloseOnLoop(now, null); }
        catch (Exception) { } // raced with the connection ending: nothing to close (a close nobody awaits reports nothing)
    }

    void ILoopWork.Abandon(StackException stopped)
    {
        if (TakeReadRun()) ((IOperationWaiter<int>)this).Fail(stopped);
        // else Dispose's close: the stack stopped, its Dispose resets the connection
    }

    internal override ConnectionInfo Snapshot(TimeSpan now)
    {
        var row = Tcb.Snapshot(now);
        return UnreadBytes > 0 ? row with { RecvQ = row.RecvQ + UnreadBytes } : row;
    }

    private Task<T> WithCancel<T>(Task<T> task, CancellationToken ct, Action<TimeSpan> cancel) => CancelOnLoop(Stack, task, ct, cancel);

    /// <summary>Awaits a loop operation; cancellation runs <paramref name="cancel"/> on the loop, which ends it.</summary>
    /// <remarks>
    /// The loop runs either the operation's completion or the cancel first, never both halves: an operation the
    /// loop completed as the token fired returns its result (a receive returns its data); one the cancel reached
    /// first throws OperationCanceledException and has taken nothing.
    /// </remarks>
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
