using NetStack;
using NetStack.Link;
using NetStack.Sockets;

namespace Stack.Tests.Sockets;

/// <summary>A cancelled UDP receive never swallows a datagram; a datagram given back comes first and counts in Recv-Q.</summary>
public class UdpReceiveCancelTests
{
    private static readonly Ipv4Address A = Ipv4Address.Parse("192.0.2.1");

    private static (Simulation, NetworkStack, NetworkStack) Pair(int seed)
    {
        var sim = new Simulation(seed, new WireFaults { Delay = TimeSpan.FromMilliseconds(1) });
        return (sim, sim.AddStack("192.0.2.1/24"), sim.AddStack("192.0.2.2/24"));
    }

    [Fact]
    public void A_receive_cancelled_before_the_loop_ran_it_takes_no_queued_datagram()
    {
        var (sim, a, b) = Pair(1);
        using var _ = sim;
        var sa = sim.Run(a.CreateUdpSocketAsync(7));
        var sb = sim.Run(b.CreateUdpSocketAsync());
        sim.Run(sb.SendToAsync(A, 7, "queued"u8.ToArray()));
        sim.Advance(TimeSpan.FromMilliseconds(10));
        Assert.Equal(6, sim.Run(sa.GetInfoAsync()).RecvQ);

        // Posted, then cancelled before the loop's turn (as when a stopped command cancels and goes away).
        using var cts = new CancellationTokenSource();
        var cancelled = sa.ReceiveAsync(cts.Token);
        cts.Cancel();
        sim.Step();
        Assert.True(cancelled.IsCanceled);

        Assert.Equal("queued"u8.ToArray(), sim.Run(sa.ReceiveAsync()).Data);
    }

    [Fact]
    public void A_datagram_given_back_is_received_first_and_counted_in_Recv_Q()
    {
        var (sim, a, b) = Pair(2);
        using var _ = sim;
        var sa = sim.Run(a.CreateUdpSocketAsync(7));
        var sb = sim.Run(b.CreateUdpSocketAsync());
        sim.Run(sb.SendToAsync(A, 7, "one"u8.ToArray()));
        sim.Run(sb.SendToAsync(A, 7, "two"u8.ToArray()));
        var one = sim.Run(sa.ReceiveAsync());
        Assert.Equal("one"u8.ToArray(), one.Data);
        sim.Advance(TimeSpan.FromMilliseconds(10));
        Assert.Equal(3, sim.Run(sa.GetInfoAsync()).RecvQ);

        sa.Unread(one);
        Assert.Equal(6, sim.Run(sa.GetInfoAsync()).RecvQ);
        Assert.Equal(one, sim.Run(sa.ReceiveAsync()));
        Assert.Equal("two"u8.ToArray(), sim.Run(sa.ReceiveAsync()).Data);

        // Given back while a receive waits: that receive gets it.
        var waiting = sa.ReceiveAsync();
        sim.Step();
        sa.Unread(one);
        Assert.Equal(one, sim.Run(waiting));
        Assert.Equal(0, sim.Run(sa.GetInfoAsync()).RecvQ);
    }
}
