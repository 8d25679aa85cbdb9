using NetStack.Tcp;
using NetStack.Udp;

namespace NetStack.Dns;

/// <summary>
/// A DNS stub resolver (RFC 1035, RFC 1123 6.1.3) over our own UDP and TCP. Each query goes out from a random port with
/// a random id (RFC 5452 9.2), with an EDNS OPT record (RFC 6891; asked again without it when a server answers FORMERR),
/// waits <see cref="DnsSettings.Timeout"/>, is sent <see cref="DnsSettings.Attempts"/> times per server, and servers are
/// tried in order. Responses must come from the server and port asked and match id and question (RFC 5452 9.1); others
/// are counted and ignored. A truncated answer is asked again over TCP (RFC 7766, <see cref="DnsTcpExchange"/>). CNAMEs
/// the server did not follow are asked for (<see cref="DnsChain"/>); names are tried along the search list
/// (<see cref="DnsSearchList"/>); answers and negative answers are cached (<see cref="DnsCache"/>). Loop-thread only.
/// </summary>
internal sealed class DnsResolver
{
    /// <summary>One resolution in flight: the candidate name, the current attempt's socket or TCP exchange, id and deadline.</summary>
    private sealed class Resolution : IUdpReceiver
    {
        public required DnsResolver Resolver;
        /// <summary>The name as the user gave it (normalized), and the names to ask for it (<see cref="DnsSearchList"/>).</summary>
        public required string Asked;
        public required IReadOnlyList<string> Candidates;
        public required DnsRecordType Type;
        public required Ipv4Address[] Servers;
        /// <summary>No explicit server: the shared cache answers and learns.</summary>
        public required bool Cacheable;
        public required bool ReadCache;
        public readonly TaskCompletionSource<DnsAnswer> Completion = new(); // loop-side: see NetworkStack.InvokeAsync
        public readonly List<string> Outcomes = new(); // per server, for the final error message
        public readonly List<string> NotFound = new(); // per candidate name
        /// <summary>CNAME records followed in earlier responses (the server did not follow them itself).</summary>
        public readonly List<DnsResourceRecord> Aliases = new();
        public int CandidateIndex;
        public string QueryName = "";
        public byte[] QName = Array.Empty<byte>();
        public int ServerIndex;
        public int Attempt;
        public bool Edns;
        public bool SentOpt;
        public IUdpPort? Socket;
        public DnsTcpExchange? Tcp;
        public ushort Id;
        public TimeSpan Deadline;
        public bool AnyServerFailure;

        public string Name => Candidates[CandidateIndex];
        public Ipv4Address Server => Servers[ServerIndex];
        public bool Done => Completion.Task.IsCompleted;

        public void OnUdpDatagram(IUdpPort port, Ipv4Address source, ushort sourcePort, ReadOnlySpan<byte> data, TimeSpan now) =>
            Resolver.OnUdpResponse(this, port, source, sourcePort, data, now);

        public bool OnUdpError(IUdpPort port, StackError error, Ipv4Address destination, ushort destinationPort, TimeSpan now) =>
            Resolver.OnSendError(this, port, error, destination, destinationPort, now);
    }

    private readonly LayerContext _context;
    private readonly IUdpPorts _udp;
    private readonly ITcpClientPorts _tcp;
    private readonly DnsCache _cache;
    private IReadOnlyList<string> _search;
    private IReadOnlyList<string> _searchFrom; // the configuration's list _search was made from (a DHCP lease may bring another)
    private readonly List<Resolution> _active = new();
    private readonly byte[] _query = new byte[DnsQuery.MaxLength];
    private TimeSpan _nextDeadline = TimeSpan.MaxValue;

    /// <summary>The search domains in force, normalized again only when the configuration's list changed.</summary>
    private IReadOnlyList<string> SearchList
    {
        get
        {
            var current = _context.Config.DnsSearch;
            if (!ReferenceEquals(current, _searchFrom)) _search = DnsSearchList.Validate(_searchFrom = current);
            return _search;
        }
    }

    public DnsResolver(LayerContext context, IUdpPorts udp, ITcpClientPorts tcp)
    {
        _context = context;
        _udp = udp;
        _tcp = tcp;
        _search = DnsSearchList.Validate(_searchFrom = context.Config.DnsSearch);
        _cache = new DnsCache(context.Config.Dns, Counters);
    }

