using System.Security.Cryptography;
using NetStack;
using NetStack.Sockets;
using NetStack.Link;
using NetStack.Tcp;

namespace Stack.Tests.Tcp;

/// <summary>Two stacks on their own loop threads in real time, used with async/await as an application would.</summary>
public class TcpRealTimeTests
{
    /// <summary>Two stacks on one virtual wire, each running its own real-time loop thread.</summary>
    private static (NetworkStack A, NetworkStack B) StartPair(int seed)
    {
        var wire = new VirtualWire(seed);
        var a = new NetworkStack(wire.CreatePort("a", MacAddress.Parse("02-00-00-00-00-01")), new StackConfig { Address = TcpSim.A });
        var b = new NetworkStack(wire.CreatePort("b", MacAddress.Parse("02-00-00-00-00-02")), new StackConfig { Address = TcpSim.B });
        a.Start();
        b.Start();
        return (a, b);
    }

    /// <summary>A connection from A to B on <paramref name="port"/>: the client's socket and the one B accepted.</summary>
    private static async Task<(TcpSocket Client, TcpSocket Server)> Connect(NetworkStack a, NetworkStack b, ushort port, CancellationToken token)
    {
        var accept = b.Listen(port).AcceptAsync(token);
        var client = await a.ConnectTcpAsync(TcpSim.B, port, token);
        return (client, await accept);
    }

    /// <summary>Two started stacks, a connection from A to B, and the test's 30 s bound: disposed together, the sockets first.</summary>
    internal sealed class Connected : IDisposable
    {
        public required NetworkStack A { get; init; }
        public required NetworkStack B { get; init; }
        public required TcpSocket Client { get; init; }
        public required TcpSocket Server { get; init; }
        public required CancellationTokenSource Timeout { get; init; }

        public static async Task<Connected> Start(int seed, ushort port)
        {
            var (a, b) = StartPair(seed);
            var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(30));
            try
            {
                var (client, server) = await Connect(a, b, port, timeout.Token);
                return new Connected { A = a, B = b, Client = client, Server = server, Timeout = timeout };
            }
            catch
            {
                a.Dispose();
                b.Dispose();
                timeout.Dispose();
                throw;
            }
        }

        /// <summary>The server sends the one byte <paramref name="value"/>; the client's next receive returns it alone.</summary>
        public async Task NextReceiveGets(byte value)
        {
            await Server.SendAsync(new[] { value }, Timeout.Token);
            var buf = new byte[10];
            Assert.Equal(1, await Client.ReceiveAsync(buf, Timeout.Token));
            Assert.Equal(value, buf[0]);
        }

