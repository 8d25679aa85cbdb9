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
    public const ushort FlagAuthoritative = 0x0400;
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
    /// <summary>The largest UDP message a server may send to a client that did not say otherwise (RFC 1035 4.2.1).</summary>
    public const int MaxUdpMessage = 512;
    /// <summary>CNAME links followed for one question before giving up (a loop or an absurd chain).</summary>
    public const int MaxCnameChain = 8;

    public static string RcodeName(int rcode) => rcode switch
    {
        RcodeNoError => "NOERROR",
        RcodeFormatError => "FORMERR",
        RcodeServerFailure => "SERVFAIL",
        RcodeNameError => "NXDOMAIN",
        RcodeNotImplemented => "NOTIMP",
        RcodeRefused => "REFUSED",
        16 => "BADVERS",
        _ => $"RCODE {rcode}",
    };
}

/// <summary>Writes queries (RFC 1035 4.1.1, 4.1.2): one question, RD set, and an EDNS OPT record when asked for.</summary>
internal static class DnsQuery
{
    /// <summary>The longest query we write: header, the longest name, type and class, an OPT record.</summary>
    public const int MaxLength = DnsConstants.HeaderLength + DnsName.MaxWireLength + 4 + Edns.OptLength;

    /// <summary>
    /// Writes a recursive query for <paramref name="qname"/> (wire form) of <paramref name="qtype"/>/IN into
    /// <paramref name="buffer"/>, with an OPT record advertising <paramref name="ednsPayloadSize"/> unless it is 0; returns its length.
    /// </summary>
    public static int Write(Span<byte> buffer, ushort id, ReadOnlySpan<byte> qname, ushort qtype, int ednsPayloadSize = 0)
    {
        BinaryPrimitives.WriteUInt16BigEndian(buffer, id);
        BinaryPrimitives.WriteUInt16BigEndian(buffer[2..], DnsConstants.FlagRecursionDesired); // RFC 1123 6.1.3.1: stubs ask for recursion
        BinaryPrimitives.WriteUInt16BigEndian(buffer[4..], 1); // QDCOUNT
        buffer.Slice(6, 6).Clear(); // ANCOUNT, NSCOUNT, ARCOUNT
        qname.CopyTo(buffer[DnsConstants.HeaderLength..]);
        var pos = DnsConstants.HeaderLength + qname.Length;
        BinaryPrimitives.WriteUInt16BigEndian(buffer[pos..], qtype);
        BinaryPrimitives.WriteUInt16BigEndian(buffer[(pos + 2)..], DnsConstants.ClassIn);
        pos += 4;
        if (ednsPayloadSize > 0)
        {
            BinaryPrimitives.WriteUInt16BigEndian(buffer[10..], 1); // ARCOUNT: the OPT record
            pos += Edns.WriteOpt(buffer[pos..], ednsPayloadSize);
        }
        return pos;
    }
}

/// <summary>
/// A response read whole (RFC 1035 4.1): header, question, and every record of the three sections with its RDATA
/// decoded; the OPT pseudo-record (RFC 6891) is taken out of the additional section into <see cref="EdnsPayloadSize"/>
/// and the extended RCODE. Nothing is trusted: <see cref="Parse"/> gives null for anything out of bounds.
/// </summary>
internal sealed class DnsMessage
{
    public ushort Id { get; private init; }
    public ushort Flags { get; private init; }
    /// <summary>The RCODE, with the OPT record's upper bits when there is one (RFC 6891 6.1.3).</summary>
    public int Rcode { get; private set; }
    public int QuestionCount { get; private init; }
    /// <summary>The question's name in lower-case wire form (empty without a question).</summary>
    public byte[] QuestionName { get; private init; } = Array.Empty<byte>();
    public ushort QuestionType { get; private init; }
    public ushort QuestionClass { get; private init; }
    /// <summary>Answer, authority and additional records in message order, each with its <see cref="DnsResourceRecord.Section"/>.</summary>
    public List<DnsResourceRecord> Records { get; } = new();
    /// <summary>The UDP payload size the server's OPT record advertises; null when it sent none (no EDNS).</summary>
    public int? EdnsPayloadSize { get; private set; }

