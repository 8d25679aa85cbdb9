using NetStack.Tcp;

namespace NetStack.Sockets;

/// <summary>
/// A passive TCP endpoint: SYNs to its port become connections, which <see cref="AcceptAsync"/> hands out. The
/// LISTEN state and its queues are TCP's (<see cref="ListenEndpoint"/>); this is the API over them.
/// </summary>
public sealed class TcpListener : StackSocket, IDisposable, IListenerOwner
{
    private readonly ListenEndpoint _endpoint;
    private readonly Queue<TaskCompletionSource<TcpSocket>> _waiters = new();
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
            if (w.TrySetResult(socket)) return true;
        return false;
    }

    void IListenerOwner.Defer(Action<TimeSpan> work) => Stack.Post(work);

    void IListenerOwner.OnClosed()
    {
        while (_waiters.TryDequeue(out var w)) w.TrySetException(new StackException(StackError.SocketClosed, $"The listener on port {Port} was closed."));
        ReleaseDescriptor();
    }

    /// <summary>Waits for the next established connection.</summary>
    public Task<TcpSocket> AcceptAsync(CancellationToken cancellationToken = default)
    {
        var waiter = new TaskCompletionSource<TcpSocket>(); // completed on the loop: see NetworkStack.InvokeAsync
        var task = Stack.CallAsync(now => Accept(waiter));
        // Cancelling marks the waiter on the loop, so a connection that arrives later goes to the next
        // AcceptAsync (or the queue) instead of to a caller who has gone.
        return cancellationToken.CanBeCanceled ? TcpSocket.CancelOnLoop(Stack, task, cancellationToken, _ => waiter.TrySetCanceled()) : task;
    }

    private Task<TcpSocket> Accept(TaskCompletionSource<TcpSocket> waiter)
    {
        if (_endpoint.IsClosed) throw new StackException(StackError.SocketClosed, $"The listener on port {Port} is closed.");
        if (waiter.Task.IsCompleted) return waiter.Task; // cancelled before the loop got to it
        if (_endpoint.TryAccept(out var c)) return Task.FromResult((TcpSocket)c.User!);
        _waiters.Enqueue(waiter);
        return waiter.Task;
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
