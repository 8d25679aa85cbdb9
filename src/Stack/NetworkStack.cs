using NetStack.Arp;
using NetStack.Dhcp;
using NetStack.Diagnostics;
using NetStack.Dns;
using NetStack.IPv4;
using NetStack.Icmp;
using NetStack.Link;
using NetStack.Sockets;
using NetStack.Tcp;
using NetStack.Udp;

namespace NetStack;

/// <summary>
/// One TCP/IP stack bound to one link. All protocol state is owned by a single loop: received frames,
/// API requests and timers run there in order, without locks. <see cref="Poll"/> is one deterministic
/// turn of that loop at a given time; <see cref="Start"/> runs it on a real-time thread, while tests
/// call Poll with virtual time (see <see cref="Simulation"/>). The public async methods may be called
/// from any thread: they post their work to the loop and return a Task.
/// <para>
/// It is the composition root: the only type that knows every layer. It builds them bottom-up, each given the
/// interfaces of the layers below and a <see cref="LayerContext"/>, then lets each register with the one below for
/// its upcalls. The layers never see the stack (a test enforces it). docs/architecture.md draws the picture.
/// </para>
/// </summary>
public sealed partial class NetworkStack : IDisposable
{
    private readonly bool _ownsDevice;
    private readonly PacketLog _packetLog;
    private readonly LayerContext _context;

    public NetworkStack(ILinkDevice device, StackConfig config, IClock? clock = null, int? seed = null, string? name = null, bool ownsDevice = true)
    {
        ArgumentNullException.ThrowIfNull(device);
        ArgumentNullException.ThrowIfNull(config);
        config.Validate(device.Mtu);
        Device = device;
        Clock = clock ?? new SystemClock();
        var random = seed is { } s ? new Random(s) : new Random();
        // RFC 5452 9.2: ids, ports and secrets unguessable, unless a seed asks for a replayable run.
        IRandomSource unpredictable = seed is null ? CryptoRandomSource.Instance : new SeededRandomSource(random);
        Name = name ?? device.Name;
        _ownsDevice = ownsDevice;
        MacAddress = config.MacAddress ?? device.HardwareAddress;
        if (MacAddress != device.HardwareAddress) device.SetStackAddress(MacAddress);
        var mtu = config.Mtu ?? device.Mtu;
        _packetLog = new PacketLog(config.PacketLogCapacity);
        StartedAt = DateTimeOffset.Now;
        _context = new LayerContext(Name, config, random, unpredictable);

        // Bottom-up, each layer given what is below it. The order is also the order in which they draw from the
        // seeded random source, which a simulation's replay depends on: keep it.
        Sockets = new Sockets.SocketTable();
        var ports = new EphemeralPorts(config, unpredictable);
        var udpPorts = new Sockets.UdpSocketPorts(this);
        Ethernet = new EthernetLayer(device, MacAddress, mtu, _packetLog);
        Arp = new ArpLayer(_context, Ethernet);
        Ip = new Ipv4Layer(_context, Ethernet, Arp);
        Icmp = new IcmpLayer(_context, Ip, Ip);
        Udp = new UdpLayer(_context, Ip, ports);
        Dns = new DnsResolver(_context, udpPorts, new Sockets.TcpSocketClientPorts(this));
        Tcp = new TcpLayer(_context, new IpSegmentOutput(_context, Ip), ports);
        Dhcp = config.Dhcp.Enabled ? new DhcpClient(_context, udpPorts, Arp, new DhcpInterface(this, config), MacAddress) : null;

        // Upcalls: each layer registers with the one below.
        Ethernet.Register(Link.Ethernet.TypeIpv4, Ip);
        Ethernet.Register(Link.Ethernet.TypeArp, Arp);
        Arp.Register(Ip);
        Ip.Register(IpProtocol.Icmp, Icmp);
        Ip.Register(IpProtocol.Udp, Udp);
        Ip.Register(IpProtocol.Tcp, Tcp);
        Ip.RegisterErrorSink(Icmp);

        _context.Now = Clock.Now;
        if (Dhcp is { } dhcp) Post(dhcp.Start); // the address comes from the lease, announced when bound (RFC 5227 2.3)
        else if (config.Arp.GratuitousOnStart) Post(now => Arp.SendGratuitous(now));
    }

