using System.Text;
using NetStack;
using NetStack.Link;
using NetStack.Sockets;
using NetStack.Tcp;
using Stack.Tests.Tcp;

namespace Stack.Tests.Sockets;

/// <summary>
/// One byte stream per socket: the bounded receives (until a delimiter, exactly a count, to the end) keep what they
/// read past their boundary in the socket, where ReceiveAsync, the stream adapter and Recv-Q see it; a bounded
/// receive that is cancelled, times out or fails leaves every byte it had gathered there, in order.
/// </summary>
public class ReceivePushbackTests
{
    private static readonly TimeSpan Generous = TimeSpan.FromSeconds(30);

    /// <summary>Two running stacks on one virtual wire and a connection between them; disposing stops both stacks.</summary>
    private sealed record Connected(NetworkStack A, NetworkStack B, TcpSocket Client, TcpSocket Server) : IDisposable
    {
        public void Dispose()
        {
            A.Dispose();
            B.Dispose();
        }
    }

    private static async Task<Connected> ConnectedPair(int seed, ushort port = 7, TcpSettings? serverTcp = null)
    {
        var wire = new VirtualWire(seed);
        var a = new NetworkStack(wire.CreatePort("a", MacAddress.Parse("02-00-00-00-00-01")), new StackConfig { Address = TcpSim.A });
        var b = new NetworkStack(wire.CreatePort("b", MacAddress.Parse("02-00-00-00-00-02")), new StackConfig { Address = TcpSim.B, Tcp = serverTcp ?? new TcpSettings() });
        a.Start();
        b.Start();
        var listener = b.Listen(port);
        var accept = listener.AcceptAsync();
        var client = await a.ConnectTcpAsync(TcpSim.B, port).WaitAsync(Generous);
        var server = await accept.WaitAsync(Generous);
        return new Connected(a, b, client, server);
    }

    /// <summary>Sends <paramref name="data"/> from the client and waits until it is all in the server socket's Recv-Q.</summary>
    private static async Task Deliver(Connected pair, byte[] data)
    {
        await pair.Client.SendAsync(data).WaitAsync(Generous);
        await UntilRecvQ(pair.Server, data.Length);
    }

    private static async Task<long> RecvQ(TcpSocket s) => (await s.GetInfoAsync().WaitAsync(Generous)).RecvQ;

    /// <summary>Waits (bounded) until the socket's Recv-Q reaches <paramref name="bytes"/>: the peer's data has arrived.</summary>
    private static async Task UntilRecvQ(TcpSocket s, long bytes)
    {
        var deadline = DateTime.UtcNow + Generous;
        while (await RecvQ(s) < bytes)
        {
            Assert.True(DateTime.UtcNow < deadline, $"Recv-Q did not reach {bytes} bytes");
            await Task.Delay(5);
        }
    }

    [Fact]
    public async Task Until_then_ReceiveAsync_and_the_stream_get_every_byte_once_in_order()
    {
        using var pair = await ConnectedPair(1);
        var (c, s) = (pair.Client, pair.Server);
        var body = TcpSim.Data(200_000, 5);
        var sent = Encoding.ASCII.GetBytes("HEAD 1\r\nHEAD 2\r\n\r\n").Concat(body).ToArray();
        await c.SendAsync(sent).WaitAsync(Generous);
        c.ShutdownSend();
        await UntilRecvQ(s, 18 + 1); // the head has arrived (and then some)

        var got = new List<byte>();
        var line = await s.ReceiveUntilAsync("\r\n"u8.ToArray()).WaitAsync(Generous);
        Assert.Equal("HEAD 1\r\n", Encoding.ASCII.GetString(line));
        got.AddRange(line);
        // What the receive read past the delimiter is still the socket's: Recv-Q counts it.
        Assert.True(await RecvQ(s) >= 10);

        var small = new byte[3];
        Assert.Equal(3, await s.ReceiveAsync(small).AsTask().WaitAsync(Generous)); // "HEA": from the pushed-back bytes
        Assert.Equal("HEA", Encoding.ASCII.GetString(small));
        got.AddRange(small);
        got.AddRange(await s.ReceiveUntilAsync("\r\n\r\n"u8.ToArray()).WaitAsync(Generous));
        Assert.Equal("HEAD 1\r\nHEAD 2\r\n\r\n", Encoding.ASCII.GetString(got.ToArray()));

        got.AddRange(await s.ReceiveExactlyAsync(1000).WaitAsync(Generous));
        await using (var stream = s.GetStream(ownsSocket: false))
        {
            var buf = new byte[777];
            got.AddRange(buf.AsSpan(0, stream.Read(buf)).ToArray());
            var n = await stream.ReadAsync(buf).AsTask().WaitAsync(Generous);
            got.AddRange(buf.AsSpan(0, n).ToArray());
        }
        got.AddRange(await s.ReceiveToEndAsync().WaitAsync(Generous));
        Assert.Equal(sent, got.ToArray());
        Assert.Equal(0, await RecvQ(s));
    }

