using System.Diagnostics;
using System.Net;
using System.Net.Http.Headers;
using System.Net.Security;
using NetStack.Arp;
using NetStack.Tcp;

namespace NetStack.Http;

/// <summary>
/// HTTP/1.1 and HTTPS over the stack with .NET's own <see cref="HttpClient"/>: a <see cref="SocketsHttpHandler"/>
/// whose ConnectCallback resolves the host through the stack's resolver, ARPs for the next hop and opens one of our
/// TCP connections (a <see cref="TcpStream"/>); the handler does the HTTP and TLS. On top, each response comes back
/// complete with the connection it used and a timing breakdown (name lookup, ARP, TCP handshake, TLS, first byte,
/// download), and redirects are followed by <see cref="HttpRedirect"/>'s rule.
/// </summary>
/// <remarks>
/// Requests run one at a time per client (a second waits for the first), so each timing is its own. Connections are
/// kept alive and reused by later requests to the same host (the handler's pool; idle ones close after a minute), and
/// cookies are kept; disposing the client closes them all. Any thread; nothing here runs on the stack's loop.
/// </remarks>
public sealed class StackHttpClient : IDisposable
{
    private const int BufferSize = 128 * 1024;
    private const int PreallocateLimit = 256 * 1024 * 1024;
    private static readonly HttpRequestOptionsKey<ConnectionTrace> ConnectionKey = new("NetStack.Http.Connection");
    private static readonly string UserAgent = $"NetStack/{typeof(StackHttpClient).Assembly.GetName().Version?.ToString(3)}";

    private readonly SemaphoreSlim _gate = new(1, 1);
    private HttpClient? _client;
    private bool _clientSkipsCertificateCheck;
    private volatile ExchangeTrace? _current;
    private volatile bool _disposed;

    public StackHttpClient(NetworkStack stack) => Stack = stack ?? throw new ArgumentNullException(nameof(stack));

    public NetworkStack Stack { get; }

    /// <summary>Cookies the servers set, sent back on later requests of this client.</summary>
    public CookieContainer Cookies { get; } = new();

    /// <summary>
    /// A plain <see cref="SocketsHttpHandler"/> over <paramref name="stack"/> (names through its resolver, connections
    /// of its TCP), for use with an HttpClient of your own; no timing. The handler follows no redirects and uses no proxy.
    /// </summary>
    public static SocketsHttpHandler CreateHandler(NetworkStack stack, bool skipCertificateCheck = false)
    {
        ArgumentNullException.ThrowIfNull(stack);
        var handler = NewHandler(skipCertificateCheck);
        handler.ConnectCallback = async (context, ct) => (await OpenAsync(stack, context.DnsEndPoint, ct).ConfigureAwait(false)).Socket.GetStream(ownsSocket: true);
        return handler;
    }

    private static SocketsHttpHandler NewHandler(bool skipCertificateCheck)
    {
        var handler = new SocketsHttpHandler
        {
            UseProxy = false,                    // the environment's proxy is on the host's network, not the stack's
            AllowAutoRedirect = false,           // redirects are ours to follow (HttpRedirect), hop by hop
            AutomaticDecompression = DecompressionMethods.All,
            PooledConnectionIdleTimeout = TimeSpan.FromMinutes(1),
            ConnectTimeout = TimeSpan.FromMinutes(2), // bounds a connect no request waits for any more; requests have their own limit
        };
        if (skipCertificateCheck) handler.SslOptions.RemoteCertificateValidationCallback = static (_, _, _, _) => true;
        return handler;
    }

