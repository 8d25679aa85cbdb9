using System.Diagnostics;
using NetStack.Sockets;
using NetStack.Tcp;

namespace NetStack.Http;

/// <summary>
/// Where the time of one HTTP request went, like curl's -w timers but as durations: the final request's own phases,
/// plus the time spent on redirects before it and the whole call. A request on a reused (kept-alive) connection has
/// no name lookup, ARP, handshake or TLS time: that connection paid them earlier.
/// </summary>
public sealed record HttpTiming
{
    /// <summary>Asking the stack's resolver for the host's address (a literal address takes none; a cached answer little).</summary>
    public TimeSpan NameLookup { get; init; }
    /// <summary>Resolving the next hop's MAC (zero when the ARP cache already knew it).</summary>
    public TimeSpan Arp { get; init; }
    /// <summary>SYN to established: one round trip, more with retransmitted SYNs.</summary>
    public TimeSpan TcpHandshake { get; init; }
    /// <summary>The TLS handshake (https only).</summary>
    public TimeSpan Tls { get; init; }
    /// <summary>From the first byte of the request sent to the first byte of the response: the server's time plus a round trip.</summary>
    public TimeSpan FirstByte { get; init; }
    /// <summary>From the first byte of the response to its last.</summary>
    public TimeSpan Download { get; init; }
    /// <summary>Time spent on redirects before the final request (curl's time_redirect).</summary>
    public TimeSpan Redirect { get; init; }
    /// <summary>The whole call, redirects included.</summary>
    public TimeSpan Total { get; init; }

    public override string ToString() =>
        $"dns {Ms(NameLookup)}, arp {Ms(Arp)}, tcp {Ms(TcpHandshake)}, tls {Ms(Tls)}, first byte {Ms(FirstByte)}, download {Ms(Download)}" +
        (Redirect > TimeSpan.Zero ? $", redirects {Ms(Redirect)}" : "") + $", total {Ms(Total)} ms";

    private static string Ms(TimeSpan t) => t.TotalMilliseconds.ToString("0.###", System.Globalization.CultureInfo.InvariantCulture);
}

/// <summary>The connection a response came over.</summary>
public sealed record HttpConnectionDetails
{
    /// <summary>The host as the URI named it.</summary>
    public required string Host { get; init; }
    /// <summary>The address it resolved to (the host itself for a literal address).</summary>
    public required Ipv4Address Address { get; init; }
    public required IpEndPoint LocalEndPoint { get; init; }
    public required IpEndPoint RemoteEndPoint { get; init; }
    /// <summary>The socket's descriptor on the stack (Get-StackConnection's Id, while it is open).</summary>
    public required int SocketId { get; init; }
    /// <summary>True when an earlier request had opened it (HTTP keep-alive).</summary>
    public required bool Reused { get; init; }
    /// <summary>The TLS version negotiated (Tls12, Tls13), or null for plain http.</summary>
    public string? TlsProtocol { get; init; }
    /// <summary>The connection's netstat row when the response was complete: Retransmits, Srtt, Mss... (null if it could not be read).</summary>
    public ConnectionInfo? Info { get; init; }
    /// <summary>TCP segments the connection sent again, over its whole life so far.</summary>
    public long Retransmits => Info?.Tcp?.Retransmits ?? 0;
}

/// <summary>One connection our ConnectCallback opened, with what opening it cost. Shared by the exchanges that use it.</summary>
internal sealed class ConnectionTrace
{
    public required TcpSocket Socket;
    public required string Host;
    public required Ipv4Address Address;
    public required TimeSpan NameLookup;
    public required TimeSpan Arp;
    public required TimeSpan TcpHandshake;
    public required long ConnectedAt;
    public TimeSpan Tls;
    public string? TlsProtocol;
    /// <summary>Exchanges that have written a request on it.</summary>
    public int Exchanges;
}

/// <summary>
/// What happened during one request/response on a <see cref="StackHttpClient"/> (which runs one at a time, so the
/// connection streams can report to the exchange in progress). Stopwatch timestamps; 0 means not yet.
/// </summary>
internal sealed class ExchangeTrace
{
    public ExchangeTrace(long startedAt) => StartedAt = startedAt;

    public long StartedAt { get; }
    public ConnectionTrace? Connection { get; private set; }
    public bool Reused { get; private set; }
    public long RequestSentAt { get; private set; }
    private long _firstByteAt;
    public long FirstByteAt => Volatile.Read(ref _firstByteAt);
    public long DoneAt { get; set; }