    public DnsCounters Counters { get; } = new();

    private DnsSettings Settings => _context.Config.Dns;

    /// <summary>
    /// The addresses of <paramref name="name"/> (as the user gave it; a trailing dot makes it absolute): an A question
    /// with its CNAME chain followed. A literal address resolves to itself.
    /// </summary>
    public Task<DnsResult> Resolve(string name, Ipv4Address? server, TimeSpan now)
    {
        if (Ipv4Address.TryParse(name.Trim(), out var literal))
        {
            Counters.Resolutions++;
            return Task.FromResult(new DnsResult(literal.ToString(), new[] { literal }, 0, null, false));
        }
        return ToResult(Query(name, DnsRecordType.A, server, noCache: false, now));
    }

    /// <summary>The addresses at the end of the answer's CNAME chain; completes on the loop, in the turn the answer came.</summary>
    private Task<DnsResult> ToResult(Task<DnsAnswer> query)
    {
        var result = new TaskCompletionSource<DnsResult>(); // loop-side: see NetworkStack.InvokeAsync
        query.ContinueWith(t =>
        {
            if (!t.IsCompletedSuccessfully)
            {
                result.TrySetException(t.Exception!.InnerExceptions);
                return;
            }
            var answer = t.Result;
            var chain = DnsChain.Follow(answer.Records, answer.Name, DnsRecordType.A);
            var ttl = chain.Aliases.Concat(chain.Data).Min(r => r.Ttl);
            var seconds = (int)Math.Min(ttl, (uint)Math.Min(int.MaxValue, Settings.MaxCacheTtl.TotalSeconds));
            result.TrySetResult(new DnsResult(answer.Name, chain.Data.Select(r => r.Address!.Value).ToArray(), seconds, answer.Server, answer.FromCache));
        }, CancellationToken.None, TaskContinuationOptions.ExecuteSynchronously, TaskScheduler.Default);
        return result.Task;
    }

    /// <summary>
    /// Asks for the <paramref name="type"/> records of <paramref name="name"/> (as the user gave it), from
    /// <paramref name="server"/> or else StackConfig.DnsServers. An explicit server neither reads nor fills the cache;
    /// <paramref name="noCache"/> skips reading it (the answer still refreshes it).
    /// </summary>
    public Task<DnsAnswer> Query(string name, DnsRecordType type, Ipv4Address? server, bool noCache, TimeSpan now)
    {
        Counters.Resolutions++;
        var candidates = DnsSearchList.Candidates(name, SearchList);
        var servers = server is { } s ? new[] { s } : _context.Config.DnsServers.ToArray();
        if (servers.Length == 0)
            throw new StackException(StackError.InvalidArgument,
                $"No DNS server to ask for '{candidates[0]}': give one (-Server / the server argument) or set StackConfig.DnsServers.");
        foreach (var sv in servers)
            if (!_context.Config.IsUnicastHost(sv))
                throw new ArgumentException($"DNS server {sv} is not a unicast address; give the server's own address.", nameof(server));
        if (type == DnsRecordType.OPT) throw new ArgumentException("OPT is a pseudo-record of EDNS, not a type to ask for.", nameof(type));
        if (_active.Count >= Settings.MaxOutstandingQueries)
        {
            Counters.DroppedTooManyQueries++;
            throw new StackException(StackError.NoBufferSpace,
                $"{_active.Count} DNS resolutions are already in flight (Dns.MaxOutstandingQueries); wait for some to finish.");
        }
        var r = new Resolution
        {
            Resolver = this, Asked = DnsName.Normalize(name), Candidates = candidates, Type = type, Servers = servers, Cacheable = server is null, ReadCache = server is null && !noCache,
        };
        _active.Add(r);
        StartCandidate(r, now);
        return r.Completion.Task;
    }

