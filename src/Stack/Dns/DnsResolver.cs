using NetStack.Udp;

namespace NetStack.Dns;

/// <summary>
/// The outcome of a name resolution: <see cref="Addresses"/> of <see cref="Name"/>, valid for <see cref="Ttl"/>
/// seconds (the remaining time when <see cref="FromCache"/>), as answered by <see cref="Server"/> (null for a
/// literal address, which resolves to itself).
/// </summary>
public sealed record DnsResult(string Name, Ipv4Address[] Addresses, int Ttl, Ipv4Address? Server, bool FromCache);

public sealed class DnsCounters : LayerCounters
{
    public override string Layer => "Dns";
    /// <summary>Resolutions asked for (literal addresses and cache hits included).</summary>
    public long Resolutions;
    public long QueriesSent;
    /// <summary>Queries sent again (same or next server) after a timeout.</summary>
    public long Retransmissions;
    public long ResponsesReceived;
    public long ResponsesAccepted;
    /// <summary>Responses with a wrong id, question or source (RFC 5452), ignored while the query waits on.</summary>
    public long DroppedMismatched;
    public long DroppedMalformed;
    public long NameErrors;
    public long NoData;
    public long ServerFailures;
    public long Timeouts;
    public long CacheHits;
    public long CacheMisses;
    public long CacheEvictions;
    public long DroppedTooManyQueries;
}

/// <summary>
/// A DNS stub resolver (RFC 1035, RFC 1123 6.1.3) for A records over our own UDP: each query goes out from a
/// random port with a random id (RFC 5452), waits <see cref="DnsSettings.Timeout"/>, is sent
/// <see cref="DnsSettings.Attempts"/> times per server, and servers are tried in order. Responses must match
/// server, port, id and question; others are counted and ignored. Positive answers are cached for their TTL
/// in a bounded cache. Loop-thread only.
/// </summary>
internal sealed class DnsResolver
{
    private sealed class CacheEntry
    {
        public required Ipv4Address[] Addresses;
        public required TimeSpan Expires;
        public required Ipv4Address Server;
    }

    /// <summary>One resolution in flight: the current attempt's socket, id and deadline.</summary>
    private sealed class Resolution : IUdpReceiver
    {
        public required DnsResolver Resolver;
        public required string Name;
        public required byte[] QName;
        public required Ipv4Address[] Servers;
        public required bool Cacheable;
        public readonly TaskCompletionSource<DnsResult> Completion = new(); // loop-side: see NetworkStack.InvokeAsync
        public readonly List<string> Outcomes = new(); // per server, for the final error message
        public int ServerIndex;
        public int Attempt;
        public IUdpPort? Socket;
        public ushort Id;
        public TimeSpan Deadline;
        public bool AnyServerFailure;

        public Ipv4Address Server => Servers[ServerIndex];

        public void OnUdpDatagram(IUdpPort port, Ipv4Address source, ushort sourcePort, ReadOnlySpan<byte> data, TimeSpan now) =>
            Resolver.OnResponse(this, port, source, sourcePort, data, now);

        public bool OnUdpError(IUdpPort port, StackError error, Ipv4Address destination, ushort destinationPort, TimeSpan now) =>
            Resolver.OnSendError(this, port, error, destination, destinationPort, now);
    }

    private readonly LayerContext _context;
    private readonly IUdpPorts _udp;
    private readonly Dictionary<string, CacheEntry> _cache = new();
    private readonly List<Resolution> _active = new();
    private readonly List<Ipv4Address> _addresses = new(); // scratch for parsing
    private readonly byte[] _query = new byte[DnsConstants.HeaderLength + DnsName.MaxWireLength + 4];
    private TimeSpan _nextDeadline = TimeSpan.MaxValue;

    public DnsResolver(LayerContext context, IUdpPorts udp)
    {
        _context = context;
        _udp = udp;
    }

    public DnsCounters Counters { get; } = new();

    private DnsSettings Settings => _context.Config.Dns;