    /// <summary>
    /// Sends <paramref name="request"/>, follows redirects up to its MaximumRedirection, and reads the whole body: into
    /// <paramref name="destination"/> when given (a file, for large downloads), else into memory. <paramref name="progress"/>
    /// hears (bytes so far, Content-Length if known) as the body arrives. Any status code is a response, not an error.
    /// </summary>
    /// <exception cref="HttpRequestException">The connection failed: its InnerException is the stack's
    /// <see cref="StackException"/> (NameNotFound, ConnectionRefused, HostUnreachable, TimedOut...) or the TLS error.</exception>
    /// <exception cref="TimeoutException">No response, or no more of the body, within the request's Timeout.</exception>
    /// <exception cref="HttpRedirectException">A redirect that is not safe to follow (https to http).</exception>
    /// <exception cref="OperationCanceledException"><paramref name="cancellationToken"/> fired; the connection is closed.</exception>
    public async Task<StackHttpResponse> SendAsync(StackHttpRequest request, Stream? destination = null, Action<long, long?>? progress = null, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(request);
        Validate(request.Uri);
        ObjectDisposedException.ThrowIf(_disposed, this);
        await _gate.WaitAsync(cancellationToken).ConfigureAwait(false);
        try
        {
            var client = ClientFor(request.SkipCertificateCheck);
            var callStarted = Stopwatch.GetTimestamp();
            var hops = new List<HttpRedirectHop>();
            var current = request;
            while (true)
            {
                using var limit = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
                limit.CancelAfter(current.Timeout);
                var exchange = _current = new ExchangeTrace(Stopwatch.GetTimestamp());
                HttpResponseMessage response;
                using (var message = Build(current))
                {
                    try { response = await client.SendAsync(message, HttpCompletionOption.ResponseHeadersRead, limit.Token).ConfigureAwait(false); }
                    catch (OperationCanceledException) when (!cancellationToken.IsCancellationRequested)
                    {
                        throw new TimeoutException($"{current.Method} {current.Uri}: no response within {current.Timeout.TotalSeconds:0.###} s.");
                    }
                }
                using (response)
                {
                    var next = hops.Count < current.MaximumRedirection ? HttpRedirect.Next(current, response.StatusCode, response.Headers.Location) : null;
                    if (next != null)
                    {
                        // Read the 3xx body to its end: that hands the connection back to the pool before the next hop
                        // asks for one (disposing it unread drains it in the background, too late: a new connection).
                        await CopyBodyAsync(response, Stream.Null, limit, current, null, cancellationToken).ConfigureAwait(false);
                        hops.Add(new HttpRedirectHop(current.Method.Method, current.Uri, (int)response.StatusCode, next.Uri));
                        current = next;
                        continue;
                    }
                    long length = 0;
                    byte[]? body = null;
                    var resume = destination != null && current.ResumeFrom is long from
                        ? HttpResume.Decide(response.StatusCode, response.Content.Headers.ContentRange?.ToString(), from) : (HttpResumeOutcome?)null;
                    var into = resume is null or HttpResumeOutcome.Continued or HttpResumeOutcome.Restarted ? destination : null;
                    if (resume == HttpResumeOutcome.Continued) into!.Seek(current.ResumeFrom!.Value, SeekOrigin.Begin);
                    else if (resume == HttpResumeOutcome.Restarted) into!.SetLength(0); // the server ignored Range: the whole file again
                    if (current.Method != HttpMethod.Head)
                    {
                        // In memory: sized by Content-Length when known, so a large body is neither regrown nor copied at the end
                        // (up to a bound: a server's claim alone does not get gigabytes allocated).
                        var announced = response.Content.Headers.ContentLength is long n and > 0 and <= PreallocateLimit ? (int)n : 0;
                        var target = into ?? new MemoryStream(announced);
                        length = await CopyBodyAsync(response, target, limit, current, progress, cancellationToken).ConfigureAwait(false);
                        if (target is MemoryStream ms && into is null) body = ms.Length == ms.Capacity ? ms.GetBuffer() : ms.ToArray();
                    }
                    exchange.DoneAt = Stopwatch.GetTimestamp();
                    return new StackHttpResponse
                    {
                        Uri = current.Uri,
                        Method = current.Method.Method,
                        StatusCode = response.StatusCode,
                        ReasonPhrase = response.ReasonPhrase ?? "",
                        Version = response.Version,
                        Headers = HeadersOf(response),
                        Body = body,
                        BodyLength = length,
                        Timing = exchange.Timing(callStarted, hops.Count > 0),
                        Connection = await DetailsAsync(exchange).ConfigureAwait(false),
                        Redirects = hops,
                        RedirectLimitReached = HttpRedirect.IsRedirect(response.StatusCode) && response.Headers.Location != null,
                        Resume = resume,
                    };
                }
            }
        }
        finally
        {
            _current = null;
            _gate.Release();
        }
    }

    private static void Validate(Uri uri)
    {
        if (!uri.IsAbsoluteUri || (uri.Scheme != Uri.UriSchemeHttp && uri.Scheme != Uri.UriSchemeHttps))
            throw new ArgumentException($"'{uri}' is not an http or https address; give one such as http://192.0.2.1/ or https://web.lab/.", nameof(uri));
        if (uri.HostNameType == UriHostNameType.IPv6)
            throw new ArgumentException($"'{uri}' names an IPv6 address; the stack speaks IPv4 only.", nameof(uri));
    }