    public string Name { get; }
    /// <summary>The configuration in force: the one given, or with DHCP the lease's address, prefix, gateway, DNS servers and MTU.</summary>
    public StackConfig Config => _context.Config;
    public ILinkDevice Device { get; }
    public IClock Clock { get; }
    /// <summary>The MAC we send from and answer to.</summary>
    public MacAddress MacAddress { get; }
    /// <summary>The IP MTU in use (a DHCP lease's interface MTU may lower it).</summary>
    public int Mtu => Ip.Mtu;
    public DateTimeOffset StartedAt { get; }
    public bool IsRunning => _thread is { IsAlive: true } && !_stopping;
    /// <summary>Exceptions the loop caught from its own code (a bug if ever non-zero); the last is kept.</summary>
    public long LoopFaults { get; private set; }
    public Exception? LastLoopFault { get; private set; }

    /// <summary>Name, configuration, loop time, random source and trace: what the layers get instead of the stack.</summary>
    internal LayerContext Context => _context;
    internal Sockets.SocketTable Sockets { get; }
    internal EthernetLayer Ethernet { get; }
    internal ArpLayer Arp { get; }
    internal Ipv4Layer Ip { get; }
    internal IcmpLayer Icmp { get; }
    internal UdpLayer Udp { get; }
    internal DnsResolver Dns { get; }
    /// <summary>The DHCP client, when StackConfig.Dhcp.Enabled.</summary>
    internal DhcpClient? Dhcp { get; }

    internal TcpLayer Tcp { get; }
    internal PacketLog PacketLog => _packetLog;
    public EthernetCounters EthernetCounters => Ethernet.Counters;

    // ---------------- tracing ----------------

    /// <summary>Protocol events as they happen (ARP, handshakes, retransmissions). Raised by whoever runs the loop turn (the loop thread, or a caller running one inline: docs/design.md), one at a time: keep handlers quick.</summary>
    public event Action<StackEvent>? Event
    {
        add => _context.Event += value;
        remove => _context.Event -= value;
    }

    // ---------------- public API (any thread) ----------------

    /// <summary>Sends one ICMP echo request (DF set if <paramref name="dontFragment"/>) and waits for the reply (or TimedOut).</summary>
    public Task<PingReply> PingAsync(Ipv4Address destination, int payloadSize = 56, TimeSpan? timeout = null, byte ttl = 0, bool dontFragment = false,
        CancellationToken cancellationToken = default)
    {
        var t = timeout ?? TimeSpan.FromSeconds(4);
        var task = CallAsync(now => Icmp.Ping(destination, payloadSize, t, ttl, now, dontFragment));
        return cancellationToken.CanBeCanceled ? task.WaitAsync(cancellationToken) : task;
    }

    /// <summary>Traceroute with echo requests of rising TTL (<see cref="Traceroute"/>): one result per probe, as it comes.</summary>
    public IAsyncEnumerable<TraceProbe> TraceRouteAsync(Ipv4Address destination, TraceRouteOptions? options = null, CancellationToken cancellationToken = default)
    {
        var o = (options ?? new TraceRouteOptions()).Validated();
        return Traceroute.RunAsync(destination, o, (ttl, ct) => PingAsync(destination, o.PayloadSize, o.Timeout, ttl, cancellationToken: ct), cancellationToken);
    }

    /// <summary>Path-MTU discovery with DF echo requests (<see cref="PathMtuDiscovery"/>), each waiting up to <paramref name="timeout"/>.</summary>
    public Task<PathMtuResult> DiscoverPathMtuAsync(Ipv4Address destination, TimeSpan? timeout = null, CancellationToken cancellationToken = default) =>
        PathMtuDiscovery.RunAsync(destination, Mtu, (payload, ct) => PingAsync(destination, payload, timeout, dontFragment: true, cancellationToken: ct), cancellationToken);

