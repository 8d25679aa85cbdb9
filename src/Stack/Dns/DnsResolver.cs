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
/// This file: the API, the search list, the cache and what an answer means; DnsResolver.Transport.cs: sending, matching
/// responses, timeouts and servers.
/// </summary>
internal sealed partial class DnsResolver
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

    public int ClearCache() => _cache.Clear();

    /// <summary>The stack stopped: every resolution in flight fails with StackStopped.</summary>
    public void Dispose()
    {
        foreach (var r in _active.ToArray())
            r.Completion.TrySetException(new StackException(StackError.StackStopped, $"The stack stopped while resolving '{r.QueryName}'."));
        _active.Clear();
    }
}
