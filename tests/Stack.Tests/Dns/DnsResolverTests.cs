using NetStack;
using NetStack.Dns;

namespace Stack.Tests.Dns;

/// <summary>The stub resolver against a DNS server written in the test, on simulated stacks in virtual time.</summary>
public class DnsResolverTests
{
    private static readonly Ipv4Address Www = Ipv4Address.Parse("192.0.2.80");
    private static readonly Ipv4Address Www2 = Ipv4Address.Parse("192.0.2.81");

    [Fact]
    public void Resolves_an_a_record()
    {
        using var d = new DnsSim(1);
        d.Dns1!.A["www.example.com"] = (new[] { Www, Www2 }, 300);
        var r = d.Run(d.Client.ResolveAsync("WWW.Example.com."));
        Assert.Equal("www.example.com", r.Name);
        Assert.Equal(new[] { Www, Www2 }, r.Addresses);
        Assert.Equal(300, r.Ttl);
        Assert.Equal(DnsSim.Server1, r.Server);
        Assert.False(r.FromCache);
        var q = Assert.Single(d.Dns1.Queries);
        Assert.Equal("www.example.com", q.Name);
        Assert.Equal(1, q.Type);
        Assert.InRange(q.FromPort, d.Client.Config.EphemeralPortFirst, d.Client.Config.EphemeralPortLast);
        Assert.Empty(d.Sim.Run(d.Client.GetConnectionsAsync())); // the query's socket is gone
    }

    [Fact]
    public void Answer_is_cached_for_its_ttl_then_asked_again()
    {
        using var d = new DnsSim(2);
        d.Dns1!.A["www.example.com"] = (new[] { Www }, 300);
        var first = d.Run(d.Client.ResolveAsync("www.example.com"));
        first.Addresses[0] = Ipv4Address.Any; // the caller's array is its own: the cache must not change with it

        d.Sim.Advance(TimeSpan.FromSeconds(100));
        var cached = d.Run(d.Client.ResolveAsync("www.example.com"));
        Assert.True(cached.FromCache);
        Assert.Equal(new[] { Www }, cached.Addresses);
        Assert.InRange(cached.Ttl, 199, 200);
        Assert.Single(d.Dns1.Queries);

        d.Sim.Advance(TimeSpan.FromSeconds(201));
        d.Dns1.A["www.example.com"] = (new[] { Www2 }, 300);
        var fresh = d.Run(d.Client.ResolveAsync("www.example.com"));
        Assert.False(fresh.FromCache);
        Assert.Equal(new[] { Www2 }, fresh.Addresses);
        Assert.Equal(2, d.Dns1.Queries.Count);
        var stats = d.Sim.Run(d.Client.GetStatisticsAsync());
        Assert.Equal(1, stats.Single(c => c.Layer == "Dns" && c.Name == "CacheHits").Value);
        Assert.Equal(2, stats.Single(c => c.Layer == "Dns" && c.Name == "CacheMisses").Value);
    }

    [Fact]
    public void Cname_chain_is_followed_with_the_smallest_ttl()
    {
        using var d = new DnsSim(3);
        d.Dns1!.Cname["alias.example.com"] = ("mid.example.net", 600);
        d.Dns1.Cname["mid.example.net"] = ("www.example.com", 120);
        d.Dns1.A["www.example.com"] = (new[] { Www }, 300);
        var r = d.Run(d.Client.ResolveAsync("alias.example.com"));
        Assert.Equal("alias.example.com", r.Name);
        Assert.Equal(new[] { Www }, r.Addresses);
        Assert.Equal(120, r.Ttl);
    }

    [Fact]
    public void Nxdomain_is_name_not_found_naming_the_server()
    {
        using var d = new DnsSim(4);
        var e = Assert.Throws<StackException>(() => d.Run(d.Client.ResolveAsync("nope.example.com")));
        Assert.Equal(StackError.NameNotFound, e.Error);
        Assert.Equal("'nope.example.com' does not exist (NXDOMAIN) according to 192.0.2.53.", e.Message);
        Assert.Single(d.Dns1!.Queries);
        Assert.Empty(d.Dns2.Queries); // an authoritative "no" is not asked again elsewhere
    }

    [Fact]
    public void Name_without_a_record_is_name_not_found()
    {
        using var d = new DnsSim(4);
        d.Dns1!.Cname["dangling.example.com"] = ("gone.example.com", 60);
        d.Dns1.A["gone.example.com"] = (Array.Empty<Ipv4Address>(), 60);
        var e = Assert.Throws<StackException>(() => d.Run(d.Client.ResolveAsync("dangling.example.com")));
        Assert.Equal(StackError.NameNotFound, e.Error);
        Assert.Contains("no A record", e.Message);
    }

