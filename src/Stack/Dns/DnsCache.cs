namespace NetStack.Dns;

/// <summary>What the cache holds for a question: an answer's records (their TTLs counted down), or a negative answer.</summary>
internal sealed record DnsCacheHit(DnsResourceRecord[] Records, Ipv4Address Server, int RemainingSeconds, bool Negative, bool NameError);

/// <summary>
/// The resolver's cache. Answers are kept for the smallest TTL of their answer records (RFC 1035 3.2.1, RFC 2181 5.2),
/// capped by Dns.MaxCacheTtl; TTL 0 is used once and never kept. Negative answers (RFC 2308 5) are kept for the
/// smaller of the SOA record's TTL and its MINIMUM field, capped by Dns.MaxNegativeCacheTtl, and only when the server
/// sent that SOA: NXDOMAIN for the name and every type, NODATA for the name and the type asked. At most Dns.CacheSize
/// entries; when full, expired entries go first, else the one closest to expiry (counted). Loop-thread only.
/// </summary>
internal sealed class DnsCache(DnsSettings settings, DnsCounters counters)
{
    /// <summary>Type 0 keys an NXDOMAIN, which covers every type of the name.</summary>
    private readonly record struct Key(string Name, DnsRecordType Type);

    private sealed record Entry(DnsResourceRecord[] Records, Ipv4Address Server, TimeSpan Stored, TimeSpan Expires, bool Negative, bool NameError);

    private readonly Dictionary<Key, Entry> _entries = new();

    public int Count => _entries.Count;

    /// <summary>What is cached for <paramref name="name"/>/<paramref name="type"/> now, or null (counts a hit or a miss).</summary>
    public DnsCacheHit? Lookup(string name, DnsRecordType type, TimeSpan now)
    {
        if (settings.CacheSize == 0) return null;
        var entry = Find(new Key(name, 0), now) ?? Find(new Key(name, type), now);
        if (entry is null)
        {
            counters.CacheMisses++;
            return null;
        }
        var elapsed = (uint)Math.Floor((now - entry.Stored).TotalSeconds);
        var records = entry.Records.Select(r => r with { Ttl = r.Ttl > elapsed ? r.Ttl - elapsed : 0 }).ToArray();
        if (entry.Negative) counters.NegativeCacheHits++;
        else counters.CacheHits++;
        return new DnsCacheHit(records, entry.Server, (int)Math.Ceiling((entry.Expires - now).TotalSeconds), entry.Negative, entry.NameError);
    }

    private Entry? Find(Key key, TimeSpan now)
    {
        if (!_entries.TryGetValue(key, out var e)) return null;
        if (e.Expires > now) return e;
        _entries.Remove(key);
        return null;
    }

    /// <summary>Keeps an answer for <paramref name="ttlSeconds"/> (already the smallest of its answer records).</summary>
    public void StoreAnswer(string name, DnsRecordType type, DnsResourceRecord[] records, Ipv4Address server, uint ttlSeconds, TimeSpan now)
    {
        var seconds = Math.Min(ttlSeconds, Cap(settings.MaxCacheTtl));
        if (seconds == 0) return; // TTL 0: use once, never cache (RFC 1035 3.2.1)
        Store(new Key(name, type), new Entry(records, server, now, now + TimeSpan.FromSeconds(seconds), false, false), now);
    }

    /// <summary>
    /// Keeps a negative answer (RFC 2308 5) when <paramref name="response"/> carries the zone's SOA in its authority section:
    /// NXDOMAIN (<paramref name="nameError"/>) for the whole name, NODATA for <paramref name="type"/> only. Returns whether it was kept.
    /// </summary>
    public bool StoreNegative(string name, DnsRecordType type, bool nameError, DnsMessage response, Ipv4Address server, TimeSpan now)
    {
        if (settings.CacheSize == 0 || NegativeTtl(response) is not { } ttl) return false;
        var seconds = Math.Min(ttl, Cap(settings.MaxNegativeCacheTtl));
        if (seconds == 0) return false;
        var soa = response.Section(DnsSection.Authority).Where(r => r.Type == DnsRecordType.SOA).ToArray();
        Store(new Key(name, nameError ? 0 : type), new Entry(soa, server, now, now + TimeSpan.FromSeconds(seconds), true, nameError), now);
        counters.NegativeCacheStores++;
        return true;
    }

    /// <summary>RFC 2308 5: a negative answer lives for the smaller of the SOA's TTL and its MINIMUM; null without an SOA (not cached, RFC 2308 5).</summary>
    public static uint? NegativeTtl(DnsMessage response) =>
        response.Section(DnsSection.Authority).FirstOrDefault(r => r.Type == DnsRecordType.SOA) is { } soa ? Math.Min(soa.Ttl, soa.Minimum) : null;

    private static uint Cap(TimeSpan limit) => (uint)Math.Min(int.MaxValue, limit.TotalSeconds);

    private void Store(Key key, Entry entry, TimeSpan now)
    {
        if (!_entries.ContainsKey(key) && _entries.Count >= settings.CacheSize) Evict(now);
        _entries[key] = entry;
    }

    /// <summary>Makes room: drops expired entries, or else the one closest to expiry.</summary>
    private void Evict(TimeSpan now)
    {
        var expired = _entries.Where(e => e.Value.Expires <= now).Select(e => e.Key).ToList();
        if (expired.Count > 0)
        {
            foreach (var k in expired) _entries.Remove(k);
            return;
        }
        if (_entries.Count == 0) return;
        _entries.Remove(_entries.MinBy(e => e.Value.Expires).Key);
        counters.CacheEvictions++;
    }

    public int Clear()
    {
        var n = _entries.Count;
        _entries.Clear();
        return n;
    }
}
