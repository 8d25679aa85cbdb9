using System.Net;
using System.Security.Authentication;
using System.Text;
using NetStack.Http;

namespace NetStack.Tests.Lab;

/// <summary>
/// StackHttpClient against real servers in the kernel's namespace: python's http.server (tests/lab/http_lab_server.py,
/// HTTP/1.1 with keep-alive) and the same over TLS with a self-signed certificate made by openssl.
/// </summary>
public class KernelHttpTests
{
    private static readonly TimeSpan Generous = KernelTcpKit.Generous;
    private static readonly string Server = $"http://{KernelLab.KernelAddress}:8080";

    /// <summary>The lab's web peer script, copied beside the tests (see Stack.Tests.csproj).</summary>
    public static string ServerScript => Path.Combine(AppContext.BaseDirectory, "Lab", "http_lab_server.py");

    private static LabProcess StartWebServer(KernelLab lab, int port, string directory, params string[] extra)
    {
        var p = lab.StartProgramInKernel(KernelTcpKit.Python, ["-u", ServerScript, "--address", KernelLab.KernelAddress.ToString(), "--port", port.ToString(),
            "--directory", directory, .. extra]);
        if (!p.WaitForOutput(o => o.Contains("ready\n"), Generous))
            throw new InvalidOperationException($"The web server in K did not start: {p.Output} {p.Error}");
        return p;
    }

    private static Task<StackHttpResponse> Send(StackHttpClient http, string uri, HttpMethod? method = null, byte[]? body = null, string? contentType = null, bool skipCheck = false) =>
        http.SendAsync(new StackHttpRequest
        {
            Uri = new Uri(uri), Method = method ?? HttpMethod.Get, Body = body, ContentType = contentType, Timeout = Generous, SkipCertificateCheck = skipCheck,
        }).WaitAsync(TimeSpan.FromSeconds(120));

    private static string Text(StackHttpResponse r) => Encoding.UTF8.GetString(r.Body!);

    [KernelFact(Programs = ["python3"])]
    public async Task Python_http_server_gives_status_codes_head_chunked_bodies_and_echoes_a_post()
    {
        using var lab = new KernelLab();
        using var stack = lab.StartTcpStack();
        using var web = StartWebServer(lab, 8080, Path.GetTempPath());
        using var http = new StackHttpClient(stack);

        foreach (var code in new[] { 200, 201, 404, 500, 503 })
        {
            var r = await Send(http, $"{Server}/status/{code}");
            Assert.Equal(code, (int)r.StatusCode);
            Assert.Equal($"status {code}\n", Text(r));
        }
        var noContent = await Send(http, $"{Server}/status/204");
        Assert.Equal(HttpStatusCode.NoContent, noContent.StatusCode);
        Assert.Equal(0, noContent.BodyLength);

        var head = await Send(http, $"{Server}/bytes/5000", HttpMethod.Head);
        Assert.Null(head.Body);
        Assert.Equal(["5000"], head.Headers["Content-Length"]);

        var chunked = await Send(http, $"{Server}/chunked/250000");
        Assert.Equal(["chunked"], chunked.Headers["Transfer-Encoding"]);
        Assert.Equal(250_000, chunked.BodyLength);
        Assert.Equal(global::Stack.Tests.Http.TestHttpServer.Pattern(250_000), chunked.Body);

        var json = """{"name":"web.lab","n":1}""";
        var echo = await Send(http, $"{Server}/echo", HttpMethod.Post, Encoding.UTF8.GetBytes(json), "application/json");
        Assert.Equal(json, Text(echo));
        Assert.Equal("application/json", echo.ContentType);
        Assert.Equal(["POST"], echo.Headers["X-Method"]);
        Assert.Equal(["PUT"], (await Send(http, $"{Server}/echo", HttpMethod.Put, [1, 2, 3])).Headers["X-Method"]);
        Assert.Equal(["DELETE"], (await Send(http, $"{Server}/echo", HttpMethod.Delete)).Headers["X-Method"]);
        Assert.All(new[] { noContent, head, chunked, echo }, r => Assert.True(r.Connection!.Reused)); // all on the first connection
    }