    private HttpClient ClientFor(bool skipCertificateCheck)
    {
        // A changed certificate policy gets fresh connections: one accepted without checks must not serve a checked request.
        if (_client != null && _clientSkipsCertificateCheck == skipCertificateCheck) return _client;
        _client?.Dispose();
        var handler = NewHandler(skipCertificateCheck);
        handler.CookieContainer = Cookies;
        handler.ConnectCallback = ConnectAsync;
        handler.PlaintextStreamFilter = FilterAsync;
        _clientSkipsCertificateCheck = skipCertificateCheck;
        return _client = new HttpClient(handler) { Timeout = Timeout.InfiniteTimeSpan };
    }

    private static HttpRequestMessage Build(StackHttpRequest r)
    {
        var m = new HttpRequestMessage(r.Method, r.Uri) { Version = HttpVersion.Version11, VersionPolicy = HttpVersionPolicy.RequestVersionExact };
        if (r.ResumeFrom is long from and > 0) m.Headers.Range = new RangeHeaderValue(from, null);
        if (r.Body != null || r.Content != null)
        {
            m.Content = r.Content?.Invoke() ?? new ByteArrayContent(r.Body!);
            if (r.ContentType != null) m.Content.Headers.Remove("Content-Type");
            if (r.ContentType != null && !m.Content.Headers.TryAddWithoutValidation("Content-Type", r.ContentType))
                throw new ArgumentException($"'{r.ContentType}' is not a Content-Type; write one like 'application/json; charset=utf-8'.", nameof(r.ContentType));
        }
        foreach (var (name, value) in r.Headers)
        {
            if (m.Headers.TryAddWithoutValidation(name, value)) continue;
            m.Content ??= new ByteArrayContent(Array.Empty<byte>());
            if (!m.Content.Headers.TryAddWithoutValidation(name, value))
                throw new ArgumentException($"The header '{name}' cannot be set on a request.", nameof(r.Headers));
        }
        if (!m.Headers.Contains("User-Agent")) m.Headers.TryAddWithoutValidation("User-Agent", UserAgent);
        return m;
    }

    private static async Task<long> CopyBodyAsync(HttpResponseMessage response, Stream target, CancellationTokenSource limit, StackHttpRequest request,
        Action<long, long?>? progress, CancellationToken cancellationToken)
    {
        var total = response.Content.Headers.ContentLength;
        long received = 0;
        var buffer = new byte[BufferSize];
        try
        {
            await using var body = await response.Content.ReadAsStreamAsync(limit.Token).ConfigureAwait(false);
            while (true)
            {
                limit.CancelAfter(request.Timeout); // the limit is per wait: a long download that keeps moving is fine
                var n = await body.ReadAsync(buffer, limit.Token).ConfigureAwait(false);
                if (n == 0) break;
                await target.WriteAsync(buffer.AsMemory(0, n), cancellationToken).ConfigureAwait(false);
                received += n;
                progress?.Invoke(received, total);
            }
        }
        catch (OperationCanceledException) when (!cancellationToken.IsCancellationRequested)
        {
            throw new TimeoutException($"{request.Method} {request.Uri}: no more of the body within {request.Timeout.TotalSeconds:0.###} s, after {received:N0} bytes.");
        }
        return received;
    }

    private static Dictionary<string, string[]> HeadersOf(HttpResponseMessage response)
    {
        var headers = new Dictionary<string, string[]>(StringComparer.OrdinalIgnoreCase);
        foreach (var h in response.Headers.NonValidated) headers[h.Key] = h.Value.ToArray();
        foreach (var h in response.Content.Headers.NonValidated) headers[h.Key] = h.Value.ToArray();
        return headers;
    }

    private static async Task<HttpConnectionDetails?> DetailsAsync(ExchangeTrace exchange)
    {
        if (exchange.Connection is not { } c) return null;
        ConnectionInfo? info = null;
        try { info = await c.Socket.GetInfoAsync().ConfigureAwait(false); }
        catch (StackException) { } // the stack stopped meanwhile
        return new HttpConnectionDetails
        {
            Host = c.Host,
            Address = c.Address,
            LocalEndPoint = info is { } i ? new(i.LocalAddress, i.LocalPort) : c.Socket.LocalEndPoint,
            RemoteEndPoint = c.Socket.RemoteEndPoint,
            SocketId = c.Socket.Id,
            Reused = exchange.Reused,
            TlsProtocol = c.TlsProtocol,
            Info = info,
        };
    }