    /// <summary>Asks for the current candidate name: from the cache when it knows, else from the first server.</summary>
    private void StartCandidate(Resolution r, TimeSpan now)
    {
        for (; r.CandidateIndex < r.Candidates.Count; r.CandidateIndex++)
        {
            if (r.CandidateIndex > 0) Counters.SearchNamesTried++;
            r.QueryName = r.Name;
            r.QName = DnsName.Encode(r.Name);
            r.Aliases.Clear();
            if (r.ReadCache && _cache.Lookup(r.Name, r.Type, now) is { } hit)
            {
                if (!hit.Negative)
                {
                    Finish(r, new DnsAnswer(r.Name, r.Type, hit.Records, hit.Server, true, false), now);
                    return;
                }
                r.NotFound.Add(hit.NameError
                    ? $"'{r.Name}' does not exist (NXDOMAIN, cached from {hit.Server} for {hit.RemainingSeconds} s more)"
                    : $"'{r.Name}' has no {r.Type} record (cached from {hit.Server} for {hit.RemainingSeconds} s more)");
                continue;
            }
            r.ServerIndex = 0;
            r.Attempt = 0;
            r.Edns = Settings.EdnsPayloadSize > 0;
            SendQuery(r, now);
            return;
        }
        FailNotFound(r, now);
    }

    /// <summary>Sends the current attempt over UDP: a fresh socket on a random port and a fresh random id.</summary>
    private void SendQuery(Resolution r, TimeSpan now)
    {
        while (true)
        {
            CloseTransport(r, now);
            if (r.Attempt > 0) Counters.Retransmissions++;
            r.Attempt++;
            var socket = _udp.OpenRandom(r, now);
            if (socket is null)
            {
                Finish(r, new StackException(StackError.NoEphemeralPorts,
                    $"No free UDP port to send the DNS query for '{r.QueryName}' from; close sockets or widen the ephemeral range."), now);
                return;
            }
            r.Socket = socket;
            r.Id = (ushort)_context.Unpredictable.Next(65536); // RFC 5452 9.2: with the random port, 16 + ~14 bits to guess
            r.SentOpt = r.Edns;
            var length = DnsQuery.Write(_query, r.Id, r.QName, (ushort)r.Type, r.Edns ? Settings.EdnsPayloadSize : 0);
            var result = socket.Send(r.Server, Settings.ServerPort, _query.AsSpan(0, length), now);
            if (result == StackError.None)
            {
                Counters.QueriesSent++;
                if (r.SentOpt) Counters.EdnsQueries++;
                SetDeadline(r, now + Settings.Timeout);
                _context.Trace("Dns", $"query {r.Id:x4} for {r.QueryName} {r.Type} to {r.Server} (attempt {r.Attempt}{(r.SentOpt ? ", EDNS" : "")})");
                return;
            }
            // Unreachable at once (no route, ARP failed): no point in retrying this server.
            r.Outcomes.Add($"{r.Server} unreachable ({result})");
            if (!NextServer(r, now)) return;
        }
    }

    /// <summary>RFC 7766 5: the UDP answer was truncated; ask the same server again over TCP.</summary>
    private void SendOverTcp(Resolution r, TimeSpan now)
    {
        CloseTransport(r, now);
        Counters.TcpQueries++;
        r.Id = (ushort)_context.Unpredictable.Next(65536);
        r.SentOpt = false; // TCP has room for any answer: no payload size to advertise
        var length = DnsQuery.Write(_query, r.Id, r.QName, (ushort)r.Type);
        var exchange = new DnsTcpExchange(_query.AsSpan(0, length), (x, m, n) => OnTcpResponse(r, x, m.Span, n), (x, why, n) => OnTcpFailure(r, x, why, n));
        r.Tcp = exchange;
        SetDeadline(r, now + Settings.TcpTimeout);
        _context.Trace("Dns", $"query {r.Id:x4} for {r.QueryName} {r.Type} to {r.Server} over TCP (the UDP answer was truncated)");
        exchange.Start(_tcp, r.Server, Settings.ServerPort, now);
    }

    private void SetDeadline(Resolution r, TimeSpan deadline)
    {
        r.Deadline = deadline;
        if (deadline < _nextDeadline) _nextDeadline = deadline;
    }

    /// <summary>Moves to the next server; false (and the resolution failed) when none is left.</summary>
    private bool NextServer(Resolution r, TimeSpan now)
    {
        r.ServerIndex++;
        r.Attempt = 0;
        r.Edns = Settings.EdnsPayloadSize > 0;
        if (r.ServerIndex < r.Servers.Length) return true;
        var tried = string.Join(", ", r.Outcomes);
        Finish(r, r.AnyServerFailure
            ? new StackException(StackError.ServerFailure, $"No DNS server could resolve '{r.QueryName}': {tried}.")
            : new StackException(StackError.TimedOut, $"No DNS server answered for '{r.QueryName}': {tried}."), now);
        return false;
    }

