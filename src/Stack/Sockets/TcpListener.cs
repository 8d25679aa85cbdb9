using NetStack.Tcp;

namespace NetStack.Sockets;

/// <summary>
/// A passive TCP endpoint: SYNs to its port become connections, which <see cref="AcceptAsync"/> hands out. The
/// LISTEN state and its queues are TCP's (<see cref="ListenEndpoint"/>); this is the API over them.
/// </summary>
public sealed class TcpListener : StackSocket, IDisposable, IListenerOwner
{
    private readonly ListenEndpoint _endpoint;
    private readonly Queue<AcceptCall> _waiters = new(); // accepts waiting for a connection, in order (loop only)
    private TimeSpan _since;

    internal TcpListener(NetworkStack stack, ushort port, int backlog) : base(stack, SocketProtocol.Tcp)
    {
        Port = port;
        Backlog = backlog;
        _endpoint = new ListenEndpoint(stack.Tcp, port, backlog, this);
    }

    // Port and Backlog are fixed at creation (before the loop sees the listener), so any thread may read them.
    public ushort Port { get; }
    /// <summary>Bound on both the half-open (SYN) queue and the queue of established connections not yet accepted.</summary>
    public int Backlog { get; }
    public IpEndPoint LocalEndPoint => new(Stack.Config.Address, Port);

    internal void Start(TimeSpan now)
    {
        try { _endpoint.Start(); }
        catch { ReleaseDescriptor(); throw; }
        _since = now;
    }

    /// <summary>Connections this listener takes are traced from their SYN (<see cref="TcpSocket.TraceInternals"/>).</summary>
    public bool TraceInternals { get => _trace; set => _trace = value; }
    private volatile bool _trace;

    TcpConnection IListenerOwner.CreateConnection()
    {
        var socket = new TcpSocket(Stack);
        if (TraceInternals) socket.StartTracing();
        return socket.Tcb;
    }

    bool IListenerOwner.TryHandOff(TcpConnection connection)
    {
        var socket = (TcpSocket)connection.User!;
        while (_waiters.TryDequeue(out var w))
        {
            // Only the loop completes an accept (a cancel runs here too), so one not yet complete takes the connection.
            if (w.Task.IsCompleted) continue; // cancelled while it waited
            w.Complete(socket);
            return true;
        }
        return false;
    }

    void IListenerOwner.Defer(Action<TimeSpan> work) => Stack.Post(work);

    void IListenerOwner.OnClosed()
    {
        while (_waiters.TryDequeue(out var w))
            if (!w.Task.IsCompleted) w.Fail(new StackException(StackError.SocketClosed, $"The listener on port {Port} was closed."));
        ReleaseDescriptor();
    }

    /// <summary>Waits for the next established connection.</summary>
    /// <remarks>
    /// One object per call: the accept's task source is the call the loop runs and the waiter the listener queues (no
    /// closure, delegate or second task). Cancelling runs on the loop, so a connection that arrives later goes to the
    /// next AcceptAsync (or the queue) instead of to a caller who has gone.
    /// </remarks>
    public Task<TcpSocket> AcceptAsync(CancellationToken cancellationToken = default) => new AcceptCall(this).Start(cancellationToken);

    /// <summary>An accept on the loop: a queued connection at once, else the call waits in <see cref="_waiters"/>.</summary>
    private void AcceptOnLoop(AcceptCall call)
    {
        if (_endpoint.IsClosed) throw new StackException(StackError.SocketClosed, $"The listener on port {Port} is closed.");
        if (_endpoint.TryAccept(out var c)) call.Complete((TcpSocket)c.User!);
        else _waiters.Enqueue(call);
    }

    /// <summary>A cancelled accept leaves the queue (the others keep their order), so cancelled calls do not pile up there.</summary>
    private void CancelOnLoop(AcceptCall call)
    {
        if (call.Task.IsCompleted) return; // a connection or the close came first
        call.Cancel();
        for (int i = _waiters.Count; i > 0; i--)
        {
            var w = _waiters.Dequeue();
            if (!w.Task.IsCompleted) _waiters.Enqueue(w);
        }
    }

    /// <summary>An accept: the listener's waiter until a connection is established, completed with its socket on the loop.</summary>
    private sealed class AcceptCall(TcpListener listener) : LoopCall<TcpSocket>
    {
        protected override NetworkStack Stack => listener.Stack;

        protected override void RunOnLoop(TimeSpan now) => listener.AcceptOnLoop(this);

        protected override void CancelOnLoop() => listener.CancelOnLoop(this);
    }

    /// <summary>
    /// Stops listening: unaccepted connections are reset, pending accepts fail with SocketClosed.
    /// <see cref="StackSocket.IsClosed"/> is true at once.
    /// </summary>
    public Task StopAsync()
    {
        PublishClosedByUser();
        return Stack.CallAsync(now => { CloseOnLoop(now); });
    }

    public void Dispose()
    {
        PublishClosedByUser();
        try { Stack.Post(now => CloseOnLoop(now)); }
        catch (StackException) { }
    }

    internal void CloseOnLoop(TimeSpan now = default) => _endpoint.Close(now);

    internal override ConnectionInfo Snapshot(TimeSpan now) => new()
    {
        Id = Id,
        Protocol = SocketProtocol.Tcp,
        LocalAddress = Stack.Config.Address,
        LocalPort = Port,
        RemoteAddress = Ipv4Address.Any,
        RemotePort = 0,
        State = nameof(TcpState.Listen),
        RecvQ = _endpoint.AcceptQueueCount, // as ss shows for a listener: the accept queue and its bound
        SendQ = Backlog,
        TimeInState = now - _since,
    };
}
