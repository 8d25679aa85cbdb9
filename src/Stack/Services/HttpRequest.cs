using System.Text;
using NetStack.Sockets;
using NetStack.Tcp;

namespace NetStack.Services;

/// <summary>A parsed HTTP/1.x request head (RFC 9112 3, 5) and its body.</summary>
internal sealed class HttpRequest
{
    public string Method { get; init; } = "";
    public string Target { get; init; } = "";
    /// <summary>1 for HTTP/1.1, 0 for HTTP/1.0.</summary>
    public int MinorVersion { get; init; }
    public Dictionary<string, string> Headers { get; } = new(StringComparer.OrdinalIgnoreCase);
    public byte[] Body { get; set; } = Array.Empty<byte>();

    /// <summary>RFC 9112 9.3: HTTP/1.1 persists unless "close"; HTTP/1.0 only with "keep-alive".</summary>
    public bool KeepAlive
    {
        get
        {
            var connection = Headers.GetValueOrDefault("Connection") ?? "";
            bool Has(string token) => connection.Split(',').Any(t => t.Trim().Equals(token, StringComparison.OrdinalIgnoreCase));
            return MinorVersion >= 1 ? !Has("close") : Has("keep-alive");
        }
    }

    /// <summary>The path without the query string.</summary>
    public string Path => Target.Split('?', 2)[0];
}

/// <summary>Why a request could not be read: the status to answer with (the connection closes after it).</summary>
internal sealed class HttpRequestException(int status, string message) : Exception(message)
{
    public int Status { get; } = status;
}

/// <summary>
/// Reads requests from a TCP connection with one buffer: the head up to an empty line (bounded), then a body of
/// Content-Length bytes. Bytes after one request (a pipelined next one) stay in the buffer for the next read.
/// </summary>
internal sealed class HttpRequestReader(TcpSocket socket)
{
    public const int MaxHeadBytes = 16 * 1024;
    public const int MaxBodyBytes = 1 << 20;
    private readonly byte[] _buffer = new byte[MaxHeadBytes];
    private int _start;
    private int _end;

    /// <summary>
    /// The next request, or null when the client closed the connection between requests. <paramref name="token"/>
    /// bounds the whole read (the idle limit), so a client that stalls mid-request is not waited for forever.
    /// </summary>
    public async Task<HttpRequest?> ReadAsync(CancellationToken token)
    {
        int headEnd;
        while ((headEnd = FindHeadEnd()) < 0)
        {
            if (_end - _start >= MaxHeadBytes) throw new HttpRequestException(431, "The request head is longer than 16 KiB.");
            Compact();
            var n = await socket.ReceiveAsync(_buffer.AsMemory(_end), token).ConfigureAwait(false);
            if (n == 0)
            {
                if (_end == _start) return null;
                throw new HttpRequestException(400, "The connection closed in the middle of a request head.");
            }
            _end += n;
        }
        var head = Encoding.Latin1.GetString(_buffer, _start, headEnd - _start);
        _start = headEnd + 4;
        var request = Parse(head);
        if (request.Headers.ContainsKey("Transfer-Encoding"))
            throw new HttpRequestException(411, "Chunked request bodies are not accepted here; send a Content-Length.");
        if (request.Headers.TryGetValue("Content-Length", out var lengthText))
        {
            if (!int.TryParse(lengthText, System.Globalization.NumberStyles.None, System.Globalization.CultureInfo.InvariantCulture, out var length))
                throw new HttpRequestException(400, $"Content-Length '{lengthText}' is not a number.");
            if (length > MaxBodyBytes) throw new HttpRequestException(413, "Request bodies are limited to 1 MiB.");
            request.Body = await ReadBodyAsync(length, token).ConfigureAwait(false);
        }
        return request;
    }

    private async Task<byte[]> ReadBodyAsync(int length, CancellationToken token)
    {
        var body = new byte[length];
        var have = Math.Min(length, _end - _start);
        _buffer.AsSpan(_start, have).CopyTo(body);
        _start += have;
        while (have < length)
        {
            var n = await socket.ReceiveAsync(body.AsMemory(have), token).ConfigureAwait(false);
            if (n == 0) throw new HttpRequestException(400, "The connection closed before the request body was complete.");
            have += n;
        }
        return body;
    }

    private int FindHeadEnd()
    {
        var i = _buffer.AsSpan(_start, _end - _start).IndexOf("\r\n\r\n"u8);
        return i < 0 ? -1 : _start + i;
    }

    private void Compact()
    {
        if (_start == 0) return;
        _buffer.AsSpan(_start, _end - _start).CopyTo(_buffer);
        _end -= _start;
        _start = 0;
    }

    /// <summary>RFC 9112 3 and 5: request-line, then field lines "name: value" (no whitespace before the colon).</summary>
    internal static HttpRequest Parse(string head)
    {
        var lines = head.Split("\r\n");
        var parts = lines[0].Split(' ');
        if (parts.Length != 3 || parts[0].Length == 0 || parts[1].Length == 0)
            throw new HttpRequestException(400, $"'{lines[0]}' is not a request line (METHOD target HTTP/1.1).");
        var minor = parts[2] switch
        {
            "HTTP/1.1" => 1,
            "HTTP/1.0" => 0,
            _ when parts[2].StartsWith("HTTP/", StringComparison.Ordinal) => throw new HttpRequestException(505, $"{parts[2]} is not served here; use HTTP/1.1."),
            _ => throw new HttpRequestException(400, $"'{parts[2]}' is not an HTTP version."),
        };
        var request = new HttpRequest { Method = parts[0], Target = parts[1], MinorVersion = minor };
        foreach (var line in lines.Skip(1))
        {
            var colon = line.IndexOf(':');
            if (colon <= 0 || line[colon - 1] is ' ' or '\t')
                throw new HttpRequestException(400, $"'{line}' is not a header field (name: value).");
            var name = line[..colon];
            var value = line[(colon + 1)..].Trim(' ', '\t');
            // Repeated fields join with a comma (RFC 9110 5.3); a repeated Content-Length must agree (RFC 9112 6.3).
            if (request.Headers.TryGetValue(name, out var earlier))
            {
                if (name.Equals("Content-Length", StringComparison.OrdinalIgnoreCase) && earlier != value)
                    throw new HttpRequestException(400, "The request has two different Content-Length fields.");
                value = name.Equals("Content-Length", StringComparison.OrdinalIgnoreCase) ? value : earlier + ", " + value;
            }
            request.Headers[name] = value;
        }
        // RFC 9112 3.2: an HTTP/1.1 request without Host is answered 400.
        if (minor == 1 && !request.Headers.ContainsKey("Host"))
            throw new HttpRequestException(400, "An HTTP/1.1 request needs a Host header, e.g. Host: host.lab.test.");
        return request;
    }
}