    // ---------------- the handler's callbacks ----------------

    private async ValueTask<Stream> ConnectAsync(SocketsHttpConnectionContext context, CancellationToken ct)
    {
        var trace = await OpenAsync(Stack, context.DnsEndPoint, ct).ConfigureAwait(false);
        context.InitialRequestMessage.Options.Set(ConnectionKey, trace);
        return trace.Socket.GetStream(ownsSocket: true);
    }

    /// <summary>Runs after TLS (https) or at once (http): the TLS time is known here, and the plaintext gets traced.</summary>
    private ValueTask<Stream> FilterAsync(SocketsHttpPlaintextStreamFilterContext context, CancellationToken ct)
    {
        if (!context.InitialRequestMessage.Options.TryGetValue(ConnectionKey, out var trace)) return ValueTask.FromResult(context.PlaintextStream);
        if (context.PlaintextStream is SslStream ssl)
        {
            trace.Tls = Stopwatch.GetElapsedTime(trace.ConnectedAt);
            trace.TlsProtocol = ssl.SslProtocol.ToString();
        }
        return ValueTask.FromResult<Stream>(new TracedStream(context.PlaintextStream, trace, () => _current));
    }

    /// <summary>Resolves, ARPs and connects, timing each step; a failure is the stack's StackException.</summary>
    private static async Task<ConnectionTrace> OpenAsync(NetworkStack stack, DnsEndPoint endPoint, CancellationToken ct)
    {
        // A literal address takes no lookup and a known neighbour no ARP: those phases are zero, not the bookkeeping time.
        var t0 = Stopwatch.GetTimestamp();
        var isLiteral = Ipv4Address.TryParse(endPoint.Host, out var address);
        if (!isLiteral) address = (await stack.ResolveAsync(endPoint.Host, null, ct).ConfigureAwait(false)).Addresses[0];
        var nameLookup = isLiteral ? TimeSpan.Zero : Stopwatch.GetElapsedTime(t0);
        var t1 = Stopwatch.GetTimestamp();
        var arped = await ResolveNextHopAsync(stack, address, ct).ConfigureAwait(false);
        var arp = arped ? Stopwatch.GetElapsedTime(t1) : TimeSpan.Zero;
        var t2 = Stopwatch.GetTimestamp();
        var socket = stack.CreateTcpSocket();
        try { await socket.ConnectAsync(address, (ushort)endPoint.Port, ct).ConfigureAwait(false); }
        catch
        {
            socket.Abort();
            throw;
        }
        var t3 = Stopwatch.GetTimestamp();
        return new ConnectionTrace
        {
            Socket = socket, Host = endPoint.Host, Address = address,
            NameLookup = nameLookup, Arp = arp, TcpHandshake = Stopwatch.GetElapsedTime(t2, t3),
            ConnectedAt = t3,
        };
    }

    /// <summary>
    /// ARPs for the next hop unless the cache knows it, so the ARP time is seen apart from the handshake. The next hop is
    /// chosen as the IP layer chooses it (Ipv4Layer.Route): on-link destinations directly, others through the gateway.
    /// </summary>
    /// <returns>Whether ARP was asked (false: the cache knew the next hop, or there is none and the connect will say so).</returns>
    private static async Task<bool> ResolveNextHopAsync(NetworkStack stack, Ipv4Address address, CancellationToken ct)
    {
        var cfg = stack.Config;
        Ipv4Address? nextHop = address.IsInSubnet(cfg.Address, cfg.PrefixLength) ? address : cfg.Gateway;
        if (nextHop is not { } hop || hop == cfg.Address || address.IsBroadcast || address.IsMulticast || hop == cfg.SubnetBroadcast) return false;
        var cache = await stack.GetArpCacheAsync().WaitAsync(ct).ConfigureAwait(false);
        if (cache.Any(e => e.IPAddress == hop && e.State is ArpState.Reachable or ArpState.Stale or ArpState.Permanent)) return false;
        await stack.ResolveArpAsync(hop, ct).ConfigureAwait(false);
        return true;
    }

    /// <summary>Closes every kept-alive connection (orderly).</summary>
    public void Dispose()
    {
        if (_disposed) return;
        _disposed = true;
        _client?.Dispose();
    }
}