    private void OnUdpResponse(Resolution r, IUdpPort socket, Ipv4Address source, ushort sourcePort, ReadOnlySpan<byte> data, TimeSpan now)
    {
        Counters.ResponsesReceived++;
        if (socket != r.Socket || r.Done || source != r.Server || sourcePort != Settings.ServerPort) { Counters.DroppedMismatched++; return; }
        if (DnsMessage.Parse(data) is not { } message) { Counters.DroppedMalformed++; return; }
        if (!message.Answers(r.Id, r.QName, (ushort)r.Type)) { Counters.DroppedMismatched++; return; }
        Accept(r, message, overTcp: false, now);
    }

    private void OnTcpResponse(Resolution r, DnsTcpExchange exchange, ReadOnlySpan<byte> data, TimeSpan now)
    {
        if (exchange != r.Tcp || r.Done) return;
        Counters.ResponsesReceived++;
        r.Tcp = null;
        var message = DnsMessage.Parse(data);
        if (message is null) Counters.DroppedMalformed++;
        else if (!message.Answers(r.Id, r.QName, (ushort)r.Type)) Counters.DroppedMismatched++;
        else
        {
            Accept(r, message, overTcp: true, now);
            return;
        }
        // Over TCP the connection is ours alone: a wrong answer there will not be followed by the right one.
        TcpFailed(r, message is null ? "sent a malformed answer over TCP" : "sent an answer to another question over TCP", now);
    }

    private void OnTcpFailure(Resolution r, DnsTcpExchange exchange, string why, TimeSpan now)
    {
        if (exchange != r.Tcp || r.Done) return; // an exchange given up already
        r.Tcp = null;
        TcpFailed(r, why, now);
    }

    /// <summary>The TCP exchange with the current server gave no answer: the next server, asked over UDP again.</summary>
    private void TcpFailed(Resolution r, string why, TimeSpan now)
    {
        Counters.TcpFailures++;
        r.AnyServerFailure = true;
        r.Outcomes.Add($"{r.Server} {why}");
        if (NextServer(r, now)) SendQuery(r, now);
    }

    /// <summary>A response that answers our question: what it says decides what comes next.</summary>
    private void Accept(Resolution r, DnsMessage m, bool overTcp, TimeSpan now)
    {
        Counters.ResponsesAccepted++;
        var server = r.Server;
        if (Edns.RejectedByServer(m, r.SentOpt))
        {
            Counters.EdnsFallbacks++;
            _context.Trace("Dns", $"{server} answered {DnsConstants.RcodeName(m.Rcode)} to EDNS: asking again without it");
            r.Edns = false;
            r.Attempt = 0;
            SendQuery(r, now);
            return;
        }
        if (m.Truncated && !overTcp)
        {
            Counters.TruncatedAnswers++;
            SendOverTcp(r, now);
            return;
        }
        var chain = DnsChain.Follow(m.Records, r.QueryName, r.Type);
        var alias = chain.Aliases.Count > 0 || r.Aliases.Count > 0 ? $" (via CNAME {chain.FinalName})" : "";
        switch (m.Rcode)
        {
            case DnsConstants.RcodeNameError:
                Counters.NameErrors++;
                if (r.Cacheable && r.Aliases.Count == 0 && chain.Aliases.Count == 0) _cache.StoreNegative(r.Name, r.Type, true, m, server, now);
                CandidateNotFound(r, $"'{r.Name}'{alias} does not exist (NXDOMAIN) according to {server}", now);
                return;
            case DnsConstants.RcodeNoError when chain.Looped || r.Aliases.Count + chain.Aliases.Count > DnsConstants.MaxCnameChain:
                ServerFailed(r, "a CNAME loop or a chain too long", now);
                return;
            case DnsConstants.RcodeNoError when chain.Data.Count > 0:
                var records = r.Aliases.Concat(m.Records).ToArray();
                if (r.Cacheable)
                    _cache.StoreAnswer(r.Name, r.Type, records, server, r.Aliases.Concat(chain.Aliases).Concat(chain.Data).Min(x => x.Ttl), now);
                Finish(r, new DnsAnswer(r.Name, r.Type, records, server, false, overTcp), now);
                return;
            case DnsConstants.RcodeNoError when chain.Aliases.Count > 0 && DnsCache.NegativeTtl(m) is null:
                // The chain ends at a name the server did not answer for (and no SOA says it has nothing): ask for it.
                Counters.CnameQueries++;
                r.Aliases.AddRange(chain.Aliases);
                r.QueryName = chain.FinalName;
                r.QName = DnsName.Encode(chain.FinalName);
                r.Attempt = 0;
                SendQuery(r, now);
                return;
            case DnsConstants.RcodeNoError:
                Counters.NoData++;
                if (r.Cacheable && r.Aliases.Count == 0 && chain.Aliases.Count == 0) _cache.StoreNegative(r.Name, r.Type, false, m, server, now);
                CandidateNotFound(r, $"'{r.Name}'{alias} has no {r.Type} record according to {server}", now);
                return;
            default:
                // SERVFAIL, REFUSED and the like speak for this server only: ask the next one (RFC 1034 5.3.3).
                ServerFailed(r, $"answered {DnsConstants.RcodeName(m.Rcode)}", now);
                return;
        }
    }