    /// <summary>The request's first bytes went out on <paramref name="connection"/> (again, on another one, after a retry).</summary>
    public void OnRequestWrite(ConnectionTrace connection)
    {
        if (ReferenceEquals(Connection, connection)) return;
        Connection = connection;
        Reused = Interlocked.Increment(ref connection.Exchanges) > 1;
        RequestSentAt = Stopwatch.GetTimestamp();
        Volatile.Write(ref _firstByteAt, 0);
    }

    public void OnResponseBytes(ConnectionTrace connection)
    {
        if (ReferenceEquals(Connection, connection) && FirstByteAt == 0) Interlocked.CompareExchange(ref _firstByteAt, Stopwatch.GetTimestamp(), 0);
    }

    /// <param name="callStartedAt">When the call began.</param>
    /// <param name="redirected">Whether earlier hops came before this one (their time is the Redirect phase).</param>
    public HttpTiming Timing(long callStartedAt, bool redirected)
    {
        var c = Reused ? null : Connection;
        return new HttpTiming
        {
            NameLookup = c?.NameLookup ?? TimeSpan.Zero,
            Arp = c?.Arp ?? TimeSpan.Zero,
            TcpHandshake = c?.TcpHandshake ?? TimeSpan.Zero,
            Tls = c?.Tls ?? TimeSpan.Zero,
            FirstByte = Between(RequestSentAt, FirstByteAt),
            Download = Between(FirstByteAt, DoneAt),
            Redirect = redirected ? Between(callStartedAt, StartedAt) : TimeSpan.Zero,
            Total = Between(callStartedAt, DoneAt),
        };
    }

    private static TimeSpan Between(long from, long to) => from == 0 || to == 0 || to < from ? TimeSpan.Zero : Stopwatch.GetElapsedTime(from, to);
}

/// <summary>
/// The plaintext stream of one connection (above TLS, if any), reporting request writes and response bytes to the
/// exchange in progress. Everything else passes straight through.
/// </summary>
internal sealed class TracedStream : Stream
{
    private readonly Stream _inner;
    private readonly ConnectionTrace _connection;
    private readonly Func<ExchangeTrace?> _current;

    public TracedStream(Stream inner, ConnectionTrace connection, Func<ExchangeTrace?> current)
    {
        _inner = inner;
        _connection = connection;
        _current = current;
    }

    public override bool CanRead => _inner.CanRead;
    public override bool CanWrite => _inner.CanWrite;
    public override bool CanSeek => false;
    public override long Length => throw new NotSupportedException();
    public override long Position { get => throw new NotSupportedException(); set => throw new NotSupportedException(); }
    public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();
    public override void SetLength(long value) => throw new NotSupportedException();
    public override void Flush() => _inner.Flush();
    public override Task FlushAsync(CancellationToken cancellationToken) => _inner.FlushAsync(cancellationToken);

    private void Wrote() => _current()?.OnRequestWrite(_connection);

    private int Read(int n)
    {
        if (n > 0) _current()?.OnResponseBytes(_connection);
        return n;
    }

    public override int Read(byte[] buffer, int offset, int count) => Read(_inner.Read(buffer, offset, count));
    public override int Read(Span<byte> buffer) => Read(_inner.Read(buffer));

    public override async Task<int> ReadAsync(byte[] buffer, int offset, int count, CancellationToken cancellationToken) =>
        Read(await _inner.ReadAsync(buffer.AsMemory(offset, count), cancellationToken).ConfigureAwait(false));

    public override async ValueTask<int> ReadAsync(Memory<byte> buffer, CancellationToken cancellationToken = default) =>
        Read(await _inner.ReadAsync(buffer, cancellationToken).ConfigureAwait(false));

    public override void Write(byte[] buffer, int offset, int count)
    {
        Wrote();
        _inner.Write(buffer, offset, count);
    }

    public override void Write(ReadOnlySpan<byte> buffer)
    {
        Wrote();
        _inner.Write(buffer);
    }

    public override Task WriteAsync(byte[] buffer, int offset, int count, CancellationToken cancellationToken)
    {
        Wrote();
        return _inner.WriteAsync(buffer, offset, count, cancellationToken);
    }

    public override ValueTask WriteAsync(ReadOnlyMemory<byte> buffer, CancellationToken cancellationToken = default)
    {
        Wrote();
        return _inner.WriteAsync(buffer, cancellationToken);
    }

    protected override void Dispose(bool disposing)
    {
        if (disposing) _inner.Dispose();
        base.Dispose(disposing);
    }

    public override async ValueTask DisposeAsync()
    {
        await _inner.DisposeAsync().ConfigureAwait(false);
        await base.DisposeAsync().ConfigureAwait(false);
    }
}
