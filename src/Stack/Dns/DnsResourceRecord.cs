using System.Buffers.Binary;
using System.Net;
using System.Text;

namespace NetStack.Dns;

/// <summary>
/// One resource record read from a response (RFC 1035 3.2.1, 4.1.3), its RDATA decoded by type: A and AAAA
/// (RFC 3596 2.2), CNAME, NS, PTR, MX, TXT and SOA (RFC 1035 3.3), SRV (RFC 2782). The fields of its type are set,
/// the others stay null or zero; a type we do not know keeps only <see cref="Data"/>.
/// </summary>
public sealed record DnsResourceRecord
{
    /// <summary>The owner name, lower-case, without the trailing dot.</summary>
    public required string Name { get; init; }
    public required DnsRecordType Type { get; init; }
    public ushort Class { get; init; } = DnsConstants.ClassIn;
    /// <summary>Seconds the record may be cached (on a cache hit: what is left of it).</summary>
    public required uint Ttl { get; init; }
    public DnsSection Section { get; init; }
    /// <summary>The RDATA as it came (names inside may be compression pointers into the message).</summary>
    public byte[] Data { get; init; } = Array.Empty<byte>();

    /// <summary>A: the IPv4 address.</summary>
    public Ipv4Address? Address { get; init; }
    /// <summary>AAAA: the IPv6 address (parsed and shown; the stack itself speaks IPv4 only).</summary>
    public IPAddress? Address6 { get; init; }
    /// <summary>CNAME, NS, PTR: the name the record points to; MX: the exchange; SRV: the target; SOA: the primary server.</summary>
    public string? Target { get; init; }
    /// <summary>MX: lower is preferred (RFC 1035 3.3.9).</summary>
    public ushort Preference { get; init; }
    /// <summary>TXT: the character-strings (RFC 1035 3.3.14), decoded as UTF-8.</summary>
    public IReadOnlyList<string>? Strings { get; init; }
    /// <summary>SOA: the responsible person's mailbox, as a name (RFC 1035 3.3.13).</summary>
    public string? Mailbox { get; init; }
    public uint Serial { get; init; }
    public uint Refresh { get; init; }
    public uint Retry { get; init; }
    public uint Expire { get; init; }
    /// <summary>SOA: the TTL of negative answers from this zone (RFC 2308 4).</summary>
    public uint Minimum { get; init; }
    /// <summary>SRV (RFC 2782).</summary>
    public ushort Priority { get; init; }
    public ushort Weight { get; init; }
    public ushort Port { get; init; }

    /// <summary>The RDATA in presentation form ("10 mail.lab.test", "192.0.2.1", quoted TXT strings...).</summary>
    public string DataText => Type switch
    {
        DnsRecordType.A => Address.ToString()!,
        DnsRecordType.AAAA => Address6!.ToString(),
        DnsRecordType.CNAME or DnsRecordType.NS or DnsRecordType.PTR => Target!,
        DnsRecordType.MX => $"{Preference} {Target}",
        DnsRecordType.TXT => string.Join(' ', Strings!.Select(s => "\"" + s + "\"")),
        DnsRecordType.SOA => $"{Target} {Mailbox} {Serial} {Refresh} {Retry} {Expire} {Minimum}",
        DnsRecordType.SRV => $"{Priority} {Weight} {Port} {Target}",
        _ => $"\\# {Data.Length} {Convert.ToHexString(Data)}", // RFC 3597 5: unknown RDATA
    };

    public override string ToString() => $"{Name} {Ttl} {Type} {DataText}";

