using System.Globalization;
using System.Text;
using NetStack.Sockets;
using NetStack.Tcp;

namespace NetStack.Services;

/// <summary>
/// A small HTTP/1.1 origin server (RFC 9110, 9112) for the lab, on TCP port 80. Persistent connections (until the
/// client sends Connection: close, stays idle past the limit, or 1000 requests), GET and HEAD everywhere, POST on /echo.
/// Pages:
/// <list type="bullet">
/// <item>/ — the index (HTML), /hello — one line of text;</item>
/// <item>/bytes/N — N bytes of the chargen pattern (Content-Length), /download — 4 MiB of it as a file (Range: bytes=N- honoured);</item>
/// <item>/chunked — a body in chunked transfer coding, /slow and /slow/N — N lines (default 10) trickled one per interval;</item>
/// <item>/redirect — 302 to /hello; POST /echo — the request body back; anything else 404.</item>
/// </list>
/// </summary>
internal sealed class HttpService(ServiceCounters counters, ServiceHostOptions options)
{
    public const ushort Port = 80;
    public const int DownloadSize = 4 << 20;
    public const int MaxRequestsPerConnection = 1000;
    public const string HelloText = "Hello from the NetStack lab service host!\n";
    private const string ServerName = "NetStack-lab/1.0";

    public async Task ServeAsync(TcpSocket socket, CancellationToken token)
    {
        var reader = new HttpRequestReader(socket);
        for (int served = 0; served < MaxRequestsPerConnection; served++)
        {
            HttpRequest? request;
            using (var idle = CancellationTokenSource.CreateLinkedTokenSource(token))
            {
                idle.CancelAfter(options.HttpIdleTimeout);
                try { request = await reader.ReadAsync(idle.Token).ConfigureAwait(false); }
                catch (OperationCanceledException) when (!token.IsCancellationRequested) { break; } // idle too long: close
                catch (HttpRequestException e)
                {
                    await WriteAsync(socket, Text(e.Status, e.Message + "\n"), isHead: false, keepAlive: false, token).ConfigureAwait(false);
                    break;
                }
            }
            if (request is null) break;
            Interlocked.Increment(ref counters.HttpRequests);
            var keepAlive = request.KeepAlive && served + 1 < MaxRequestsPerConnection;
            await WriteAsync(socket, Route(request), request.Method == "HEAD", keepAlive, token).ConfigureAwait(false);
            if (!keepAlive) break;
        }
        await socket.CloseAsync().ConfigureAwait(false);
    }

    /// <summary>What to send: a fixed body, a length of the pattern, or chunks produced as they are sent.</summary>
    internal sealed class Response
    {
        public int Status { get; init; } = 200;
        public string ContentType { get; init; } = "text/plain; charset=utf-8";
        public byte[]? Body { get; init; }
        public long PatternLength { get; init; } = -1;
        /// <summary>Where in the pattern the body starts (a range of it).</summary>
        public long PatternOffset { get; init; }
        public Func<CancellationToken, IAsyncEnumerable<byte[]>>? Chunks { get; init; }
        public List<(string Name, string Value)> Headers { get; } = new();
    }