    public Task<IReadOnlyList<ArpEntryInfo>> GetArpCacheAsync() => CallAsync<IReadOnlyList<ArpEntryInfo>>(now => Arp.Snapshot(now));

    public Task AddArpEntryAsync(Ipv4Address address, MacAddress mac) => CallAsync(now => Arp.AddStatic(address, mac, now));

    public Task<bool> RemoveArpEntryAsync(Ipv4Address address) => CallAsync(now => Arp.Remove(address, now));

    public Task<int> ClearArpCacheAsync(bool includeStatic = false) => CallAsync(now => Arp.Clear(includeStatic, now));

    /// <summary>ARPs for <paramref name="address"/> now (like arping) and returns the entry, or fails with HostUnreachable.</summary>
    public Task<ArpEntryInfo> ResolveArpAsync(Ipv4Address address, CancellationToken cancellationToken = default)
    {
        var task = CallAsync(now => Arp.ResolveNow(address, now));
        return cancellationToken.CanBeCanceled ? task.WaitAsync(cancellationToken) : task;
    }

    /// <summary>Every counter of every layer, read on the loop so the snapshot is consistent.</summary>
    public Task<IReadOnlyList<StackCounter>> GetStatisticsAsync() => CallAsync<IReadOnlyList<StackCounter>>(_ => ReadCounters());

    internal List<StackCounter> ReadCounters()
    {
        var list = new List<StackCounter>();
        var link = Device.Statistics;
        list.Add(new StackCounter("Link", "FramesReceived", link.FramesReceived));
        list.Add(new StackCounter("Link", "FramesSent", link.FramesSent));
        list.Add(new StackCounter("Link", "DroppedByDevice", link.DroppedByDevice));
        list.Add(new StackCounter("Link", "OwnFramesIgnored", link.OwnFramesIgnored));
        list.Add(new StackCounter("Link", "SendErrors", link.SendErrors));
        list.Add(new StackCounter("Link", "ReceiveWaitMicroseconds", link.ReceiveWaitMicroseconds));
        foreach (var layer in Layers()) list.AddRange(layer.Read());
        list.Add(new StackCounter("Stack", "LoopFaults", LoopFaults));
        list.Add(new StackCounter("Stack", "BusyPollCallsDone", Interlocked.Read(ref _busyWaitHits)));
        list.Add(new StackCounter("Stack", "BusyPollCallsParked", Interlocked.Read(ref _busyWaitMisses)));
        list.Add(new StackCounter("Stack", "CallerWaitCallsDone", Interlocked.Read(ref _callerWaitHits)));
        list.Add(new StackCounter("Stack", "CallerWaitCallsParked", Interlocked.Read(ref _callerWaitMisses)));
        list.Add(new StackCounter("Stack", "LoopNaps", Volatile.Read(ref _loopNaps)));
        return list;
    }

    private IEnumerable<LayerCounters> Layers()
    {
        yield return Ethernet.Counters;
        yield return Arp.Counters;
        yield return Ip.Counters;
        yield return Icmp.Counters;
        yield return Udp.Counters;
        yield return Dns.Counters;
        yield return Tcp.Counters;
        if (Dhcp != null) yield return Dhcp.Counters;
    }

    /// <summary>The recent frames in and out, oldest first (Get-StackPacket).</summary>
    public Task<IReadOnlyList<LoggedFrame>> GetPacketLogAsync() => CallAsync<IReadOnlyList<LoggedFrame>>(_ => _packetLog.Snapshot());

    /// <summary>The netstat view: every socket's row, taken on the loop (Get-StackConnection).</summary>
    public Task<IReadOnlyList<ConnectionInfo>> GetConnectionsAsync() =>
        CallAsync<IReadOnlyList<ConnectionInfo>>(now => Sockets.All().Select(s => s.Snapshot(now)).ToList());

