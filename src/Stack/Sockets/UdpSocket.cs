using NetStack.Udp;

namespace NetStack.Sockets;

/// <summary>
/// A UDP socket (RFC 768) on a <see cref="NetworkStack"/>, like a BSD datagram socket. Every method is
/// thread-safe: it runs on the stack's loop and returns a Task.
/// <list type="bullet">
/// <item><see cref="BindAsync"/> takes a local port (0: an ephemeral one); sending from an unbound socket binds one.</item>
/// <item><see cref="ConnectAsync"/> sets a default destination and accepts datagrams only from it; ICMP errors
/// about its datagrams (e.g. port unreachable) then fail its next receive or send, like Linux's SO_ERROR.</item>
/// <item>Arriving datagrams wait in a queue of at most <see cref="UdpSettings.ReceiveBufferSize"/> bytes;
/// beyond that they are dropped and counted (Udp.DroppedReceiveBufferFull).</item>
/// <item>Datagrams of up to 65507 bytes may be sent; the IP layer fragments those above the MTU.</item>
/// </list>
/// Failures are <see cref="StackException"/>s: AddressInUse, AddressNotAvailable, MessageTooLong, NotConnected,
/// InvalidState, SocketClosed, HostUnreachable, NetworkUnreachable, NoBufferSpace, PortUnreachable, StackStopped.
/// </summary>
public sealed class UdpSocket : StackSocket, IDisposable, IUdpEndpoint, IUdpPort
{
    // Cancelled receives are removed lazily; past this many waiters the queue is swept on the next receive.
    private const int WaiterSweepThreshold = 16;

    private sealed class Waiter
    {
        public readonly TaskCompletionSource<UdpDatagram> Completion = new(); // loop-side: see NetworkStack.InvokeAsync
        public CancellationTokenRegistration Registration;
    }

    private readonly UdpLayer _udp;
    private readonly DatagramQueue _queue;
    private readonly Queue<Waiter> _waiters = new();
    private StackError _pendingError;
    private string? _pendingErrorMessage;
    private volatile bool _bound;
    private bool _connected;
    private bool _closed; // the loop's own view; IsClosed is what readers see
    private Ipv4Address _localAddress;
    private ushort _localPort;
    private Ipv4Address _remoteAddress;
    private ushort _remotePort;
    private TimeSpan _boundAt;
    private PublishedEndPoint _localPublished;
    private PublishedEndPoint _remotePublished;
    /// <summary>Datagrams given back with <see cref="Unread"/>, next first; received before the queue.</summary>
    private Stack<UdpDatagram>? _unread;
    private long _unreadBytes;

    /// <summary>A new unbound socket; see also <see cref="NetworkStack.CreateUdpSocketAsync"/>.</summary>
    public UdpSocket(NetworkStack stack) : base(stack, SocketProtocol.Udp)
    {
        _udp = stack.Udp;
        _queue = new DatagramQueue(stack.Config.Udp.ReceiveBufferSize);
    }

    // Readers on any thread see what the loop published: the endpoints as one word each (never an address
    // from one connect with the port of another), the bound flag once the port is taken.

    /// <summary>The local port (0 until bound).</summary>
    public ushort LocalPort => _localPublished.Read()?.Port ?? 0;
    /// <summary>The local address bound: <see cref="Ipv4Address.Any"/> (every address of the stack) or the stack's own.</summary>
    public Ipv4Address LocalAddress => _localPublished.Read()?.Address ?? Ipv4Address.Any;
    public bool IsBound => _bound;
    public bool IsConnected => _remotePublished.Read() is not null;
    /// <summary>The connected peer, or null.</summary>
    public IpEndPoint? RemoteEndPoint => _remotePublished.Read();
    public IpEndPoint LocalEndPoint => _localPublished.Read() ?? new IpEndPoint(Ipv4Address.Any, 0);

    /// <summary>Loop-side consumer that takes datagrams instead of the queue (the DNS resolver). Loop only.</summary>
    internal IUdpReceiver? Receiver { get; set; }

