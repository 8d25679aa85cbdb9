using System.Net;
using NetStack.Dns;
using Xunit.Abstractions;

namespace NetStack.Tests.Lab;

/// <summary>
/// The resolver against dnsmasq over the Linux kernel (dnsmasq at 192.0.2.1 in namespace K, our stack at 192.0.2.2):
/// dnsmasq is authoritative for lab.test (its auth mode: answers with AA, and NXDOMAIN and NODATA with the zone's SOA),
/// answers EDNS queries with an OPT record, and truncates an answer over the 1232 bytes we advertise, keeping what fits:
/// the stack must drop that part and ask over TCP.
/// </summary>
[Collection(KernelLabCollection.Name)]
public sealed class KernelDnsTests(ITestOutputHelper output)
{
    private static readonly TimeSpan Generous = TimeSpan.FromSeconds(30);

    /// <summary>40 TXT records of 100 characters: about 4.4 KB, truncated over UDP.</summary>
    private static readonly string[] BigStrings = Enumerable.Range(1, 40).Select(i => $"{i:D2} " + new string('x', 97)).ToArray();

    private static LabProcess StartDnsmasq(KernelLab lab)
    {
        string[] arguments =
        [
            "--no-daemon", "--no-resolv", "--no-hosts", "--log-facility=-", "--log-queries", "--listen-address=192.0.2.1",
            "--bind-interfaces", "--port=53", "--pid-file=", "--user=root",
            "--auth-server=ns.lab.test,192.0.2.1", "--auth-zone=lab.test,192.0.2.0/24,2001:db8::/64", "--auth-soa=7,hostmaster.lab.test,1200,120,1209600",
            "--auth-ttl=60", "--host-record=www.lab.test,192.0.2.80,2001:db8::80", "--cname=alias.lab.test,www.lab.test",
            "--mx-host=lab.test,mail.lab.test,10", "--txt-record=lab.test,hello from dnsmasq", "--srv-host=_http._tcp.lab.test,www.lab.test,80,0,0",
            .. BigStrings.Select(s => "--txt-record=big.lab.test," + s),
        ];
        var p = lab.StartProgramInKernel("dnsmasq", arguments);
        Assert.True(p.WaitForAnyOutput(o => o.Contains("started"), Generous), $"dnsmasq did not start: {p.Output} {p.Error}");
        return p;
    }

    private static NetworkStack StartStack(KernelLab lab)
    {
        var config = new StackConfig
        {
            Address = KernelLab.StackAddress, PrefixLength = KernelLab.PrefixLength, DnsServers = [KernelLab.KernelAddress], DnsSearch = ["lab.test"],
        };
        var stack = new NetworkStack(lab.OpenStackDevice(), config, name: "lab");
        stack.Start();
        return stack;
    }

    private static Task<DnsAnswer> Ask(NetworkStack stack, string name, DnsRecordType type, bool noCache = false) =>
        stack.QueryDnsAsync(name, type, noCache: noCache).WaitAsync(Generous);

    [KernelFact(Programs = ["dnsmasq"])]
    public async Task Record_types_a_short_name_and_a_cname_chain()
    {
        using var lab = new KernelLab();
        var dnsmasq = StartDnsmasq(lab);
        using var stack = StartStack(lab);

        var alias = await stack.ResolveAsync("alias").WaitAsync(Generous); // the search list makes it alias.lab.test
        Assert.Equal(("alias.lab.test", 60), (alias.Name, alias.Ttl));
        Assert.Equal([new Ipv4Address(192, 0, 2, 80)], alias.Addresses);
        var chain = await Ask(stack, "alias.lab.test", DnsRecordType.A);
        Assert.Equal([(DnsRecordType.CNAME, "alias.lab.test"), (DnsRecordType.A, "www.lab.test")],
            chain.Records.Where(r => r.Section == DnsSection.Answer).Select(r => (r.Type, r.Name)));

        Assert.Equal(IPAddress.Parse("2001:db8::80"), Assert.Single((await Ask(stack, "www.lab.test", DnsRecordType.AAAA)).Data).Address6);
        var mx = Assert.Single((await Ask(stack, "lab.test", DnsRecordType.MX)).Data);
        Assert.Equal((10, "mail.lab.test"), (mx.Preference, mx.Target));
        Assert.Equal(["hello from dnsmasq"], Assert.Single((await Ask(stack, "lab.test", DnsRecordType.TXT)).Data).Strings!);
        var srv = Assert.Single((await Ask(stack, "_http._tcp.lab.test", DnsRecordType.SRV)).Data);
        Assert.Equal((80, "www.lab.test"), (srv.Port, srv.Target));
        var soa = Assert.Single((await Ask(stack, "lab.test", DnsRecordType.SOA)).Data);
        Assert.Equal(("ns.lab.test", "hostmaster.lab.test", 7u), (soa.Target, soa.Mailbox, soa.Serial));
        var ptr = Assert.Single((await Ask(stack, DnsName.ReverseName(new Ipv4Address(192, 0, 2, 80)), DnsRecordType.PTR)).Data);
        Assert.Equal("www.lab.test", ptr.Target);

        Assert.True(stack.Dns.Counters.EdnsQueries > 0);
        Assert.Equal(0, stack.Dns.Counters.EdnsFallbacks); // dnsmasq speaks EDNS
        Assert.Equal(0, stack.Dns.Counters.DroppedMismatched + stack.Dns.Counters.DroppedMalformed);
        output.WriteLine(dnsmasq.Output);
    }

