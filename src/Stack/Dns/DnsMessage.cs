using System.Buffers.Binary;

namespace NetStack.Dns;

/// <summary>DNS message constants (RFC 1035 4.1).</summary>
public static class DnsConstants
{
    public const int HeaderLength = 12;
    public const ushort TypeA = 1;
    public const ushort TypeCname = 5;
    public const ushort ClassIn = 1;
    public const ushort FlagResponse = 0x8000;
    public const ushort FlagTruncated = 0x0200;
    public const ushort FlagRecursionDesired = 0x0100;
    public const ushort FlagRecursionAvailable = 0x0080;
    public const int OpcodeMask = 0x7800;
    public const int RcodeMask = 0x000F;
    public const int RcodeNoError = 0;
    public const int RcodeFormatError = 1;
    public const int RcodeServerFailure = 2;
    public const int RcodeNameError = 3;
    public const int RcodeNotImplemented = 4;
    public const int RcodeRefused = 5;
    /// <summary>CNAME links followed within one answer before giving up (a loop or an absurd chain).</summary>
    public const int MaxCnameChain = 8;

    public static string RcodeName(int rcode) => rcode switch
    {
        RcodeNoError => "NOERROR",
        RcodeFormatError => "FORMERR",
        RcodeServerFailure => "SERVFAIL",
        RcodeNameError => "NXDOMAIN",
        RcodeNotImplemented => "NOTIMP",
        RcodeRefused => "REFUSED",
        _ => $"RCODE {rcode}",
    };
}

/// <summary>How a response to our query reads.</summary>
internal enum DnsResponseKind
{
    /// <summary>Malformed: cannot be parsed safely.</summary>
    Malformed,
    /// <summary>Well formed but not the answer to our question (id, question, or a query rather than a response).</summary>
    Mismatched,
    /// <summary>Addresses found (CNAMEs followed).</summary>
    Answer,
    /// <summary>The name exists but has no A record (NOERROR with none, RFC 2308 "NODATA").</summary>
    NoData,
    /// <summary>NXDOMAIN.</summary>
    NameError,
    /// <summary>SERVFAIL, REFUSED, FORMERR, NOTIMP, or a truncated answer without addresses.</summary>
    ServerFailure,
}

/// <summary>Builds A queries and reads their responses (RFC 1035 4.1), in place, without trusting any field.</summary>
internal static class DnsMessage
{
    /// <summary>Writes a recursive A/IN query for <paramref name="qname"/> (wire form) into <paramref name="buffer"/>; returns its length.</summary>
    public static int WriteQuery(Span<byte> buffer, ushort id, ReadOnlySpan<byte> qname)
    {
        BinaryPrimitives.WriteUInt16BigEndian(buffer, id);
        BinaryPrimitives.WriteUInt16BigEndian(buffer[2..], DnsConstants.FlagRecursionDesired); // RFC 1123 6.1.3.1: stubs ask for recursion
        BinaryPrimitives.WriteUInt16BigEndian(buffer[4..], 1); // QDCOUNT
        buffer.Slice(6, 6).Clear(); // ANCOUNT, NSCOUNT, ARCOUNT
        qname.CopyTo(buffer[DnsConstants.HeaderLength..]);
        var pos = DnsConstants.HeaderLength + qname.Length;
        BinaryPrimitives.WriteUInt16BigEndian(buffer[pos..], DnsConstants.TypeA);
        BinaryPrimitives.WriteUInt16BigEndian(buffer[(pos + 2)..], DnsConstants.ClassIn);
        return pos + 4;
    }