    // ---------------- public API (any thread) ----------------

    /// <summary>
    /// Binds to <paramref name="port"/> (0: an ephemeral port from StackConfig's range) on
    /// <paramref name="localAddress"/> (null or 0.0.0.0: any; otherwise the stack's own address).
    /// </summary>
    public Task BindAsync(ushort port = 0, Ipv4Address? localAddress = null) =>
        Stack.CallAsync(now => Bind(port, localAddress ?? Ipv4Address.Any, now));

    /// <summary>
    /// Sets the default destination for <see cref="SendAsync"/> and accepts datagrams only from it (binding an
    /// ephemeral port first if unbound). No packet is sent. Connecting again changes the peer.
    /// </summary>
    public Task ConnectAsync(Ipv4Address remoteAddress, ushort remotePort) =>
        Stack.CallAsync(now => Connect(remoteAddress, remotePort, now));

    public Task ConnectAsync(IpEndPoint remote) => ConnectAsync(remote.Address, remote.Port);

    /// <summary>
    /// Sends one datagram of up to 65507 bytes to <paramref name="remoteAddress"/>:<paramref name="remotePort"/>.
    /// The task ends once the datagram left (or waits for ARP); <paramref name="data"/> must stay unchanged until then.
    /// </summary>
    public Task SendToAsync(Ipv4Address remoteAddress, ushort remotePort, ReadOnlyMemory<byte> data)
    {
        if (data.Length > UdpHeader.MaxPayload) return Task.FromException(TooLong(data.Length));
        return Stack.CallAsync(now => SendTo(remoteAddress, remotePort, data.Span, now));
    }

    public Task SendToAsync(IpEndPoint remote, ReadOnlyMemory<byte> data) => SendToAsync(remote.Address, remote.Port, data);

    /// <summary>Sends one datagram to the connected peer (NotConnected otherwise).</summary>
    public Task SendAsync(ReadOnlyMemory<byte> data)
    {
        if (data.Length > UdpHeader.MaxPayload) return Task.FromException(TooLong(data.Length));
        return Stack.CallAsync(now => SendConnected(data.Span, now));
    }

    /// <summary>
    /// Waits for the next datagram. Fails with the pending error if an ICMP error arrived for a connected socket,
    /// SocketClosed once closed, StackStopped when the stack is disposed; <paramref name="cancellationToken"/> cancels the wait.
    /// A cancelled receive takes no datagram: one that arrives as it is cancelled either completes this receive
    /// (awaiting it returns the datagram) or stays for the next.
    /// </summary>
    public Task<UdpDatagram> ReceiveAsync(CancellationToken cancellationToken = default)
    {
        if (cancellationToken.IsCancellationRequested) return Task.FromCanceled<UdpDatagram>(cancellationToken);
        return Stack.CallAsync(now => Receive(cancellationToken, now));
    }

    /// <summary>
    /// Gives a received datagram back: the next receive returns it, before anything queued (for a caller that took
    /// a datagram it cannot use now, e.g. a receive stopped just as it completed). It is counted in Recv-Q and may
    /// exceed the receive buffer's bound. Any thread; takes effect on the loop in order with later receives.
    /// </summary>
    public void Unread(UdpDatagram datagram)
    {
        ArgumentNullException.ThrowIfNull(datagram);
        Stack.Post(_ => UnreadOnLoop(datagram));
    }

    /// <summary>Releases the port and descriptor; waiting receives fail with SocketClosed. Any thread; idempotent.</summary>
    public void Close()
    {
        if (IsClosed) return;
        PublishClosedByUser();
        try { Stack.Post(_ => CloseOnLoop()); }
        catch (StackException) { _closed = true; } // the stack is stopped: nothing left to release on the loop
    }

    public void Dispose() => Close();

    // ---------------- loop side ----------------

