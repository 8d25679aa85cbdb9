using System.Buffers.Binary;
using NetStack.Dns;
using NetStack.Sockets;
using NetStack.Udp;

namespace NetStack.Services;

/// <summary>
/// An authoritative DNS server over UDP and TCP port 53 (RFC 1034 4.3.2, RFC 1035 4.1, RFC 7766) for the names of a
/// <see cref="DnsZone"/>: answers with AA set, follows CNAMEs within the zone, gives NXDOMAIN for a name that does not
/// exist and NOERROR with no answer (NODATA) for a type it lacks — both with the zone's SOA for negative caching
/// (RFC 2308 3) — and REFUSED for names outside its zones (it does not recurse; RA is clear). Queries that cannot be
/// read are answered FORMERR when their header can be, else dropped; opcodes other than QUERY get NOTIMP. A UDP answer
/// larger than 512 bytes, or than the size the query's EDNS OPT record advertises (up to 1232, RFC 6891), goes out
/// truncated (TC) so the client asks again over TCP, where answers come whole.
/// </summary>
internal sealed class DnsService(DnsZone zone, ServiceCounters counters)
{
    public const ushort Port = 53;
    /// <summary>The largest UDP answer this server sends to an EDNS query; also the size its OPT record advertises.</summary>
    public const int MaxEdnsUdpAnswer = Edns.DefaultPayloadSize;
    /// <summary>A TCP connection with no query for this long is closed (RFC 7766 6.2.3 suggests seconds, not minutes).</summary>
    public static readonly TimeSpan TcpIdleTimeout = TimeSpan.FromSeconds(10);

    public byte[]? Answer(UdpDatagram datagram) => Count(Respond(datagram.Data, overTcp: false));

    private byte[]? Count(byte[]? reply)
    {
        Interlocked.Increment(ref counters.DnsQueries);
        if (reply is null || (BinaryPrimitives.ReadUInt16BigEndian(reply.AsSpan(2)) & DnsConstants.RcodeMask) == DnsConstants.RcodeFormatError)
            Interlocked.Increment(ref counters.DnsMalformed);
        return reply;
    }

    /// <summary>DNS over TCP (RFC 7766 8): length-prefixed queries answered in turn until the client closes or stays idle.</summary>
    public async Task ServeAsync(TcpSocket socket, CancellationToken token)
    {
        var length = new byte[2];
        while (true)
        {
            using var idle = CancellationTokenSource.CreateLinkedTokenSource(token);
            idle.CancelAfter(TcpIdleTimeout);
            try
            {
                if (!await ReadExactlyAsync(socket, length, idle.Token).ConfigureAwait(false)) break;
                var query = new byte[BinaryPrimitives.ReadUInt16BigEndian(length)];
                if (!await ReadExactlyAsync(socket, query, idle.Token).ConfigureAwait(false)) break;
                if (Count(Respond(query, overTcp: true)) is not { } reply) break; // nothing to say to that: end the connection
                await socket.SendAsync(DnsTcpExchange.Frame(reply), token).ConfigureAwait(false);
            }
            catch (OperationCanceledException) when (!token.IsCancellationRequested) { break; } // idle
        }
        await socket.CloseAsync().ConfigureAwait(false);
    }

    /// <summary>Fills <paramref name="buffer"/>; false when the client closed first.</summary>
    private static async Task<bool> ReadExactlyAsync(TcpSocket socket, Memory<byte> buffer, CancellationToken token)
    {
        for (int have = 0; have < buffer.Length;)
        {
            var n = await socket.ReceiveAsync(buffer[have..], token).ConfigureAwait(false);
            if (n == 0) return false;
            have += n;
        }
        return true;
    }

