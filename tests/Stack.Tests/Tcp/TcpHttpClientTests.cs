using System.Net;
using System.Text;
using NetStack;
using NetStack.Link;
using NetStack.Sockets;
using NetStack.Tcp;

namespace Stack.Tests.Tcp;

/// <summary>.NET's own HttpClient speaking HTTP/1.1 over our TCP, through SocketsHttpHandler.ConnectCallback and TcpStream.</summary>
public class TcpHttpClientTests
{
    [Fact]
    public async Task HttpClient_gets_pages_over_our_tcp_through_the_connect_callback()
    {
        var wire = new VirtualWire(5);
        using var client = new NetworkStack(wire.CreatePort("c", MacAddress.Parse("02-00-00-00-00-01")), new StackConfig { Address = TcpSim.A });
        using var server = new NetworkStack(wire.CreatePort("s", MacAddress.Parse("02-00-00-00-00-02")), new StackConfig { Address = TcpSim.B });
        client.Start();
        server.Start();
        using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(60));

        // A minimal HTTP/1.1 server on our stack: one connection, keep-alive, answers GET /n with n bytes.
        var listener = await server.ListenAsync(80);
        var serving = Task.Run(async () =>
        {
            using var s = await listener.AcceptAsync(cts.Token);
            await using var stream = s.GetStream(ownsSocket: false);
            using var reader = new StreamReader(stream, Encoding.ASCII, leaveOpen: true);
            int served = 0;
            while (await reader.ReadLineAsync(cts.Token) is { } requestLine)
            {
                while (await reader.ReadLineAsync(cts.Token) is { Length: > 0 }) { } // headers
                var size = int.Parse(requestLine.Split(' ')[1].TrimStart('/'));
                var body = new byte[size];
                for (int i = 0; i < size; i++) body[i] = (byte)('a' + i % 26);
                var head = Encoding.ASCII.GetBytes($"HTTP/1.1 200 OK\r\nContent-Length: {size}\r\nContent-Type: text/plain\r\n\r\n");
                await stream.WriteAsync(head, cts.Token);
                await stream.WriteAsync(body, cts.Token);
                served++;
            }
            await s.CloseAsync();
            return served;
        });

        var handler = new SocketsHttpHandler
        {
            ConnectCallback = async (context, ct) =>
            {
                var socket = await client.ConnectTcpAsync(Ipv4Address.Parse(context.DnsEndPoint.Host), (ushort)context.DnsEndPoint.Port, ct);
                return socket.GetStream(ownsSocket: true);
            },
        };
        using (var http = new HttpClient(handler) { Timeout = TimeSpan.FromSeconds(60) })
        {
            foreach (var size in new[] { 13, 100_000, 1 })
            {
                using var response = await http.GetAsync($"http://{TcpSim.B}/{size}", cts.Token);
                Assert.Equal(HttpStatusCode.OK, response.StatusCode);
                var body = await response.Content.ReadAsByteArrayAsync(cts.Token);
                Assert.Equal(size, body.Length);
                Assert.Equal((byte)'a', body[0]);
                Assert.Equal((byte)('a' + (size - 1) % 26), body[^1]);
            }
        } // disposing the client closes the pooled connection: the server sees the FIN

        Assert.Equal(3, await serving.WaitAsync(cts.Token)); // all three requests on one kept-alive connection
    }

    [Fact]
    public async Task Synchronous_stream_reads_and_writes_carry_the_bytes()
    {
        var wire = new VirtualWire(6);
        using var a = new NetworkStack(wire.CreatePort("a", MacAddress.Parse("02-00-00-00-00-01")), new StackConfig { Address = TcpSim.A });
        using var b = new NetworkStack(wire.CreatePort("b", MacAddress.Parse("02-00-00-00-00-02")), new StackConfig { Address = TcpSim.B });
        a.Start();
        b.Start();
        var listener = await b.ListenAsync(9);
        var accept = listener.AcceptAsync();
        using var c = await a.ConnectTcpAsync(TcpSim.B, 9).WaitAsync(TimeSpan.FromSeconds(30));
        using var s = await accept.WaitAsync(TimeSpan.FromSeconds(30));
        using var cs = c.GetStream();
        using var ss = s.GetStream();

        var data = TcpSim.Data(200_000, 4);
        cs.Write(data.AsSpan());          // span overload: pooled copy
        cs.Write(data, 0, 1000);          // array overload: no copy
        c.ShutdownSend();
        var got = new MemoryStream();
        var buf = new byte[7000];
        int n;
        while ((n = ss.Read(buf.AsSpan())) > 0) got.Write(buf, 0, n);
        Assert.Equal(data.Concat(data.Take(1000)).ToArray(), got.ToArray());
    }
}
