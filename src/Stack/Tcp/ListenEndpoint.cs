namespace NetStack.Tcp;

/// <summary>
/// What a listener's TCP side needs from whoever holds it for the user (the socket API's <c>TcpListener</c>):
/// a connection (with its socket) for each SYN it takes, the hand-off of established connections to waiting
/// accepts, deferred work, and word that the listener closed. Called on the loop.
/// </summary>
internal interface IListenerOwner
{
    /// <summary>A new connection for an arriving SYN, its user attached.</summary>
    TcpConnection CreateConnection();

    /// <summary>An established connection: true when a waiting accept took it (else it joins the accept queue).</summary>
    bool TryHandOff(TcpConnection connection);

    /// <summary>Runs <paramref name="work"/> on the loop's next turn (to abort without re-entering segment processing).</summary>
    void Defer(Action<TimeSpan> work);

    /// <summary>The listener stopped (by the user, or because the stack stopped): waiting accepts fail.</summary>
    void OnClosed();
}

/// <summary>
/// A port in the LISTEN state (RFC 9293 3.10.7.2): SYNs become SYN-RECEIVED connections, counted in the SYN queue
/// until their handshake ends; established ones wait in the accept queue until the user accepts them. Both are
/// bounded by the backlog (refusals counted: ListenSynQueueFull, ListenAcceptQueueFull). Loop only.
/// </summary>
internal sealed class ListenEndpoint
{
    private readonly TcpLayer _layer;
    private readonly IListenerOwner _owner;
    private readonly Queue<TcpConnection> _acceptQueue = new();
    private int _synQueue;

    public ListenEndpoint(TcpLayer layer, ushort port, int backlog, IListenerOwner owner)
    {
        _layer = layer;
        Port = port;
        Backlog = backlog;
        _owner = owner;
    }

    public ushort Port { get; }
    /// <summary>Bound on both the SYN queue and the accept queue.</summary>
    public int Backlog { get; }
    public bool IsClosed { get; private set; }
    /// <summary>Established connections not yet accepted.</summary>
    public int AcceptQueueCount => _acceptQueue.Count;
    /// <summary>Half-open connections (SYN-RECEIVED).</summary>
    public int SynQueueCount => _synQueue;
    public bool HasAcceptRoom => _acceptQueue.Count < Backlog;

    /// <summary>Registers the port with the layer (AddressInUse when it has a listener already).</summary>
    public void Start()
    {
        _layer.AddListener(this);
        _layer.Context.Trace("Tcp", $"listening on port {Port}, backlog {Backlog}");
    }

    /// <summary>SEGMENT ARRIVES in the LISTEN state (RFC 9293 3.10.7.2).</summary>
    public void OnSegment(Ipv4Address remote, ref TcpSegment seg, TimeSpan now)
    {
        var counters = _layer.Counters;
        if (seg.Has(TcpFlags.Rst)) return;
        if (seg.Has(TcpFlags.Ack))
        {
            counters.DroppedNoSocket++;
            _layer.ResetFor(remote, ref seg, now);
            return;
        }
        if (!seg.Has(TcpFlags.Syn)) { counters.DroppedNotAcceptable++; return; }
        if (_synQueue >= Backlog) { counters.ListenSynQueueFull++; return; }          // the client retries its SYN
        if (_acceptQueue.Count >= Backlog) { counters.ListenAcceptQueueFull++; return; }
        var connection = _owner.CreateConnection();
        if (!connection.OpenPassive(this, remote, ref seg, now))
        {
            connection.User?.OnClosed();
            return;
        }
        _synQueue++;
        _layer.Context.Trace("Tcp", $"{connection.Describe()} SYN received on listener, SYN-ACK sent, ISN {connection.Iss}");
    }

    /// <summary>A half-open connection failed (reset, or its SYN-ACKs went unanswered).</summary>
    public void OnHalfOpenGone() => _synQueue--;

    /// <summary>A connection completed its handshake: to a waiting accept, else to the accept queue.</summary>
    public void OnEstablished(TcpConnection connection)
    {
        _synQueue--;
        if (IsClosed)
        {
            // The listener went away during the handshake: nobody can accept this one.
            _owner.Defer(now => connection.Abort(now));
            return;
        }
        if (_owner.TryHandOff(connection)) return;
        _acceptQueue.Enqueue(connection);
    }

    public bool TryAccept(out TcpConnection connection) => _acceptQueue.TryDequeue(out connection!);

    /// <summary>Stops listening: unaccepted connections are reset, the owner's waiting accepts fail.</summary>
    public void Close(TimeSpan now)
    {
        if (IsClosed) return;
        IsClosed = true;
        _layer.RemoveListener(this);
        while (_acceptQueue.TryDequeue(out var c)) c.Abort(now);
        _owner.OnClosed();
    }
}
