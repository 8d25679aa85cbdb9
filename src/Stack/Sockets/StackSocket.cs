namespace NetStack.Sockets;

/// <summary>
/// Base of every socket: the stack's control record, named by a descriptor <see cref="Id"/> unique within the
/// stack. Methods on derived classes are the thread-safe public API; their state lives on the loop.
/// </summary>
public abstract class StackSocket
{
    protected StackSocket(NetworkStack stack, SocketProtocol protocol)
    {
        Stack = stack;
        Protocol = protocol;
        Id = stack.Sockets.Register(this);
    }

    public NetworkStack Stack { get; }
    public int Id { get; }
    public SocketProtocol Protocol { get; }

    private volatile bool _closed;
    private volatile bool _closedByUser;

    /// <summary>
    /// True once the socket is closed: by its user (Close, Abort, Dispose, StopAsync: true as soon as that call
    /// returns, though the protocol may still finish in the background, as a kernel socket's FIN and TIME-WAIT do)
    /// or by the stack (published by the loop when the connection ends, by the peer's reset, a timeout, the
    /// orderly close completing, or the stack stopping). A closed socket takes no more options. Any thread.
    /// </summary>
    public bool IsClosed => _closed;

    /// <summary>True once the user closed the socket; false while only the stack ended it (a reset, a timeout). Any thread.</summary>
    public bool IsClosedByUser => _closedByUser;

    /// <summary>The loop ended the socket (see <see cref="IsClosed"/>); never reopened.</summary>
    protected void PublishClosed() => _closed = true;

    /// <summary>The user's closing call, on the caller's thread, before it posts the close to the loop.</summary>
    protected void PublishClosedByUser()
    {
        _closedByUser = true;
        _closed = true;
    }

    /// <summary>Snapshot row for the netstat view. Loop only.</summary>
    internal abstract ConnectionInfo Snapshot(TimeSpan now);

    /// <summary>
    /// This socket's netstat row (for TCP with its internals: Retransmits, Srtt...), taken on the loop. Works after
    /// the socket has closed too (the last state it had), when Get-StackConnection no longer lists it. Any thread.
    /// </summary>
    public Task<ConnectionInfo> GetInfoAsync() => Stack.CallAsync(now => Snapshot(now));

    /// <summary>Releases the descriptor (the socket can no longer be looked up by Id) and publishes it closed.</summary>
    protected void ReleaseDescriptor()
    {
        PublishClosed();
        Stack.Sockets.Unregister(this);
    }
}

/// <summary>The stack's descriptor table. Thread-safe: sockets register from any thread, lookups come from any thread.</summary>
internal sealed class SocketTable
{
    private readonly Dictionary<int, StackSocket> _byId = new();
    private readonly object _gate = new();
    private int _nextId = 3; // 0-2 look like stdio descriptors; start after them, as a kernel would

    public int Register(StackSocket s)
    {
        lock (_gate)
        {
            var id = _nextId++;
            _byId[id] = s;
            return id;
        }
    }

    public void Unregister(StackSocket s)
    {
        lock (_gate) _byId.Remove(s.Id);
    }

    public StackSocket? Find(int id)
    {
        lock (_gate) return _byId.TryGetValue(id, out var s) ? s : null;
    }

    public StackSocket[] All()
    {
        lock (_gate) return _byId.Values.OrderBy(s => s.Id).ToArray();
    }
}
