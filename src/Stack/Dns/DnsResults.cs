namespace NetStack.Dns;

/// <summary>
/// The outcome of a name resolution: <see cref="Addresses"/> of <see cref="Name"/> (the name that answered, a search
/// domain appended when one was), valid for <see cref="Ttl"/> seconds (the remaining time when <see cref="FromCache"/>), as
/// answered by <see cref="Server"/> (null for a literal address, which resolves to itself).
/// </summary>
public sealed record DnsResult(string Name, Ipv4Address[] Addresses, int Ttl, Ipv4Address? Server, bool FromCache);

/// <summary>
/// The answer to a question of any type: <see cref="Records"/> holds the CNAME records followed from <see cref="Name"/>,
/// then every record of the final response in its section (answer, authority, additional), as Resolve-DnsName shows
/// them. <see cref="OverTcp"/>: the UDP answer came truncated and the question was asked again over TCP.
/// </summary>
public sealed record DnsAnswer(string Name, DnsRecordType Type, IReadOnlyList<DnsResourceRecord> Records, Ipv4Address Server, bool FromCache, bool OverTcp)
{
    /// <summary>The records of the type asked at the end of the CNAME chain (for ANY and CNAME: the records at the name).</summary>
    public IReadOnlyList<DnsResourceRecord> Data => DnsChain.Follow(Records, Name, Type).Data;
}

public sealed class DnsCounters : LayerCounters
{
    public override string Layer => "Dns";
    /// <summary>Resolutions asked for (literal addresses and cache hits included).</summary>
    public long Resolutions;
    /// <summary>Queries sent over UDP.</summary>
    public long QueriesSent;
    /// <summary>Queries sent again (same or next server) after a timeout.</summary>
    public long Retransmissions;
    public long ResponsesReceived;
    public long ResponsesAccepted;
    /// <summary>Responses from another address or port, with a wrong id, or not repeating our question (RFC 5452), ignored while the query waits on.</summary>
    public long DroppedMismatched;
    public long DroppedMalformed;
    public long NameErrors;
    public long NoData;
    public long ServerFailures;
    public long Timeouts;
    public long CacheHits;
    public long CacheMisses;
    public long CacheEvictions;
    /// <summary>NXDOMAIN and NODATA answers kept (RFC 2308), and questions they answered.</summary>
    public long NegativeCacheStores;
    public long NegativeCacheHits;
    /// <summary>UDP answers with TC set; each is asked again over TCP (RFC 7766).</summary>
    public long TruncatedAnswers;
    public long TcpQueries;
    /// <summary>TCP exchanges that gave no answer: refused, reset, closed early, timed out, or a malformed answer.</summary>
    public long TcpFailures;
    /// <summary>Queries sent with an EDNS OPT record (RFC 6891), and those asked again without it after FORMERR/NOTIMP.</summary>
    public long EdnsQueries;
    public long EdnsFallbacks;
    /// <summary>Names tried from the search list after the first candidate did not exist.</summary>
    public long SearchNamesTried;
    /// <summary>Questions asked again for a CNAME's target the server did not follow itself.</summary>
    public long CnameQueries;
    public long DroppedTooManyQueries;
}
