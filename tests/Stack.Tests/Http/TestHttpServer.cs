using System.Text;
using NetStack;
using NetStack.Sockets;
using NetStack.Tcp;

namespace Stack.Tests.Http;

/// <summary>
/// A small HTTP/1.1 server on one of our stacks (real time), written in the test and independent of the client under
/// test: keep-alive, Content-Length bodies only. Routes: /bytes/n (n bytes), /redirect/n (302 to /redirect/n-1, 200 at
/// 0), /stall (announces 10 MB, sends 64 KiB, then nothing), /echo (the request body back). It records which
/// connection (1, 2, ...) carried each request, and when each connection ended.
/// </summary>
internal sealed class TestHttpServer : IAsyncDisposable
{
    private readonly TcpListener _listener;
    private readonly CancellationTokenSource _stop = new();
    private readonly Task _accepting;
    private readonly List<Task> _connections = new();
    private int _connectionCount;

    private TestHttpServer(TcpListener listener)
    {
        _listener = listener;
        _accepting = AcceptLoop();
    }

    public static async Task<TestHttpServer> StartAsync(NetworkStack stack, ushort port = 80) => new(await stack.ListenAsync(port));

    /// <summary>(connection number, request line) for every request served.</summary>
    public List<(int Connection, string RequestLine)> Requests { get; } = new();
    public int Connections => Volatile.Read(ref _connectionCount);
    /// <summary>Connections whose client has gone (FIN or reset).</summary>
    public int ConnectionsEnded;

    private async Task AcceptLoop()
    {
        while (!_stop.IsCancellationRequested)
        {
            TcpSocket s;
            try { s = await _listener.AcceptAsync(_stop.Token); }
            catch (Exception) { return; }
            var n = Interlocked.Increment(ref _connectionCount);
            lock (_connections) _connections.Add(Task.Run(() => Serve(s, n)));
        }
    }

    private async Task Serve(TcpSocket socket, int connection)
    {
        try
        {
            await using var stream = socket.GetStream(ownsSocket: false);
            var reader = new HeaderReader(stream);
            while (await reader.ReadHeadAsync(_stop.Token) is { } head)
            {
                var lines = head.Split("\r\n");
                lock (Requests) Requests.Add((connection, lines[0]));
                var path = lines[0].Split(' ')[1];
                var length = lines.Skip(1).Select(l => l.Split(':', 2)).Where(p => p[0].Equals("Content-Length", StringComparison.OrdinalIgnoreCase))
                    .Select(p => int.Parse(p[1].Trim())).FirstOrDefault();
                var requestBody = await reader.ReadBodyAsync(length, _stop.Token);
                var parts = path.Trim('/').Split('/');
                if (parts[0] == "stall")
                {
                    await Write(stream, "200 OK", "", new byte[65536], announced: 10_000_000);
                    // Then nothing more, until the client goes (FIN: 0 bytes; reset: an exception).
                    while (await stream.ReadAsync(new byte[1024], _stop.Token) > 0) { }
                    return;
                }
                var (status, headers, body) = parts switch
                {
                    ["bytes", var n] => ("200 OK", "Content-Type: application/octet-stream\r\n", Pattern(int.Parse(n))),
                    ["redirect", "0"] => ("200 OK", "Content-Type: text/plain\r\n", "done"u8.ToArray()),
                    ["redirect", var n] => ("302 Found", $"Location: /redirect/{int.Parse(n) - 1}\r\n", "moved"u8.ToArray()),
                    ["echo"] => ("200 OK", "Content-Type: application/octet-stream\r\n", requestBody),
                    _ => ("404 Not Found", "", "no such page"u8.ToArray()),
                };
                await Write(stream, status, headers, body, body.Length);
            }
        }
        catch (Exception) { /* the client went away */ }
        finally
        {
            Interlocked.Increment(ref ConnectionsEnded);
            socket.Dispose();
        }
    }

    private async Task Write(Stream stream, string status, string headers, byte[] body, int announced)
    {
        await stream.WriteAsync(Encoding.ASCII.GetBytes($"HTTP/1.1 {status}\r\n{headers}Content-Length: {announced}\r\n\r\n"), _stop.Token);
        await stream.WriteAsync(body, _stop.Token);
    }

    public static byte[] Pattern(int n)
    {
        var b = new byte[n];
        for (int i = 0; i < n; i++) b[i] = (byte)('a' + i % 26);
        return b;
    }

    public async ValueTask DisposeAsync()
    {
        _stop.Cancel();
        _listener.Dispose();
        await _accepting;
        Task[] all;
        lock (_connections) all = _connections.ToArray();
        await Task.WhenAll(all).WaitAsync(TimeSpan.FromSeconds(30));
    }

    /// <summary>Reads a request head (up to the blank line) and then a body of known length, from a stream with lookahead.</summary>
    private sealed class HeaderReader(Stream stream)
    {
        private readonly byte[] _buffer = new byte[64 * 1024];
        private int _start, _end;

        public async Task<string?> ReadHeadAsync(CancellationToken ct)
        {
            while (true)
            {
                var at = _buffer.AsSpan(_start, _end - _start).IndexOf("\r\n\r\n"u8);
                if (at >= 0)
                {
                    var head = Encoding.ASCII.GetString(_buffer, _start, at);
                    _start += at + 4;
                    return head;
                }
                if (!await FillAsync(ct)) return null;
            }
        }

        public async Task<byte[]> ReadBodyAsync(int length, CancellationToken ct)
        {
            var body = new byte[length];
            var got = 0;
            while (got < length)
            {
                if (_start == _end && !await FillAsync(ct)) throw new EndOfStreamException();
                var n = Math.Min(length - got, _end - _start);
                Array.Copy(_buffer, _start, body, got, n);
                _start += n;
                got += n;
            }
            return body;
        }

        private async Task<bool> FillAsync(CancellationToken ct)
        {
            if (_start > 0)
            {
                Array.Copy(_buffer, _start, _buffer, 0, _end - _start);
                _end -= _start;
                _start = 0;
            }
            var n = await stream.ReadAsync(_buffer.AsMemory(_end), ct);
            _end += n;
            return n > 0;
        }
    }
}
