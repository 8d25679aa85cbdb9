using System.Net.Http.Headers;
using System.Text;
using NetStack.Http;

namespace NetStack.PowerShell;

/// <summary>
/// Invoke-StackWebRequest's result, shaped like Invoke-WebRequest's (StatusCode, StatusDescription, Content, RawContent,
/// RawContentLength, Headers) plus what only the stack can show: the connection used and where the time went.
/// </summary>
public sealed class StackWebResponse
{
    internal StackWebResponse(StackHttpResponse r, string? outFile, string stack)
    {
        StatusCode = (int)r.StatusCode;
        StatusDescription = r.ReasonPhrase;
        Uri = r.Uri;
        Method = r.Method;
        Version = r.Version.ToString();
        Headers = new Dictionary<string, string[]>(r.Headers, StringComparer.OrdinalIgnoreCase);
        RawContentLength = r.BodyLength;
        OutFile = outFile;
        var text = r.Body is { } body && WebContent.IsText(r.ContentType) ? WebContent.Decode(body, r.ContentType) : null;
        Content = text ?? (object?)r.Body;
        var raw = new StringBuilder($"HTTP/{Version} {StatusCode} {StatusDescription}\r\n");
        foreach (var (name, values) in r.Headers) raw.Append(name).Append(": ").Append(string.Join(", ", values)).Append("\r\n");
        RawContent = raw.Append("\r\n").Append(text).ToString();
        Redirects = r.Redirects.ToArray();
        Timing = new StackWebTiming(r.Timing);
        if (r.Connection is { } c)
        {
            RemoteName = c.Host;
            RemoteAddress = c.Address.ToString();
            LocalEndPoint = c.LocalEndPoint.ToString();
            RemoteEndPoint = c.RemoteEndPoint.ToString();
            ConnectionReused = c.Reused;
            SocketId = c.SocketId;
            Retransmits = c.Retransmits;
            TlsProtocol = c.TlsProtocol;
            Srtt = c.Info?.Tcp?.Srtt;
        }
        Stack = stack;
    }

    public int StatusCode { get; }
    public string StatusDescription { get; }
    /// <summary>The body: a string for text (text/*, JSON, XML...), decoded by its charset (UTF-8 if none); bytes otherwise; null with -OutFile or for HEAD.</summary>
    public object? Content { get; }
    /// <summary>Status line and headers as received, then the body if it is text.</summary>
    public string RawContent { get; }
    /// <summary>Bytes of body received (written to -OutFile, if given).</summary>
    public long RawContentLength { get; }
    /// <summary>Response and content headers by name, each with its values.</summary>
    public Dictionary<string, string[]> Headers { get; }
    /// <summary>The address that gave this response (after redirects).</summary>
    public Uri Uri { get; }
    public string Method { get; }
    /// <summary>The HTTP version of the response (1.1, or 1.0 from an old server).</summary>
    public string Version { get; }
    public string? OutFile { get; }
    public HttpRedirectHop[] Redirects { get; }
    /// <summary>Where the time went, in milliseconds (see <see cref="StackWebTiming"/>).</summary>
    public StackWebTiming Timing { get; }
    /// <summary>The host as the URI named it.</summary>
    public string? RemoteName { get; }
    /// <summary>The address the name resolved to.</summary>
    public string? RemoteAddress { get; }
    public string? LocalEndPoint { get; }
    public string? RemoteEndPoint { get; }
    /// <summary>True when the request went over a kept-alive connection an earlier request opened (redirects, a -WebSession).</summary>
    public bool ConnectionReused { get; }
    /// <summary>The connection's socket descriptor (Get-StackConnection's Id while it stays open).</summary>
    public int? SocketId { get; }
    /// <summary>TCP segments the connection sent again, over its life so far.</summary>
    public long Retransmits { get; }
    /// <summary>The connection's smoothed round-trip time when the response was complete.</summary>
    public TimeSpan? Srtt { get; }
    /// <summary>Tls12, Tls13 for https; null for plain http.</summary>
    public string? TlsProtocol { get; }
    public string Stack { get; }