    internal void Bind(ushort port, Ipv4Address localAddress, TimeSpan now)
    {
        ThrowIfClosed();
        if (_bound) throw new StackException(StackError.InvalidState, $"Socket {Id} is already bound to port {_localPort}; create another socket to use another port.");
        Stack.RequireLocalAddress(localAddress);
        if (port == 0)
        {
            port = _udp.AllocateEphemeralPort(Ipv4Address.Any, 0) ?? throw new StackException(StackError.NoEphemeralPorts,
                $"Every UDP port of the ephemeral range {Stack.Config.EphemeralPortFirst}-{Stack.Config.EphemeralPortLast} is in use; close sockets or widen StackConfig.EphemeralPortFirst/Last.");
        }
        else if (_udp.IsPortInUse(port))
            throw new StackException(StackError.AddressInUse, $"UDP port {port} is already in use on stack '{Stack.Name}'; close the socket that holds it (see Get-StackConnection) or bind to another port (0 picks a free one).");
        _localPort = port;
        _localAddress = localAddress;
        _localPublished.Publish(localAddress, port);
        _boundAt = now;
        _udp.Add(this);
        _bound = true;
    }

    private void EnsureBound(TimeSpan now)
    {
        if (!_bound) Bind(0, Ipv4Address.Any, now);
    }

    internal void Connect(Ipv4Address remoteAddress, ushort remotePort, TimeSpan now)
    {
        ThrowIfClosed();
        CheckDestination(remoteAddress, remotePort, "remoteAddress");
        EnsureBound(now);
        _remoteAddress = remoteAddress;
        _remotePort = remotePort;
        _connected = true;
        _remotePublished.Publish(remoteAddress, remotePort);
        ClearPendingError(); // errors about the old peer no longer apply
    }

    private void SendTo(Ipv4Address remoteAddress, ushort remotePort, ReadOnlySpan<byte> data, TimeSpan now)
    {
        ThrowIfClosed();
        ThrowPendingError();
        CheckDestination(remoteAddress, remotePort, "remoteAddress");
        EnsureBound(now);
        ThrowIfFailed(SendOnLoop(remoteAddress, remotePort, data, now), remoteAddress, remotePort, data.Length);
    }

    private void SendConnected(ReadOnlySpan<byte> data, TimeSpan now)
    {
        ThrowIfClosed();
        if (!_connected) throw new StackException(StackError.NotConnected, $"Socket {Id} is not connected; call ConnectAsync first or use SendToAsync with a destination.");
        ThrowPendingError();
        ThrowIfFailed(SendOnLoop(_remoteAddress, _remotePort, data, now), _remoteAddress, _remotePort, data.Length);
    }

    /// <summary>Sends from this (bound) socket without throwing. Loop only.</summary>
    internal StackError SendOnLoop(Ipv4Address remoteAddress, ushort remotePort, ReadOnlySpan<byte> data, TimeSpan now) =>
        _udp.Send(_localPort, remoteAddress, remotePort, data, now);

    private static void CheckDestination(Ipv4Address address, ushort port, string parameter)
    {
        if (port == 0) throw new ArgumentException("Port 0 cannot be a destination; give the peer's port (1-65535).", "remotePort");
        if (address.IsUnspecified) throw new ArgumentException("0.0.0.0 cannot be a destination; give the peer's address.", parameter);
    }

    private void ThrowIfFailed(StackError r, Ipv4Address address, ushort port, int length)
    {
        if (r == StackError.None) return;
        var why = r switch
        {
            StackError.NetworkUnreachable => $"{address} is off our subnet and no gateway is configured (StackConfig.Gateway)",
            StackError.HostUnreachable => $"nobody answered ARP for {address} (or its gateway)",
            StackError.NoBufferSpace => $"the ARP cache (Arp.MaxEntries) is full of addresses still resolving, so {address} cannot be resolved",
            StackError.MessageTooLong => $"{length} bytes do not fit in one IPv4 datagram (at most {UdpHeader.MaxPayload})",
            _ => r.ToString(),
        };
        throw new StackException(r, $"Cannot send {length} bytes to {address}:{port}: {why}.");
    }