    /// <summary>The response to one query message, or null to send nothing (too short to answer, or itself a response).</summary>
    internal byte[]? Respond(ReadOnlySpan<byte> query, bool overTcp = false)
    {
        if (query.Length < DnsConstants.HeaderLength) return null;
        var id = BinaryPrimitives.ReadUInt16BigEndian(query);
        var flags = BinaryPrimitives.ReadUInt16BigEndian(query[2..]);
        if ((flags & DnsConstants.FlagResponse) != 0) return null; // never answer a response (no loops between servers)
        var rd = (ushort)(flags & DnsConstants.FlagRecursionDesired);
        var opcode = flags & DnsConstants.OpcodeMask;
        if (opcode != 0) return HeaderOnly(id, (ushort)(opcode | rd), DnsConstants.RcodeNotImplemented);
        if (BinaryPrimitives.ReadUInt16BigEndian(query[4..]) != 1) return HeaderOnly(id, rd, DnsConstants.RcodeFormatError);

        Span<byte> qname = stackalloc byte[DnsName.MaxWireLength];
        if (!DnsName.TryRead(query, DnsConstants.HeaderLength, qname, out var qnameLength, out var pos) || pos + 4 > query.Length)
            return HeaderOnly(id, rd, DnsConstants.RcodeFormatError);
        var qtype = BinaryPrimitives.ReadUInt16BigEndian(query[pos..]);
        var qclass = BinaryPrimitives.ReadUInt16BigEndian(query[(pos + 2)..]);
        // The question goes back as it came (the client's letter case included: RFC 4343, and 0x20 randomisation).
        var question = query[DnsConstants.HeaderLength..(pos + 4)];
        var name = DnsName.ToText(qname[..qnameLength]);
        // The whole query read (its OPT record with it); one that does not parse, or has two OPT records, is FORMERR (RFC 6891 6.1.1).
        if (DnsMessage.Parse(query) is not { } parsed) return HeaderOnly(id, rd, DnsConstants.RcodeFormatError);
        var limit = overTcp ? ushort.MaxValue : Edns.UdpAnswerLimit(parsed.EdnsPayloadSize, MaxEdnsUdpAnswer);

        var w = new Writer(id, question, limit, withOpt: parsed.EdnsPayloadSize is not null);
        var origin = qclass is DnsConstants.ClassIn or 255 ? zone.ZoneOf(name) : null;
        if (origin is null) return w.Finish((ushort)rd, DnsConstants.RcodeRefused);

        // RFC 1034 4.3.2: answer from the zone, restarting at a CNAME's target while it stays in the zone.
        var current = name;
        for (int hop = 0; hop <= DnsConstants.MaxCnameChain; hop++)
        {
            var records = zone.Lookup(current);
            var cname = records.FirstOrDefault(r => r.Type == DnsRecordType.CNAME);
            if (cname != null && qtype != (ushort)DnsRecordType.CNAME)
            {
                w.AddAnswer(cname, isQuestionName: current == name);
                current = cname.Target!;
                if (zone.ZoneOf(current) is null) break; // outside our zones: the client follows it elsewhere
                continue;
            }
            foreach (var r in records)
                if (qtype == (ushort)DnsRecordType.ANY || (ushort)r.Type == qtype) w.AddAnswer(r, isQuestionName: current == name);
            if (!zone.Exists(current))
            {
                AddSoa(w, zone.ZoneOf(current) ?? origin);
                return w.Finish((ushort)(rd | DnsConstants.FlagAuthoritative), DnsConstants.RcodeNameError);
            }
            break;
        }
        if (w.AnswerCount == 0) AddSoa(w, origin); // NODATA (RFC 2308 2.2)
        return w.Finish((ushort)(rd | DnsConstants.FlagAuthoritative), DnsConstants.RcodeNoError);
    }

    /// <summary>RFC 2308 3: the SOA in the authority section, its TTL the smaller of its own and its minimum field.</summary>
    private void AddSoa(Writer w, string origin)
    {
        if (zone.SoaOf(origin) is not { } soa) return;
        var minimum = BinaryPrimitives.ReadUInt32BigEndian(soa.Data.AsSpan(soa.Data.Length - 4));
        w.AddAuthority(soa with { Ttl = Math.Min(soa.Ttl, minimum) });
    }