    /// <summary>One line for the list view: local to remote, name, new or reused, retransmissions.</summary>
    public string Connection => LocalEndPoint is null ? "" :
        $"{LocalEndPoint} -> {RemoteEndPoint}{(RemoteName != RemoteAddress ? $" ({RemoteName})" : "")}, {(ConnectionReused ? "reused" : "new")}" +
        $"{(TlsProtocol != null ? ", " + TlsProtocol : "")}, {Retransmits} retransmitted";
}

/// <summary>A request's timing in milliseconds, like curl's -w timers but per phase (see NetStack.Http.HttpTiming).</summary>
public sealed class StackWebTiming
{
    private readonly HttpTiming _timing;

    internal StackWebTiming(HttpTiming t)
    {
        _timing = t;
        NameLookup = Ms(t.NameLookup);
        Arp = Ms(t.Arp);
        TcpHandshake = Ms(t.TcpHandshake);
        Tls = Ms(t.Tls);
        FirstByte = Ms(t.FirstByte);
        Download = Ms(t.Download);
        Redirect = Ms(t.Redirect);
        Total = Ms(t.Total);
    }

    private static double Ms(TimeSpan t) => Math.Round(t.TotalMilliseconds, 3);

    /// <summary>Asking the stack's resolver (0 for an address).</summary>
    public double NameLookup { get; }
    /// <summary>ARP for the next hop (0 when the cache knew it).</summary>
    public double Arp { get; }
    public double TcpHandshake { get; }
    public double Tls { get; }
    /// <summary>From the request sent to the first byte of the response.</summary>
    public double FirstByte { get; }
    /// <summary>From the first byte of the response to its last.</summary>
    public double Download { get; }
    /// <summary>Time on redirects before the final request.</summary>
    public double Redirect { get; }
    public double Total { get; }

    public override string ToString() => _timing.ToString();
}

/// <summary>
/// What -SessionVariable saves and -WebSession takes: a client with its kept-alive connections (reused by the next
/// request to the same host) and its cookies, on one stack. Idle connections close after a minute.
/// </summary>
public sealed class StackWebSession
{
    internal StackWebSession(StackInstance stack)
    {
        StackInstance = stack;
        Client = new StackHttpClient(stack.Core);
    }

    internal StackHttpClient Client { get; }
    internal StackInstance StackInstance { get; }
    /// <summary>The stack the session's connections are on.</summary>
    public string Stack => StackInstance.Name;
    /// <summary>Cookies the servers set, sent with the session's later requests.</summary>
    public System.Net.CookieContainer Cookies => Client.Cookies;
}

/// <summary>Bodies: what counts as text and how it decodes, and -Body to bytes.</summary>
internal static class WebContent
{
    public static bool IsText(string? contentType)
    {
        if (contentType is null || !MediaTypeHeaderValue.TryParse(contentType, out var m) || m.MediaType is not { } type) return false;
        type = type.ToLowerInvariant();
        return type.StartsWith("text/", StringComparison.Ordinal) || type.EndsWith("+json", StringComparison.Ordinal) || type.EndsWith("+xml", StringComparison.Ordinal)
            || type is "application/json" or "application/xml" or "application/javascript" or "application/x-www-form-urlencoded";
    }

    public static Encoding EncodingOf(string? contentType)
    {
        if (contentType != null && MediaTypeHeaderValue.TryParse(contentType, out var m) && m.CharSet is { Length: > 0 } charset)
        {
            try { return Encoding.GetEncoding(charset.Trim('"')); }
            catch (ArgumentException) { }
        }
        return new UTF8Encoding(false);
    }

    public static string Decode(byte[] body, string? contentType) => EncodingOf(contentType).GetString(body);
}