    private void ServerFailed(Resolution r, string what, TimeSpan now)
    {
        Counters.ServerFailures++;
        r.AnyServerFailure = true;
        r.Outcomes.Add($"{r.Server} {what}");
        if (NextServer(r, now)) SendQuery(r, now);
    }

    /// <summary>The candidate name does not exist (or has no such record): the next one on the search list, or NameNotFound.</summary>
    private void CandidateNotFound(Resolution r, string why, TimeSpan now)
    {
        r.NotFound.Add(why);
        r.CandidateIndex++;
        StartCandidate(r, now);
    }

    private void FailNotFound(Resolution r, TimeSpan now)
    {
        var message = r.NotFound.Count == 1 ? r.NotFound[0] + "." : $"'{r.Asked}' was not found: {string.Join("; ", r.NotFound)}.";
        Finish(r, new StackException(StackError.NameNotFound, message), now);
    }

    /// <summary>ICMP port/host unreachable about our query: the server is not there, so move on at once.</summary>
    private bool OnSendError(Resolution r, IUdpPort socket, StackError error, Ipv4Address destination, ushort destinationPort, TimeSpan now)
    {
        if (socket != r.Socket || r.Done || destination != r.Server || destinationPort != Settings.ServerPort) return false;
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
                if (r.Tcp is { } tcp)
                {
                    tcp.Abort(now);
                    r.Tcp = null;
                    TcpFailed(r, $"did not answer over TCP within {Settings.TcpTimeout.TotalSeconds:0.###} s", now);
                }
                else if (r.Attempt >= Settings.Attempts)
                {
                    r.Outcomes.Add($"{r.Server} did not answer ({r.Attempt} x {Settings.Timeout.TotalSeconds:0.###} s)");
                    if (NextServer(r, now)) SendQuery(r, now);
                }
                else SendQuery(r, now);
                if (r.Done) { i--; continue; } // Finish removed it
            }
            if (r.Deadline < next) next = r.Deadline;
        }
        _nextDeadline = next;
        return next == TimeSpan.MaxValue ? null : next;
    }

    private void Finish(Resolution r, DnsAnswer answer, TimeSpan now)
    {
        End(r, now);
        r.Completion.TrySetResult(answer);
    }

    private void Finish(Resolution r, StackException error, TimeSpan now)
    {
        End(r, now);
        r.Completion.TrySetException(error);
    }

    private void End(Resolution r, TimeSpan now)
    {
        CloseTransport(r, now);
        _active.Remove(r);
    }

    private static void CloseTransport(Resolution r, TimeSpan now)
    {
        r.Socket?.Release();
        r.Socket = null;
        r.Tcp?.Abort(now);
        r.Tcp = null;
    }

    public int ClearCache() => _cache.Clear();

    /// <summary>The stack stopped: every resolution in flight fails with StackStopped.</summary>
    public void Dispose()
    {
        foreach (var r in _active.ToArray())
            r.Completion.TrySetException(new StackException(StackError.StackStopped, $"The stack stopped while resolving '{r.QueryName}'."));
        _active.Clear();
    }
}
