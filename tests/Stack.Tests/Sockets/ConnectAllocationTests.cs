using NetStack;
using NetStack.Link;
using Stack.Tests.Tcp;

namespace Stack.Tests.Sockets;

/// <summary>
/// Issue 18's connect+close: what one <c>ConnectTcpAsync</c> and <c>Dispose</c> (the benchmark's loop) allocates on the
/// client. The caller pays for its socket, the connection's control block and sender, and the call's task; the loop
/// pays for nothing per connection: the handshake, the FIN and its ACK make no loss recovery, transmit records, rate
/// sampler or send ring for a connection that sent no data. Bounds in bytes with headroom, never a time. Runs alone
/// (the TcpPerformanceTests collection), so no other test's work runs on these threads.
/// </summary>
[Collection(nameof(Tcp.TcpPerformanceTests))]
public class ConnectAllocationTests
{
    private readonly Xunit.Abstractions.ITestOutputHelper _output;
    public ConnectAllocationTests(Xunit.Abstractions.ITestOutputHelper output) => _output = output;

    /// <summary>Socket 96 B, control block with receiver and pending operations ~350 B, sender ~200 B, the connect call and its task ~200 B.</summary>
    private const double MaxCallerBytes = 1100;
    /// <summary>Nothing per connection (was ~640 B: recovery, records, sampler, CUBIC, send ring, min-RTT filter at the FIN's ACK).</summary>
    private const double MaxLoopBytes = 100;

    [Fact]
    public async Task A_connect_and_close_allocates_only_the_socket_and_the_call_and_nothing_on_the_loop()
    {
        var wire = new VirtualWire(seed: 18);
        var tcp = new TcpSettings { Msl = TimeSpan.FromMilliseconds(5) }; // TIME-WAIT ends soon: the table stays small
        // No inline calls: every turn runs on the loop threads, so the caller's figure is the API's alone.
        using var a = new NetworkStack(wire.CreatePort("a", MacAddress.Parse("02-00-00-00-00-01")), new StackConfig { Address = TcpSim.A, EphemeralPortFirst = 1024, InlineCalls = false, Tcp = tcp });
        using var b = new NetworkStack(wire.CreatePort("b", MacAddress.Parse("02-00-00-00-00-02")), new StackConfig { Address = TcpSim.B, InlineCalls = false, Tcp = tcp });
        a.Start();
        b.Start();
        var listener = b.Listen(18, 1024);
        var server = Task.Run(async () =>
        {
            while (true)
            {
                try { (await listener.AcceptAsync()).Dispose(); }
                catch (Exception) { return; } // the listener stopped
            }
        });
        long caller = 0;
        async Task Run(int n)
        {
            for (int i = 0; i < n; i++)
            {
                var before = GC.GetAllocatedBytesForCurrentThread();
                var connect = a.ConnectTcpAsync(TcpSim.B, 18);
                caller += GC.GetAllocatedBytesForCurrentThread() - before;
                var s = await connect.WaitAsync(TimeSpan.FromSeconds(30));
                before = GC.GetAllocatedBytesForCurrentThread();
                s.Dispose();
                caller += GC.GetAllocatedBytesForCurrentThread() - before;
            }
        }

        await Run(500); // warm-up: code paths, pools and tables exist
        // Three rounds, the least counted: a cost per connection shows in every round, while a one-time growth (a table
        // or pool sized up when a loaded machine's timers let TIME-WAITs or frames in flight pile up) lands in one.
        const int N = 1000;
        double perCaller = double.MaxValue, perLoop = double.MaxValue;
        for (int round = 0; round < 3; round++)
        {
            caller = 0;
            var loop0 = await a.InvokeAsync(_ => GC.GetAllocatedBytesForCurrentThread());
            await Run(N);
            var loop = await a.InvokeAsync(_ => GC.GetAllocatedBytesForCurrentThread()) - loop0;
            _output.WriteLine($"round {round}: caller {caller / (double)N:F0} B, client loop {loop / (double)N:F0} B per connect+close");
            perCaller = Math.Min(perCaller, caller / (double)N);
            perLoop = Math.Min(perLoop, loop / (double)N);
        }
        await listener.StopAsync();
        await server.WaitAsync(TimeSpan.FromSeconds(30));

        Assert.True(perLoop < MaxLoopBytes, $"{perLoop:F0} B allocated on the client's loop per connect+close (bound {MaxLoopBytes})");
        Assert.True(perCaller < MaxCallerBytes, $"{perCaller:F0} B allocated by the caller per connect+close (bound {MaxCallerBytes})");
    }

