using NetStack.Tcp;

namespace NetStack.Sockets;

/// <summary>A passive TCP endpoint: SYNs to its port become connections, which <see cref="AcceptAsync"/> hands out.</summary>
public sealed class TcpListener : StackSocket, IDisposable
{
    private readonly Queue<TcpSocket> _acceptQueue = new();
    private readonly Queue<TaskCompletionSource<TcpSocket>> _waiters = new();
    private bool _closed;
    private int _synQueue;
    private TimeSpan _since;

    internal TcpListener(NetworkStack stack, ushort port, int backlog) : base(stack, SocketProtocol.Tcp)
    {
        Port = port;
        Backlog = backlog;
    }

    public ushort Port { get; }
    /// <summary>Bound on both the half-open (SYN) queue and the queue of established connections not yet accepted.</summary>
    public int Backlog { get; }
    public IpEndPoint LocalEndPoint => new(Stack.Config.Address, Port);

    internal bool HasAcceptRoom => _acceptQueue.Count < Backlog;

    internal void Start(TimeSpan now)
    {
        try { Stack.Tcp.AddListener(this); }
        catch { ReleaseDescriptor(); throw; }
        _since = now;
        Stack.Context.Trace("Tcp", $"listening on port {Port}, backlog {Backlog}");
    }

    /// <summary>RFC 9293 3.10.7.2: the LISTEN state.</summary>
    internal void OnSegment(Ipv4Address remote, ref TcpSegment seg, TimeSpan now)
    {
        var layer = Stack.Tcp;
        if (seg.Has(TcpFlags.Rst)) return;
        if (seg.Has(TcpFlags.Ack))
        {
            layer.Counters.DroppedNoSocket++;
            layer.ResetFor(remote, ref seg, now);
            return;
        }
        if (!seg.Has(TcpFlags.Syn)) { layer.Counters.DroppedNotAcceptable++; return; }
        if (_synQueue >= Backlog) { layer.Counters.ListenSynQueueFull++; return; }          // the client retries its SYN
        if (_acceptQueue.Count >= Backlog) { layer.Counters.ListenAcceptQueueFull++; return; }
        var socket = new TcpSocket(Stack);
        if (!socket.Tcb.OpenPassive(this, remote, ref seg, now))
        {
            socket.OnClosed();
            return;
        }
        _synQueue++;
        Stack.Context.Trace("Tcp", $"{socket.Tcb.Describe()} SYN received on listener, SYN-ACK sent, ISN {socket.Tcb.Iss}");
    }

    internal void OnHalfOpenGone() => _synQueue--;

    internal void OnEstablished(TcpConnection connection)
    {
        var socket = (TcpSocket)connection.User!;
        _synQueue--;
        if (_closed)
        {
            // The listener went away during the handshake: nobody can accept this one.
            Stack.Post(now => socket.Tcb.Abort(now));
            return;
        }
        while (_waiters.TryDequeue(out var w))
            if (w.TrySetResult(socket)) return;
        _acceptQueue.Enqueue(socket);
    }

    /// <summary>Waits for the next established connection.</summary>
    public Task<TcpSocket> AcceptAsync(CancellationToken cancellationToken = default)
    {
        var waiter = new TaskCompletionSource<TcpSocket>(); // completed on the loop: see NetworkStack.InvokeAsync
        var task = Stack.InvokeAsync(now => Accept(waiter));
        // Cancelling marks the waiter on the loop, so a connection that arrives later goes to the next
        // AcceptAsync (or the queue) instead of to a caller who has gone.
        return cancellationToken.CanBeCanceled ? TcpSocket.CancelOnLoop(Stack, task, cancellationToken, _ => waiter.TrySetCanceled()) : task;
    }

    private Task<TcpSocket> Accept(TaskCompletionSource<TcpSocket> waiter)
    {
        if (_closed) throw new StackException(StackError.SocketClosed, $"The listener on port {Port} is closed.");
        if (waiter.Task.IsCompleted) return waiter.Task; // cancelled before the loop got to it
        if (_acceptQueue.TryDequeue(out var s)) return Task.FromResult(s);
        _waiters.Enqueue(waiter);
        return waiter.Task;
    }

    /// <summary>Stops listening: unaccepted connections are reset, pending accepts fail with SocketClosed.</summary>
    public Task StopAsync() => Stack.InvokeAsync(now => { CloseOnLoop(now); });

    public void Dispose()
    {
        try { Stack.Post(now => CloseOnLoop(now)); }
        catch (StackException) { }
    }

    internal void CloseOnLoop(TimeSpan now = default)
    {
        if (_closed) return;
        _closed = true;
        Stack.Tcp.RemoveListener(this);
        while (_acceptQueue.TryDequeue(out var s)) s.Tcb.Abort(now);
        while (_waiters.TryDequeue(out var w)) w.TrySetException(new StackException(StackError.SocketClosed, $"The listener on port {Port} was closed."));
        ReleaseDescriptor();
    }

    internal override ConnectionInfo Snapshot(TimeSpan now) => new()
    {
        Id = Id,
        Protocol = SocketProtocol.Tcp,
        LocalAddress = Stack.Config.Address,
        LocalPort = Port,
        RemoteAddress = Ipv4Address.Any,
        RemotePort = 0,
        State = nameof(TcpState.Listen),
        RecvQ = _acceptQueue.Count, // as ss shows for a listener: the accept queue and its bound
        SendQ = Backlog,
        TimeInState = now - _since,
    };
}