    /// <summary>Starts resolving <paramref name="name"/> (already normalized, see <see cref="DnsName.Normalize"/>).</summary>
    public Task<DnsResult> Resolve(string name, Ipv4Address? server, TimeSpan now)
    {
        Counters.Resolutions++;
        if (Ipv4Address.TryParse(name, out var literal))
            return Task.FromResult(new DnsResult(name, new[] { literal }, 0, null, false));

        // An explicit server is a question to that server: the shared cache neither answers nor learns from it.
        var cacheable = server is null;
        if (cacheable && Settings.CacheSize > 0)
        {
            if (_cache.TryGetValue(name, out var hit))
            {
                if (hit.Expires > now)
                {
                    Counters.CacheHits++;
                    return Task.FromResult(new DnsResult(name, (Ipv4Address[])hit.Addresses.Clone(),
                        (int)Math.Ceiling((hit.Expires - now).TotalSeconds), hit.Server, true));
                }
                _cache.Remove(name);
            }
            Counters.CacheMisses++;
        }

        var servers = server is { } s ? new[] { s } : _context.Config.DnsServers.ToArray();
        if (servers.Length == 0)
            throw new StackException(StackError.InvalidArgument,
                $"No DNS server to ask for '{name}': give one (-Server / the server argument) or set StackConfig.DnsServers.");
        foreach (var sv in servers)
            if (!_context.Config.IsUnicastHost(sv))
                throw new ArgumentException($"DNS server {sv} is not a unicast address; give the server's own address.", nameof(server));
        if (_active.Count >= Settings.MaxOutstandingQueries)
        {
            Counters.DroppedTooManyQueries++;
            throw new StackException(StackError.NoBufferSpace,
                $"{_active.Count} DNS resolutions are already in flight (Dns.MaxOutstandingQueries); wait for some to finish.");
        }

        var r = new Resolution { Resolver = this, Name = name, QName = DnsName.Encode(name), Servers = servers, Cacheable = cacheable };
        _active.Add(r);
        SendQuery(r, now);
        return r.Completion.Task;
    }

    /// <summary>Sends the current attempt: a fresh socket on a random port and a fresh random id.</summary>
    private void SendQuery(Resolution r, TimeSpan now)
    {
        while (true)
        {
            CloseSocket(r);
            if (r.Attempt > 0) Counters.Retransmissions++;
            r.Attempt++;
            var socket = _udp.OpenRandom(r, now);
            if (socket is null)
            {
                Finish(r, new StackException(StackError.NoEphemeralPorts,
                    $"No free UDP port to send the DNS query for '{r.Name}' from; close sockets or widen the ephemeral range."));
                return;
            }
            r.Socket = socket;
            r.Id = (ushort)_context.Random.Next(65536);
            var length = DnsMessage.WriteQuery(_query, r.Id, r.QName);
            var result = socket.Send(r.Server, Settings.ServerPort, _query.AsSpan(0, length), now);
            if (result == StackError.None)
            {
                Counters.QueriesSent++;
                r.Deadline = now + Settings.Timeout;
                if (r.Deadline < _nextDeadline) _nextDeadline = r.Deadline;
                _context.Trace("Dns", $"query {r.Id:x4} for {r.Name} A to {r.Server} (attempt {r.Attempt})");
                return;
            }
            // Unreachable at once (no route, ARP failed): no point in retrying this server.
            r.Outcomes.Add($"{r.Server} unreachable ({result})");
            if (!NextServer(r, now)) return;
        }
    }

    /// <summary>Moves to the next server; false (and the resolution failed) when none is left.</summary>
    private bool NextServer(Resolution r, TimeSpan now)
    {
        r.ServerIndex++;
        r.Attempt = 0;
        if (r.ServerIndex < r.Servers.Length) return true;
        var tried = string.Join(", ", r.Outcomes);
        Finish(r, r.AnyServerFailure
            ? new StackException(StackError.ServerFailure, $"No DNS server could resolve '{r.Name}': {tried}.")
            : new StackException(StackError.TimedOut, $"No DNS server answered for '{r.Name}': {tried}."));
        return false;
    }

    private void OnResponse(Resolution r, IUdpPort socket, Ipv4Address source, ushort sourcePort, ReadOnlySpan<byte> data, TimeSpan now)
    {
        Counters.ResponsesReceived++;
        if (socket != r.Socket || r.Completion.Task.IsCompleted) { Counters.DroppedMismatched++; return; }
        if (source != r.Server || sourcePort != Settings.ServerPort) { Counters.DroppedMismatched++; return; }
        _addresses.Clear();
        var kind = DnsMessage.Parse(data, r.Id, r.QName, _addresses, out var ttl, out var rcode);
        switch (kind)
        {
            case DnsResponseKind.Malformed:
                Counters.DroppedMalformed++;
                return;
            case DnsResponseKind.Mismatched:
                Counters.DroppedMismatched++;
                return;
        }
        Counters.ResponsesAccepted++;
        var server = r.Server;
        switch (kind)
        {
            case DnsResponseKind.Answer:
                var addresses = _addresses.ToArray();
                var seconds = (int)Math.Min(ttl, (uint)Math.Min(int.MaxValue, Settings.MaxCacheTtl.TotalSeconds));
                if (r.Cacheable) Store(r.Name, (Ipv4Address[])addresses.Clone(), seconds, server, now); // the caller may write to its array
                Finish(r, new DnsResult(r.Name, addresses, seconds, server, false));
                return;
            case DnsResponseKind.NameError:
                Counters.NameErrors++;
                Finish(r, new StackException(StackError.NameNotFound, $"'{r.Name}' does not exist (NXDOMAIN) according to {server}."));
                return;
            case DnsResponseKind.NoData:
                Counters.NoData++;
                Finish(r, new StackException(StackError.NameNotFound, $"'{r.Name}' has no IPv4 address (no A record) according to {server}."));
                return;
            default:
                // SERVFAIL, REFUSED and the like speak for this server only: ask the next one (RFC 1034 5.3.3).
                Counters.ServerFailures++;
                r.AnyServerFailure = true;
                var what = rcode == DnsConstants.RcodeNoError ? "a truncated answer" : DnsConstants.RcodeName(rcode);
                r.Outcomes.Add($"{server} answered {what}");
                if (NextServer(r, now)) SendQuery(r, now);
                return;
        }
    }