    internal Response Route(HttpRequest request)
    {
        var path = request.Path;
        // RFC 9112 3.2.2: a server accepts the absolute form too (what a proxy would send).
        if (path.StartsWith("http://", StringComparison.OrdinalIgnoreCase))
        {
            var slash = path.IndexOf('/', 7);
            path = slash < 0 ? "/" : path[slash..];
        }
        var isEcho = path == "/echo";
        var allowed = isEcho ? "POST" : "GET, HEAD";
        if (isEcho ? request.Method != "POST" : request.Method is not ("GET" or "HEAD"))
        {
            var r = Text(405, $"{request.Method} is not allowed on {path}; use {allowed}.\n");
            r.Headers.Add(("Allow", allowed));
            return r;
        }
        if (isEcho)
            return new Response { Body = request.Body, ContentType = request.Headers.GetValueOrDefault("Content-Type") ?? "application/octet-stream" };
        switch (path)
        {
            case "/":
            case "/index.html":
                return new Response { Body = Encoding.UTF8.GetBytes(IndexPage()), ContentType = "text/html; charset=utf-8" };
            case "/hello":
                return Text(200, HelloText);
            case "/download":
                var download = HttpRange.Apply(request, DownloadSize) ?? new Response { PatternLength = DownloadSize, ContentType = "application/octet-stream" };
                download.Headers.Add(("Content-Disposition", "attachment; filename=\"download.bin\""));
                return download;
            case "/chunked":
                return new Response { Chunks = ChunkedBody };
            case "/slow":
                return new Response { Chunks = t => SlowBody(10, t) };
            case "/redirect":
                var redirect = Text(302, "Moved to /hello.\n");
                redirect.Headers.Add(("Location", "/hello"));
                return redirect;
        }
        if (path.StartsWith("/bytes/", StringComparison.Ordinal))
        {
            if (!int.TryParse(path["/bytes/".Length..], NumberStyles.None, CultureInfo.InvariantCulture, out var n) || n > options.HttpMaxBytes)
                return Text(400, $"/bytes/N takes a byte count from 0 to {options.HttpMaxBytes}, e.g. /bytes/1048576.\n");
            return new Response { PatternLength = n, ContentType = "application/octet-stream" };
        }
        if (path.StartsWith("/slow/", StringComparison.Ordinal))
        {
            if (!int.TryParse(path["/slow/".Length..], NumberStyles.None, CultureInfo.InvariantCulture, out var lines) || lines is < 1 or > 600)
                return Text(400, "/slow/N takes a line count from 1 to 600, e.g. /slow/20.\n");
            return new Response { Chunks = t => SlowBody(lines, t) };
        }
        return Text(404, $"No page at {path}. The index at / lists the pages.\n");
    }

    private static Response Text(int status, string text) => new() { Status = status, Body = Encoding.UTF8.GetBytes(text) };

    private static async IAsyncEnumerable<byte[]> ChunkedBody([System.Runtime.CompilerServices.EnumeratorCancellation] CancellationToken token)
    {
        for (int i = 1; i <= 5; i++)
        {
            await Task.Yield();
            yield return Encoding.ASCII.GetBytes($"chunk {i} of 5\n");
        }
    }

    private async IAsyncEnumerable<byte[]> SlowBody(int lines, [System.Runtime.CompilerServices.EnumeratorCancellation] CancellationToken token)
    {
        for (int i = 1; i <= lines; i++)
        {
            if (i > 1) await Task.Delay(options.HttpSlowInterval, token).ConfigureAwait(false);
            yield return Encoding.ASCII.GetBytes($"line {i} of {lines}\n");
        }
    }

