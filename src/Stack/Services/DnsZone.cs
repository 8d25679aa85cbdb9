using System.Buffers.Binary;
using System.Text;
using NetStack.Dns;

namespace NetStack.Services;

/// <summary>One resource record: owner name (normalized), type, TTL, its RDATA in wire form (names uncompressed) and as text.</summary>
public sealed record DnsRecord(string Name, DnsRecordType Type, uint Ttl, byte[] Data, string Text)
{
    /// <summary>For CNAME: the name it points to.</summary>
    public string? Target { get; init; }

    public static DnsRecord A(string name, Ipv4Address address, uint ttl = DnsZone.DefaultTtl)
    {
        var data = new byte[4];
        address.Write(data);
        return new(DnsName.Normalize(name), DnsRecordType.A, ttl, data, address.ToString());
    }

    /// <summary>RFC 3596 2.2: an IPv6 address (served and resolved; the stack itself speaks IPv4 only).</summary>
    public static DnsRecord Aaaa(string name, System.Net.IPAddress address, uint ttl = DnsZone.DefaultTtl)
    {
        if (address.AddressFamily != System.Net.Sockets.AddressFamily.InterNetworkV6) throw new ArgumentException($"{address} is not an IPv6 address.", nameof(address));
        return new(DnsName.Normalize(name), DnsRecordType.AAAA, ttl, address.GetAddressBytes(), address.ToString());
    }

    /// <summary>RFC 2782: priority, weight, port, then the target's name (never compressed).</summary>
    public static DnsRecord Srv(string name, ushort priority, ushort weight, ushort port, string target, uint ttl = DnsZone.DefaultTtl)
    {
        var t = NameData(target);
        var data = new byte[6 + t.Length];
        BinaryPrimitives.WriteUInt16BigEndian(data, priority);
        BinaryPrimitives.WriteUInt16BigEndian(data.AsSpan(2), weight);
        BinaryPrimitives.WriteUInt16BigEndian(data.AsSpan(4), port);
        t.CopyTo(data, 6);
        return new(DnsName.Normalize(name), DnsRecordType.SRV, ttl, data, $"{priority} {weight} {port} {DnsName.Normalize(target)}");
    }

    public static DnsRecord Cname(string name, string target, uint ttl = DnsZone.DefaultTtl) =>
        new(DnsName.Normalize(name), DnsRecordType.CNAME, ttl, NameData(target), DnsName.Normalize(target)) { Target = DnsName.Normalize(target) };

    public static DnsRecord Ptr(string name, string target, uint ttl = DnsZone.DefaultTtl) =>
        new(DnsName.Normalize(name), DnsRecordType.PTR, ttl, NameData(target), DnsName.Normalize(target));

    public static DnsRecord Ns(string name, string server, uint ttl = DnsZone.DefaultTtl) =>
        new(DnsName.Normalize(name), DnsRecordType.NS, ttl, NameData(server), DnsName.Normalize(server));

    /// <summary>RFC 1035 3.3.9: a 16-bit preference, then the exchange's name.</summary>
    public static DnsRecord Mx(string name, ushort preference, string exchange, uint ttl = DnsZone.DefaultTtl)
    {
        var target = NameData(exchange);
        var data = new byte[2 + target.Length];
        BinaryPrimitives.WriteUInt16BigEndian(data, preference);
        target.CopyTo(data, 2);
        return new(DnsName.Normalize(name), DnsRecordType.MX, ttl, data, $"{preference} {DnsName.Normalize(exchange)}");
    }

    /// <summary>RFC 1035 3.3.14: one or more character-strings of up to 255 bytes each.</summary>
    public static DnsRecord Txt(string name, string text, uint ttl = DnsZone.DefaultTtl)
    {
        var bytes = Encoding.UTF8.GetBytes(text);
        var data = new List<byte>();
        for (int i = 0; i == 0 || i < bytes.Length; i += 255)
        {
            var n = Math.Min(255, bytes.Length - i);
            data.Add((byte)n);
            data.AddRange(bytes.AsSpan(i, n).ToArray());
        }
        return new(DnsName.Normalize(name), DnsRecordType.TXT, ttl, data.ToArray(), text);
    }

    /// <summary>RFC 1035 3.3.13 (minimum: the negative-caching TTL, RFC 2308 4).</summary>
    public static DnsRecord Soa(string zone, string primary, string mailbox, uint serial, uint minimum, uint ttl = DnsZone.DefaultTtl)
    {
        var m = NameData(primary);
        var r = NameData(mailbox);
        var data = new byte[m.Length + r.Length + 20];
        m.CopyTo(data, 0);
        r.CopyTo(data, m.Length);
        var p = m.Length + r.Length;
        foreach (var v in new[] { serial, 3600u, 600u, 86400u, minimum })
        {
            BinaryPrimitives.WriteUInt32BigEndian(data.AsSpan(p), v);
            p += 4;
        }
        return new(DnsName.Normalize(zone), DnsRecordType.SOA, ttl, data, $"{DnsName.Normalize(primary)} {DnsName.Normalize(mailbox)} {serial}");
    }

