using NetStack;
using NetStack.Dns;

namespace Stack.Tests.Dns;

/// <summary>
/// The resolver's rules beyond one A question, against the test's own DNS server on simulated stacks in virtual time:
/// TCP after a truncated answer (RFC 7766), EDNS and the fallback without it (RFC 6891), negative caching (RFC 2308),
/// the search list, answers checked against the question (RFC 5452), CNAME targets asked for, and questions of other types.
/// </summary>
public class DnsResolverRuleTests
{
    private static readonly Ipv4Address Www = Ipv4Address.Parse("192.0.2.80");

    /// <summary>30 strings of 60 characters: about 2 KB, more than 512 bytes and more than the 1232 EDNS allows.</summary>
    private static string[] ManyStrings() => Enumerable.Range(0, 30).Select(i => $"{i:D2}" + new string('x', 58)).ToArray();

    private static long Counter(DnsSim d, string name) => d.Sim.Run(d.Client.GetStatisticsAsync()).Single(c => c.Layer == "Dns" && c.Name == name).Value;

    [Fact]
    public void Truncated_answer_is_asked_again_over_tcp()
    {
        using var d = new DnsSim(21);
        d.Dns1!.Txt["big.example.com"] = (ManyStrings(), 300);
        var answer = d.Run(d.Client.QueryDnsAsync("big.example.com", DnsRecordType.TXT));
        Assert.True(answer.OverTcp);
        Assert.Equal(ManyStrings(), answer.Data.Select(r => Assert.Single(r.Strings!)));
        Assert.All(answer.Records, r => Assert.Equal(DnsSection.Answer, r.Section));
        Assert.Equal(new[] { false, true }, d.Dns1.Queries.Select(q => q.OverTcp));
        Assert.Equal(1232, d.Dns1.Queries[0].EdnsSize); // it asked with EDNS first, and the answer was still too large
        Assert.Equal((1, 1, 0), (Counter(d, "TruncatedAnswers"), Counter(d, "TcpQueries"), Counter(d, "TcpFailures")));
        Assert.True(d.Run(d.Client.QueryDnsAsync("big.example.com", DnsRecordType.TXT)).FromCache); // and the TCP answer was cached
    }