    /// <summary>ICMP port/host unreachable about our query: the server is not there, so move on at once.</summary>
    private bool OnSendError(Resolution r, IUdpPort socket, StackError error, Ipv4Address destination, ushort destinationPort, TimeSpan now)
    {
        if (socket != r.Socket || r.Completion.Task.IsCompleted || destination != r.Server || destinationPort != Settings.ServerPort) return false;
        r.Outcomes.Add($"{r.Server} unreachable ({error})");
        if (NextServer(r, now)) SendQuery(r, now);
        return true;
    }

    public TimeSpan? Poll(TimeSpan now)
    {
        if (now < _nextDeadline) return _nextDeadline == TimeSpan.MaxValue ? null : _nextDeadline;
        var next = TimeSpan.MaxValue;
        for (int i = 0; i < _active.Count; i++)
        {
            var r = _active[i];
            if (now >= r.Deadline)
            {
                Counters.Timeouts++;
                if (r.Attempt >= Settings.Attempts)
                {
                    r.Outcomes.Add($"{r.Server} did not answer ({r.Attempt} x {Settings.Timeout.TotalSeconds:0.###} s)");
                    if (NextServer(r, now)) SendQuery(r, now);
                }
                else SendQuery(r, now);
                if (r.Completion.Task.IsCompleted) { i--; continue; } // Finish removed it
            }
            if (r.Deadline < next) next = r.Deadline;
        }
        _nextDeadline = next;
        return next == TimeSpan.MaxValue ? null : next;
    }

    private void Finish(Resolution r, DnsResult result)
    {
        End(r);
        r.Completion.TrySetResult(result);
    }

    private void Finish(Resolution r, StackException error)
    {
        End(r);
        r.Completion.TrySetException(error);
    }

    private void End(Resolution r)
    {
        CloseSocket(r);
        _active.Remove(r);
    }

    private static void CloseSocket(Resolution r)
    {
        r.Socket?.Release();
        r.Socket = null;
    }

    private void Store(string name, Ipv4Address[] addresses, int ttlSeconds, Ipv4Address server, TimeSpan now)
    {
        if (ttlSeconds <= 0 || Settings.CacheSize == 0) return; // TTL 0: use once, never cache (RFC 1035 3.2.1)
        if (!_cache.ContainsKey(name) && _cache.Count >= Settings.CacheSize) Evict(now);
        _cache[name] = new CacheEntry { Addresses = addresses, Expires = now + TimeSpan.FromSeconds(ttlSeconds), Server = server };
    }

    /// <summary>Makes room: drops expired entries, or else the one closest to expiry.</summary>
    private void Evict(TimeSpan now)
    {
        string? soonest = null;
        var soonestAt = TimeSpan.MaxValue;
        List<string>? expired = null;
        foreach (var (key, e) in _cache)
        {
            if (e.Expires <= now) (expired ??= new()).Add(key);
            else if (e.Expires < soonestAt) { soonest = key; soonestAt = e.Expires; }
        }
        if (expired is not null)
        {
            foreach (var k in expired) _cache.Remove(k);
            return;
        }
        if (soonest is not null)
        {
            _cache.Remove(soonest);
            Counters.CacheEvictions++;
        }
    }

    public int ClearCache()
    {
        var n = _cache.Count;
        _cache.Clear();
        return n;
    }

    /// <summary>The stack stopped: every resolution in flight fails with StackStopped.</summary>
    public void Dispose()
    {
        foreach (var r in _active.ToArray())
            r.Completion.TrySetException(new StackException(StackError.StackStopped, $"The stack stopped while resolving '{r.Name}'."));
        _active.Clear();
    }
}
