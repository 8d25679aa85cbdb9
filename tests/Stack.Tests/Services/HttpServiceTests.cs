using System.Net;
using System.Text;
using NetStack;
using NetStack.Services;
using NetStack.Sockets;
using NetStack.Tcp;

namespace Stack.Tests.Services;

/// <summary>The service host's HTTP/1.1 server, fetched with .NET's own HttpClient over our TCP, and by hand.</summary>
public class HttpServiceTests
{
    private static HttpClient Client(LabRig lab, bool redirects = true, Action? onConnect = null) => new(new SocketsHttpHandler
    {
        AllowAutoRedirect = redirects,
        ConnectCallback = async (context, ct) =>
        {
            onConnect?.Invoke();
            var socket = await lab.Client.ConnectTcpAsync(Ipv4Address.Parse(context.DnsEndPoint.Host), (ushort)context.DnsEndPoint.Port, ct);
            return socket.GetStream(ownsSocket: true);
        },
    }) { Timeout = TimeSpan.FromSeconds(30) };

    [Fact]
    public async Task Pages_download_chunked_and_404_over_one_kept_alive_connection()
    {
        using var lab = new LabRig();
        var connects = 0;
        using (var http = Client(lab, onConnect: () => Interlocked.Increment(ref connects)))
        {
            var index = await http.GetAsync("http://192.0.2.1/", lab.Token);
            Assert.Equal(HttpStatusCode.OK, index.StatusCode);
            Assert.Equal("text/html", index.Content.Headers.ContentType!.MediaType);
            Assert.Contains("NetStack lab service host", await index.Content.ReadAsStringAsync(lab.Token));

            Assert.Equal(HttpService.HelloText, await http.GetStringAsync("http://192.0.2.1/hello", lab.Token));

            var bytes = await http.GetAsync("http://192.0.2.1/bytes/3000000", lab.Token);
            Assert.Equal(3_000_000, bytes.Content.Headers.ContentLength);
            Assert.Equal(ChargenService.Pattern(3_000_000), await bytes.Content.ReadAsByteArrayAsync(lab.Token));

            var download = await http.GetAsync("http://192.0.2.1/download", lab.Token);
            Assert.Equal(HttpService.DownloadSize, (await download.Content.ReadAsByteArrayAsync(lab.Token)).Length);
            Assert.Equal("download.bin", download.Content.Headers.ContentDisposition!.FileName!.Trim('"'));

            var chunked = await http.GetAsync("http://192.0.2.1/chunked", lab.Token);
            Assert.True(chunked.Headers.TransferEncodingChunked);
            Assert.Equal(string.Concat(Enumerable.Range(1, 5).Select(i => $"chunk {i} of 5\n")), await chunked.Content.ReadAsStringAsync(lab.Token));

            var missing = await http.GetAsync("http://192.0.2.1/nothing-here", lab.Token);
            Assert.Equal(HttpStatusCode.NotFound, missing.StatusCode);
            Assert.Contains("/nothing-here", await missing.Content.ReadAsStringAsync(lab.Token));

            var head = await http.SendAsync(new HttpRequestMessage(HttpMethod.Head, "http://192.0.2.1/bytes/5000"), lab.Token);
            Assert.Equal(5000, head.Content.Headers.ContentLength);

            var echo = await http.PostAsync("http://192.0.2.1/echo", new StringContent("round trip", Encoding.UTF8, "text/plain"), lab.Token);
            Assert.Equal("round trip", await echo.Content.ReadAsStringAsync(lab.Token));
        }
        Assert.Equal(1, connects);
        Assert.Equal(1, Interlocked.Read(ref lab.Host.Counters.TcpConnections));
        Assert.Equal(8, Interlocked.Read(ref lab.Host.Counters.HttpRequests));
    }

    [Fact]
    public async Task Redirect_is_a_302_to_hello_that_HttpClient_follows()
    {
        using var lab = new LabRig();
        using (var raw = Client(lab, redirects: false))
        {
            var r = await raw.GetAsync("http://192.0.2.1/redirect", lab.Token);
            Assert.Equal(HttpStatusCode.Found, r.StatusCode);
            Assert.Equal("/hello", r.Headers.Location!.OriginalString);
        }
        using var http = Client(lab);
        var followed = await http.GetAsync("http://192.0.2.1/redirect", lab.Token);
        Assert.Equal("/hello", followed.RequestMessage!.RequestUri!.AbsolutePath);
        Assert.Equal(HttpService.HelloText, await followed.Content.ReadAsStringAsync(lab.Token));
    }

