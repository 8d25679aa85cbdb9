using System.Net;
using NetStack;
using NetStack.Http;
using NetStack.Link;
using Stack.Tests.Dns;

namespace Stack.Tests.Http;

/// <summary>
/// StackHttpClient (HttpClient over our stack) against a test server on a second stack, on the in-memory wire in real
/// time: the timing breakdown, keep-alive reuse, redirects on one connection, names through the stack's resolver,
/// failures, timeouts and cancellation closing the connection.
/// </summary>
public class StackHttpClientTests
{
    private static readonly Ipv4Address ServerAddress = Ipv4Address.Parse("192.0.2.1");
    private static readonly TimeSpan Limit = TimeSpan.FromSeconds(30);

    private sealed class Rig : IAsyncDisposable
    {
        private readonly CancellationTokenSource _stop = new();
        private readonly Task? _dnsPump;

        public Rig(int seed, bool dns = false)
        {
            var wire = new VirtualWire(seed);
            Server = new NetworkStack(wire.CreatePort("s", MacAddress.Parse("02-00-00-00-00-01")), new StackConfig { Address = ServerAddress });
            Client = new NetworkStack(wire.CreatePort("c", MacAddress.Parse("02-00-00-00-00-02")),
                new StackConfig { Address = Ipv4Address.Parse("192.0.2.2"), DnsServers = [ServerAddress] });
            Server.Start();
            Client.Start();
            Web = TestHttpServer.StartAsync(Server).GetAwaiter().GetResult();
            Http = new StackHttpClient(Client);
            if (dns)
            {
                // The test DNS server is driven by its owner; here a task serves whatever arrived.
                var server = new TestDnsServer(Server.CreateUdpSocketAsync(53).GetAwaiter().GetResult(), () => TimeSpan.Zero);
                server.A["web.test"] = ([ServerAddress], 300);
                _dnsPump = Task.Run(async () =>
                {
                    while (!_stop.IsCancellationRequested)
                    {
                        if (server.HasQuery) server.Serve();
                        await Task.Delay(2);
                    }
                });
            }
        }

        public NetworkStack Server { get; }
        public NetworkStack Client { get; }
        public TestHttpServer Web { get; }
        public StackHttpClient Http { get; }

        public Task<StackHttpResponse> Get(string uri, int maxRedirects = 5, TimeSpan? timeout = null, CancellationToken ct = default) =>
            Http.SendAsync(new StackHttpRequest { Uri = new Uri(uri), MaximumRedirection = maxRedirects, Timeout = timeout ?? Limit }, cancellationToken: ct)
                .WaitAsync(TimeSpan.FromSeconds(60));

        public async Task<bool> ClientHasEstablished() =>
            (await Client.GetConnectionsAsync()).Any(c => c.Protocol == NetStack.SocketProtocol.Tcp && c.State == "Established");

        public async ValueTask DisposeAsync()
        {
            _stop.Cancel();
            if (_dnsPump != null) await _dnsPump;
            Http.Dispose();
            await Web.DisposeAsync();
            Client.Dispose();
            Server.Dispose();
        }
    }

    private static async Task Eventually(Func<Task<bool>> condition, string what)
    {
        var until = DateTime.UtcNow + Limit;
        while (!await condition())
        {
            if (DateTime.UtcNow > until) throw new TimeoutException($"Waited {Limit.TotalSeconds} s for {what}.");
            await Task.Delay(10);
        }
    }

    [Fact]
    public async Task First_request_pays_arp_and_handshake_the_second_reuses_the_connection()
    {
        await using var rig = new Rig(1);
        var first = await rig.Get($"http://{ServerAddress}/bytes/100000");
        Assert.Equal(HttpStatusCode.OK, first.StatusCode);
        Assert.Equal(TestHttpServer.Pattern(100_000), first.Body);
        Assert.Equal(100_000, first.BodyLength);
        Assert.Equal("application/octet-stream", first.ContentType);
        var c1 = first.Connection!;
        Assert.False(c1.Reused);
        Assert.Equal(ServerAddress, c1.RemoteEndPoint.Address);
        Assert.Equal(80, c1.RemoteEndPoint.Port);
        Assert.Equal(rig.Client.Config.Address, c1.LocalEndPoint.Address);
        Assert.Equal(ServerAddress, c1.Address);
        Assert.NotNull(c1.Info);
        Assert.Equal(0, c1.Retransmits); // a clean wire
        Assert.Equal(TimeSpan.Zero, first.Timing.NameLookup); // a literal address
        Assert.True(first.Timing.Arp > TimeSpan.Zero, "the ARP cache was empty");
        Assert.True(first.Timing.TcpHandshake > TimeSpan.Zero);
        Assert.Equal(TimeSpan.Zero, first.Timing.Tls);
        Assert.Equal(TimeSpan.Zero, first.Timing.Redirect);
        Assert.True(first.Timing.FirstByte > TimeSpan.Zero);
        Assert.True(first.Timing.Total >= first.Timing.Arp + first.Timing.TcpHandshake + first.Timing.FirstByte);

        var second = await rig.Get($"http://{ServerAddress}/bytes/10");
        Assert.True(second.Connection!.Reused);
        Assert.Equal(c1.SocketId, second.Connection.SocketId);
        Assert.Equal(c1.LocalEndPoint, second.Connection.LocalEndPoint);
        Assert.Equal(TimeSpan.Zero, second.Timing.Arp);
        Assert.Equal(TimeSpan.Zero, second.Timing.TcpHandshake);
        Assert.True(second.Timing.FirstByte > TimeSpan.Zero);
        Assert.Equal(1, rig.Web.Connections);
        Assert.Equal(2, rig.Web.Requests.Count);
    }