    [Fact]
    public async Task A_cancelled_or_timed_out_bounded_receive_leaves_every_byte_for_the_next()
    {
        using var pair = await ConnectedPair(2);
        var (c, s) = (pair.Client, pair.Server);
        var first = TcpSim.Data(100_000, 6);
        await Deliver(pair, first);

        // Each waits for more than has come, then gives up: nothing is returned, nothing is lost.
        using (var cts = new CancellationTokenSource(TimeSpan.FromMilliseconds(100)))
            await Assert.ThrowsAnyAsync<OperationCanceledException>(() => s.ReceiveExactlyAsync(150_000, cts.Token)).WaitAsync(Generous);
        Assert.Equal(first.Length, await RecvQ(s));
        using (var cts = new CancellationTokenSource(TimeSpan.FromMilliseconds(100)))
            await Assert.ThrowsAnyAsync<OperationCanceledException>(() => s.ReceiveUntilAsync("no such delimiter"u8.ToArray(), cancellationToken: cts.Token)).WaitAsync(Generous);
        using (var cts = new CancellationTokenSource(TimeSpan.FromMilliseconds(100)))
            await Assert.ThrowsAnyAsync<OperationCanceledException>(() => s.ReceiveToEndAsync(cts.Token)).WaitAsync(Generous);
        Assert.Equal(first.Length, await RecvQ(s));

        var second = TcpSim.Data(60_000, 7);
        await c.SendAsync(second).WaitAsync(Generous);
        var all = await s.ReceiveExactlyAsync(first.Length + second.Length).WaitAsync(Generous);
        Assert.Equal(first.Concat(second).ToArray(), all);
    }

    [Fact]
    public async Task A_bounded_receive_ended_by_a_reset_leaves_its_bytes_then_reports_the_reset()
    {
        using var pair = await ConnectedPair(3);
        var (c, s) = (pair.Client, pair.Server);
        await Deliver(pair, "partial line"u8.ToArray());
        var pending = s.ReceiveUntilAsync("\n"u8.ToArray());
        c.Abort();
        var ex = await Assert.ThrowsAsync<StackException>(() => pending).WaitAsync(Generous);
        Assert.Equal(StackError.ConnectionReset, ex.Error);
        var buf = new byte[64];
        var n = await s.ReceiveAsync(buf).AsTask().WaitAsync(Generous);
        Assert.Equal("partial line", Encoding.ASCII.GetString(buf, 0, n));
        Assert.Equal(StackError.ConnectionReset, (await Assert.ThrowsAsync<StackException>(() => s.ReceiveAsync(buf).AsTask()).WaitAsync(Generous)).Error);
    }

    [Fact]
    public async Task Unread_puts_bytes_in_front_and_Recv_Q_counts_them_until_read()
    {
        using var pair = await ConnectedPair(4);
        var (c, s) = (pair.Client, pair.Server);
        await Deliver(pair, "world"u8.ToArray());
        s.Unread("hello "u8.ToArray());
        Assert.Equal(11, await RecvQ(s));
        Assert.Equal("hello world", Encoding.ASCII.GetString(await s.ReceiveExactlyAsync(11).WaitAsync(Generous)));
        Assert.Equal(0, await RecvQ(s));
    }

    [Fact]
    public async Task Closing_with_pushed_back_bytes_unread_resets_like_unread_data()
    {
        using var pair = await ConnectedPair(5);
        var (c, s) = (pair.Client, pair.Server);
        await Deliver(pair, "one\ntwo\n"u8.ToArray());
        Assert.Equal("one\n", Encoding.ASCII.GetString(await s.ReceiveUntilAsync("\n"u8.ToArray()).WaitAsync(Generous)));
        await s.CloseAsync().WaitAsync(Generous); // "two\n" was never read: RFC 1122 4.2.2.13
        var ex = await Assert.ThrowsAsync<StackException>(() => c.ReceiveAsync(new byte[8]).AsTask()).WaitAsync(Generous);
        Assert.Equal(StackError.ConnectionReset, ex.Error);
    }