    /// <summary>
    /// Reads a response to query <paramref name="id"/> for <paramref name="qname"/>. For an Answer, adds the
    /// addresses to <paramref name="addresses"/> and gives the smallest TTL along the chain (seconds); for
    /// the failures, <paramref name="rcode"/> says which.
    /// </summary>
    public static DnsResponseKind Parse(ReadOnlySpan<byte> msg, ushort id, ReadOnlySpan<byte> qname, List<Ipv4Address> addresses,
        out uint ttl, out int rcode)
    {
        ttl = 0;
        rcode = 0;
        if (msg.Length < DnsConstants.HeaderLength) return DnsResponseKind.Malformed;
        var flags = BinaryPrimitives.ReadUInt16BigEndian(msg[2..]);
        if (BinaryPrimitives.ReadUInt16BigEndian(msg) != id || (flags & DnsConstants.FlagResponse) == 0 || (flags & DnsConstants.OpcodeMask) != 0)
            return DnsResponseKind.Mismatched;
        rcode = flags & DnsConstants.RcodeMask;
        var qdcount = BinaryPrimitives.ReadUInt16BigEndian(msg[4..]);
        var ancount = BinaryPrimitives.ReadUInt16BigEndian(msg[6..]);
        // The response must repeat our question (RFC 5452 9.1: id, question and source all have to match).
        if (qdcount != 1) return DnsResponseKind.Mismatched;
        Span<byte> name = stackalloc byte[DnsName.MaxWireLength];
        if (!DnsName.TryRead(msg, DnsConstants.HeaderLength, name, out var nameLength, out var pos) || pos + 4 > msg.Length)
            return DnsResponseKind.Malformed;
        if (!name[..nameLength].SequenceEqual(qname)
            || BinaryPrimitives.ReadUInt16BigEndian(msg[pos..]) != DnsConstants.TypeA
            || BinaryPrimitives.ReadUInt16BigEndian(msg[(pos + 2)..]) != DnsConstants.ClassIn)
            return DnsResponseKind.Mismatched;
        var answersAt = pos + 4;

        // One pass checks every answer record is in bounds, so the chain walk below can trust offsets.
        pos = answersAt;
        for (int i = 0; i < ancount; i++)
        {
            pos = DnsName.Skip(msg, pos);
            if (pos < 0 || pos + 10 > msg.Length) return DnsResponseKind.Malformed;
            var rdlength = BinaryPrimitives.ReadUInt16BigEndian(msg[(pos + 8)..]);
            pos += 10 + rdlength;
            if (pos > msg.Length) return DnsResponseKind.Malformed;
        }

        if (rcode == DnsConstants.RcodeNameError) return DnsResponseKind.NameError;
        if (rcode != DnsConstants.RcodeNoError) return DnsResponseKind.ServerFailure;

        // Follow the CNAME chain from the question within the answer section (RFC 1034 3.6.2).
        Span<byte> current = stackalloc byte[DnsName.MaxWireLength];
        qname.CopyTo(current);
        var currentLength = qname.Length;
        var minTtl = uint.MaxValue;
        for (int hop = 0; hop <= DnsConstants.MaxCnameChain; hop++)
        {
            var cnameAt = -1;
            uint cnameTtl = 0;
            pos = answersAt;
            for (int i = 0; i < ancount; i++)
            {
                DnsName.TryRead(msg, pos, name, out nameLength, out pos);
                var type = BinaryPrimitives.ReadUInt16BigEndian(msg[pos..]);
                var cls = BinaryPrimitives.ReadUInt16BigEndian(msg[(pos + 2)..]);
                var rrTtl = BinaryPrimitives.ReadUInt32BigEndian(msg[(pos + 4)..]);
                if (rrTtl > int.MaxValue) rrTtl = 0; // RFC 2181 8: a TTL with the top bit set is treated as zero
                var rdlength = BinaryPrimitives.ReadUInt16BigEndian(msg[(pos + 8)..]);
                var rdata = pos + 10;
                pos = rdata + rdlength;
                if (cls != DnsConstants.ClassIn || !name[..nameLength].SequenceEqual(current[..currentLength])) continue;
                if (type == DnsConstants.TypeA)
                {
                    if (rdlength != 4) return DnsResponseKind.Malformed;
                    addresses.Add(Ipv4Address.Read(msg[rdata..]));
                    if (rrTtl < minTtl) minTtl = rrTtl;
                }
                else if (type == DnsConstants.TypeCname && cnameAt < 0)
                {
                    cnameAt = rdata;
                    cnameTtl = rrTtl;
                }
            }
            if (addresses.Count > 0)
            {
                ttl = minTtl;
                return DnsResponseKind.Answer;
            }
            if (cnameAt < 0) break;
            if (!DnsName.TryRead(msg, cnameAt, current, out currentLength, out _)) return DnsResponseKind.Malformed;
            if (cnameTtl < minTtl) minTtl = cnameTtl;
        }
        // A truncated response (TC) without our addresses needs TCP, which this resolver does not speak.
        return (flags & DnsConstants.FlagTruncated) != 0 ? DnsResponseKind.ServerFailure : DnsResponseKind.NoData;
    }
}
