using System.Buffers.Binary;
using System.Text;
using NetStack;
using NetStack.Dns;
using NetStack.Services;
using Stack.Tests.Dns;

namespace Stack.Tests.Services;

/// <summary>
/// The service host's DNS: names resolved with the stack's own resolver, and every record type checked with queries
/// built and answers read by the test's own code (independent of the service's writer).
/// </summary>
public class DnsServiceTests
{
    [Theory]
    [InlineData("host.lab.test")]
    [InlineData("lab.test")]
    [InlineData("www.lab.test")]     // CNAME to host
    [InlineData("ALIAS.Lab.Test.")]  // CNAME to www, CNAME to host
    [InlineData("mail.lab.test")]
    public async Task The_stack_resolver_finds_the_lab_names(string name)
    {
        using var lab = new LabRig();
        var r = await lab.Client.ResolveAsync(name, cancellationToken: lab.Token);
        Assert.Equal(new[] { LabRig.HostAddress }, r.Addresses);
        Assert.Equal(LabRig.HostAddress, r.Server);
        Assert.Equal((int)DnsZone.DefaultTtl, r.Ttl);
    }

    [Theory]
    [InlineData("nope.lab.test", StackError.NameNotFound)]     // NXDOMAIN
    [InlineData("example.com", StackError.ServerFailure)]      // REFUSED: not our zone, no recursion
    public async Task Unknown_names_fail_as_the_resolver_reports_them(string name, StackError error)
    {
        using var lab = new LabRig();
        var e = await Assert.ThrowsAsync<StackException>(() => lab.Client.ResolveAsync(name, cancellationToken: lab.Token));
        Assert.Equal(error, e.Error);
    }

    private sealed record Rr(string Name, ushort Type, uint Ttl, byte[] Data, string Text);
    private sealed record Reply(ushort Id, ushort Flags, int Rcode, string Question, List<Rr> Answers, List<Rr> Authority);

    private static async Task<Reply> QueryAsync(LabRig lab, string name, ushort type, ushort id = 0x4242)
    {
        using var u = await lab.Client.CreateUdpSocketAsync();
        var q = new List<byte> { (byte)(id >> 8), (byte)id, 0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 0 };
        q.AddRange(TestDnsServer.EncodeName(name));
        q.AddRange(new byte[] { (byte)(type >> 8), (byte)type, 0, 1 });
        await u.SendToAsync(LabRig.HostAddress, 53, q.ToArray());
        var d = await u.ReceiveAsync(lab.Token);
        Assert.Equal(53, d.RemotePort);
        return Parse(d.Data);
    }

    /// <summary>An RFC 1035 reader of the test's own: names with compression, RRs with their data.</summary>
    private static Reply Parse(byte[] m)
    {
        var pos = 12;
        var question = ReadName(m, ref pos);
        pos += 4;
        List<Rr> Section(int count, ref int p)
        {
            var list = new List<Rr>();
            for (int i = 0; i < count; i++)
            {
                var owner = ReadName(m, ref p);
                var type = BinaryPrimitives.ReadUInt16BigEndian(m.AsSpan(p));
                var ttl = BinaryPrimitives.ReadUInt32BigEndian(m.AsSpan(p + 4));
                var len = BinaryPrimitives.ReadUInt16BigEndian(m.AsSpan(p + 8));
                var data = m.AsSpan(p + 10, len).ToArray();
                var at = p + 10;
                var exchangeAt = at + 2;
                var text = type switch
                {
                    1 => new Ipv4Address(BinaryPrimitives.ReadUInt32BigEndian(data)).ToString(),
                    2 or 5 or 6 or 12 => ReadName(m, ref at),
                    15 => $"{BinaryPrimitives.ReadUInt16BigEndian(data)} {ReadName(m, ref exchangeAt)}",
                    16 => Encoding.UTF8.GetString(data, 1, data[0]),
                    _ => "",
                };
                p += 10 + len;
                list.Add(new Rr(owner, type, ttl, data, text));
            }
            return list;
        }
        var answers = Section(BinaryPrimitives.ReadUInt16BigEndian(m.AsSpan(6)), ref pos);
        var authority = Section(BinaryPrimitives.ReadUInt16BigEndian(m.AsSpan(8)), ref pos);
        var flags = BinaryPrimitives.ReadUInt16BigEndian(m.AsSpan(2));
        return new Reply(BinaryPrimitives.ReadUInt16BigEndian(m), flags, flags & 0xF, question, answers, authority);
    }

    private static string ReadName(byte[] m, ref int pos)
    {
        var labels = new List<string>();
        var p = pos;
        var jumped = false;
        while (m[p] != 0)
        {
            if ((m[p] & 0xC0) == 0xC0)
            {
                if (!jumped) pos = p + 2;
                jumped = true;
                p = ((m[p] & 0x3F) << 8) | m[p + 1];
                continue;
            }
            labels.Add(Encoding.ASCII.GetString(m, p + 1, m[p]));
            p += 1 + m[p];
        }
        if (!jumped) pos = p + 1;
        return string.Join('.', labels);
    }