        public void Dispose()
        {
            Server.Dispose();
            Client.Dispose();
            Timeout.Dispose();
            B.Dispose();
            A.Dispose();
        }
    }

    [Fact]
    public async Task Echo_a_mebibyte_through_running_stacks_and_streams()
    {
        var (a, b) = StartPair(1);
        using var _a = a;
        using var _b = b;
        using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(30));
        var listener = b.Listen(7);
        var server = Task.Run(async () =>
        {
            using var s = await listener.AcceptAsync(cts.Token);
            await using var stream = s.GetStream(ownsSocket: false);
            await stream.CopyToAsync(stream, cts.Token); // echo until the client's FIN
            await s.CloseAsync();
        });
        using var c = await a.ConnectTcpAsync(TcpSim.B, 7, cts.Token);
        var data = TcpSim.Data(1 << 20, 9);
        var sender = Task.Run(async () =>
        {
            await c.SendAsync(data, cts.Token);
            c.ShutdownSend();
        });
        using var hash = IncrementalHash.CreateHash(HashAlgorithmName.SHA256);
        var buf = new byte[65536];
        long total = 0;
        int n;
        while ((n = await c.ReceiveAsync(buf, cts.Token)) > 0)
        {
            hash.AppendData(buf, 0, n);
            total += n;
        }
        await sender;
        await server.WaitAsync(cts.Token);
        Assert.Equal(data.Length, total);
        Assert.Equal(SHA256.HashData(data), hash.GetCurrentHash());
    }

    [Fact]
    public async Task Uncancellable_receives_of_a_bulk_stream_get_every_byte_in_order()
    {
        // ReceiveAsync without a token (a ValueTask over the socket): run inline on the caller's thread when the loop is free, else posted.
        var (a, b) = StartPair(3);
        using var _a = a;
        using var _b = b;
        using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(60));
        var (c, s) = await Connect(a, b, 9, cts.Token);
        const int total = 24 * 1024 * 1024;
        static byte At(long i) => (byte)(i * 31 + (i >> 11));
        var sender = Task.Run(async () =>
        {
            var chunk = new byte[100_003];
            for (long sent = 0; sent < total;)
            {
                var n = (int)Math.Min(chunk.Length, total - sent);
                for (int i = 0; i < n; i++) chunk[i] = At(sent + i);
                await s.SendAsync(chunk.AsMemory(0, n), cts.Token);
                sent += n;
            }
        });
        var buf = new byte[128 * 1024];
        long got = 0;
        while (got < total)
        {
            var n = await c.ReceiveAsync(buf).AsTask().WaitAsync(cts.Token);
            Assert.True(n > 0);
            for (int i = 0; i < n; i++)
                if (buf[i] != At(got + i)) Assert.Fail($"byte {got + i}: {buf[i]} instead of {At(got + i)}");
            got += n;
        }
        await sender.WaitAsync(cts.Token);
        Assert.Equal(total, got);
    }

    [Fact]
    public async Task Receive_can_be_cancelled_and_the_socket_stays_usable()
    {
        using var pair = await Connected.Start(2, 8);
        using var cts = new CancellationTokenSource(TimeSpan.FromMilliseconds(50));
        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => pair.Client.ReceiveAsync(new byte[10], cts.Token).AsTask());
        await pair.NextReceiveGets(7);
    }

    [Fact]
    public async Task ReadAsync_can_be_cancelled_and_the_next_reads_with_and_without_a_token_get_the_data()
    {
        using var pair = await Connected.Start(4, 9);
        var (a, timeout, c, s) = (pair.A, pair.Timeout, pair.Client, pair.Server);
        using var cts = new CancellationTokenSource(TimeSpan.FromMilliseconds(50));
        await Assert.ThrowsAnyAsync<OperationCanceledException>(async () => await c.ReadAsync(new byte[10], cts.Token));
        var buf = new byte[10];
        var read = c.ReadAsync(buf); // the socket's operation again, now without a token
        await s.SendAsync(new byte[] { 7 }, timeout.Token);
        Assert.Equal(1, await read.AsTask().WaitAsync(timeout.Token));
        Assert.Equal(7, buf[0]);
        await pair.NextReceiveGets(8); // the socket serves the next receive as before
    }

    [Fact]
    public async Task GetResult_on_a_pending_ReceiveAsync_waits_for_the_data_as_a_Tasks_does()
    {
        // PowerShell's way to wait: $s.ReceiveAsync($buf).GetAwaiter().GetResult(). A ValueTask's source may refuse a
        // result it does not have yet; the socket's waits for it.
        using var pair = await Connected.Start(11, 12);
        var (timeout, c, s) = (pair.Timeout, pair.Client, pair.Server);
        var buf = new byte[10];
        var receive = c.ReceiveAsync(buf);
        Assert.False(receive.IsCompleted);
        var blocked = Task.Factory.StartNew(() => receive.GetAwaiter().GetResult(), TaskCreationOptions.LongRunning);
        await s.SendAsync(new byte[] { 1, 2, 3 }, timeout.Token);
        Assert.Equal(3, await blocked.WaitAsync(timeout.Token));
        Assert.Equal(new byte[] { 1, 2, 3 }, buf[..3]);
        await pair.NextReceiveGets(4); // the socket serves the next receive as before
    }

    [Fact]
    public async Task A_second_ReceiveAsync_while_one_is_pending_fails_and_the_first_gets_the_data()
    {
        using var pair = await Connected.Start(12, 13);
        var (timeout, c, s) = (pair.Timeout, pair.Client, pair.Server);
        var first = c.ReceiveAsync(new byte[10]).AsTask();
        var second = c.ReceiveAsync(new byte[10]).AsTask();
        var e = await Assert.ThrowsAsync<InvalidOperationException>(() => second.WaitAsync(timeout.Token));
        Assert.Contains("already pending", e.Message);
        Assert.False(first.IsCompleted);
        await s.SendAsync(new byte[] { 9 }, timeout.Token);
        Assert.Equal(1, await first.WaitAsync(timeout.Token));
    }

    [Fact]
    public async Task A_pending_ReceiveAsync_ends_when_the_socket_is_closed_or_reset()
    {
        using var pair = await Connected.Start(5, 10);
        var (timeout, c, s) = (pair.Timeout, pair.Client, pair.Server);
        var closed = c.ReceiveAsync(new byte[10]).AsTask(); // no token
        var reset = s.ReceiveAsync(new byte[10]).AsTask();
        await Task.Delay(20);
        Assert.False(closed.IsCompleted);
        await c.CloseAsync().WaitAsync(timeout.Token); // our close gives the pending receive up
        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => closed.WaitAsync(timeout.Token));
        Assert.Equal(0, await reset.WaitAsync(timeout.Token)); // the peer's FIN: end of stream
        var second = s.ReceiveAsync(new byte[10]).AsTask();
        Assert.Equal(0, await second.WaitAsync(timeout.Token));
        s.Abort();
        var afterAbort = s.ReceiveAsync(new byte[10]).AsTask();
        await Assert.ThrowsAsync<StackException>(() => afterAbort.WaitAsync(timeout.Token));
    }

    [Fact]
    public async Task Tls_runs_over_the_stream_adapter()
    {
        var (a, b) = StartPair(3);
        using var _a = a;
        using var _b = b;
        using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(30));
        using var key = System.Security.Cryptography.ECDsa.Create(System.Security.Cryptography.ECCurve.NamedCurves.nistP256);
        var req = new System.Security.Cryptography.X509Certificates.CertificateRequest("CN=netstack.test", key, HashAlgorithmName.SHA256);
        using var ephemeral = req.CreateSelfSigned(DateTimeOffset.UtcNow.AddDays(-1), DateTimeOffset.UtcNow.AddDays(1));
        using var cert = System.Security.Cryptography.X509Certificates.X509CertificateLoader.LoadPkcs12(ephemeral.Export(System.Security.Cryptography.X509Certificates.X509ContentType.Pfx), null);
        var listener = b.Listen(443);
        var server = Task.Run(async () =>
        {
            using var s = await listener.AcceptAsync(cts.Token);
            await using var tls = new System.Net.Security.SslStream(s.GetStream());
            await tls.AuthenticateAsServerAsync(new System.Net.Security.SslServerAuthenticationOptions { ServerCertificate = cert }, cts.Token);
            var buf = new byte[64];
            var n = await tls.ReadAsync(buf, cts.Token);
            await tls.WriteAsync(buf.AsMemory(0, n), cts.Token);
            await tls.ShutdownAsync();
        });
        using var c = await a.ConnectTcpAsync(TcpSim.B, 443, cts.Token);
        await using var client = new System.Net.Security.SslStream(c.GetStream(), false, (_, _, _, _) => true);
        await client.AuthenticateAsClientAsync(new System.Net.Security.SslClientAuthenticationOptions { TargetHost = "netstack.test" }, cts.Token);
        await client.WriteAsync("hello over TLS"u8.ToArray(), cts.Token);
        var reply = new byte[64];
        var m = await client.ReadAsync(reply, cts.Token);
        Assert.Equal("hello over TLS", System.Text.Encoding.ASCII.GetString(reply, 0, m));
        await server.WaitAsync(cts.Token);
    }
}