    private static byte[] NameData(string name) => DnsName.Encode(DnsName.Normalize(name));
}

/// <summary>
/// The names a <see cref="DnsService"/> is authoritative for: one or more zones (origins) and their records.
/// Thread-safe: records may be added while the service answers.
/// </summary>
public sealed class DnsZone
{
    public const uint DefaultTtl = 60;
    private readonly object _gate = new();
    private readonly List<string> _origins = new();
    private readonly List<DnsRecord> _records = new();

    public IReadOnlyList<string> Origins { get { lock (_gate) return _origins.ToArray(); } }
    public IReadOnlyList<DnsRecord> Records { get { lock (_gate) return _records.ToArray(); } }

    /// <summary>Makes this server authoritative for <paramref name="origin"/> and adds its SOA and NS records.</summary>
    public void AddZone(string origin, string primary)
    {
        origin = DnsName.Normalize(origin);
        lock (_gate) _origins.Add(origin);
        Add(DnsRecord.Soa(origin, primary, "hostmaster." + primary, serial: 1, minimum: DefaultTtl));
        Add(DnsRecord.Ns(origin, primary));
    }

    public void Add(DnsRecord record)
    {
        lock (_gate) _records.Add(record);
    }

    /// <summary>The zone <paramref name="name"/> falls in (the longest matching origin), or null: not ours.</summary>
    public string? ZoneOf(string name)
    {
        lock (_gate)
            return _origins.Where(o => name == o || name.EndsWith("." + o, StringComparison.Ordinal)).MaxBy(o => o.Length);
    }

    public IReadOnlyList<DnsRecord> Lookup(string name)
    {
        lock (_gate) return _records.Where(r => r.Name == name).ToArray();
    }

    /// <summary>True when the name owns records or has names below it (an empty non-terminal, RFC 8020).</summary>
    public bool Exists(string name)
    {
        lock (_gate) return _records.Any(r => r.Name == name || r.Name.EndsWith("." + name, StringComparison.Ordinal));
    }

    public DnsRecord? SoaOf(string origin)
    {
        lock (_gate) return _records.FirstOrDefault(r => r.Name == origin && r.Type == DnsRecordType.SOA);
    }

    /// <summary>
    /// The embedded lab's names, around the service host at <paramref name="host"/>: <paramref name="domain"/> (A, MX,
    /// TXT, NS, SOA), host. (A, and an AAAA from the documentation prefix), ns. and mail. (A), www. (CNAME to host.),
    /// alias. (CNAME to www., a chain of two), _http._tcp. (SRV), many. (40 A records in 198.51.100.0/24: about 670
    /// bytes, over 512, so it needs EDNS), big. (30 TXT records, about 2 KB: truncated over UDP, whole over TCP), and the
    /// reverse zone of the host's subnet (on octet boundaries) with a PTR for the host.
    /// </summary>
    public static DnsZone ForLab(Ipv4Address host, int prefixLength, string domain = "lab.test")
    {
        domain = DnsName.Normalize(domain);
        var zone = new DnsZone();
        var hostName = "host." + domain;
        zone.AddZone(domain, "ns." + domain);
        zone.Add(DnsRecord.A(domain, host));
        zone.Add(DnsRecord.Mx(domain, 10, "mail." + domain));
        zone.Add(DnsRecord.Txt(domain, "NetStack embedded lab: echo 7, discard 9, daytime 13, chargen 19, http 80, dns 53 on " + hostName));
        zone.Add(DnsRecord.A(hostName, host));
        zone.Add(DnsRecord.Aaaa(hostName, System.Net.IPAddress.Parse("2001:db8::" + (host.Value & 0xFF).ToString("x"))));
        zone.Add(DnsRecord.Srv("_http._tcp." + domain, 0, 0, 80, hostName));
        for (int i = 0; i < 40; i++) zone.Add(DnsRecord.A("many." + domain, new Ipv4Address(198, 51, 100, (byte)(100 + i))));
        for (int i = 0; i < 30; i++) zone.Add(DnsRecord.Txt("big." + domain, $"{i:D2} a long answer: TXT records that together need more than one UDP datagram"));
        zone.Add(DnsRecord.A("ns." + domain, host));
        zone.Add(DnsRecord.A("mail." + domain, host));
        zone.Add(DnsRecord.Cname("www." + domain, hostName));
        zone.Add(DnsRecord.Cname("alias." + domain, "www." + domain));

        var octets = Math.Clamp(prefixLength / 8, 1, 3);
        var reverse = string.Join('.', DnsName.ReverseName(host).Split('.').Skip(4 - octets));
        zone.AddZone(reverse, "ns." + domain);
        zone.Add(DnsRecord.Ptr(DnsName.ReverseName(host), hostName));
        return zone;
    }
}