    private const ushort Aa = 0x0400, Qr = 0x8000, Rd = 0x0100, Ra = 0x0080;

    [Fact]
    public async Task Answers_are_authoritative_with_the_question_and_id_echoed()
    {
        using var lab = new LabRig();
        var r = await QueryAsync(lab, "Host.LAB.test", 1, id: 0xBEEF);
        Assert.Equal(0xBEEF, r.Id);
        Assert.Equal(Qr | Aa | Rd, r.Flags & (Qr | Aa | Rd | Ra)); // no recursion offered
        Assert.Equal("Host.LAB.test", r.Question);                // the client's letter case kept
        var a = Assert.Single(r.Answers);
        Assert.Equal(("Host.LAB.test", (ushort)1, "192.0.2.1"), (a.Name, a.Type, a.Text)); // owner compressed to the question
    }

    [Fact]
    public async Task Cname_chain_is_given_with_the_address_at_its_end()
    {
        using var lab = new LabRig();
        var r = await QueryAsync(lab, "alias.lab.test", 1);
        Assert.Equal(new[] { ("alias.lab.test", 5, "www.lab.test"), ("www.lab.test", 5, "host.lab.test"), ("host.lab.test", 1, "192.0.2.1") },
            r.Answers.Select(a => (a.Name, (int)a.Type, a.Text)));
    }

    [Fact]
    public async Task Mx_txt_ns_and_ptr_records()
    {
        using var lab = new LabRig();
        Assert.Equal("10 mail.lab.test", Assert.Single((await QueryAsync(lab, "lab.test", 15)).Answers).Text);
        Assert.StartsWith("NetStack embedded lab", Assert.Single((await QueryAsync(lab, "lab.test", 16)).Answers).Text);
        Assert.Equal("ns.lab.test", Assert.Single((await QueryAsync(lab, "lab.test", 2)).Answers).Text);
        var ptr = Assert.Single((await QueryAsync(lab, "1.2.0.192.in-addr.arpa", 12)).Answers);
        Assert.Equal(("1.2.0.192.in-addr.arpa", "host.lab.test"), (ptr.Name, ptr.Text));
    }

    [Fact]
    public async Task Nxdomain_and_nodata_carry_the_zones_soa()
    {
        using var lab = new LabRig();
        var nx = await QueryAsync(lab, "nope.lab.test", 1);
        Assert.Equal(3, nx.Rcode);
        Assert.Empty(nx.Answers);
        var soa = Assert.Single(nx.Authority);
        Assert.Equal(("lab.test", (ushort)6, "ns.lab.test"), (soa.Name, soa.Type, soa.Text));
        Assert.Equal(DnsZone.DefaultTtl, soa.Ttl);

        var nodata = await QueryAsync(lab, "host.lab.test", 15); // MX: the name exists, the type does not
        Assert.Equal(0, nodata.Rcode);
        Assert.Empty(nodata.Answers);
        Assert.Equal(6, Assert.Single(nodata.Authority).Type);

        var reverse = await QueryAsync(lab, "99.2.0.192.in-addr.arpa", 12);
        Assert.Equal(3, reverse.Rcode);
        Assert.Equal("2.0.192.in-addr.arpa", Assert.Single(reverse.Authority).Name);
    }

    [Fact]
    public async Task Names_outside_the_zones_are_refused()
    {
        using var lab = new LabRig();
        var r = await QueryAsync(lab, "www.example.com", 1);
        Assert.Equal(5, r.Rcode);
        Assert.Equal(0, r.Flags & Aa);
    }

    [Fact]
    public void Malformed_queries_get_formerr_or_nothing()
    {
        var service = new DnsService(DnsZone.ForLab(LabRig.HostAddress, 24), new ServiceCounters());
        Assert.Null(service.Respond(new byte[5]));                                                // no header: nothing to answer
        Assert.Null(service.Respond(new byte[] { 0, 1, 0x80, 0, 0, 1, 0, 0, 0, 0, 0, 0 }));        // a response: never answered
        var formerr = service.Respond(new byte[] { 0, 1, 1, 0, 0, 1, 0, 0, 0, 0, 0, 0, 5, (byte)'a' }); // the name runs off the end
        Assert.Equal(DnsConstants.RcodeFormatError, formerr![3] & 0xF);
        Assert.Equal(new byte[] { 0, 1 }, formerr[..2]);
        var notimp = service.Respond(new byte[] { 0, 2, 0x10, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0, 1 }); // opcode 2 (STATUS)
        Assert.Equal(DnsConstants.RcodeNotImplemented, notimp![3] & 0xF);
    }