    [Fact]
    public void Silent_servers_time_out_after_every_attempt_naming_them()
    {
        using var d = new DnsSim(5);
        d.Dns1!.DropAll = true;
        d.Dns2.DropAll = true;
        var start = d.Sim.Now;
        var e = Assert.Throws<StackException>(() => d.Run(d.Client.ResolveAsync("www.example.com")));
        Assert.Equal(StackError.TimedOut, e.Error);
        Assert.Contains("192.0.2.53 did not answer (2 x 2 s)", e.Message);
        Assert.Contains("192.0.2.54 did not answer (2 x 2 s)", e.Message);
        // Two attempts of 2 s per server, two servers (each query 1 ms on the wire).
        Assert.InRange(d.Sim.Now - start, TimeSpan.FromSeconds(8), TimeSpan.FromSeconds(8.1));
        Assert.Equal(2, d.Dns1.Queries.Count);
        Assert.Equal(2, d.Dns2.Queries.Count);
        // Each query has its own id and source port (RFC 5452).
        var all = d.Dns1.Queries.Concat(d.Dns2.Queries).ToList();
        Assert.Equal(4, all.Select(q => q.Id).Distinct().Count());
        Assert.Equal(4, all.Select(q => q.FromPort).Distinct().Count());
        Assert.Equal(TimeSpan.FromSeconds(2), d.Dns1.Queries[1].At - d.Dns1.Queries[0].At);
    }

    [Fact]
    public void Lost_query_is_sent_again_after_the_timeout()
    {
        using var d = new DnsSim(6);
        d.Dns1!.A["www.example.com"] = (new[] { Www }, 300);
        d.Dns1.DropFirst = 1;
        var r = d.Run(d.Client.ResolveAsync("www.example.com"));
        Assert.Equal(new[] { Www }, r.Addresses);
        Assert.Equal(2, d.Dns1.Queries.Count);
        Assert.Equal(TimeSpan.FromSeconds(2), d.Dns1.Queries[1].At - d.Dns1.Queries[0].At);
        Assert.Empty(d.Dns2.Queries);
    }

    [Fact]
    public void Second_server_answers_when_the_first_is_silent()
    {
        using var d = new DnsSim(7);
        d.Dns1!.DropAll = true;
        d.Dns2.A["www.example.com"] = (new[] { Www }, 300);
        var r = d.Run(d.Client.ResolveAsync("www.example.com"));
        Assert.Equal(DnsSim.Server2, r.Server);
        Assert.Equal(new[] { Www }, r.Addresses);
        Assert.Equal(2, d.Dns1.Queries.Count);
        Assert.Single(d.Dns2.Queries);
    }

    [Fact]
    public void Server_without_dns_is_skipped_at_once_on_port_unreachable()
    {
        using var d = new DnsSim(8, bindServer1: false);
        d.Dns2.A["www.example.com"] = (new[] { Www }, 300);
        var start = d.Sim.Now;
        var r = d.Run(d.Client.ResolveAsync("www.example.com"));
        Assert.Equal(DnsSim.Server2, r.Server);
        Assert.True(d.Sim.Now - start < TimeSpan.FromSeconds(1), $"took {d.Sim.Now - start}");
    }

    [Theory]
    [InlineData(2, "SERVFAIL")]
    [InlineData(5, "REFUSED")]
    public void Server_failure_moves_on_and_is_reported_when_every_server_fails(int rcode, string name)
    {
        using var d = new DnsSim(9);
        d.Dns1!.ForceRcode = rcode;
        d.Dns2.ForceRcode = rcode;
        var e = Assert.Throws<StackException>(() => d.Run(d.Client.ResolveAsync("www.example.com")));
        Assert.Equal(StackError.ServerFailure, e.Error);
        Assert.Contains($"192.0.2.53 answered {name}", e.Message);
        Assert.Contains($"192.0.2.54 answered {name}", e.Message);

        d.Dns2.ForceRcode = null;
        d.Dns2.A["www.example.com"] = (new[] { Www }, 300);
        Assert.Equal(DnsSim.Server2, d.Run(d.Client.ResolveAsync("www.example.com")).Server);
    }

    [Fact]
    public void Response_with_wrong_id_or_question_is_ignored_and_counted()
    {
        using var d = new DnsSim(10);
        d.Dns1!.A["www.example.com"] = (new[] { Www }, 300);
        d.Dns1.SendWrongIdFirst = true;
        d.Dns1.SendWrongQuestionFirst = true;
        var r = d.Run(d.Client.ResolveAsync("www.example.com"));
        Assert.Equal(new[] { Www }, r.Addresses);
        Assert.Single(d.Dns1.Queries);
        Assert.Equal(2, d.Client.Dns.Counters.DroppedMismatched);
        Assert.Equal(1, d.Client.Dns.Counters.ResponsesAccepted);
    }