    private static byte[] HeaderOnly(ushort id, ushort flags, int rcode)
    {
        var m = new byte[DnsConstants.HeaderLength];
        BinaryPrimitives.WriteUInt16BigEndian(m, id);
        BinaryPrimitives.WriteUInt16BigEndian(m.AsSpan(2), (ushort)(DnsConstants.FlagResponse | flags | rcode));
        return m;
    }

    /// <summary>
    /// Builds a response: header, the question as received, answers, authority records, and an OPT record when the query
    /// had one (RFC 6891 6.1.1); over <c>limit</c> bytes it is truncated.
    /// </summary>
    private sealed class Writer
    {
        private readonly ushort _id;
        private readonly byte[] _question;
        private readonly int _limit;
        private readonly byte[] _opt;
        private readonly List<byte[]> _answers = new();
        private readonly List<byte[]> _authority = new();

        public Writer(ushort id, ReadOnlySpan<byte> question, int limit, bool withOpt)
        {
            _id = id;
            _question = question.ToArray();
            _limit = limit;
            _opt = new byte[withOpt ? Edns.OptLength : 0];
            if (withOpt) Edns.WriteOpt(_opt, MaxEdnsUdpAnswer);
        }

        public int AnswerCount => _answers.Count;

        public void AddAnswer(DnsRecord r, bool isQuestionName) => _answers.Add(Record(r, isQuestionName));
        public void AddAuthority(DnsRecord r) => _authority.Add(Record(r, false));

        /// <summary>One RR (RFC 1035 4.1.3); an owner equal to the question's name is a pointer to it (offset 12, RFC 1035 4.1.4).</summary>
        private static byte[] Record(DnsRecord r, bool isQuestionName)
        {
            var owner = isQuestionName ? new byte[] { 0xC0, DnsConstants.HeaderLength } : DnsName.Encode(r.Name);
            var rr = new byte[owner.Length + 10 + r.Data.Length];
            owner.CopyTo(rr, 0);
            var p = owner.Length;
            BinaryPrimitives.WriteUInt16BigEndian(rr.AsSpan(p), (ushort)r.Type);
            BinaryPrimitives.WriteUInt16BigEndian(rr.AsSpan(p + 2), DnsConstants.ClassIn);
            BinaryPrimitives.WriteUInt32BigEndian(rr.AsSpan(p + 4), r.Ttl);
            BinaryPrimitives.WriteUInt16BigEndian(rr.AsSpan(p + 8), (ushort)r.Data.Length);
            r.Data.CopyTo(rr, p + 10);
            return rr;
        }

        public byte[] Finish(ushort flags, int rcode)
        {
            var length = DnsConstants.HeaderLength + _question.Length + _answers.Sum(a => a.Length) + _authority.Sum(a => a.Length) + _opt.Length;
            if (length > _limit)
            {
                // RFC 2181 9: a truncated answer carries what fits, flagged TC; here simply none of the records.
                _answers.Clear();
                _authority.Clear();
                flags |= DnsConstants.FlagTruncated;
                length = DnsConstants.HeaderLength + _question.Length + _opt.Length;
            }
            var m = new byte[length];
            BinaryPrimitives.WriteUInt16BigEndian(m, _id);
            BinaryPrimitives.WriteUInt16BigEndian(m.AsSpan(2), (ushort)(DnsConstants.FlagResponse | flags | rcode));
            BinaryPrimitives.WriteUInt16BigEndian(m.AsSpan(4), 1);
            BinaryPrimitives.WriteUInt16BigEndian(m.AsSpan(6), (ushort)_answers.Count);
            BinaryPrimitives.WriteUInt16BigEndian(m.AsSpan(8), (ushort)_authority.Count);
            BinaryPrimitives.WriteUInt16BigEndian(m.AsSpan(10), (ushort)(_opt.Length > 0 ? 1 : 0));
            var p = DnsConstants.HeaderLength;
            _question.CopyTo(m, p);
            p += _question.Length;
            foreach (var rr in _answers.Concat(_authority).Append(_opt))
            {
                rr.CopyTo(m, p);
                p += rr.Length;
            }
            return m;
        }
    }
}