    /// <summary>
    /// Throws AddressNotAvailable unless <paramref name="address"/> is the stack's own or 0.0.0.0 (any): a stack has
    /// one address, so a socket can be bound to nothing else. Any thread (it reads only the configuration).
    /// </summary>
    public void RequireLocalAddress(Ipv4Address address)
    {
        if (!address.IsUnspecified && address != Config.Address)
            throw new StackException(StackError.AddressNotAvailable, $"Cannot bind to {address}: the address of stack '{Name}' is {Config.Address}; give that or 0.0.0.0 (any).");
    }

    /// <summary>The socket with descriptor <paramref name="id"/>, or null.</summary>
    public Sockets.StackSocket? FindSocket(int id) => Sockets.Find(id);

    /// <summary>Joins an IPv4 multicast group (frames to it are accepted). No IGMP is sent.</summary>
    public Task JoinMulticastGroupAsync(Ipv4Address group)
    {
        if (!group.IsMulticast) throw new ArgumentException($"{group} is not a multicast address (224.0.0.0/4).", nameof(group));
        return CallAsync(_ => { Ip.JoinGroup(group); });
    }

    // ---------------- UDP and DNS ----------------

    /// <summary>A new, unbound UDP socket (bind it, or send to bind an ephemeral port). Any thread.</summary>
    public UdpSocket CreateUdpSocket() => new(this);

    /// <summary>
    /// A UDP socket bound to <paramref name="port"/> (0: an ephemeral port) on <paramref name="localAddress"/>
    /// (null: any). Fails with AddressInUse when the port is taken.
    /// </summary>
    public Task<UdpSocket> CreateUdpSocketAsync(ushort port = 0, Ipv4Address? localAddress = null)
    {
        var socket = new UdpSocket(this);
        // Bound in one loop turn (no await), so the task completes on the loop: simulations stay deterministic.
        return CallAsync(now =>
        {
            try { socket.Bind(port, localAddress ?? Ipv4Address.Any, now); }
            catch
            {
                socket.CloseOnLoop();
                throw;
            }
            return socket;
        });
    }

    /// <summary>
    /// Resolves <paramref name="name"/> to IPv4 addresses (A records, following CNAMEs) by asking
    /// <paramref name="server"/>, or else StackConfig.DnsServers in order; names without a trailing dot are tried along
    /// StackConfig.DnsSearch; answers are cached for their TTL. A literal address resolves to itself. Fails with
    /// NameNotFound (NXDOMAIN or no A record), TimedOut (no server answered) or ServerFailure (SERVFAIL, REFUSED...).
    /// </summary>
    public Task<DnsResult> ResolveAsync(string name, Ipv4Address? server = null, CancellationToken cancellationToken = default)
    {
        DnsName.Normalize(name); // a name that cannot be one fails here, on the caller's thread
        var task = CallAsync(now => Dns.Resolve(name, server, now));
        return cancellationToken.CanBeCanceled ? task.WaitAsync(cancellationToken) : task;
    }

    /// <summary>
    /// Asks for the <paramref name="type"/> records of <paramref name="name"/> (any type: A, AAAA, MX, TXT, PTR, SRV...,
    /// ANY), as <see cref="ResolveAsync"/> does: CNAMEs followed, the search list, UDP with EDNS, TCP when the answer is
    /// truncated. The answer holds every record of the response with its section. An explicit <paramref name="server"/>
    /// bypasses the cache; <paramref name="noCache"/> asks the server even when the cache knows (and refreshes it).
    /// </summary>
    public Task<DnsAnswer> QueryDnsAsync(string name, DnsRecordType type, Ipv4Address? server = null, bool noCache = false,
        CancellationToken cancellationToken = default)
    {
        DnsName.Normalize(name);
        var task = CallAsync(now => Dns.Query(name, type, server, noCache, now));
        return cancellationToken.CanBeCanceled ? task.WaitAsync(cancellationToken) : task;
    }

    /// <summary>Forgets every cached DNS answer; returns how many there were.</summary>
    public Task<int> ClearDnsCacheAsync() => CallAsync(_ => Dns.ClearCache());
    // ---------------- TCP ----------------