    public bool IsResponse => (Flags & DnsConstants.FlagResponse) != 0;
    public bool Truncated => (Flags & DnsConstants.FlagTruncated) != 0;
    public bool Authoritative => (Flags & DnsConstants.FlagAuthoritative) != 0;
    public int Opcode => (Flags & DnsConstants.OpcodeMask) >> 11;

    public IEnumerable<DnsResourceRecord> Section(DnsSection section) => Records.Where(r => r.Section == section);

    /// <summary>The message read, or null when it is malformed (too short, counts that lie, a bad name or RDATA, two OPT records).</summary>
    public static DnsMessage? Parse(ReadOnlySpan<byte> msg)
    {
        if (msg.Length < DnsConstants.HeaderLength) return null;
        var flags = BinaryPrimitives.ReadUInt16BigEndian(msg[2..]);
        var qdcount = BinaryPrimitives.ReadUInt16BigEndian(msg[4..]);
        if (qdcount > 1) return null; // RFC 9619: a query has one question, so does its response
        var pos = DnsConstants.HeaderLength;
        var qname = Array.Empty<byte>();
        ushort qtype = 0, qclass = 0;
        if (qdcount == 1)
        {
            Span<byte> wire = stackalloc byte[DnsName.MaxWireLength];
            if (!DnsName.TryRead(msg, pos, wire, out var length, out pos) || pos + 4 > msg.Length) return null;
            qname = wire[..length].ToArray();
            qtype = BinaryPrimitives.ReadUInt16BigEndian(msg[pos..]);
            qclass = BinaryPrimitives.ReadUInt16BigEndian(msg[(pos + 2)..]);
            pos += 4;
        }
        var response = new DnsMessage
        {
            Id = BinaryPrimitives.ReadUInt16BigEndian(msg), Flags = flags, Rcode = flags & DnsConstants.RcodeMask,
            QuestionCount = qdcount, QuestionName = qname, QuestionType = qtype, QuestionClass = qclass,
        };
        var counts = new[] { (DnsSection.Answer, 6), (DnsSection.Authority, 8), (DnsSection.Additional, 10) };
        foreach (var (section, at) in counts)
        {
            var count = BinaryPrimitives.ReadUInt16BigEndian(msg[at..]);
            for (int i = 0; i < count; i++)
            {
                if (DnsResourceRecord.Read(msg, ref pos, section) is not { } record) return null;
                if (record.Type != DnsRecordType.OPT) { response.Records.Add(record); continue; }
                if (section != DnsSection.Additional || response.EdnsPayloadSize is not null || record.Name.Length != 0) return null; // RFC 6891 6.1.1
                response.EdnsPayloadSize = Edns.PayloadSize(record);
                response.Rcode |= Edns.ExtendedRcode(record) << 4;
            }
        }
        return response;
    }

    /// <summary>
    /// RFC 5452 9.1: whether this is the response to our query <paramref name="id"/> for <paramref name="qname"/> (wire form,
    /// lower-case) of <paramref name="qtype"/>/IN: a response, opcode QUERY, the id, and the question repeated. A FORMERR may
    /// come without the question (a server that could not read ours, as EDNS-unaware ones do, RFC 6891 7): it is taken on the id.
    /// </summary>
    public bool Answers(ushort id, ReadOnlySpan<byte> qname, ushort qtype)
    {
        if (!IsResponse || Opcode != 0 || Id != id) return false;
        if (QuestionCount == 0) return (Rcode & DnsConstants.RcodeMask) == DnsConstants.RcodeFormatError;
        return QuestionName.AsSpan().SequenceEqual(qname) && QuestionType == qtype && QuestionClass == DnsConstants.ClassIn;
    }
}