    [Fact]
    public async Task Slow_trickles_its_lines_in_chunks()
    {
        using var lab = new LabRig(new ServiceHostOptions { HttpSlowInterval = TimeSpan.FromMilliseconds(20) });
        using var http = Client(lab);
        using var response = await http.GetAsync("http://192.0.2.1/slow/4", HttpCompletionOption.ResponseHeadersRead, lab.Token);
        Assert.True(response.Headers.TransferEncodingChunked);
        using var reader = new StreamReader(await response.Content.ReadAsStreamAsync(lab.Token));
        for (int i = 1; i <= 4; i++) Assert.Equal($"line {i} of 4", await reader.ReadLineAsync(lab.Token));
        Assert.Null(await reader.ReadLineAsync(lab.Token));
    }

    /// <summary>Sends <paramref name="request"/> as written, then our FIN, and reads the raw answer until the server closes.</summary>
    private static async Task<string> RawAsync(LabRig lab, string request)
    {
        using var c = await lab.ConnectAsync(80);
        await c.SendAsync(Encoding.ASCII.GetBytes(request), lab.Token);
        c.ShutdownSend();
        return Encoding.ASCII.GetString(await lab.ReadToEndAsync(c));
    }

    [Fact]
    public async Task Pipelined_requests_are_answered_in_order_and_close_ends_the_connection()
    {
        using var lab = new LabRig();
        var answer = await RawAsync(lab, "GET /hello HTTP/1.1\r\nHost: x\r\n\r\nGET /nope HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
        var first = answer.IndexOf("HTTP/1.1 200 OK\r\n", StringComparison.Ordinal);
        var second = answer.IndexOf("HTTP/1.1 404 Not Found\r\n", StringComparison.Ordinal);
        Assert.True(first == 0 && second > first, answer);
        Assert.Contains("Connection: close\r\n", answer[second..]);
        Assert.DoesNotContain("Connection: close", answer[..second]);
    }

    [Theory]
    [InlineData("GET / HTTP/1.1\r\n\r\n", "400 Bad Request", "Host")]                         // RFC 9112 3.2
    [InlineData("GET / HTTP/2.0\r\nHost: x\r\n\r\n", "505 HTTP Version Not Supported", "HTTP/1.1")]
    [InlineData("DELETE /hello HTTP/1.1\r\nHost: x\r\n\r\n", "405 Method Not Allowed", "Allow: GET, HEAD")]
    [InlineData("GET /bytes/lots HTTP/1.1\r\nHost: x\r\n\r\n", "400 Bad Request", "/bytes/N")]
    [InlineData("POST /echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n", "411 Length Required", "Content-Length")]
    [InlineData("nonsense\r\n\r\n", "400 Bad Request", "request line")]
    [InlineData("GET / HTTP/1.1\r\nHost : x\r\n\r\n", "400 Bad Request", "header field")]    // RFC 9112 5.1: no space before the colon
    public async Task Bad_requests_get_the_status_that_says_why(string request, string status, string says)
    {
        using var lab = new LabRig();
        var answer = await RawAsync(lab, request);
        Assert.StartsWith($"HTTP/1.1 {status}\r\n", answer);
        Assert.Contains(says, answer);
    }

    [Fact]
    public async Task Http_1_0_closes_after_the_answer_unless_kept_alive()
    {
        using var lab = new LabRig();
        var answer = await RawAsync(lab, "GET /hello HTTP/1.0\r\n\r\n"); // no Host needed in HTTP/1.0
        Assert.StartsWith("HTTP/1.1 200 OK\r\n", answer);
        Assert.Contains("Connection: close\r\n", answer);
        Assert.EndsWith(HttpService.HelloText, answer);
    }

    [Fact]
    public async Task An_idle_kept_alive_connection_is_closed_by_the_server()
    {
        using var lab = new LabRig(new ServiceHostOptions { HttpIdleTimeout = TimeSpan.FromMilliseconds(200) });
        using var c = await lab.ConnectAsync(80);
        await c.SendAsync("GET /hello HTTP/1.1\r\nHost: x\r\n\r\n"u8.ToArray(), lab.Token);
        var answer = Encoding.ASCII.GetString(await lab.ReadToEndAsync(c)); // ends with the server's FIN
        Assert.EndsWith(HttpService.HelloText, answer);
    }

    [Fact]
    public void Chunks_are_hex_sized()
    {
        Assert.Equal("1a\r\nabcdefghijklmnopqrstuvwxyz\r\n", Encoding.ASCII.GetString(HttpService.Chunk(Encoding.ASCII.GetBytes("abcdefghijklmnopqrstuvwxyz"))));
    }
}
