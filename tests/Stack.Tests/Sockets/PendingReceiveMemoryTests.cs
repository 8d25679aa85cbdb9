using NetStack;
using NetStack.Link;
using NetStack.Sockets;
using NetStack.Tcp;
using Stack.Tests.Tcp;

namespace Stack.Tests.Sockets;

/// <summary>
/// Issue 18's pending receive: what a connection costs with a receive waiting on it, on top of the idle connection and
/// the caller's own buffer (the benchmark's pending-recv scenario, on the in-memory wire). Both ways of receiving:
/// <c>ReceiveAsync</c> (a ValueTask whose source is the socket itself: nothing), and the Task way a
/// <see cref="TcpStream"/>'s array reads take (<c>ReceiveTaskAsync</c>: a completion source and its Task). Bounds in
/// bytes with headroom, never a time.
/// </summary>
[Collection(nameof(TcpPerformanceTests))]
public class PendingReceiveMemoryTests
{
    private readonly Xunit.Abstractions.ITestOutputHelper _output;
    public PendingReceiveMemoryTests(Xunit.Abstractions.ITestOutputHelper output) => _output = output;

    private const int Connections = 2000;

    [Theory]
    [InlineData(true, 8)]    // 0 B: the socket is the receive's source, work and waiter (was 96 B: a Task<int> and its completion source, or ReadAsync's operation made at a socket's first read)
    [InlineData(false, 128)] // ~112 B: the completion source with the buffer it waits on (40 B: the connection keeps no copy) and its Task<int> (72 B)
    public async Task A_pending_receive_costs_little_more_than_the_callers_buffer(bool valueTask, double maxBytes)
    {
        var wire = new VirtualWire(seed: 20);
        var tcp = new TcpSettings { MaxConnections = 3 * Connections };
        using var a = new NetworkStack(wire.CreatePort("a", MacAddress.Parse("02-00-00-00-00-01")), new StackConfig { Address = TcpSim.A, EphemeralPortFirst = 1024, Tcp = tcp });
        using var b = new NetworkStack(wire.CreatePort("b", MacAddress.Parse("02-00-00-00-00-02")), new StackConfig { Address = TcpSim.B, Tcp = tcp });
        a.Start();
        b.Start();
        var listener = b.Listen(20, Connections + 100);
        var clients = new List<TcpSocket>();
        var servers = new List<TcpSocket>();
        async Task Open(int n)
        {
            for (int i = 0; i < n; i++)
            {
                var accept = listener.AcceptAsync();
                clients.Add(await a.ConnectTcpAsync(TcpSim.B, 20).WaitAsync(TimeSpan.FromSeconds(30)));
                servers.Add(await accept.WaitAsync(TimeSpan.FromSeconds(30)));
            }
        }
        await Open(100); // warm-up: code paths and tables
        // One receive completed on each warm-up socket, so the code paths of both kinds exist before "before".
        foreach (var (c, s) in clients.Zip(servers))
        {
            var buf = new byte[1];
            var r = valueTask ? c.ReceiveAsync(buf).AsTask() : c.ReceiveTaskAsync(buf);
            await s.SendAsync(new byte[] { 1 });
            Assert.Equal(1, await r.WaitAsync(TimeSpan.FromSeconds(30)));
        }
        var first = clients.Count;
        await Open(Connections);
        var buffers = Enumerable.Range(0, Connections).Select(_ => new byte[4096]).ToArray();
        var receives = new Task<int>[Connections];
        var readsPending = new ValueTask<int>[Connections];
        await Task.Delay(200); // the handshakes' last ACKs and timers settle
        var before = Settled();
        for (int i = 0; i < Connections; i++)
        {
            if (valueTask) readsPending[i] = clients[first + i].ReceiveAsync(buffers[i]);
            else receives[i] = clients[first + i].ReceiveTaskAsync(buffers[i]);
        }
        await a.InvokeAsync(_ => { }); // every receive has reached the loop and waits there
        var after = Settled();
        var perReceive = (after - before) / (double)Connections;
        var kind = valueTask ? "ReceiveAsync (ValueTask)" : "ReceiveTaskAsync (Task)";
        _output.WriteLine($"{kind}: {perReceive:F0} B of managed heap per pending receive, on top of the idle connection and its 4 KiB buffer");
        Assert.All(Enumerable.Range(0, Connections), i => Assert.False(valueTask ? readsPending[i].IsCompleted : receives[i].IsCompleted));

        // They still complete: the server sends one byte on each.
        foreach (var s in servers.Skip(first)) await s.SendAsync(new byte[] { 2 });
        for (int i = 0; i < Connections; i++)
            Assert.Equal(1, valueTask ? await readsPending[i].AsTask().WaitAsync(TimeSpan.FromSeconds(30)) : await receives[i].WaitAsync(TimeSpan.FromSeconds(30)));
        Assert.True(perReceive < maxBytes, $"{perReceive:F0} B per pending {kind} (bound {maxBytes})");
        GC.KeepAlive(buffers);
    }

    private static long Settled()
    {
        GC.Collect();
        GC.WaitForPendingFinalizers();
        return GC.GetTotalMemory(true);
    }
}