    /// <summary>
    /// The accept's call and its task (112 B; with a token that can fire, its cancel state and registration too). Through
    /// the generic CallAsync it was 296 B here and ~110 B more on the loop (closure, delegate, a second task and its
    /// continuation), 648 B with a token (an async wrapper and its registration).
    /// </summary>
    private const double MaxAcceptCallerBytes = 200, MaxAcceptCallerBytesWithToken = 400;

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public async Task An_accept_allocates_only_its_call_and_task_on_the_accepting_thread(bool withToken)
    {
        var wire = new VirtualWire(seed: 19);
        var tcp = new TcpSettings { Msl = TimeSpan.FromMilliseconds(5) };
        // No inline calls: the accept runs on the server's loop thread, so the accepting thread's figure is the API's alone.
        using var a = new NetworkStack(wire.CreatePort("a", MacAddress.Parse("02-00-00-00-00-01")), new StackConfig { Address = TcpSim.A, EphemeralPortFirst = 1024, InlineCalls = false, Tcp = tcp });
        using var b = new NetworkStack(wire.CreatePort("b", MacAddress.Parse("02-00-00-00-00-02")), new StackConfig { Address = TcpSim.B, InlineCalls = false, Tcp = tcp });
        a.Start();
        b.Start();
        var listener = b.Listen(19, 1024);
        using var stop = new CancellationTokenSource();
        // The client connects and closes back to back, on its own thread, until told to stop.
        var client = Task.Run(async () =>
        {
            while (!stop.IsCancellationRequested)
            {
                try { (await a.ConnectTcpAsync(TcpSim.B, 19).WaitAsync(TimeSpan.FromSeconds(30))).Dispose(); }
                catch (Exception) when (stop.IsCancellationRequested) { return; }
            }
        });
        long acceptor = 0;
        async Task Run(int n)
        {
            for (int i = 0; i < n; i++)
            {
                var before = GC.GetAllocatedBytesForCurrentThread();
                var accept = listener.AcceptAsync(withToken ? stop.Token : default);
                acceptor += GC.GetAllocatedBytesForCurrentThread() - before;
                var s = await accept.WaitAsync(TimeSpan.FromSeconds(30));
                before = GC.GetAllocatedBytesForCurrentThread();
                s.Dispose();
                acceptor += GC.GetAllocatedBytesForCurrentThread() - before;
            }
        }

        await Run(500); // warm-up
        const int N = 1000;
        double perAccept = double.MaxValue, perLoop = double.MaxValue;
        for (int round = 0; round < 3; round++)
        {
            acceptor = 0;
            var loop0 = await b.InvokeAsync(_ => GC.GetAllocatedBytesForCurrentThread());
            await Run(N);
            var loop = await b.InvokeAsync(_ => GC.GetAllocatedBytesForCurrentThread()) - loop0;
            _output.WriteLine($"token {withToken}, round {round}: accepting thread {acceptor / (double)N:F0} B, server loop {loop / (double)N:F0} B per accept (the loop's: the accepted socket and its connection)");
            perAccept = Math.Min(perAccept, acceptor / (double)N);
            perLoop = Math.Min(perLoop, loop / (double)N);
        }
        stop.Cancel();
        await listener.StopAsync();
        await client.WaitAsync(TimeSpan.FromSeconds(30));

        var bound = withToken ? MaxAcceptCallerBytesWithToken : MaxAcceptCallerBytes;
        Assert.True(perAccept < bound, $"{perAccept:F0} B allocated by the accepting thread per accept and close (bound {bound})");
        Assert.True(perLoop < MaxCallerBytes, $"{perLoop:F0} B allocated on the server's loop per accepted connection (bound {MaxCallerBytes})");
    }
}