    private async Task WriteAsync(TcpSocket socket, Response r, bool isHead, bool keepAlive, CancellationToken token)
    {
        var head = new StringBuilder();
        head.Append(CultureInfo.InvariantCulture, $"HTTP/1.1 {r.Status} {Reason(r.Status)}\r\n");
        head.Append(CultureInfo.InvariantCulture, $"Date: {options.WallClock().ToUniversalTime().ToString("r", CultureInfo.InvariantCulture)}\r\n");
        head.Append("Server: ").Append(ServerName).Append("\r\n");
        head.Append("Content-Type: ").Append(r.ContentType).Append("\r\n");
        if (r.Chunks != null) head.Append("Transfer-Encoding: chunked\r\n");
        else head.Append(CultureInfo.InvariantCulture, $"Content-Length: {(r.Body?.LongLength ?? Math.Max(0, r.PatternLength))}\r\n");
        foreach (var (name, value) in r.Headers) head.Append(name).Append(": ").Append(value).Append("\r\n");
        if (!keepAlive) head.Append("Connection: close\r\n");
        head.Append("\r\n");
        var headBytes = Encoding.ASCII.GetBytes(head.ToString());

        if (isHead)
        {
            await socket.SendAsync(headBytes, token).ConfigureAwait(false);
            return;
        }
        if (r.Body != null)
        {
            // Head and a small body in one send: one segment for a short page.
            var all = new byte[headBytes.Length + r.Body.Length];
            headBytes.CopyTo(all, 0);
            r.Body.CopyTo(all, headBytes.Length);
            await socket.SendAsync(all, token).ConfigureAwait(false);
            return;
        }
        await socket.SendAsync(headBytes, token).ConfigureAwait(false);
        if (r.PatternLength > 0)
        {
            // The pattern repeats every 95 lines, so one block sent again and again continues it.
            var block = ChargenService.Pattern(95 * ChargenService.LineLength);
            var at = (int)(r.PatternOffset % block.Length);
            for (long sent = 0; sent < r.PatternLength;)
            {
                var n = (int)Math.Min(block.Length - at, r.PatternLength - sent);
                await socket.SendAsync(block.AsMemory(at, n), token).ConfigureAwait(false);
                sent += n;
                at = 0;
            }
        }
        if (r.Chunks != null)
        {
            await foreach (var chunk in r.Chunks(token).ConfigureAwait(false))
            {
                if (chunk.Length == 0) continue; // a zero-size chunk would end the body
                await socket.SendAsync(Chunk(chunk), token).ConfigureAwait(false);
            }
            await socket.SendAsync("0\r\n\r\n"u8.ToArray(), token).ConfigureAwait(false); // last-chunk, no trailers (RFC 9112 7.1)
        }
    }

    /// <summary>One chunk in the chunked transfer coding: size in hex, CRLF, data, CRLF (RFC 9112 7.1).</summary>
    internal static byte[] Chunk(byte[] data)
    {
        var size = Encoding.ASCII.GetBytes(data.Length.ToString("x", CultureInfo.InvariantCulture) + "\r\n");
        var chunk = new byte[size.Length + data.Length + 2];
        size.CopyTo(chunk, 0);
        data.CopyTo(chunk, size.Length);
        chunk[^2] = (byte)'\r';
        chunk[^1] = (byte)'\n';
        return chunk;
    }

    private static string Reason(int status) => status switch
    {
        200 => "OK",
        206 => "Partial Content",
        302 => "Found",
        400 => "Bad Request",
        404 => "Not Found",
        405 => "Method Not Allowed",
        411 => "Length Required",
        413 => "Content Too Large",
        416 => "Range Not Satisfiable",
        431 => "Request Header Fields Too Large",
        505 => "HTTP Version Not Supported",
        _ => "Status",
    };

    private string IndexPage() => $"""
        <!DOCTYPE html>
        <html><head><title>NetStack lab service host</title></head>
        <body>
        <h1>NetStack lab service host</h1>
        <p>This page came over the NetStack user-space TCP/IP stack, from the service host of the embedded lab.</p>
        <ul>
        <li><a href="/hello">/hello</a>: one line of text</li>
        <li><a href="/bytes/1048576">/bytes/N</a>: N bytes (at most {options.HttpMaxBytes})</li>
        <li><a href="/download">/download</a>: a 4 MiB file (resumable: Range: bytes=N-)</li>
        <li><a href="/chunked">/chunked</a>: a body in chunked transfer coding</li>
        <li><a href="/slow">/slow</a>, /slow/N: N lines, one every {options.HttpSlowInterval.TotalMilliseconds:0} ms</li>
        <li><a href="/redirect">/redirect</a>: 302 to /hello</li>
        <li>POST /echo: the request body back</li>
        </ul>
        <p>Also here: echo (TCP and UDP 7), discard (9), daytime (13), chargen (19) and DNS (UDP 53) for {options.Domain}.</p>
        </body></html>

        """;
}
