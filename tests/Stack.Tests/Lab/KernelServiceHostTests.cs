using System.Text;
using NetStack.Services;
using Xunit.Abstractions;

namespace NetStack.Tests.Lab;

/// <summary>
/// The lab's service host on our stack (192.0.2.2, namespace U), used by real clients over the Linux kernel (namespace
/// K): curl for HTTP, dig and the C library's resolver (getent) for DNS, socat for echo and daytime.
/// </summary>
[Collection(KernelLabCollection.Name)]
public sealed class KernelServiceHostTests(ITestOutputHelper output)
{
    private static readonly TimeSpan Generous = TimeSpan.FromSeconds(30);

    private sealed class Rig : IDisposable
    {
        public Rig()
        {
            Lab = new KernelLab();
            Stack = new NetworkStack(Lab.OpenStackDevice(), new StackConfig { Address = KernelLab.StackAddress, PrefixLength = KernelLab.PrefixLength }, name: "services");
            Stack.Start();
            Host = ServiceHost.StartAsync(Stack, new ServiceHostOptions { HttpSlowInterval = TimeSpan.FromMilliseconds(20) }).WaitAsync(Generous).GetAwaiter().GetResult();
        }

        public KernelLab Lab { get; }
        public NetworkStack Stack { get; }
        public ServiceHost Host { get; }

        public void Dispose()
        {
            Host.Dispose();
            Stack.Dispose();
            Lab.Dispose();
        }
    }

    /// <summary>Text as the lab collects a program's output: line by line, each line ended by \n (CRs dropped).</summary>
    private static string AsCollected(string text)
    {
        var collected = new StringBuilder();
        using var reader = new StringReader(text); // splits lines as the process output reader does
        while (reader.ReadLine() is { } line) collected.Append(line).Append('\n');
        return collected.ToString();
    }

    private LabResult InKernel(Rig rig, string command)
    {
        var r = rig.Lab.RunInKernel(command, Generous);
        output.WriteLine($"$ {command}\n{r.Output}{r.Error}");
        return r;
    }

    [KernelFact(Programs = ["curl"])]
    public void Curl_fetches_pages_downloads_chunked_and_redirects_over_kept_alive_connections()
    {
        using var rig = new Rig();
        var size = InKernel(rig, "curl -sS --max-time 25 -o /dev/null -w '%{http_code} %{size_download}' http://192.0.2.2/bytes/5000000").EnsureSuccess();
        Assert.Equal("200 5000000", size.Output.Trim());
        var body = InKernel(rig, "curl -sS --max-time 25 http://192.0.2.2/bytes/300").EnsureSuccess();
        Assert.Equal(AsCollected(Encoding.ASCII.GetString(ChargenService.Pattern(300))), body.Output);

        Assert.Contains("NetStack lab service host", InKernel(rig, "curl -sS --max-time 25 http://192.0.2.2/").EnsureSuccess().Output);
        Assert.Equal(HttpService.HelloText, InKernel(rig, "curl -sS -L --max-time 25 http://192.0.2.2/redirect").EnsureSuccess().Output);
        // --raw: the transfer coding as it came, each chunk "d" (13 bytes) CRLF, data, CRLF, then "0" CRLF CRLF.
        Assert.Equal(AsCollected(string.Concat(Enumerable.Range(1, 5).Select(i => $"d\r\nchunk {i} of 5\n\r\n")) + "0\r\n\r\n"),
            InKernel(rig, "curl -sS --max-time 25 --raw http://192.0.2.2/chunked").EnsureSuccess().Output);
        Assert.Equal("line 1 of 3\nline 2 of 3\nline 3 of 3\n", InKernel(rig, "curl -sS --max-time 25 http://192.0.2.2/slow/3").EnsureSuccess().Output);

        // Two URLs in one curl: the second request goes over the first connection (keep-alive).
        var twice = InKernel(rig, "curl -sv --max-time 25 http://192.0.2.2/hello http://192.0.2.2/hello").EnsureSuccess();
        Assert.Contains("Re-using existing connection", twice.Error);
        Assert.Equal(HttpService.HelloText + HttpService.HelloText, twice.Output);
        Assert.Equal("404", InKernel(rig, "curl -s --max-time 25 -o /dev/null -w '%{http_code}' http://192.0.2.2/missing").Output.Trim());
    }