    /// <summary>A new, unconnected TCP socket (set options, then ConnectAsync).</summary>
    public TcpSocket CreateTcpSocket()
    {
        ObjectDisposedException.ThrowIf(_disposed, this);
        return new TcpSocket(this);
    }

    /// <summary>Creates a socket and connects it to <paramref name="remote"/>:<paramref name="port"/>.</summary>
    public Task<TcpSocket> ConnectTcpAsync(Ipv4Address remote, ushort port, CancellationToken cancellationToken = default)
    {
        TcpSocket s;
        try { s = CreateTcpSocket(); }
        catch (ObjectDisposedException e) { return Task.FromException<TcpSocket>(e); }
        return s.Connect(remote, port, cancellationToken); // no async state machine: the connect's own task gives the socket
    }

    /// <summary>Starts a TCP listener on <paramref name="port"/> (AddressInUse if one exists).</summary>
    public Task<TcpListener> ListenAsync(ushort port, int? backlog = null)
    {
        var l = NewListener(port, backlog);
        return CallAsync(now => { l.Start(now); return l; });
    }

    /// <summary>
    /// Listen, synchronously. On a running stack it waits for the loop; on a stack driven by the caller's own
    /// Poll (simulation, tests) it registers at once on the calling thread, which is then the loop.
    /// </summary>
    public TcpListener Listen(ushort port, int? backlog = null)
    {
        if (IsRunning) return ListenAsync(port, backlog).GetAwaiter().GetResult();
        var l = NewListener(port, backlog);
        l.Start(_context.Now);
        return l;
    }

    private TcpListener NewListener(ushort port, int? backlog)
    {
        ObjectDisposedException.ThrowIf(_disposed, this);
        if (port == 0) throw new ArgumentException("Listen needs a port from 1 to 65535.", nameof(port));
        var b = backlog ?? Config.Tcp.DefaultBacklog;
        if (b is < 1 or > 65535) throw new ArgumentOutOfRangeException(nameof(backlog), b, "The backlog must be between 1 and 65535.");
        return new TcpListener(this, port, b);
    }

    /// <summary>
    /// With the loop ended (this thread owns its state now): RST to the peer of every connection still open, put on
    /// the link (and in the capture) before the device is released. A link that fails here is past caring.
    /// </summary>
    private void ResetPeers()
    {
        try
        {
            var now = Clock.Now;
            Tcp.ResetOpenConnections(now);
            ReleaseDhcpOnStop(now);
            Device.Flush(now);
        }
        catch (Exception e) when (e is not OutOfMemoryException)
        {
            _context.Trace("Stack", $"resets on stop failed: {e.GetType().Name}: {e.Message}");
        }
    }

    /// <summary>
    /// Stops the loop, resets the connections still open (as an exiting process's kernel does), gives a DHCP lease back,
    /// fails every pending operation with StackStopped, and releases the device.
    /// </summary>
    public void Dispose()
    {
        if (_disposed) return;
        PrepareDhcpRelease();
        _stopping = true;
        WakeLoop();
        if (CallerWaitsOnDevice) Device.Wake(); // a caller waiting on the device gives it up now
        var loopEnded = _thread is not { } t || t == Thread.CurrentThread || t.Join(TimeSpan.FromSeconds(10));
        // A call may be running a turn inline: the state is ours once it has left (calls after it see _stopping and post).
        var owned = Monitor.TryEnter(_turn, TimeSpan.FromSeconds(10));
        try
        {
            _disposed = true;
            if (loopEnded && owned) ResetPeers();
            CancelPosted();
            Dhcp?.Stop();
            Dns.Dispose();
            Tcp.Dispose();
            Udp.Dispose();
            Icmp.Dispose();
            Arp.Dispose();
            Ip.Dispose();
            if (_ownsDevice) Device.Dispose();
        }
        finally
        {
            if (owned) Monitor.Exit(_turn);
        }
    }
}