    private static StackException TooLong(int length) => new(StackError.MessageTooLong,
        $"A UDP datagram carries at most {UdpHeader.MaxPayload} bytes; {length} were given. Split the data.");

    private Task<UdpDatagram> Receive(CancellationToken cancellationToken, TimeSpan now)
    {
        ThrowIfClosed();
        if (!_bound) throw new StackException(StackError.InvalidState, $"Socket {Id} is not bound, so nothing can arrive; call BindAsync (or send first) before receiving.");
        // Cancelled before the loop got here (the caller may have gone): take nothing, not even a pending error.
        if (cancellationToken.IsCancellationRequested) return Task.FromCanceled<UdpDatagram>(cancellationToken);
        ThrowPendingError();
        // A live waiter only exists while the queue is empty (arrivals go to waiters first), so data here is next in line.
        if (_unread is { Count: > 0 } unread)
        {
            var d = unread.Pop();
            _unreadBytes -= d.Data.Length;
            return Task.FromResult(d);
        }
        if (_queue.Count > 0) return Task.FromResult(_queue.Dequeue());
        if (_waiters.Count >= WaiterSweepThreshold) SweepWaiters();
        var w = new Waiter();
        _waiters.Enqueue(w);
        if (cancellationToken.CanBeCanceled)
            w.Registration = cancellationToken.Register(static (state, token) =>
                ((Waiter)state!).Completion.TrySetCanceled(token), w);
        return w.Completion.Task;
    }

    private void UnreadOnLoop(UdpDatagram d)
    {
        if (_closed) return;
        // A receive already waiting means nothing else is queued: the datagram is its.
        while (_waiters.TryDequeue(out var w))
        {
            if (!w.Completion.TrySetResult(d)) continue; // cancelled meanwhile
            w.Registration.Dispose();
            return;
        }
        (_unread ??= new Stack<UdpDatagram>()).Push(d);
        _unreadBytes += d.Data.Length;
    }

    private void SweepWaiters()
    {
        for (int n = _waiters.Count; n > 0; n--)
        {
            var w = _waiters.Dequeue();
            if (!w.Completion.Task.IsCompleted) _waiters.Enqueue(w);
        }
    }

    /// <summary>Whether a datagram from source to destination belongs to this socket (its bound address and connected peer).</summary>
    internal bool Accepts(Ipv4Address source, ushort sourcePort, Ipv4Address destination)
    {
        if (!_localAddress.IsUnspecified && destination != _localAddress) return false;
        return !_connected || (source == _remoteAddress && sourcePort == _remotePort);
    }

    /// <summary>Hands an arriving datagram to a waiting receive or queues it; false when the queue is full. Loop only.</summary>
    internal bool Deliver(Ipv4Address source, ushort sourcePort, ReadOnlySpan<byte> data, TimeSpan now)
    {
        if (Receiver is { } r)
        {
            r.OnUdpDatagram(this, source, sourcePort, data, now);
            return true;
        }
        if (_waiters.Count > 0)
        {
            var d = new UdpDatagram(source, sourcePort, data.ToArray());
            while (_waiters.TryDequeue(out var w))
            {
                if (!w.Completion.TrySetResult(d)) continue; // cancelled meanwhile
                w.Registration.Dispose();
                return true;
            }
        }
        return _queue.TryEnqueue(data, source, sourcePort);
    }

