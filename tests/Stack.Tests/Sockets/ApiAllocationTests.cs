using NetStack;
using NetStack.Link;
using Stack.Tests.Tcp;

namespace Stack.Tests.Sockets;

/// <summary>
/// The socket API's own cost (issue 18): a steady stream of <c>WriteAsync</c>/<c>ReadAsync</c> calls (the socket's
/// reusable ValueTask operations, what <see cref="NetStack.Sockets.TcpStream"/> and so HttpClient and SslStream use)
/// allocates nothing per call, neither on the calling thread (which may run a loop turn inline) nor on either loop.
/// Runs alone (the TcpPerformanceTests collection): TCP's buffer pool is the process's, and connections of tests
/// running in parallel could hold every array of its size when one is rented here.
/// </summary>
[Collection(nameof(Tcp.TcpPerformanceTests))]
public class ApiAllocationTests
{
    private readonly Xunit.Abstractions.ITestOutputHelper _output;
    public ApiAllocationTests(Xunit.Abstractions.ITestOutputHelper output) => _output = output;

    [Fact]
    public async Task Steady_WriteAsync_and_ReadAsync_allocate_nothing_per_call()
    {
        var wire = new VirtualWire(seed: 18);
        // Buffers at a fixed size: auto-tuning grows them once per connection (megabytes, not a cost per call) at a
        // moment of its own, which could fall in the measured window.
        var tcp = new TcpSettings { ReceiveBufferMax = 256 * 1024, SendBufferMax = 256 * 1024 };
        using var a = new NetworkStack(wire.CreatePort("a", MacAddress.Parse("02-00-00-00-00-01")), new StackConfig { Address = TcpSim.A, Tcp = tcp });
        using var b = new NetworkStack(wire.CreatePort("b", MacAddress.Parse("02-00-00-00-00-02")), new StackConfig { Address = TcpSim.B, Tcp = tcp });
        a.Start();
        b.Start();
        var listener = b.Listen(18);
        var accept = listener.AcceptAsync();
        using var client = await a.ConnectTcpAsync(TcpSim.B, 18).WaitAsync(TimeSpan.FromSeconds(30));
        using var server = await accept.WaitAsync(TimeSpan.FromSeconds(30));
        client.NoDelay = true; // each small write goes at once, not after the peer's delayed ACK
        var data = TcpSim.Data(1024, 3);
        var buffer = new byte[1024];
        using var cts = new CancellationTokenSource(TimeSpan.FromMinutes(2)); // a token that can fire: the cancellable path

        long callerBytes = 0;
        async Task Exchange(int rounds, bool measure)
        {
            for (var i = 0; i < rounds; i++)
            {
                var before = GC.GetAllocatedBytesForCurrentThread();
                var write = client.WriteAsync(data, cts.Token);
                if (measure) callerBytes += GC.GetAllocatedBytesForCurrentThread() - before;
                await write;
                var got = 0;
                while (got < data.Length)
                {
                    before = GC.GetAllocatedBytesForCurrentThread();
                    var read = server.ReadAsync(buffer.AsMemory(got), cts.Token);
                    if (measure) callerBytes += GC.GetAllocatedBytesForCurrentThread() - before;
                    var n = await read;
                    Assert.True(n > 0, "the stream ended early");
                    got += n;
                }
                Assert.Equal(data, buffer);
            }
        }

        await Exchange(2000, measure: false); // warm up: JIT, the operations themselves, pools at their size
        var loopA0 = await a.InvokeAsync(_ => GC.GetAllocatedBytesForCurrentThread());
        var loopB0 = await b.InvokeAsync(_ => GC.GetAllocatedBytesForCurrentThread());
        const int Rounds = 20_000; // a one-off of the runtime or the pools (a receive buffer rented on a thread new to the pool) is diluted below 1 B a call
        await Exchange(Rounds, measure: true).WaitAsync(TimeSpan.FromSeconds(60));
        var loopBytes = await a.InvokeAsync(_ => GC.GetAllocatedBytesForCurrentThread()) - loopA0
                        + await b.InvokeAsync(_ => GC.GetAllocatedBytesForCurrentThread()) - loopB0;
        _output.WriteLine($"{Rounds:N0} rounds: {callerBytes} bytes allocated by the calls, {loopBytes} by the loops");
        // At least two calls a round (one write, one or more reads); the InvokeAsync probes themselves allocate a little.
        Support.Allocations.AssertNonePerItem(callerBytes, 2 * Rounds, "socket calls (calling thread)");
        Support.Allocations.AssertNonePerItem(loopBytes, 2 * Rounds, "socket calls (loop threads)");
    }
}