    [Fact]
    public void Edns_brings_a_larger_answer_over_udp_and_without_it_the_same_answer_needs_tcp()
    {
        var forty = Enumerable.Range(100, 40).Select(i => new Ipv4Address(198, 51, 100, (byte)i)).ToArray(); // 40 x 16 bytes: over 512
        using (var d = new DnsSim(22))
        {
            d.Dns1!.A["many.example.com"] = (forty, 300);
            var r = d.Run(d.Client.ResolveAsync("many.example.com"));
            Assert.Equal(forty, r.Addresses);
            Assert.False(Assert.Single(d.Dns1.Queries).OverTcp);
            Assert.Equal(1, Counter(d, "EdnsQueries"));
        }
        using (var d = new DnsSim(22, c => c with { Dns = c.Dns with { EdnsPayloadSize = 0 } }))
        {
            d.Dns1!.A["many.example.com"] = (forty, 300);
            Assert.Equal(forty, d.Run(d.Client.ResolveAsync("many.example.com")).Addresses);
            Assert.Equal(new int?[] { null, null }, d.Dns1.Queries.Select(q => q.EdnsSize));
            Assert.Equal(new[] { false, true }, d.Dns1.Queries.Select(q => q.OverTcp));
        }
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public void Server_that_does_not_speak_edns_is_asked_again_without_it(bool withoutQuestion)
    {
        using var d = new DnsSim(23);
        d.Dns1!.A["www.example.com"] = (new[] { Www }, 300);
        d.Dns1.RejectEdns = true;
        d.Dns1.RejectEdnsWithoutQuestion = withoutQuestion;
        Assert.Equal(new[] { Www }, d.Run(d.Client.ResolveAsync("www.example.com")).Addresses);
        Assert.Equal(new int?[] { 1232, null }, d.Dns1.Queries.Select(q => q.EdnsSize));
        Assert.Equal(TimeSpan.Zero, d.Dns1.Queries[1].At - d.Dns1.Queries[0].At - TimeSpan.FromMilliseconds(2)); // at once, not after a timeout
        Assert.Equal(1, Counter(d, "EdnsFallbacks"));
        Assert.Empty(d.Dns2.Queries);
    }

    [Fact]
    public void Tcp_refused_or_reset_moves_on_to_the_next_server()
    {
        using var d = new DnsSim(24, tcpServer1: false); // server 1 has nothing on TCP 53: our SYN is answered with RST
        d.Dns1!.Txt["big.example.com"] = (ManyStrings(), 300);
        d.Dns2.Txt["big.example.com"] = (ManyStrings(), 300);
        var answer = d.Run(d.Client.QueryDnsAsync("big.example.com", DnsRecordType.TXT));
        Assert.Equal(DnsSim.Server2, answer.Server);
        Assert.True(answer.OverTcp);
        Assert.Equal(1, Counter(d, "TcpFailures"));

        d.Dns2.ResetTcp = true;
        var e = Assert.Throws<StackException>(() => d.Run(d.Client.QueryDnsAsync("big.example.com", DnsRecordType.TXT, noCache: true)));
        Assert.Equal(StackError.ServerFailure, e.Error);
        Assert.Contains("192.0.2.53 failed over TCP (ConnectionRefused)", e.Message);
        Assert.Contains("192.0.2.54 failed over TCP (ConnectionReset)", e.Message);
        Assert.DoesNotContain(d.Sim.Run(d.Client.GetConnectionsAsync()), c => c.State == "Established"); // nothing left open
    }

    [Fact]
    public void Tcp_server_that_never_answers_is_given_up_after_the_tcp_timeout()
    {
        using var d = new DnsSim(31);
        d.Dns1!.Txt["big.example.com"] = (ManyStrings(), 300);
        d.Dns1.SilentTcp = true;
        d.Dns2.Txt["big.example.com"] = (ManyStrings(), 300);
        var start = d.Sim.Now;
        var answer = d.Run(d.Client.QueryDnsAsync("big.example.com", DnsRecordType.TXT));
        Assert.Equal(DnsSim.Server2, answer.Server);
        Assert.Equal(new[] { false, true }, d.Dns1.Queries.Select(q => q.OverTcp)); // the TCP query came, and no answer
        // Dns.TcpTimeout (5 s) counts from the truncated answer (1 ms after the UDP query), the next server 1 ms on.
        Assert.InRange(d.Dns2.Queries[0].At - d.Dns1.Queries[0].At, TimeSpan.FromSeconds(5), TimeSpan.FromSeconds(5.01));
        Assert.Equal((1, 1), (Counter(d, "TcpFailures"), Counter(d, "Timeouts")));
        Assert.True(d.Sim.Now - start < TimeSpan.FromSeconds(6));
    }

    [Fact]
    public void Nxdomain_is_cached_for_the_soa_minimum_for_every_type()
    {
        using var d = new DnsSim(25);
        d.Dns1!.Soa = (300, 60); // the SOA's TTL and MINIMUM: the smaller, 60 s, rules (RFC 2308 5)
        Assert.Equal(StackError.NameNotFound, Assert.Throws<StackException>(() => d.Run(d.Client.ResolveAsync("nope.example.com"))).Error);
        var cached = Assert.Throws<StackException>(() => d.Run(d.Client.QueryDnsAsync("nope.example.com", DnsRecordType.TXT)));
        Assert.Equal(StackError.NameNotFound, cached.Error);
        Assert.Equal("'nope.example.com' does not exist (NXDOMAIN, cached from 192.0.2.53 for 60 s more).", cached.Message);
        Assert.Single(d.Dns1.Queries);
        Assert.Equal((1, 1), (Counter(d, "NegativeCacheStores"), Counter(d, "NegativeCacheHits")));

        d.Sim.Advance(TimeSpan.FromSeconds(61));
        d.Dns1.A["nope.example.com"] = (new[] { Www }, 300); // now it exists
        Assert.Equal(new[] { Www }, d.Run(d.Client.ResolveAsync("nope.example.com")).Addresses);
        Assert.Equal(2, d.Dns1.Queries.Count);
    }

    [Fact]
    public void Nodata_is_cached_for_its_type_only_and_nothing_is_cached_without_an_soa()
    {
        using var d = new DnsSim(26);
        d.Dns1!.A["www.example.com"] = (new[] { Www }, 300);
        d.Dns1.Soa = (30, 3600);
        var e = Assert.Throws<StackException>(() => d.Run(d.Client.QueryDnsAsync("www.example.com", DnsRecordType.TXT)));
        Assert.Equal("'www.example.com' has no TXT record according to 192.0.2.53.", e.Message);
        Assert.Contains("cached", Assert.Throws<StackException>(() => d.Run(d.Client.QueryDnsAsync("www.example.com", DnsRecordType.TXT))).Message);
        Assert.Equal(new[] { Www }, d.Run(d.Client.ResolveAsync("www.example.com")).Addresses); // A was not touched by it
        Assert.Equal(new ushort[] { 16, 1 }, d.Dns1.Queries.Select(q => q.Type));

        d.Dns1.Soa = null;
        Assert.Throws<StackException>(() => d.Run(d.Client.ResolveAsync("gone.example.com")));
        Assert.Throws<StackException>(() => d.Run(d.Client.ResolveAsync("gone.example.com")));
        Assert.Equal(2, d.Dns1.Queries.Count(q => q.Name == "gone.example.com")); // no SOA: no negative caching (RFC 2308 5)
    }

    [Fact]
    public void Search_list_is_tried_in_order_for_a_short_name()
    {
        using var d = new DnsSim(27, c => c with { DnsSearch = ["corp.test", "Example.com."] });
        d.Dns1!.A["www.example.com"] = (new[] { Www }, 300);
        var r = d.Run(d.Client.ResolveAsync("www"));
        Assert.Equal("www.example.com", r.Name);
        Assert.Equal(new[] { Www }, r.Addresses);
        Assert.Equal(new[] { "www.corp.test", "www.example.com" }, d.Dns1.Queries.Select(q => q.Name));
        Assert.Equal(1, Counter(d, "SearchNamesTried"));

        d.Run(d.Client.ResolveAsync("www.example.com")); // a dotted name is asked as it is first (and here comes from the cache)
        Assert.Equal(2, d.Dns1.Queries.Count);

        var e = Assert.Throws<StackException>(() => d.Run(d.Client.ResolveAsync("www.")));  // absolute: no search
        Assert.Equal("'www' does not exist (NXDOMAIN) according to 192.0.2.53.", e.Message);
        var all = Assert.Throws<StackException>(() => d.Run(d.Client.ResolveAsync("nothere")));
        Assert.StartsWith("'nothere' was not found: 'nothere.corp.test' does not exist (NXDOMAIN) according to 192.0.2.53; 'nothere.example.com' does not", all.Message);
        Assert.Equal(new[] { "www", "nothere.corp.test", "nothere.example.com", "nothere" }, d.Dns1.Queries.Skip(2).Select(q => q.Name));
    }

    [Fact]
    public void Answer_to_another_type_is_dropped_and_counted()
    {
        using var d = new DnsSim(28);
        d.Dns1!.A["www.example.com"] = (new[] { Www }, 300);
        d.Dns1.SendWrongTypeFirst = true;
        d.Dns1.SendWrongIdFirst = true;
        Assert.Equal(new[] { Www }, d.Run(d.Client.ResolveAsync("www.example.com")).Addresses);
        Assert.Equal((2, 1), (Counter(d, "DroppedMismatched"), Counter(d, "ResponsesAccepted")));
    }

    [Fact]
    public void Cname_target_the_server_did_not_follow_is_asked_for()
    {
        using var d = new DnsSim(29);
        d.Dns1!.Cname["alias.example.com"] = ("www.example.net", 100);
        d.Dns1.A["www.example.net"] = (new[] { Www }, 300);
        d.Dns1.StopAtCname = true;
        var answer = d.Run(d.Client.QueryDnsAsync("alias.example.com", DnsRecordType.A));
        Assert.Equal(new[] { "alias.example.com", "www.example.net" }, d.Dns1.Queries.Select(q => q.Name));
        Assert.Equal(new[] { (DnsRecordType.CNAME, "alias.example.com"), (DnsRecordType.A, "www.example.net") }, answer.Records.Select(r => (r.Type, r.Name)));
        Assert.Equal(Www, Assert.Single(answer.Data).Address);
        Assert.Equal(100, d.Run(d.Client.ResolveAsync("alias.example.com")).Ttl); // from the cache, the chain's smallest TTL
        Assert.Equal(1, Counter(d, "CnameQueries"));
    }

    [Fact]
    public void No_cache_asks_the_server_and_refreshes_the_cache()
    {
        using var d = new DnsSim(30);
        d.Dns1!.A["www.example.com"] = (new[] { Www }, 300);
        d.Run(d.Client.QueryDnsAsync("www.example.com", DnsRecordType.A));
        d.Sim.Advance(TimeSpan.FromSeconds(100));
        Assert.Equal(200u, Assert.Single(d.Run(d.Client.QueryDnsAsync("www.example.com", DnsRecordType.A)).Records).Ttl); // counted down
        var fresh = d.Run(d.Client.QueryDnsAsync("www.example.com", DnsRecordType.A, noCache: true));
        Assert.False(fresh.FromCache);
        Assert.Equal(300u, Assert.Single(fresh.Records).Ttl);
        Assert.Equal(2, d.Dns1.Queries.Count);
        Assert.Equal(300, d.Run(d.Client.ResolveAsync("www.example.com")).Ttl); // the refreshed entry
    }
}
