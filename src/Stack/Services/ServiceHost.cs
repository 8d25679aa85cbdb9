using NetStack.Sockets;
using NetStack.Tcp;
using NetStack.Udp;

namespace NetStack.Services;

/// <summary>How a <see cref="ServiceHost"/> behaves; the defaults are what the embedded lab uses.</summary>
public sealed record ServiceHostOptions
{
    /// <summary>The DNS domain the host is authoritative for (RFC 2606 reserves .test, so lab names never leak).</summary>
    public string Domain { get; init; } = "lab.test";
    /// <summary>Wall-clock time for daytime (13) and the HTTP Date header.</summary>
    public Func<DateTimeOffset> WallClock { get; init; } = () => DateTimeOffset.UtcNow;
    /// <summary>Bytes a TCP chargen connection sends before it closes by itself (the client may close sooner).</summary>
    public int ChargenLimit { get; init; } = 1 << 20;
    /// <summary>The largest body /bytes/N serves.</summary>
    public int HttpMaxBytes { get; init; } = 64 << 20;
    /// <summary>Time between the lines of /slow.</summary>
    public TimeSpan HttpSlowInterval { get; init; } = TimeSpan.FromMilliseconds(250);
    /// <summary>A kept-alive HTTP connection with no request for this long is closed.</summary>
    public TimeSpan HttpIdleTimeout { get; init; } = TimeSpan.FromSeconds(30);
    /// <summary>TCP connections served at once over all services; further ones are reset.</summary>
    public int MaxConnections { get; init; } = 256;
    /// <summary>Serve DHCP (UDP 67) on the host's subnet, with the host as router and DNS server.</summary>
    public bool Dhcp { get; init; } = true;
    /// <summary>First and last address of the DHCP pool; by default .100 to .199 of a /24 (the upper half of a smaller subnet).</summary>
    public Ipv4Address? DhcpPoolFirst { get; init; }
    public Ipv4Address? DhcpPoolLast { get; init; }
    /// <summary>How long a DHCP lease lasts: short, so that renewal (at half of it) is seen within minutes.</summary>
    public TimeSpan DhcpLeaseTime { get; init; } = TimeSpan.FromMinutes(2);

    internal void Validate()
    {
        Dns.DnsName.Normalize(Domain);
        if (ChargenLimit < 0) throw new ArgumentOutOfRangeException(nameof(ChargenLimit), "ChargenLimit cannot be negative.");
        if (HttpMaxBytes < 0) throw new ArgumentOutOfRangeException(nameof(HttpMaxBytes), "HttpMaxBytes cannot be negative.");
        if (MaxConnections < 1) throw new ArgumentOutOfRangeException(nameof(MaxConnections), "MaxConnections must be at least 1.");
        if (DhcpLeaseTime < TimeSpan.FromSeconds(10) || DhcpLeaseTime > TimeSpan.FromDays(365))
            throw new ArgumentOutOfRangeException(nameof(DhcpLeaseTime), "DhcpLeaseTime must be between 10 seconds and a year.");
    }
}

/// <summary>One service a host offers: what it is, and where.</summary>
public sealed record ServiceInfo(string Name, SocketProtocol Protocol, ushort Port, string Description);

/// <summary>What a <see cref="ServiceHost"/> has served (read any time; updated with interlocked increments).</summary>
public sealed class ServiceCounters
{
    public long TcpConnections;
    /// <summary>Connections reset at once because <see cref="ServiceHostOptions.MaxConnections"/> were open.</summary>
    public long TcpConnectionsRefused;
    public long UdpDatagrams;
    public long HttpRequests;
    public long DnsQueries;
    /// <summary>DNS queries dropped or answered FORMERR because they could not be read.</summary>
    public long DnsMalformed;
    public long DhcpMessages;
    /// <summary>DHCP messages that could not be read.</summary>
    public long DhcpMalformed;
    /// <summary>Connections that ended with an error (reset by the peer, the stack stopped...).</summary>
    public long ConnectionErrors;
}

/// <summary>
/// The lab's service host: an application on a <see cref="NetworkStack"/>, written only with the stack's public socket
/// API, that serves echo (TCP and UDP 7, RFC 862), discard (9, RFC 863), daytime (13, RFC 867), chargen (19, RFC 864),
/// HTTP/1.1 (TCP 80, see <see cref="HttpService"/>), DNS (UDP and TCP 53, authoritative for <see cref="Zone"/>) and DHCP
/// (UDP 67, see <see cref="DhcpServer"/>; <see cref="ServiceHostOptions.Dhcp"/>). The stack
/// itself answers ARP and ping. The stack must be running (real time); <see cref="Dispose"/> stops every service and
/// resets open connections, and leaves the stack running.
/// </summary>
public sealed class ServiceHost : IDisposable
{
    private readonly CancellationTokenSource _stop = new();
    private readonly List<TcpListener> _listeners = new();
    private readonly List<UdpSocket> _udpSockets = new();
    private readonly HashSet<TcpSocket> _open = new();
    private readonly List<Task> _loops = new();
    private readonly List<ServiceInfo> _services = new();
    private int _disposed;
    private DhcpServer? _dhcp;