    [KernelFact(Programs = ["dnsmasq"])]
    public async Task Truncated_answer_is_taken_again_over_tcp()
    {
        using var lab = new KernelLab();
        var dnsmasq = StartDnsmasq(lab);
        using var stack = StartStack(lab);

        var big = await Ask(stack, "big.lab.test", DnsRecordType.TXT);
        Assert.True(big.OverTcp);
        Assert.Equal(BigStrings.Order(), big.Data.Select(r => Assert.Single(r.Strings!)).Order()); // all 40, not the part that fit in UDP
        Assert.Equal((1, 1, 0), (stack.Dns.Counters.TruncatedAnswers, stack.Dns.Counters.TcpQueries, stack.Dns.Counters.TcpFailures));
        // dnsmasq logged the question twice: once over UDP (truncated), once over TCP.
        Assert.True(dnsmasq.WaitForAnyOutput(o => o.Split("[TXT] big.lab.test from").Length - 1 >= 2, Generous), dnsmasq.Output + dnsmasq.Error);
        // The TCP connection was ours: it is closed (TIME-WAIT at most), nothing left established.
        Assert.DoesNotContain(await stack.GetConnectionsAsync().WaitAsync(Generous), c => c.State == "Established");
    }

    [KernelFact(Programs = ["dnsmasq"])]
    public async Task Nxdomain_and_nodata_are_cached_for_the_soa_minimum()
    {
        using var lab = new KernelLab();
        var dnsmasq = StartDnsmasq(lab);
        using var stack = StartStack(lab);

        var first = await Assert.ThrowsAsync<StackException>(() => Ask(stack, "nope.lab.test", DnsRecordType.A));
        Assert.Equal(StackError.NameNotFound, first.Error);
        Assert.Contains("NXDOMAIN", first.Message);
        var again = await Assert.ThrowsAsync<StackException>(() => Ask(stack, "nope.lab.test", DnsRecordType.MX));
        Assert.Contains("cached from 192.0.2.1", again.Message); // NXDOMAIN covers every type of the name (RFC 2308 5)
        var nodata = await Assert.ThrowsAsync<StackException>(() => Ask(stack, "www.lab.test", DnsRecordType.TXT));
        Assert.Equal("'www.lab.test' has no TXT record according to 192.0.2.1.", nodata.Message);
        Assert.Contains("cached", (await Assert.ThrowsAsync<StackException>(() => Ask(stack, "www.lab.test", DnsRecordType.TXT))).Message);
        Assert.Equal((2, 2), (stack.Dns.Counters.NegativeCacheStores, stack.Dns.Counters.NegativeCacheHits));

        await Assert.ThrowsAsync<StackException>(() => Ask(stack, "nope.lab.test", DnsRecordType.A, noCache: true)); // asked again
        Assert.True(dnsmasq.WaitForAnyOutput(o => o.Split("nope.lab.test from").Length - 1 == 2, Generous), dnsmasq.Output);
        output.WriteLine(dnsmasq.Output);
    }
}
