using System.Buffers.Binary;
using System.Net;
using NetStack;
using NetStack.Dns;

namespace Stack.Tests.Dns;

/// <summary>
/// Records of every type read from messages built here byte by byte (RFC 1035 3.3, RFC 3596, RFC 2782), the OPT record
/// of EDNS (RFC 6891) written and read, and the question check of RFC 5452 9.1.
/// </summary>
public class DnsRecordTests
{
    private static readonly byte[] Question = [.. DnsName.Encode("x.test"), 0, 255, 0, 1]; // x.test ANY IN

    /// <summary>A response to id 0x1234 for x.test/ANY with the given records in the answer section and an optional additional section.</summary>
    private static byte[] Response(byte[][] answers, byte[][]? additional = null, ushort flags = 0x8180)
    {
        var header = new byte[12];
        BinaryPrimitives.WriteUInt16BigEndian(header, 0x1234);
        BinaryPrimitives.WriteUInt16BigEndian(header.AsSpan(2), flags);
        BinaryPrimitives.WriteUInt16BigEndian(header.AsSpan(4), 1);
        BinaryPrimitives.WriteUInt16BigEndian(header.AsSpan(6), (ushort)answers.Length);
        BinaryPrimitives.WriteUInt16BigEndian(header.AsSpan(10), (ushort)(additional?.Length ?? 0));
        return [.. header, .. Question, .. answers.SelectMany(a => a), .. (additional ?? []).SelectMany(a => a)];
    }

    /// <summary>One record owned by the question's name (a pointer to offset 12) with the given type, TTL 300 and RDATA.</summary>
    private static byte[] Rr(ushort type, byte[] rdata, ushort cls = 1, uint ttl = 300)
    {
        var rr = new byte[12 + rdata.Length];
        rr[0] = 0xC0;
        rr[1] = 12;
        BinaryPrimitives.WriteUInt16BigEndian(rr.AsSpan(2), type);
        BinaryPrimitives.WriteUInt16BigEndian(rr.AsSpan(4), cls);
        BinaryPrimitives.WriteUInt32BigEndian(rr.AsSpan(6), ttl);
        BinaryPrimitives.WriteUInt16BigEndian(rr.AsSpan(10), (ushort)rdata.Length);
        rdata.CopyTo(rr, 12);
        return rr;
    }

    private static byte[] U16(int v) => [(byte)(v >> 8), (byte)v];
    private static byte[] U32(uint v) => [(byte)(v >> 24), (byte)(v >> 16), (byte)(v >> 8), (byte)v];

    private static DnsResourceRecord One(byte[] rr) => Assert.Single(DnsMessage.Parse(Response([rr]))!.Records);

    [Fact]
    public void Every_type_is_decoded_into_its_fields()
    {
        Assert.Equal(Ipv4Address.Parse("192.0.2.7"), One(Rr(1, [192, 0, 2, 7])).Address);
        var v6 = IPAddress.Parse("2001:db8::1");
        Assert.Equal(v6, One(Rr(28, v6.GetAddressBytes())).Address6);
        Assert.Equal("2001:db8::1", One(Rr(28, v6.GetAddressBytes())).DataText);
        Assert.Equal("host.test", One(Rr(5, DnsName.Encode("Host.Test"))).Target); // names lower-cased
        Assert.Equal("ns.test", One(Rr(2, DnsName.Encode("ns.test"))).Target);
        Assert.Equal("x.test", One(Rr(12, [0xC0, 12])).Target); // a compressed name inside RDATA

        var mx = One(Rr(15, [.. U16(10), .. DnsName.Encode("mail.test")]));
        Assert.Equal((10, "mail.test", "10 mail.test"), (mx.Preference, mx.Target, mx.DataText));

        var txt = One(Rr(16, [5, .. "hello"u8, 0, 3, .. "h\u00e9"u8]));
        Assert.Equal(new[] { "hello", "", "hé" }, txt.Strings);
        Assert.Equal("\"hello\" \"\" \"hé\"", txt.DataText);

        var soa = One(Rr(6, [.. DnsName.Encode("ns.test"), .. DnsName.Encode("hostmaster.test"), .. U32(7), .. U32(3600), .. U32(600), .. U32(86400), .. U32(30)]));
        Assert.Equal(("ns.test", "hostmaster.test", 7u, 3600u, 600u, 86400u, 30u),
            (soa.Target, soa.Mailbox, soa.Serial, soa.Refresh, soa.Retry, soa.Expire, soa.Minimum));

        var srv = One(Rr(33, [.. U16(1), .. U16(5), .. U16(5060), .. DnsName.Encode("sip.test")]));
        Assert.Equal((1, 5, 5060, "sip.test"), (srv.Priority, srv.Weight, srv.Port, srv.Target));
        Assert.Equal(DnsRecordType.SRV, srv.Type);

        var unknown = One(Rr(99, [0xAB, 0xCD]));
        Assert.Equal(((DnsRecordType)99, @"\# 2 ABCD"), (unknown.Type, unknown.DataText)); // RFC 3597 form
    }

