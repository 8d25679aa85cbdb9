using NetStack.Dns;

namespace NetStack.PowerShell;

/// <summary>
/// One record from Resolve-StackDnsName, shaped like Resolve-DnsName's: Name, Type, TTL, Section, then the type's own
/// fields in the derived classes (StackDnsRecordA has IPAddress/IP4Address, MX has NameExchange/Preference...). Server
/// and FromCache say where the answer came from; OverTcp that it was too large for UDP.
/// </summary>
public class StackDnsRecord
{
    public string Name { get; private set; } = "";
    public string Type { get; private set; } = "";
    public int TTL { get; private set; }
    /// <summary>Answer, Authority or Additional.</summary>
    public string Section { get; private set; } = "Answer";
    public string? Server { get; private set; }
    public bool FromCache { get; private set; }
    public bool OverTcp { get; private set; }
    public string Stack { get; private set; } = "";
    /// <summary>The record's data in zone-file form ("10 mail.lab.test", "192.0.2.1"...).</summary>
    public string Data { get; private set; } = "";
    /// <summary>A and AAAA: the address; null on other records (there for scripts: (Resolve-StackDnsName x).IPAddress under strict mode).</summary>
    public string? IPAddress { get; private set; }

    /// <summary>The shape for <paramref name="r"/>'s type, with the fields every record has.</summary>
    internal static StackDnsRecord From(DnsResourceRecord r, DnsAnswer answer, string stack)
    {
        StackDnsRecord shaped = r.Type switch
        {
            DnsRecordType.A => new StackDnsRecordA { IP4Address = r.Address.ToString()! },
            DnsRecordType.AAAA => new StackDnsRecordAAAA { IP6Address = r.Address6!.ToString() },
            DnsRecordType.CNAME or DnsRecordType.PTR or DnsRecordType.NS => new StackDnsRecordNameHost { NameHost = r.Target! },
            DnsRecordType.MX => new StackDnsRecordMX { NameExchange = r.Target!, Preference = r.Preference },
            DnsRecordType.TXT => new StackDnsRecordTXT { Strings = r.Strings!.ToArray() },
            DnsRecordType.SOA => new StackDnsRecordSOA
            {
                PrimaryServer = r.Target!, NameAdministrator = r.Mailbox!, SerialNumber = r.Serial, TimeToZoneRefresh = r.Refresh,
                TimeToZoneFailureRetry = r.Retry, TimeToExpiration = r.Expire, DefaultTTL = r.Minimum,
            },
            DnsRecordType.SRV => new StackDnsRecordSRV { NameTarget = r.Target!, Priority = r.Priority, Weight = r.Weight, Port = r.Port },
            _ => new StackDnsRecord(),
        };
        shaped.Set(r, answer, stack);
        return shaped;
    }

    private void Set(DnsResourceRecord r, DnsAnswer answer, string stack)
    {
        Name = r.Name;
        Type = Enum.IsDefined(r.Type) ? r.Type.ToString() : $"TYPE{(ushort)r.Type}"; // RFC 3597 5 for types we do not know
        TTL = (int)r.Ttl;
        Section = r.Section.ToString();
        Data = r.DataText;
        IPAddress = r.Address?.ToString() ?? r.Address6?.ToString();
        Server = answer.Server.ToString();
        FromCache = answer.FromCache;
        OverTcp = answer.OverTcp;
        Stack = stack;
    }
}

public sealed class StackDnsRecordA : StackDnsRecord
{
    public string IP4Address { get; init; } = "";
}

/// <summary>AAAA: parsed and shown, though the stack itself speaks IPv4 only.</summary>
public sealed class StackDnsRecordAAAA : StackDnsRecord
{
    public string IP6Address { get; init; } = "";
}

/// <summary>CNAME, PTR and NS: the name the record points to.</summary>
public sealed class StackDnsRecordNameHost : StackDnsRecord
{
    public string NameHost { get; init; } = "";
}

public sealed class StackDnsRecordMX : StackDnsRecord
{
    public string NameExchange { get; init; } = "";
    public int Preference { get; init; }
}

public sealed class StackDnsRecordTXT : StackDnsRecord
{
    public string[] Strings { get; init; } = Array.Empty<string>();
}

public sealed class StackDnsRecordSOA : StackDnsRecord
{
    public string PrimaryServer { get; init; } = "";
    public string NameAdministrator { get; init; } = "";
    public uint SerialNumber { get; init; }
    public uint TimeToZoneRefresh { get; init; }
    public uint TimeToZoneFailureRetry { get; init; }
    public uint TimeToExpiration { get; init; }
    /// <summary>The zone's MINIMUM: how long negative answers are cached (RFC 2308).</summary>
    public uint DefaultTTL { get; init; }
}

public sealed class StackDnsRecordSRV : StackDnsRecord
{
    public string NameTarget { get; init; } = "";
    public int Priority { get; init; }
    public int Weight { get; init; }
    public int Port { get; init; }
}
