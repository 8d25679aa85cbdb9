using System.Buffers.Binary;

namespace NetStack.Dns;

/// <summary>
/// EDNS(0) (RFC 6891): the OPT pseudo-record a query carries to say how large a UDP answer it can take, and what a
/// response's OPT says back. A server that does not know EDNS answers FORMERR (or NOTIMP) without an OPT record;
/// the query is then asked again without one (RFC 6891 7).
/// </summary>
public static class Edns
{
    /// <summary>Bytes of an OPT record without options: root name, type, class, TTL, RDLENGTH.</summary>
    public const int OptLength = 11;
    /// <summary>The payload size the DNS flag day 2020 recommends: fits an IPv6 minimum-MTU packet unfragmented.</summary>
    public const int DefaultPayloadSize = 1232;

    /// <summary>Writes an OPT record advertising <paramref name="payloadSize"/> (RFC 6891 6.1.2: version 0, no flags, no options); returns its length.</summary>
    public static int WriteOpt(Span<byte> buffer, int payloadSize)
    {
        buffer[0] = 0; // the root name
        BinaryPrimitives.WriteUInt16BigEndian(buffer[1..], (ushort)DnsRecordType.OPT);
        BinaryPrimitives.WriteUInt16BigEndian(buffer[3..], (ushort)payloadSize); // CLASS: the requestor's UDP payload size
        BinaryPrimitives.WriteUInt32BigEndian(buffer[5..], 0); // TTL: extended RCODE 0, version 0, DO clear
        BinaryPrimitives.WriteUInt16BigEndian(buffer[9..], 0); // RDLENGTH: no options
        return OptLength;
    }

    /// <summary>The UDP payload size an OPT record advertises; values under 512 are taken as 512 (RFC 6891 6.2.5).</summary>
    public static int PayloadSize(DnsResourceRecord opt) => Math.Max(DnsConstants.MaxUdpMessage, (int)opt.Class);

    /// <summary>The upper 8 bits of the 12-bit RCODE, carried in the OPT record's TTL (RFC 6891 6.1.3).</summary>
    public static int ExtendedRcode(DnsResourceRecord opt) => (int)(opt.Ttl >> 24);

    /// <summary>
    /// Whether a response to a query that carried OPT says the server does not speak EDNS: FORMERR or NOTIMP and no OPT
    /// record of its own (RFC 6891 7). The query is then sent again without OPT.
    /// </summary>
    internal static bool RejectedByServer(DnsMessage response, bool sentOpt) =>
        sentOpt && response.EdnsPayloadSize is null
        && response.Rcode is DnsConstants.RcodeFormatError or DnsConstants.RcodeNotImplemented;

    /// <summary>
    /// How large a UDP answer a server may send: 512 bytes to a query without OPT (RFC 1035 4.2.1), else what the
    /// query advertised, capped by the server's own limit (RFC 6891 6.2.5).
    /// </summary>
    public static int UdpAnswerLimit(int? advertised, int serverLimit) =>
        advertised is { } size ? Math.Clamp(size, DnsConstants.MaxUdpMessage, Math.Max(DnsConstants.MaxUdpMessage, serverLimit)) : DnsConstants.MaxUdpMessage;
}