    [Theory]
    [InlineData(1, new byte[] { 192, 0, 2 })]                  // A of 3 bytes
    [InlineData(28, new byte[] { 1, 2, 3, 4 })]                // AAAA of 4 bytes
    [InlineData(15, new byte[] { 0, 10 })]                     // MX without its name
    [InlineData(16, new byte[] { 5, 104, 105 })]               // TXT string running past its RDATA
    [InlineData(16, new byte[0])]                              // TXT with no string at all
    [InlineData(5, new byte[] { 3, 119, 119, 119, 0, 0 })]     // CNAME with a byte after its name
    [InlineData(6, new byte[] { 0, 0, 0, 0, 0, 1 })]           // SOA cut short
    [InlineData(33, new byte[] { 0, 1, 0, 2, 0, 3, 0xC0, 200 })] // SRV whose target points forward
    public void Rdata_that_does_not_fit_its_type_makes_the_message_malformed(ushort type, byte[] rdata)
    {
        Assert.Null(DnsMessage.Parse(Response([Rr(type, rdata)])));
    }

    [Fact]
    public void Name_in_rdata_may_not_run_past_the_rdata()
    {
        // A CNAME whose RDATA length says 2 while the name inside goes on: the name must end within it.
        var rr = Rr(5, [3, (byte)'w', (byte)'w', (byte)'w', 0]);
        rr[11] = 2;
        Assert.Null(DnsMessage.Parse(Response([rr])));
    }

    [Fact]
    public void Ttl_with_the_top_bit_set_is_zero()
    {
        Assert.Equal(0u, One(Rr(1, [192, 0, 2, 7], ttl: 0x80000001)).Ttl); // RFC 2181 8
    }

    [Fact]
    public void Opt_record_is_written_as_rfc_6891_says_and_read_back()
    {
        var buffer = new byte[DnsQuery.MaxLength];
        var qname = DnsName.Encode("x.test");
        var n = DnsQuery.Write(buffer, 1, qname, 1, ednsPayloadSize: 1232);
        Assert.Equal(1, BinaryPrimitives.ReadUInt16BigEndian(buffer.AsSpan(10))); // ARCOUNT
        // root name, type OPT (41), class = payload size 1232, TTL 0 (extended RCODE 0, version 0, DO 0), no options.
        Assert.Equal(new byte[] { 0, 0, 41, 0x04, 0xD0, 0, 0, 0, 0, 0, 0 }, buffer.AsSpan(n - 11, 11).ToArray());

        var opt = (byte[])[0, .. U16(41), .. U16(4096), 1, 0, 0, 0, 0, 0]; // extended RCODE 1: BADVERS (16) with RCODE 0
        var m = DnsMessage.Parse(Response([Rr(1, [192, 0, 2, 7])], [opt]))!;
        Assert.Equal(4096, m.EdnsPayloadSize);
        Assert.Equal(16, m.Rcode);
        Assert.Single(m.Records); // the OPT record is not a record of the answer

        var small = (byte[])[0, .. U16(41), .. U16(100), 0, 0, 0, 0, 0, 0];
        Assert.Equal(512, DnsMessage.Parse(Response([], [small]))!.EdnsPayloadSize); // under 512 counts as 512 (6.2.5)
        Assert.Null(DnsMessage.Parse(Response([], [small, small])));                // two OPT records: malformed (6.1.1)
        Assert.Null(DnsMessage.Parse(Response([(byte[])[0, .. U16(41), .. U16(1232), 0, 0, 0, 0, 0, 0]])));       // OPT among the answers
    }