    [KernelFact(Programs = ["python3"])]
    public async Task Redirects_and_requests_reuse_one_kept_alive_connection_to_python()
    {
        using var lab = new KernelLab();
        using var stack = lab.StartTcpStack();
        using var web = StartWebServer(lab, 8080, Path.GetTempPath());
        using var http = new StackHttpClient(stack);

        var first = await Send(http, $"{Server}/peer");
        var second = await Send(http, $"{Server}/peer");
        Assert.Equal(Text(first), Text(second)); // python saw the same client port twice
        Assert.Equal($"{KernelLab.StackAddress}:{first.Connection!.LocalEndPoint.Port}", Text(first));
        Assert.False(first.Connection.Reused);
        Assert.True(first.Timing.Arp > TimeSpan.Zero && first.Timing.TcpHandshake > TimeSpan.Zero);
        Assert.True(second.Connection!.Reused);
        Assert.Equal(TimeSpan.Zero, second.Timing.TcpHandshake);

        var redirected = await Send(http, $"{Server}/redirect/4");
        Assert.Equal("redirects done\n", Text(redirected));
        Assert.Equal(4, redirected.Redirects.Count);
        Assert.Equal(first.Connection.SocketId, redirected.Connection!.SocketId);

        // 307 keeps the method and the body; 303 turns the POST into a GET.
        var kept = await Send(http, $"{Server}/redirect/2?code=307", HttpMethod.Post, "x=1"u8.ToArray(), "text/plain");
        Assert.Equal(["POST", "POST"], kept.Redirects.Select(h => h.Method));
        Assert.Equal("POST", kept.Method);
        var seeOther = await Send(http, $"{Server}/redirect/1?code=303", HttpMethod.Post, "x=1"u8.ToArray(), "text/plain");
        Assert.Equal("GET", seeOther.Method);
        Assert.Contains("\"POST /redirect/2?code=307 HTTP/1.1\" 307", web.Error);
        Assert.Contains("\"GET /redirect/0?code=303 HTTP/1.1\" 200", web.Error);
    }

    [KernelFact(Programs = ["python3", "openssl"])]
    public async Task Https_with_a_self_signed_certificate_is_refused_unless_the_check_is_skipped()
    {
        using var lab = new KernelLab();
        using var stack = lab.StartTcpStack();
        var dir = Directory.CreateTempSubdirectory("netstack-tls-").FullName;
        try
        {
            var cert = Path.Combine(dir, "cert.pem");
            var key = Path.Combine(dir, "key.pem");
            LabProcess.Run("openssl", ["req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj", "/CN=web.lab",
                "-addext", $"subjectAltName=DNS:web.lab,IP:{KernelLab.KernelAddress}", "-keyout", key, "-out", cert], Generous).EnsureSuccess();
            using var web = StartWebServer(lab, 8443, dir, "--cert", cert, "--key", key);
            using var http = new StackHttpClient(stack);
            var uri = $"https://{KernelLab.KernelAddress}:8443/bytes/100000";

            var refused = await Assert.ThrowsAsync<HttpRequestException>(() => Send(http, uri));
            Assert.IsType<AuthenticationException>(refused.InnerException);

            var r = await Send(http, uri, skipCheck: true);
            Assert.Equal(HttpStatusCode.OK, r.StatusCode);
            Assert.Equal(global::Stack.Tests.Http.TestHttpServer.Pattern(100_000), r.Body);
            Assert.True(r.Timing.Tls > TimeSpan.Zero);
            Assert.StartsWith("Tls1", r.Connection!.TlsProtocol);
            Assert.False(r.Connection.Reused);
            var again = await Send(http, uri, skipCheck: true);
            Assert.True(again.Connection!.Reused);
            Assert.Equal(TimeSpan.Zero, again.Timing.Tls);
        }
        finally { Directory.Delete(dir, recursive: true); }
    }

    [KernelFact(Programs = ["python3", "nft"])]
    public async Task An_upload_through_loss_shows_the_connections_retransmissions()
    {
        using var lab = new KernelLab();
        using var stack = lab.StartTcpStack();
        using var web = StartWebServer(lab, 8080, Path.GetTempPath());
        using var http = new StackHttpClient(stack);
        lab.AddKernelLoss(5); // the kernel drops 5% of what we send it
        var body = global::Stack.Tests.Http.TestHttpServer.Pattern(4 << 20);
        var r = await Send(http, $"{Server}/echo", HttpMethod.Post, body, "application/octet-stream");
        Assert.Equal(body, r.Body);
        Assert.True(r.Connection!.Retransmits > 0, "5% of the upload was dropped, so some segments went again");
        Assert.Equal(r.Connection.Info!.Tcp!.Retransmits, r.Connection.Retransmits);
        Assert.True(lab.KernelLossDrops().In > 0);
    }
}