    [KernelFact(Programs = ["dig"])]
    public void Dig_reads_every_record_type_and_the_negative_answers()
    {
        using var rig = new Rig();
        string Dig(string args) => InKernel(rig, $"dig @192.0.2.2 +time=5 +tries=3 {args}").EnsureSuccess().Output;
        Assert.Equal("www.lab.test.\nhost.lab.test.\n192.0.2.2\n", Dig("+short alias.lab.test A"));
        Assert.Equal("10 mail.lab.test.\n", Dig("+short lab.test MX"));
        Assert.StartsWith("\"NetStack embedded lab:", Dig("+short lab.test TXT"));
        Assert.Equal("host.lab.test.\n", Dig("+short -x 192.0.2.2"));
        Assert.Equal("ns.lab.test.\n", Dig("+short lab.test NS"));

        var nx = Dig("nope.lab.test A");
        Assert.Contains("status: NXDOMAIN", nx);
        Assert.Matches(@"flags: qr aa rd;", nx);                          // authoritative, no recursion available
        Assert.Matches(@"(?m)^lab\.test\.\s+60\s+IN\s+SOA\s+ns\.lab\.test\. hostmaster\.ns\.lab\.test\. 1 ", nx);
        var nodata = Dig("host.lab.test MX");
        Assert.Contains("status: NOERROR", nodata);
        Assert.Contains("ANSWER: 0, AUTHORITY: 1", nodata);
        Assert.Contains("status: REFUSED", Dig("example.com A"));

        // EDNS and TCP, as dig speaks them: an OPT record comes back; 30 TXT records (about 2.7 KB) come truncated over
        // UDP, with or without EDNS, and whole over TCP, which dig falls back to by itself.
        Assert.Matches(@"(?m)^; EDNS: version: 0, flags:; udp: 1232$", Dig("host.lab.test A"));
        Assert.Equal("2001:db8::2\n", Dig("+short host.lab.test AAAA"));
        Assert.Matches(@"flags: qr aa tc rd;", Dig("+ignore +notcp big.lab.test TXT"));
        Assert.Matches(@"flags: qr aa tc rd;", Dig("+ignore +notcp +noedns big.lab.test TXT"));
        Assert.Equal(30, Dig("+short big.lab.test TXT").Split('\n', StringSplitOptions.RemoveEmptyEntries).Length);
        Assert.Equal(40, Dig("+short many.lab.test A").Split('\n', StringSplitOptions.RemoveEmptyEntries).Length); // fits with EDNS
        Assert.Equal("0 0 80 host.lab.test.\n", Dig("+tcp +short _http._tcp.lab.test SRV"));
    }

    [KernelFact]
    public void The_c_library_resolver_finds_names_addresses_and_nxdomain()
    {
        using var rig = new Rig();
        // ip netns exec bind-mounts /etc/netns/<namespace>/resolv.conf over /etc/resolv.conf for the commands it runs.
        var dir = Path.Combine("/etc/netns", rig.Lab.KernelNamespace);
        Directory.CreateDirectory(dir);
        try
        {
            File.WriteAllText(Path.Combine(dir, "resolv.conf"), "nameserver 192.0.2.2\noptions timeout:5 attempts:3\n");
            var forward = InKernel(rig, "getent ahostsv4 www.lab.test").EnsureSuccess().Output;
            Assert.Matches(@"^192\.0\.2\.2\s+STREAM host\.lab\.test\n", forward);      // the CNAME's target is the canonical name
            Assert.Matches(@"^192\.0\.2\.2\s+host\.lab\.test\n$", InKernel(rig, "getent hosts 192.0.2.2").EnsureSuccess().Output); // PTR
            Assert.Equal(2, InKernel(rig, "getent ahostsv4 nope.lab.test").ExitCode);    // 2: not found
        }
        finally
        {
            Directory.Delete(dir, recursive: true);
        }
    }

    [KernelFact(Programs = ["socat"])]
    public void Socat_uses_echo_over_tcp_and_udp_and_reads_daytime()
    {
        using var rig = new Rig();
        Assert.Equal("hello over tcp\n", InKernel(rig, "printf 'hello over tcp' | socat -t 5 - TCP:192.0.2.2:7").EnsureSuccess().Output);
        Assert.Equal("hello over udp\n", InKernel(rig, "printf 'hello over udp' | socat -t 5 - UDP:192.0.2.2:7").EnsureSuccess().Output);
        Assert.Matches(@"^\w+day, \w+ \d{1,2}, \d{4} \d\d:\d\d:\d\d UTC\n$", InKernel(rig, "socat -u TCP:192.0.2.2:13 -").EnsureSuccess().Output);
        // Read some chargen and go: head exits, socat closes with data unread (a reset), the host's connection ends.
        Assert.Equal(AsCollected(Encoding.ASCII.GetString(ChargenService.Pattern(1000))), InKernel(rig, "socat -u TCP:192.0.2.2:19 - | head -c 1000").Output);
    }
}