    /// <summary>
    /// Reads one record at <paramref name="pos"/> of <paramref name="msg"/> and moves past it; null when malformed: out of
    /// bounds, a bad name, or RDATA whose length does not fit its type. An OPT record is read like any other (its class
    /// is the sender's UDP payload size; see <see cref="Edns"/>).
    /// </summary>
    internal static DnsResourceRecord? Read(ReadOnlySpan<byte> msg, ref int pos, DnsSection section)
    {
        Span<byte> wire = stackalloc byte[DnsName.MaxWireLength];
        if (!DnsName.TryRead(msg, pos, wire, out var length, out var p) || p + 10 > msg.Length) return null;
        var type = (DnsRecordType)BinaryPrimitives.ReadUInt16BigEndian(msg[p..]);
        var cls = BinaryPrimitives.ReadUInt16BigEndian(msg[(p + 2)..]);
        var ttl = BinaryPrimitives.ReadUInt32BigEndian(msg[(p + 4)..]);
        if (ttl > int.MaxValue && type != DnsRecordType.OPT) ttl = 0; // RFC 2181 8: a TTL with the top bit set is zero
        var rdlength = BinaryPrimitives.ReadUInt16BigEndian(msg[(p + 8)..]);
        var at = p + 10;
        if (at + rdlength > msg.Length) return null;
        pos = at + rdlength;
        var record = new DnsResourceRecord
        {
            Name = DnsName.ToText(wire[..length]), Type = type, Class = cls, Ttl = ttl, Section = section,
            Data = msg.Slice(at, rdlength).ToArray(),
        };
        return Decode(record, msg, at, rdlength);
    }

    /// <summary>The record with its type's fields filled in from the RDATA at <paramref name="at"/>; null when it does not parse.</summary>
    private static DnsResourceRecord? Decode(DnsResourceRecord r, ReadOnlySpan<byte> msg, int at, int length)
    {
        var end = at + length;
        var rdata = msg.Slice(at, length);
        switch (r.Type)
        {
            case DnsRecordType.A:
                return length == 4 ? r with { Address = Ipv4Address.Read(rdata) } : null;
            case DnsRecordType.AAAA:
                return length == 16 ? r with { Address6 = new IPAddress(rdata) } : null;
            case DnsRecordType.CNAME or DnsRecordType.NS or DnsRecordType.PTR:
                return ReadName(msg, at, end, out var name, out var next) && next == end ? r with { Target = name } : null;
            case DnsRecordType.MX:
                if (length < 3 || !ReadName(msg, at + 2, end, out var exchange, out next) || next != end) return null;
                return r with { Preference = BinaryPrimitives.ReadUInt16BigEndian(rdata), Target = exchange };
            case DnsRecordType.SRV:
                if (length < 7 || !ReadName(msg, at + 6, end, out var target, out next) || next != end) return null;
                return r with
                {
                    Priority = BinaryPrimitives.ReadUInt16BigEndian(rdata), Weight = BinaryPrimitives.ReadUInt16BigEndian(rdata[2..]),
                    Port = BinaryPrimitives.ReadUInt16BigEndian(rdata[4..]), Target = target,
                };
            case DnsRecordType.TXT:
                var strings = new List<string>();
                for (int i = 0; i < length;)
                {
                    var n = rdata[i];
                    if (i + 1 + n > length) return null;
                    strings.Add(Encoding.UTF8.GetString(rdata.Slice(i + 1, n)));
                    i += 1 + n;
                }
                return strings.Count > 0 ? r with { Strings = strings } : null; // RFC 1035 3.3.14: one or more
            case DnsRecordType.SOA:
                if (!ReadName(msg, at, end, out var primary, out next) || !ReadName(msg, next, end, out var mailbox, out next) || next + 20 != end)
                    return null;
                var f = msg.Slice(next, 20);
                return r with
                {
                    Target = primary, Mailbox = mailbox, Serial = BinaryPrimitives.ReadUInt32BigEndian(f),
                    Refresh = BinaryPrimitives.ReadUInt32BigEndian(f[4..]), Retry = BinaryPrimitives.ReadUInt32BigEndian(f[8..]),
                    Expire = BinaryPrimitives.ReadUInt32BigEndian(f[12..]), Minimum = BinaryPrimitives.ReadUInt32BigEndian(f[16..]),
                };
            default:
                return r;
        }
    }

    /// <summary>A (possibly compressed) name inside RDATA that must begin before <paramref name="end"/>.</summary>
    private static bool ReadName(ReadOnlySpan<byte> msg, int at, int end, out string name, out int next)
    {
        name = "";
        Span<byte> wire = stackalloc byte[DnsName.MaxWireLength];
        // The name is read within the message (pointers may reach back before the RDATA) but must start inside it.
        if (at >= end || !DnsName.TryRead(msg[..end], at, wire, out var length, out next)) { next = -1; return false; }
        name = DnsName.ToText(wire[..length]);
        return true;
    }
}