    [Fact]
    public async Task A_name_resolves_through_the_stacks_resolver()
    {
        await using var rig = new Rig(2, dns: true);
        var r = await rig.Get("http://web.test/bytes/5");
        Assert.Equal("abcde", System.Text.Encoding.ASCII.GetString(r.Body!));
        Assert.Equal("web.test", r.Connection!.Host);
        Assert.Equal(ServerAddress, r.Connection.Address);
        Assert.True(r.Timing.NameLookup > TimeSpan.Zero);

        var e = await Assert.ThrowsAsync<HttpRequestException>(() => rig.Get("http://nosuch.test/"));
        var inner = Assert.IsType<StackException>(e.InnerException);
        Assert.Equal(StackError.NameNotFound, inner.Error);
        Assert.Contains("nosuch.test", inner.Message);
    }

    [Fact]
    public async Task Redirects_are_followed_on_one_kept_alive_connection_up_to_the_limit()
    {
        await using var rig = new Rig(3);
        var r = await rig.Get($"http://{ServerAddress}/redirect/3");
        Assert.Equal(HttpStatusCode.OK, r.StatusCode);
        Assert.Equal($"http://{ServerAddress}/redirect/0", r.Uri.ToString());
        Assert.Equal([302, 302, 302], r.Redirects.Select(h => h.StatusCode));
        Assert.Equal($"http://{ServerAddress}/redirect/2", r.Redirects[0].Location.ToString());
        Assert.False(r.RedirectLimitReached);
        Assert.True(r.Timing.Redirect > TimeSpan.Zero);
        Assert.True(r.Connection!.Reused);
        Assert.Equal(1, rig.Web.Connections);
        Assert.Equal(4, rig.Web.Requests.Count);

        var limited = await rig.Get($"http://{ServerAddress}/redirect/3", maxRedirects: 1);
        Assert.Equal(HttpStatusCode.Found, limited.StatusCode);
        Assert.True(limited.RedirectLimitReached);
        Assert.Single(limited.Redirects);
        Assert.Equal("moved", System.Text.Encoding.ASCII.GetString(limited.Body!));
    }

    [Fact]
    public async Task Post_body_goes_out_and_a_destination_stream_takes_the_response()
    {
        await using var rig = new Rig(4);
        var body = TestHttpServer.Pattern(300_000);
        var file = new MemoryStream();
        var seen = new List<long>();
        var r = await rig.Http.SendAsync(new StackHttpRequest { Uri = new Uri($"http://{ServerAddress}/echo"), Method = HttpMethod.Post, Body = body, ContentType = "text/plain" },
            file, (got, total) => { lock (seen) seen.Add(got); Assert.Equal(300_000, total); }).WaitAsync(TimeSpan.FromSeconds(60));
        Assert.Null(r.Body);
        Assert.Equal(300_000, r.BodyLength);
        Assert.Equal(body, file.ToArray());
        Assert.Equal(300_000, seen[^1]);
        Assert.Equal("POST /echo HTTP/1.1", rig.Web.Requests.Single().RequestLine);
    }

    [Fact]
    public async Task A_refused_connection_is_the_stacks_error()
    {
        await using var rig = new Rig(5);
        var e = await Assert.ThrowsAsync<HttpRequestException>(() => rig.Get($"http://{ServerAddress}:81/"));
        Assert.Equal(StackError.ConnectionRefused, Assert.IsType<StackException>(e.InnerException).Error);
    }

    [Fact]
    public async Task A_stalled_body_times_out_and_the_connection_is_closed()
    {
        await using var rig = new Rig(6);
        var e = await Assert.ThrowsAsync<TimeoutException>(() => rig.Get($"http://{ServerAddress}/stall", timeout: TimeSpan.FromSeconds(1)));
        Assert.Contains("65,536 bytes", e.Message);
        await Eventually(async () => !await rig.ClientHasEstablished(), "the client to close its connection");
        await Eventually(() => Task.FromResult(Volatile.Read(ref rig.Web.ConnectionsEnded) == 1), "the server to see the connection end");
    }

    [Fact]
    public async Task Cancelling_stops_the_request_and_closes_the_connection()
    {
        await using var rig = new Rig(7);
        using var cts = new CancellationTokenSource();
        var started = new TaskCompletionSource();
        var request = rig.Http.SendAsync(new StackHttpRequest { Uri = new Uri($"http://{ServerAddress}/stall"), Timeout = Limit }, new MemoryStream(),
            (got, _) => started.TrySetResult(), cts.Token);
        await started.Task.WaitAsync(Limit);
        cts.Cancel();
        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => request.WaitAsync(Limit));
        await Eventually(async () => !await rig.ClientHasEstablished(), "the client to close its connection");
        await Eventually(() => Task.FromResult(Volatile.Read(ref rig.Web.ConnectionsEnded) == 1), "the server to see the connection end");
        // The client is still usable afterwards, on a new connection.
        Assert.Equal(HttpStatusCode.OK, (await rig.Get($"http://{ServerAddress}/bytes/1")).StatusCode);
        Assert.Equal(2, rig.Web.Connections);
    }

    [Fact]
    public async Task The_plain_handler_serves_an_httpclient_of_your_own()
    {
        await using var rig = new Rig(8, dns: true);
        using var http = new HttpClient(StackHttpClient.CreateHandler(rig.Client));
        Assert.Equal("abc", await http.GetStringAsync("http://web.test/bytes/3").WaitAsync(Limit));
    }
}