    private ServiceHost(NetworkStack stack, ServiceHostOptions options)
    {
        Stack = stack;
        Options = options;
        Zone = DnsZone.ForLab(stack.Config.Address, stack.Config.PrefixLength, options.Domain);
    }

    public NetworkStack Stack { get; }
    public ServiceHostOptions Options { get; }
    /// <summary>The names the DNS service answers for (add records at will; lookups read it under its lock).</summary>
    public DnsZone Zone { get; }
    public ServiceCounters Counters { get; } = new();
    public IReadOnlyList<ServiceInfo> Services => _services;
    public Ipv4Address Address => Stack.Config.Address;

    /// <summary>The DHCP pool's addresses in use or remembered (empty when the host does not serve DHCP).</summary>
    public IReadOnlyList<DhcpServerLease> DhcpLeases => _dhcp?.Leases(Stack.Clock.Now) ?? Array.Empty<DhcpServerLease>();

    /// <summary>The DHCP pool, e.g. "192.0.2.100-192.0.2.199", or null.</summary>
    public string? DhcpPool => _dhcp is { } d ? $"{d.Settings.PoolFirst}-{d.Settings.PoolLast}" : null;

    /// <summary>Opens every service's port on <paramref name="stack"/>. Fails with AddressInUse if one is taken (nothing is left open).</summary>
    public static async Task<ServiceHost> StartAsync(NetworkStack stack, ServiceHostOptions? options = null)
    {
        ArgumentNullException.ThrowIfNull(stack);
        options ??= new ServiceHostOptions();
        options.Validate();
        var host = new ServiceHost(stack, options);
        try
        {
            var echo = new EchoService();
            var discard = new DiscardService();
            var daytime = new DaytimeService(options.WallClock);
            var chargen = new ChargenService(options.ChargenLimit);
            var http = new HttpService(host.Counters, options);
            var dns = new DnsService(host.Zone, host.Counters);
            await host.ServeTcpAsync(EchoService.Port, "echo", "echoes what it receives (RFC 862)", echo.ServeAsync).ConfigureAwait(false);
            await host.ServeUdpAsync(EchoService.Port, "echo", "sends every datagram back (RFC 862)", echo.Answer).ConfigureAwait(false);
            await host.ServeTcpAsync(DiscardService.Port, "discard", "reads and drops everything (RFC 863)", discard.ServeAsync).ConfigureAwait(false);
            await host.ServeUdpAsync(DiscardService.Port, "discard", "drops every datagram (RFC 863)", discard.Answer).ConfigureAwait(false);
            await host.ServeTcpAsync(DaytimeService.Port, "daytime", "sends the date and time, then closes (RFC 867)", daytime.ServeAsync).ConfigureAwait(false);
            await host.ServeUdpAsync(DaytimeService.Port, "daytime", "answers any datagram with the date and time (RFC 867)", daytime.Answer).ConfigureAwait(false);
            await host.ServeTcpAsync(ChargenService.Port, "chargen", $"sends the RFC 864 character pattern until the client closes or {options.ChargenLimit} bytes have gone", chargen.ServeAsync).ConfigureAwait(false);
            await host.ServeUdpAsync(ChargenService.Port, "chargen", "answers any datagram with 512 pattern characters (RFC 864)", chargen.Answer).ConfigureAwait(false);
            await host.ServeTcpAsync(HttpService.Port, "http", "HTTP/1.1: / (index), /hello, /bytes/N, /download, /chunked, /slow, /redirect, POST /echo", http.ServeAsync).ConfigureAwait(false);
            await host.ServeUdpAsync(DnsService.Port, "dns", $"authoritative DNS for {options.Domain} and its reverse zone (EDNS; over 1232 bytes: truncated)", dns.Answer).ConfigureAwait(false);
            await host.ServeTcpAsync(DnsService.Port, "dns", $"authoritative DNS over TCP (RFC 7766), for answers too large for UDP", dns.ServeAsync).ConfigureAwait(false);
            if (options.Dhcp) await host.ServeDhcpAsync(options).ConfigureAwait(false);
        }
        catch
        {
            host.Dispose();
            throw;
        }
        return host;
    }

    private async Task ServeTcpAsync(ushort port, string name, string description, Func<TcpSocket, CancellationToken, Task> serve)
    {
        var listener = await Stack.ListenAsync(port).ConfigureAwait(false);
        lock (_listeners) _listeners.Add(listener);
        _services.Add(new ServiceInfo(name, SocketProtocol.Tcp, port, description));
        lock (_loops) _loops.Add(Task.Run(() => AcceptLoopAsync(listener, serve)));
    }