    [Fact]
    public void Response_from_another_address_is_ignored_and_counted()
    {
        using var d = new DnsSim(11);
        d.Dns1!.DropAll = true;
        d.Dns2.A["www.example.com"] = (new[] { Www }, 300);
        // Ask server 1 only; server 2 (another address, same port 53) sends a response that would otherwise fit.
        var task = d.Client.ResolveAsync("www.example.com", DnsSim.Server1);
        d.Sim.RunUntil(() => d.Dns1.HasQuery, TimeSpan.FromSeconds(1));
        d.Dns1.Serve();
        var q = d.Dns1.Queries[0];
        d.Dns2.SendAnswer(q.From, q.FromPort, q.Id, "www.example.com", Www);
        d.Sim.Advance(TimeSpan.FromMilliseconds(10));
        Assert.False(task.IsCompleted);
        Assert.Equal(1, d.Client.Dns.Counters.DroppedMismatched);
        Assert.Equal(StackError.TimedOut, Assert.Throws<StackException>(() => d.Run(task)).Error);
    }

    [Fact]
    public void Malformed_response_is_dropped_and_counted_and_the_real_one_accepted()
    {
        using var d = new DnsSim(12);
        d.Dns1!.A["www.example.com"] = (new[] { Www }, 300);
        d.Dns1.SendPointerLoopFirst = true;
        var r = d.Run(d.Client.ResolveAsync("www.example.com"));
        Assert.Equal(new[] { Www }, r.Addresses);
        Assert.Equal(1, d.Client.Dns.Counters.DroppedMalformed);
    }

    [Fact]
    public void Explicit_server_is_asked_and_bypasses_the_cache()
    {
        using var d = new DnsSim(13);
        d.Dns1!.A["www.example.com"] = (new[] { Www }, 300);
        d.Dns2.A["www.example.com"] = (new[] { Www2 }, 300);
        d.Run(d.Client.ResolveAsync("www.example.com"));
        var r = d.Run(d.Client.ResolveAsync("www.example.com", DnsSim.Server2));
        Assert.Equal(new[] { Www2 }, r.Addresses);
        Assert.Equal(DnsSim.Server2, r.Server);
        Assert.False(r.FromCache);
        Assert.True(d.Run(d.Client.ResolveAsync("www.example.com")).FromCache);
    }

    [Fact]
    public void Literal_address_resolves_to_itself_without_a_query()
    {
        using var d = new DnsSim(14);
        var r = d.Run(d.Client.ResolveAsync("192.0.2.7"));
        Assert.Equal(new[] { Ipv4Address.Parse("192.0.2.7") }, r.Addresses);
        Assert.Null(r.Server);
        Assert.Empty(d.Dns1!.Queries);
        Assert.Empty(d.Dns2.Queries);
    }

    [Fact]
    public void Without_any_server_the_error_says_how_to_configure_one()
    {
        using var sim = new Simulation(15);
        var a = sim.AddStack("192.0.2.2/24");
        var e = Assert.Throws<StackException>(() => sim.Run(a.ResolveAsync("www.example.com")));
        Assert.Equal(StackError.InvalidArgument, e.Error);
        Assert.Contains("DnsServers", e.Message);
    }

    [Theory]
    [InlineData("")]
    [InlineData("a..b")]
    [InlineData("bad name.example")]
    [InlineData("ünicode.example")]
    public void Invalid_names_are_argument_errors(string name)
    {
        using var d = new DnsSim(16);
        var e = Assert.Throws<ArgumentException>(() => { _ = d.Client.ResolveAsync(name); }); // thrown at the call, before any work is posted
        Assert.Equal("name", e.ParamName);
    }

    [Fact]
    public void Cache_is_bounded_and_evictions_are_counted()
    {
        using var d = new DnsSim(17, c => c with { Dns = new DnsSettings { CacheSize = 2 } });
        for (int i = 0; i < 3; i++) d.Dns1!.A[$"h{i}.example"] = (new[] { Www }, (uint)(100 + i));
        for (int i = 0; i < 3; i++) d.Run(d.Client.ResolveAsync($"h{i}.example"));
        Assert.Equal(1, d.Client.Dns.Counters.CacheEvictions);
        Assert.False(d.Run(d.Client.ResolveAsync("h0.example")).FromCache); // the one closest to expiry went
        Assert.True(d.Run(d.Client.ResolveAsync("h2.example")).FromCache);
    }

    [Fact]
    public void Stopping_the_stack_fails_a_resolution_in_flight()
    {
        var d = new DnsSim(18);
        d.Dns1!.DropAll = true;
        var task = d.Client.ResolveAsync("www.example.com");
        d.Sim.Advance(TimeSpan.FromMilliseconds(100));
        d.Dispose();
        Assert.True(task.IsCompleted);
        Assert.Equal(StackError.StackStopped, Assert.Throws<StackException>(() => task.GetAwaiter().GetResult()).Error);
    }
}