    [Fact]
    public void Formerr_without_opt_means_the_server_does_not_speak_edns()
    {
        var formerr = DnsMessage.Parse(Response([], flags: 0x8181))!;
        Assert.True(Edns.RejectedByServer(formerr, sentOpt: true));
        Assert.False(Edns.RejectedByServer(formerr, sentOpt: false));
        var withOpt = DnsMessage.Parse(Response([], [[0, .. U16(41), .. U16(1232), 0, 0, 0, 0, 0, 0]], flags: 0x8181))!;
        Assert.False(Edns.RejectedByServer(withOpt, sentOpt: true)); // it speaks EDNS: the FORMERR is about something else
        Assert.Equal(512, Edns.UdpAnswerLimit(null, 4096));
        Assert.Equal(1232, Edns.UdpAnswerLimit(4096, 1232));
        Assert.Equal(512, Edns.UdpAnswerLimit(100, 1232));
    }

    [Fact]
    public void Only_the_response_to_our_question_answers_it()
    {
        var qname = DnsName.Encode("x.test");
        var m = DnsMessage.Parse(Response([]))!;
        Assert.True(m.Answers(0x1234, qname, 255));
        Assert.False(m.Answers(0x1235, qname, 255));                  // another id
        Assert.False(m.Answers(0x1234, DnsName.Encode("y.test"), 255)); // another name
        Assert.False(m.Answers(0x1234, qname, 1));                    // another type
        Assert.False(DnsMessage.Parse(Response([], flags: 0x0100))!.Answers(0x1234, qname, 255)); // a query, not a response
        // A FORMERR without a question (a server that could not read ours) is taken on its id alone.
        byte[] bare = [0x12, 0x34, 0x81, 0x81, 0, 0, 0, 0, 0, 0, 0, 0];
        Assert.True(DnsMessage.Parse(bare)!.Answers(0x1234, qname, 255));
        bare[3] = 0x80; // NOERROR without a question answers nothing
        Assert.False(DnsMessage.Parse(bare)!.Answers(0x1234, qname, 255));
    }

    [Fact]
    public void Cname_chain_is_followed_to_the_records_of_the_type_asked()
    {
        DnsResourceRecord R(string name, DnsRecordType type, string? target = null) =>
            new() { Name = name, Type = type, Ttl = 60, Target = target, Section = DnsSection.Answer };
        var records = new[] { R("a.test", DnsRecordType.CNAME, "b.test"), R("b.test", DnsRecordType.CNAME, "c.test"), R("c.test", DnsRecordType.A) };
        var chain = DnsChain.Follow(records, "a.test", DnsRecordType.A);
        Assert.Equal(("c.test", 2, 1, false), (chain.FinalName, chain.Aliases.Count, chain.Data.Count, chain.Looped));
        Assert.Equal("b.test", Assert.Single(DnsChain.Follow(records, "a.test", DnsRecordType.CNAME).Data).Target); // CNAME asked: not followed
        var dangling = DnsChain.Follow(records[..2], "a.test", DnsRecordType.A);
        Assert.Equal(("c.test", 0), (dangling.FinalName, dangling.Data.Count)); // the server did not follow: ask for c.test
        var loop = DnsChain.Follow([R("a.test", DnsRecordType.CNAME, "b.test"), R("b.test", DnsRecordType.CNAME, "a.test")], "a.test", DnsRecordType.A);
        Assert.True(loop.Looped);
    }

    [Fact]
    public void Search_list_order_follows_resolv_conf()
    {
        string[] search = ["lab.test", "corp.test"];
        Assert.Equal(new[] { "www.lab.test", "www.corp.test", "www" }, DnsSearchList.Candidates("www", search));      // no dot: suffixes first
        Assert.Equal(new[] { "a.b", "a.b.lab.test", "a.b.corp.test" }, DnsSearchList.Candidates("A.b", search));    // dotted: as it is first
        Assert.Equal(new[] { "a.lab.test", "a.lab.test.corp.test" }, DnsSearchList.Candidates("a.lab.test", search)); // not a.lab.test.lab.test
        Assert.Equal(new[] { "www" }, DnsSearchList.Candidates("www.", search));                                     // absolute: never searched
        Assert.Equal(new[] { "www" }, DnsSearchList.Candidates("www", []));
        Assert.Equal("DnsSearch", Assert.Throws<StackConfigurationException>(() => DnsSearchList.Validate(["ok.test", "bad..test"])).Field);
    }
}