    [Fact]
    public async Task Receives_cancelled_at_random_moments_take_every_byte_once_in_order()
    {
        // The race the loop settles: a receive whose token fires as data completes it either returns the data
        // or leaves it in the socket, never both and never neither, for plain and bounded receives alike.
        // The server's buffer stays small (no auto-tuning): the sender cannot run megabytes ahead, so receives often find
        // nothing buffered and wait, and their tokens fire while they wait.
        using var pair = await ConnectedPair(6, serverTcp: new TcpSettings { ReceiveBufferSize = 16 * 1024, ReceiveBufferMax = 16 * 1024 });
        var (c, s) = (pair.Client, pair.Server);
        var data = TcpSim.Data(2_000_000, 8);
        var sender = Task.Run(async () =>
        {
            for (int at = 0; at < data.Length; at += 1000)
            {
                await c.SendAsync(data.AsMemory(at, Math.Min(1000, data.Length - at))).WaitAsync(Generous);
                if (at % 20_000 == 0) await Task.Yield();
            }
            c.ShutdownSend();
        });
        var got = new MemoryStream();
        var random = new Random(9);
        var buf = new byte[4096];
        var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(60);
        var cancelled = 0;
        while (true)
        {
            Assert.True(DateTime.UtcNow < deadline, $"only {got.Length} of {data.Length} bytes after 60 s");
            using var cts = new CancellationTokenSource(TimeSpan.FromTicks(random.Next(0, 20_000))); // 0-2 ms
            try
            {
                switch (random.Next(3))
                {
                    case 0:
                        var n = await s.ReceiveAsync(buf, cts.Token);
                        if (n == 0) goto done;
                        got.Write(buf, 0, n);
                        break;
                    case 1:
                        var exact = await s.ReceiveExactlyAsync(random.Next(1, 9000), cts.Token);
                        if (exact.Length == 0) goto done;
                        got.Write(exact);
                        break;
                    default:
                        var until = await s.ReceiveUntilAsync(new[] { (byte)random.Next(256) }, 20_000, cts.Token);
                        if (until.Length == 0) goto done;
                        got.Write(until);
                        break;
                }
            }
            catch (OperationCanceledException) { cancelled++; }
        }
    done:
        await sender.WaitAsync(Generous);
        Assert.True(cancelled > 0, "no receive was cancelled: the test did not test the race");
        Assert.Equal(data.Length, got.Length);
        Assert.True(data.AsSpan().SequenceEqual(got.ToArray()), "bytes were lost, repeated or reordered");
    }

    [Fact]
    public async Task A_receive_the_loop_completed_as_its_token_fired_returns_the_data_one_the_cancel_reached_first_leaves_it()
    {
        var (sim, a, b) = TcpSim.Pair(7);
        using var __ = sim;
        var (c, s) = TcpSim.Connect(sim, a, b);
        c.NoDelay = true; // each send leaves at once, whatever is in flight
        var buf = new byte[16];

        // The data completes the receive on the loop first; the token fires after: the await returns the data.
        using (var cts = new CancellationTokenSource())
        {
            var receive = s.ReceiveAsync(buf, cts.Token).AsTask();
            sim.Step();
            sim.Run(c.SendAsync("first"u8.ToArray()));
            sim.RunUntil(() => false, TimeSpan.FromMilliseconds(10));
            cts.Cancel();
            var n = await receive.WaitAsync(Generous);
            Assert.Equal("first", Encoding.ASCII.GetString(buf, 0, n));
        }

        // The cancel reaches the loop before the data: the receive is cancelled and the data stays for the next one.
        using (var cts = new CancellationTokenSource())
        {
            var receive = s.ReceiveAsync(buf, cts.Token).AsTask();
            sim.Step();
            cts.Cancel();
            sim.Run(c.SendAsync("second"u8.ToArray()));
            await Assert.ThrowsAnyAsync<OperationCanceledException>(() => receive.WaitAsync(Generous));
            Assert.Equal(6, sim.Run(s.GetInfoAsync()).RecvQ);
            var n = sim.Run(s.ReceiveAsync(buf).AsTask());
            Assert.Equal("second", Encoding.ASCII.GetString(buf, 0, n));
        }
    }
}