    /// <summary>
    /// An error about a datagram this socket sent to <paramref name="destination"/>:<paramref name="destinationPort"/>.
    /// A connected socket takes it when it concerns its peer: a waiting receive fails at once, otherwise the next
    /// receive or send does. Returns whether it was taken. Loop only.
    /// </summary>
    internal bool OnError(StackError error, Ipv4Address destination, ushort destinationPort, Ipv4Address reporter, TimeSpan now)
    {
        if (Receiver is { } r) return r.OnUdpError(this, error, destination, destinationPort, now);
        if (!_connected || destination != _remoteAddress || destinationPort != _remotePort) return false;
        var message = error switch
        {
            StackError.PortUnreachable => $"{destination}:{destinationPort} is not listening (ICMP port unreachable from {reporter}).",
            StackError.HostUnreachable when reporter == Stack.Config.Address => $"{destination} did not answer ARP (host unreachable).",
            _ => $"{destination}:{destinationPort}: {error} (reported by {reporter}).",
        };
        while (_waiters.TryDequeue(out var w))
        {
            if (!w.Completion.TrySetException(new StackException(error, message))) continue;
            w.Registration.Dispose();
            return true;
        }
        _pendingError = error;
        _pendingErrorMessage = message;
        return true;
    }

    private void ThrowPendingError()
    {
        if (_pendingError == StackError.None) return;
        var e = new StackException(_pendingError, _pendingErrorMessage!);
        ClearPendingError(); // reported once, like SO_ERROR
        throw e;
    }

    private void ClearPendingError()
    {
        _pendingError = StackError.None;
        _pendingErrorMessage = null;
    }

    private void ThrowIfClosed()
    {
        if (_closed) throw new StackException(StackError.SocketClosed, $"UDP socket {Id} is closed; create a new one.");
    }

    // ---------------- what the UDP layer and the DNS resolver see (loop side) ----------------

    bool IUdpEndpoint.Accepts(Ipv4Address source, ushort sourcePort, Ipv4Address destination) => Accepts(source, sourcePort, destination);
    bool IUdpEndpoint.Deliver(Ipv4Address source, ushort sourcePort, ReadOnlySpan<byte> data, TimeSpan now) => Deliver(source, sourcePort, data, now);
    bool IUdpEndpoint.OnError(StackError error, Ipv4Address destination, ushort destinationPort, Ipv4Address reporter, TimeSpan now) =>
        OnError(error, destination, destinationPort, reporter, now);
    void IUdpEndpoint.OnStackStopped() => OnStackStopped();
    StackError IUdpPort.Send(Ipv4Address remote, ushort remotePort, ReadOnlySpan<byte> data, TimeSpan now) => SendOnLoop(remote, remotePort, data, now);
    void IUdpPort.Release() => CloseOnLoop();

    internal void CloseOnLoop()
    {
        if (_closed) return;
        _closed = true;
        PublishClosed();
        if (_bound) _udp.Remove(this);
        FailWaiters(new StackException(StackError.SocketClosed, $"UDP socket {Id} was closed while a receive waited."));
        ReleaseQueue();
        ReleaseDescriptor();
    }

    /// <summary>The stack was disposed. Not on the loop (which has stopped), but nothing else runs any more.</summary>
    internal void OnStackStopped()
    {
        _closed = true;
        PublishClosed();
        FailWaiters(new StackException(StackError.StackStopped, $"Stack '{Stack.Name}' was stopped while a receive waited on UDP socket {Id}."));
        ReleaseQueue();
    }

    private void FailWaiters(StackException e)
    {
        while (_waiters.TryDequeue(out var w))
            if (w.Completion.TrySetException(e)) w.Registration.Dispose();
    }

    private void ReleaseQueue()
    {
        _queue.Clear();
        _unread = null;
        _unreadBytes = 0;
    }

    internal override ConnectionInfo Snapshot(TimeSpan now) => new()
    {
        Id = Id,
        Protocol = SocketProtocol.Udp,
        LocalAddress = _localAddress,
        LocalPort = _localPort,
        RemoteAddress = _connected ? _remoteAddress : Ipv4Address.Any,
        RemotePort = _connected ? _remotePort : (ushort)0,
        State = _bound ? "Bound" : "Unbound",
        RecvQ = _queue.Bytes + _unreadBytes,
        SendQ = 0,
        TimeInState = _bound ? now - _boundAt : TimeSpan.Zero,
    };
}
