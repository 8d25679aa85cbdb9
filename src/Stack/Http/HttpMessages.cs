using System.Net;

namespace NetStack.Http;

/// <summary>An HTTP request for <see cref="StackHttpClient.SendAsync"/>: a value, so a redirect can derive the next one.</summary>
public sealed record StackHttpRequest
{
    /// <summary>An absolute http or https URI; the host is a name (resolved through the stack) or an IPv4 address.</summary>
    public required Uri Uri { get; init; }
    public HttpMethod Method { get; init; } = HttpMethod.Get;
    /// <summary>Request headers (content headers such as Content-Language go on the body).</summary>
    public IReadOnlyList<KeyValuePair<string, string>> Headers { get; init; } = Array.Empty<KeyValuePair<string, string>>();
    /// <summary>The body, or null for none.</summary>
    public byte[]? Body { get; init; }
    /// <summary>The body's Content-Type (e.g. "application/json; charset=utf-8").</summary>
    public string? ContentType { get; init; }
    /// <summary>
    /// Instead of <see cref="Body"/>: makes the body afresh for each send (a file streamed, a multipart form), so a
    /// redirect that keeps the body can send it again. Its own Content-Type wins over none in <see cref="ContentType"/>.
    /// </summary>
    public Func<HttpContent>? Content { get; init; }
    /// <summary>
    /// Ask for the bytes from this offset on (Range: bytes=N-), continuing a partial file in the destination stream;
    /// the response's <see cref="StackHttpResponse.Resume"/> says how the answer was used (<see cref="HttpResume"/>).
    /// </summary>
    public long? ResumeFrom { get; init; }
    /// <summary>Redirects to follow before the 3xx itself is the answer (0: none).</summary>
    public int MaximumRedirection { get; init; } = 5;
    /// <summary>Limit for the connection and the response headers, and for each wait for more of the body.</summary>
    public TimeSpan Timeout { get; init; } = TimeSpan.FromSeconds(100);
    /// <summary>Accept any server certificate (self-signed, expired, another name): for labs, never for the real world.</summary>
    public bool SkipCertificateCheck { get; init; }
}

/// <summary>A redirect followed on the way to the final response.</summary>
public sealed record HttpRedirectHop(string Method, Uri Uri, int StatusCode, Uri Location);

/// <summary>
/// A complete HTTP response from <see cref="StackHttpClient.SendAsync"/>: status, headers and body (in memory, unless
/// a destination stream took it), with the connection it came over and where the time went.
/// </summary>
public sealed record StackHttpResponse
{
    /// <summary>The URI that gave this response (after redirects).</summary>
    public required Uri Uri { get; init; }
    public required string Method { get; init; }
    public required HttpStatusCode StatusCode { get; init; }
    public required string ReasonPhrase { get; init; }
    public required Version Version { get; init; }
    /// <summary>Response and content headers together, by name (case-insensitive), each with its values.</summary>
    public required IReadOnlyDictionary<string, string[]> Headers { get; init; }
    /// <summary>The body when it was kept in memory; null when it went to a destination stream, or for HEAD.</summary>
    public byte[]? Body { get; init; }
    /// <summary>Bytes of body received (after any content decoding).</summary>
    public required long BodyLength { get; init; }
    public string? ContentType => Headers.TryGetValue("Content-Type", out var v) && v.Length > 0 ? v[0] : null;
    public required HttpTiming Timing { get; init; }
    /// <summary>The connection of the final response (null only if the handler never used one of ours).</summary>
    public HttpConnectionDetails? Connection { get; init; }
    public IReadOnlyList<HttpRedirectHop> Redirects { get; init; } = Array.Empty<HttpRedirectHop>();
    /// <summary>True when this is a redirect that was not followed because MaximumRedirection was reached.</summary>
    public bool RedirectLimitReached { get; init; }
    /// <summary>For a request with ResumeFrom and a destination: how the answer was used; null otherwise.</summary>
    public HttpResumeOutcome? Resume { get; init; }
    public bool IsSuccessStatusCode => (int)StatusCode is >= 200 and <= 299;
}