    private async Task ServeUdpAsync(ushort port, string name, string description, Func<UdpDatagram, byte[]?> answer)
    {
        var socket = await Stack.CreateUdpSocketAsync(port).ConfigureAwait(false);
        lock (_udpSockets) _udpSockets.Add(socket);
        _services.Add(new ServiceInfo(name, SocketProtocol.Udp, port, description));
        lock (_loops) _loops.Add(Task.Run(() => DatagramLoopAsync(socket, answer)));
    }

    private async Task ServeDhcpAsync(ServiceHostOptions options)
    {
        var server = new DhcpServer(DhcpService.SettingsFor(Stack, options));
        var socket = await Stack.CreateUdpSocketAsync(DhcpService.Port).ConfigureAwait(false);
        lock (_udpSockets) _udpSockets.Add(socket);
        _dhcp = server;
        var s = server.Settings;
        _services.Add(new ServiceInfo("dhcp", SocketProtocol.Udp, DhcpService.Port, $"DHCP: {s.PoolFirst}-{s.PoolLast}, {s.LeaseTime.TotalSeconds:0} s leases (RFC 2131)"));
        var service = new DhcpService(server, Stack, Counters);
        lock (_loops) _loops.Add(Task.Run(() => service.RunAsync(socket, _stop.Token)));
    }

    private async Task AcceptLoopAsync(TcpListener listener, Func<TcpSocket, CancellationToken, Task> serve)
    {
        var token = _stop.Token;
        while (!token.IsCancellationRequested)
        {
            TcpSocket socket;
            try { socket = await listener.AcceptAsync(token).ConfigureAwait(false); }
            catch (Exception e) when (e is OperationCanceledException or StackException or ObjectDisposedException) { return; }
            bool admitted;
            lock (_open)
            {
                admitted = _open.Count < Options.MaxConnections && !token.IsCancellationRequested;
                if (admitted) _open.Add(socket);
            }
            if (!admitted)
            {
                Interlocked.Increment(ref Counters.TcpConnectionsRefused);
                socket.Abort();
                continue;
            }
            Interlocked.Increment(ref Counters.TcpConnections);
            _ = Task.Run(() => RunConnectionAsync(socket, serve, token));
        }
    }

    private async Task RunConnectionAsync(TcpSocket socket, Func<TcpSocket, CancellationToken, Task> serve, CancellationToken token)
    {
        try { await serve(socket, token).ConfigureAwait(false); }
        catch (Exception e) when (e is OperationCanceledException or StackException or ObjectDisposedException or IOException)
        {
            // The peer reset, the host is stopping, or the stack stopped: nothing more to say on this connection.
            if (!token.IsCancellationRequested) Interlocked.Increment(ref Counters.ConnectionErrors);
            socket.Abort();
        }
        finally
        {
            lock (_open) _open.Remove(socket);
        }
    }

    private async Task DatagramLoopAsync(UdpSocket socket, Func<UdpDatagram, byte[]?> answer)
    {
        var token = _stop.Token;
        while (!token.IsCancellationRequested)
        {
            UdpDatagram d;
            try { d = await socket.ReceiveAsync(token).ConfigureAwait(false); }
            catch (Exception e) when (e is OperationCanceledException or StackException or ObjectDisposedException) { return; }
            Interlocked.Increment(ref Counters.UdpDatagrams);
            if (answer(d) is not { } reply) continue;
            try { await socket.SendToAsync(d.RemoteAddress, d.RemotePort, reply).ConfigureAwait(false); }
            catch (StackException e) when (e.Error is not (StackError.StackStopped or StackError.SocketClosed))
            {
                // No ARP answer for the sender, no buffer: a datagram service just drops the reply, as UDP would.
            }
            catch (Exception e) when (e is StackException or ObjectDisposedException) { return; }
        }
    }

    /// <summary>Stops every service: listeners close, open connections are reset, UDP ports are released. Waits up to 5 s for them to end.</summary>
    public void Dispose()
    {
        if (Interlocked.Exchange(ref _disposed, 1) != 0) return;
        _stop.Cancel();
        lock (_listeners) foreach (var l in _listeners) l.Dispose();
        lock (_udpSockets) foreach (var u in _udpSockets) u.Dispose();
        TcpSocket[] open;
        lock (_open) open = _open.ToArray();
        foreach (var s in open) s.Abort();
        Task[] loops;
        lock (_loops) loops = _loops.ToArray();
        try { Task.WaitAll(loops, TimeSpan.FromSeconds(5)); }
        catch (AggregateException) { /* each loop ends on its own failure; nothing to report at teardown */ }
        // _stop is not disposed: connection tasks still ending may read its token.
    }
}
