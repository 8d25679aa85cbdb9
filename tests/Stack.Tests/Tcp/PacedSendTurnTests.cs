using NetStack;
using NetStack.Link;
using NetStack.Sockets;

namespace Stack.Tests.Tcp;

/// <summary>
/// Under BBR a burst leaves from whichever turn sends it, as Linux's tcp_write_xmit runs in whatever context calls it and
/// tcp_pacing_check arms the pacing timer only when the burst's time is still to come: a burst the pacer allows now
/// leaves in the caller's own inline turn (SendAsync run inline, NetworkStack.Execute), as unpaced data does; a burst it
/// does not allow yet is held, whoever sends, until the pacer's next departure, when the loop's PaceAt turn sends it.
/// Two started stacks on the virtual wire; A records the thread and the loop time of every data frame it sends.
/// </summary>
public class PacedSendTurnTests
{
    private static readonly TimeSpan Timeout = TimeSpan.FromSeconds(30);

    /// <summary>A's link: the data frames it sent (longer than a bare ACK), with the sending thread and the turn's time.</summary>
    private sealed class RecordingLink(ILinkDevice inner) : ForwardingLink(inner)
    {
        private readonly List<(int Thread, TimeSpan Now)> _data = new();

        public override void Transmit(ReadOnlySpan<byte> frame, TimeSpan now)
        {
            if (frame.Length > 100) lock (_data) _data.Add((Environment.CurrentManagedThreadId, now));
            base.Transmit(frame, now);
        }

        public int Count { get { lock (_data) return _data.Count; } }

        public int CountOn(int thread) { lock (_data) return _data.Count(d => d.Thread == thread); }

        public (int Thread, TimeSpan Now)[] Since(int index) { lock (_data) return _data.Skip(index).ToArray(); }
    }

    private sealed class Pair : IDisposable
    {
        public required NetworkStack A, B;
        public required RecordingLink Link;
        public required TcpSocket Client;
        public required Task Drain;
        public void Dispose()
        {
            Client.Abort();
            A.Dispose();
            B.Dispose();
        }
    }

    private static async Task<Pair> Connect()
    {
        var wire = new VirtualWire(seed: 33);
        var link = new RecordingLink(wire.CreatePort("a", MacAddress.Parse("02-00-00-00-00-01")));
        var portB = wire.CreatePort("b", MacAddress.Parse("02-00-00-00-00-02"));
        var tcp = new TcpSettings { Congestion = CongestionAlgorithm.Bbr };
        var b = new NetworkStack(portB, new StackConfig { Address = TcpSim.B, Tcp = tcp });
        var a = new NetworkStack(link, new StackConfig { Address = TcpSim.A, Tcp = tcp });
        b.Start();
        a.Start();
        var listener = b.Listen(9);
        var accept = listener.AcceptAsync();
        var client = await a.ConnectTcpAsync(TcpSim.B, 9).WaitAsync(Timeout);
        var server = await accept.WaitAsync(Timeout);
        var drain = Task.Run(async () =>
        {
            var buffer = new byte[65536];
            try { while (await server.ReceiveAsync(buffer) > 0) { } }
            catch (StackException) { } // the test's end aborts the connection
        });
        var pair = new Pair { A = a, B = b, Link = link, Client = client, Drain = drain };
        // Data enough for a delivery rate: BBR paces from its first rate sample on.
        await client.SendAsync(new byte[64 * 1024]).WaitAsync(Timeout);
        await AllAcknowledged(pair);
        Assert.True(await a.InvokeAsync(_ => client.Tcb.Snd.Cc.PacingRate > 0), "BBR paces once it has a delivery rate");
        return pair;
    }

    /// <summary>Waits until everything A sent is acknowledged (cwnd has room and nothing is in flight).</summary>
    private static async Task AllAcknowledged(Pair p)
    {
        var deadline = DateTime.UtcNow + Timeout;
        while (!await p.A.InvokeAsync(_ => p.Client.Tcb.Snd.Una == p.Client.Tcb.Snd.Max && p.Client.Tcb.Snd.BufferCount == 0))
        {
            Assert.True(DateTime.UtcNow < deadline, "A's data was not acknowledged");
            await Task.Delay(5);
        }
    }

    [Fact]
    public async Task A_burst_the_pacer_allows_leaves_in_the_callers_inline_turn()
    {
        using var p = await Connect();
        var mss = await p.A.InvokeAsync(_ => p.Client.Tcb.SndMss);
        // A call made while the loop thread holds the turn is posted, and the loop sends its burst: each send waits until
        // the loop sleeps (InvokeAsync's continuation may run while the loop still ends that turn), and since the loop may
        // still wake first, of several sends, those run inline send their burst on the caller's thread before SendAsync returns.
        var inline = 0;
        for (int i = 0; i < 20; i++)
        {
            await AllAcknowledged(p);
            await p.A.InvokeAsync(_ => p.Client.Tcb.Snd.Pacer.NextDeparture = TimeSpan.MinValue); // the burst's time has come
            Assert.True(SpinWait.SpinUntil(() => p.A.LoopSleeping, Timeout), "A's loop never went to sleep");
            var thread = Environment.CurrentManagedThreadId;
            var before = p.Link.CountOn(thread);
            var send = p.Client.SendAsync(new byte[2 * mss]);
            if (p.Link.CountOn(thread) - before == 2) inline++;
            await send.WaitAsync(Timeout);
        }
        Assert.True(inline > 0, "no burst the pacer allowed left in the caller's turn");
    }

    [Fact]
    public async Task A_burst_the_pacer_does_not_allow_is_held_until_its_time_and_the_loop_sends_it()
    {
        using var p = await Connect();
        var mss = await p.A.InvokeAsync(_ => p.Client.Tcb.SndMss);
        var loop = await p.A.InvokeAsync(_ => Environment.CurrentManagedThreadId);
        for (int i = 0; i < 3; i++)
        {
            await AllAcknowledged(p);
            // The pacer owes 100 ms: a send now, inline or posted, queues its data and sends none of it.
            var owed = await p.A.InvokeAsync(now => p.Client.Tcb.Snd.Pacer.NextDeparture = now + TimeSpan.FromMilliseconds(100));
            var thread = Environment.CurrentManagedThreadId;
            var index = p.Link.Count;
            var before = p.Link.CountOn(thread);
            var send = p.Client.SendAsync(new byte[2 * mss]);
            Assert.Equal(before, p.Link.CountOn(thread)); // nothing left in the caller's turn
            await send.WaitAsync(Timeout); // two segments fit the send buffer: the data is queued, not sent
            var deadline = DateTime.UtcNow + Timeout;
            while (p.Link.Count - index < 2)
            {
                Assert.True(DateTime.UtcNow < deadline, "the held burst never left");
                await Task.Delay(5);
            }
            var sent = p.Link.Since(index);
            Assert.All(sent, f => Assert.True(f.Now >= owed, $"a data frame left at {f.Now}, before the pacer's time {owed}"));
            Assert.All(sent, f => Assert.Equal(loop, f.Thread)); // the loop's PaceAt turn
        }
    }
}
