using NetStack;
using NetStack.Sockets;
using NetStack.Tcp;

namespace Stack.Tests.Tcp;

/// <summary>
/// Issue 18's "flat with scale": timers that do not grow with the table. The layer runs every connection's timers from one
/// heap of deadlines (TcpLayer.Poll), so what a turn costs depends on the entries in it, not on the connections. An idle
/// established connection (RFC 9293 3.8: no retransmission pending, no delayed ACK owed; keepalive off by default, RFC 1122
/// 4.2.3.6) has no deadline, so once the handshake's stale entries have run out the heap is empty, however many are open.
/// Deterministic: a simulation in virtual time.
/// </summary>
public class IdleTimerTests
{
    [Fact]
    public void Idle_established_connections_leave_the_timer_heap_empty()
    {
        const int Connections = 300;
        var (sim, a, b) = TcpSim.Pair(seed: 18);
        using var _ = sim;
        var listener = b.Listen(5000, Connections);
        var pairs = new List<(TcpSocket Client, TcpSocket Server)>();
        for (int i = 0; i < Connections; i++)
        {
            var accept = listener.AcceptAsync();
            var client = sim.Run(a.ConnectTcpAsync(b.Config.Address, 5000));
            pairs.Add((client, sim.Run(accept)));
        }
        // The handshakes' SYN retransmission deadlines (superseded when the SYN-ACK came) run out within the initial RTO.
        sim.Advance(TimeSpan.FromSeconds(5));
        Assert.All(pairs, p => Assert.Equal(TcpState.Established, p.Client.State));
        Assert.Equal(0, a.Tcp.TimerEntries);
        Assert.Equal(0, b.Tcp.TimerEntries);
        Assert.All(pairs, p => Assert.Equal(TcpConnection.Never, p.Client.Tcb.HeapAt));

        // One of them at work schedules its own deadlines only, and they run out again when it is idle.
        var (c, s) = pairs[Connections / 2];
        var receive = s.ReceiveAsync(new byte[100]).AsTask();
        sim.Run(c.SendAsync(new byte[100]));
        Assert.Equal(100, sim.Run(receive));
        Assert.InRange(a.Tcp.TimerEntries + b.Tcp.TimerEntries, 0, 4);
        sim.Advance(TimeSpan.FromSeconds(5));
        Assert.Equal(0, a.Tcp.TimerEntries);
        Assert.Equal(0, b.Tcp.TimerEntries);
    }
}