    [Fact]
    public async Task Aaaa_srv_and_reverse_names_through_the_stack_resolver()
    {
        using var lab = new LabRig();
        var aaaa = Assert.Single((await lab.Client.QueryDnsAsync("host.lab.test", DnsRecordType.AAAA, cancellationToken: lab.Token)).Data);
        Assert.Equal(System.Net.IPAddress.Parse("2001:db8::1"), aaaa.Address6);
        var srv = Assert.Single((await lab.Client.QueryDnsAsync("_http._tcp.lab.test", DnsRecordType.SRV, cancellationToken: lab.Token)).Data);
        Assert.Equal((80, "host.lab.test"), (srv.Port, srv.Target));
        var ptr = await lab.Client.QueryDnsAsync(DnsName.ReverseName(LabRig.HostAddress), DnsRecordType.PTR, cancellationToken: lab.Token);
        Assert.Equal("host.lab.test", Assert.Single(ptr.Data).Target);
        var soa = Assert.Single((await lab.Client.QueryDnsAsync("lab.test", DnsRecordType.SOA, cancellationToken: lab.Token)).Data);
        Assert.Equal(("ns.lab.test", "hostmaster.ns.lab.test", DnsZone.DefaultTtl), (soa.Target, soa.Mailbox, soa.Minimum));
    }

    [Fact]
    public async Task Answer_over_512_bytes_comes_over_udp_with_edns_and_is_truncated_without()
    {
        using var lab = new LabRig();
        var many = await lab.Client.ResolveAsync("many.lab.test", cancellationToken: lab.Token);
        Assert.Equal(40, many.Addresses.Length);
        Assert.Equal(0, lab.Client.Dns.Counters.TruncatedAnswers); // EDNS (1232) let it through in one datagram
        Assert.Equal(0, lab.Host.Counters.TcpConnections);

        var plain = await QueryAsync(lab, "many.lab.test", 1); // the test's own query: no OPT record, so 512 bytes at most
        Assert.Equal(DnsConstants.FlagTruncated, plain.Flags & DnsConstants.FlagTruncated);
        Assert.Empty(plain.Answers);
    }

    [Fact]
    public async Task Answer_too_large_for_udp_is_truncated_and_the_resolver_takes_it_over_tcp()
    {
        using var lab = new LabRig();
        var big = await lab.Client.QueryDnsAsync("big.lab.test", DnsRecordType.TXT, cancellationToken: lab.Token);
        Assert.True(big.OverTcp);
        Assert.Equal(30, big.Data.Count);
        Assert.StartsWith("00 a long answer", Assert.Single(big.Data[0].Strings!));
        Assert.Equal(1, lab.Client.Dns.Counters.TruncatedAnswers);
        Assert.Equal(1, lab.Host.Counters.TcpConnections);
    }

    [Fact]
    public async Task Tcp_connection_answers_queries_in_turn_and_edns_queries_get_an_opt_record()
    {
        using var lab = new LabRig();
        using var socket = await lab.ConnectAsync(53);
        var buffer = new byte[DnsQuery.MaxLength];
        var framed = new List<byte>();
        foreach (var (id, name) in new[] { ((ushort)1, "host.lab.test"), ((ushort)2, "big.lab.test") })
        {
            var n = DnsQuery.Write(buffer, id, DnsName.Encode(name), id == 1 ? (ushort)1 : (ushort)16, ednsPayloadSize: 4096);
            framed.AddRange(DnsTcpExchange.Frame(buffer.AsSpan(0, n)));
        }
        await socket.SendAsync(framed.ToArray(), lab.Token); // both queries in one write: RFC 7766 6.2.1.1 pipelining
        foreach (var id in new ushort[] { 1, 2 })
        {
            var length = BinaryPrimitives.ReadUInt16BigEndian(await lab.ReadExactlyAsync(socket, 2));
            var m = DnsMessage.Parse(await lab.ReadExactlyAsync(socket, length))!;
            Assert.Equal(id, m.Id);
            Assert.False(m.Truncated);
            Assert.Equal(DnsService.MaxEdnsUdpAnswer, m.EdnsPayloadSize);
            Assert.Equal(id == 1 ? 1 : 30, m.Section(DnsSection.Answer).Count());
        }
    }

    [Fact]
    public void Zone_records_can_be_added_while_serving()
    {
        var zone = DnsZone.ForLab(LabRig.HostAddress, 24);
        zone.Add(DnsRecord.A("extra.lab.test", Ipv4Address.Parse("192.0.2.50")));
        Assert.Equal("192.0.2.50", Assert.Single(zone.Lookup("extra.lab.test")).Text);
        Assert.Equal("lab.test", zone.ZoneOf("extra.lab.test"));
        Assert.Null(zone.ZoneOf("otherlab.test")); // a suffix match must be on a label boundary
    }
}
