using NetStack;
using NetStack.Link;
using NetStack.Udp;

namespace Stack.Tests.Udp;

/// <summary>Two stacks on the virtual wire, in virtual time.</summary>
public class UdpSimulationTests
{
    private static readonly Ipv4Address A = Ipv4Address.Parse("192.0.2.1");
    private static readonly Ipv4Address B = Ipv4Address.Parse("192.0.2.2");

    private static (Simulation, NetworkStack, NetworkStack) Pair(int seed, Func<StackConfig, StackConfig>? configure = null)
    {
        var sim = new Simulation(seed, new WireFaults { Delay = TimeSpan.FromMilliseconds(1) });
        return (sim, sim.AddStack("192.0.2.1/24", configure), sim.AddStack("192.0.2.2/24", configure));
    }

    [Theory]
    [InlineData(1)]
    [InlineData(2)]
    public void Datagrams_go_both_ways_with_the_senders_address_and_port(int seed)
    {
        var (sim, a, b) = Pair(seed);
        using var _ = sim;
        var sa = sim.Run(a.CreateUdpSocketAsync());
        var sb = sim.Run(b.CreateUdpSocketAsync(7));

        var recvB = sb.ReceiveAsync();
        sim.Run(sa.SendToAsync(B, 7, "ping"u8.ToArray()));
        var got = sim.Run(recvB);
        Assert.Equal(A, got.RemoteAddress);
        Assert.Equal(sa.LocalPort, got.RemotePort);
        Assert.Equal("ping"u8.ToArray(), got.Data);

        sim.Run(sb.SendToAsync(got.RemoteAddress, got.RemotePort, "pong"u8.ToArray()));
        var back = sim.Run(sa.ReceiveAsync());
        Assert.Equal(B, back.RemoteAddress);
        Assert.Equal(7, back.RemotePort);
        Assert.Equal("pong"u8.ToArray(), back.Data);
        Assert.Equal(1, b.Udp.Counters.DatagramsDelivered);
    }

    [Fact]
    public void Datagram_of_8000_bytes_is_fragmented_and_arrives_whole_both_ways()
    {
        var (sim, a, b) = Pair(3);
        using var _ = sim;
        var sa = sim.Run(a.CreateUdpSocketAsync(1000));
        var sb = sim.Run(b.CreateUdpSocketAsync(2000));
        var data = new byte[8000];
        new Random(3).NextBytes(data);

        var recvB = sb.ReceiveAsync();
        sim.Run(sa.SendToAsync(B, 2000, data));
        Assert.Equal(data, sim.Run(recvB).Data);
        var recvA = sa.ReceiveAsync();
        sim.Run(sb.SendToAsync(A, 1000, data));
        Assert.Equal(data, sim.Run(recvA).Data);
    }

    [Fact]
    public void Receive_queue_overflow_is_dropped_and_counted_and_the_rest_arrive_in_order()
    {
        // 4096 bytes hold three 1000-byte datagrams (each also charged 64 bytes of bookkeeping), not four.
        var (sim, a, b) = Pair(4, c => c with { Udp = new UdpSettings { ReceiveBufferSize = 4096 } });
        using var _ = sim;
        var sa = sim.Run(a.CreateUdpSocketAsync());
        var sb = sim.Run(b.CreateUdpSocketAsync(7));
        for (byte i = 0; i < 10; i++)
        {
            var d = new byte[1000];
            d[0] = i;
            sim.Run(sa.SendToAsync(B, 7, d));
        }
        sim.Advance(TimeSpan.FromMilliseconds(50));
        Assert.Equal(7, b.Udp.Counters.DroppedReceiveBufferFull);
        var row = Assert.Single(sim.Run(b.GetConnectionsAsync()));
        Assert.Equal(3000, row.RecvQ);
        for (byte i = 0; i < 3; i++) Assert.Equal(i, sim.Run(sb.ReceiveAsync()).Data[0]);
        Assert.Equal(0, Assert.Single(sim.Run(b.GetConnectionsAsync())).RecvQ);
    }

    [Fact]
    public void Port_unreachable_surfaces_on_the_connected_socket()
    {
        var (sim, a, b) = Pair(5);
        using var _ = sim;
        var sa = a.CreateUdpSocket();
        sim.Run(sa.ConnectAsync(B, 9)); // nothing listens on B:9
        var receive = sa.ReceiveAsync();
        sim.Run(sa.SendAsync("anyone?"u8.ToArray()));
        var e = Assert.Throws<StackException>(() => sim.Run(receive));
        Assert.Equal(StackError.PortUnreachable, e.Error);

        // Without a waiting receive, the error waits for the next call, here a send.
        sim.Run(sa.SendAsync("again"u8.ToArray()));
        sim.Advance(TimeSpan.FromMilliseconds(10));
        var e2 = Assert.Throws<StackException>(() => sim.Run(sa.SendAsync("third"u8.ToArray())));
        Assert.Equal(StackError.PortUnreachable, e2.Error);
        sim.Run(sa.SendAsync("fourth"u8.ToArray())); // reported once
    }

    [Fact]
    public void Arp_failure_surfaces_as_host_unreachable_on_the_connected_socket()
    {
        var (sim, a, _) = Pair(6);
        using var __ = sim;
        var sa = a.CreateUdpSocket();
        var nobody = Ipv4Address.Parse("192.0.2.99");
        sim.Run(sa.ConnectAsync(nobody, 9));
        var receive = sa.ReceiveAsync();
        sim.Run(sa.SendAsync("hello"u8.ToArray())); // queued while ARP resolves
        var e = Assert.Throws<StackException>(() => sim.Run(receive));
        Assert.Equal(StackError.HostUnreachable, e.Error);
    }

    [Fact]
    public void Off_subnet_destination_without_gateway_fails_the_send_with_network_unreachable()
    {
        var (sim, a, _) = Pair(6);
        using var __ = sim;
        var sa = a.CreateUdpSocket();
        var e = Assert.Throws<StackException>(() => sim.Run(sa.SendToAsync(Ipv4Address.Parse("198.51.100.1"), 9, new byte[1])));
        Assert.Equal(StackError.NetworkUnreachable, e.Error);
        Assert.Contains("Gateway", e.Message);
    }

    [Fact]
    public void Ephemeral_ports_are_distinct_and_in_range()
    {
        var (sim, a, _) = Pair(7);
        using var __ = sim;
        var ports = new HashSet<ushort>();
        for (int i = 0; i < 200; i++)
        {
            var s = sim.Run(a.CreateUdpSocketAsync());
            Assert.InRange(s.LocalPort, a.Config.EphemeralPortFirst, a.Config.EphemeralPortLast);
            Assert.True(ports.Add(s.LocalPort), $"port {s.LocalPort} was handed out twice");
        }
    }

    [Fact]
    public void Taken_port_is_address_in_use_naming_the_port()
    {
        var (sim, a, _) = Pair(8);
        using var __ = sim;
        var first = sim.Run(a.CreateUdpSocketAsync(5353));
        var e = Assert.Throws<StackException>(() => sim.Run(a.CreateUdpSocketAsync(5353)));
        Assert.Equal(StackError.AddressInUse, e.Error);
        Assert.Contains("5353", e.Message);

        // Once closed, the port is free again.
        first.Close();
        Assert.Equal(5353, sim.Run(a.CreateUdpSocketAsync(5353)).LocalPort);
    }

    [Fact]
    public void Too_long_datagram_is_refused()
    {
        var (sim, a, _) = Pair(9);
        using var __ = sim;
        var s = sim.Run(a.CreateUdpSocketAsync());
        var e = Assert.Throws<StackException>(() => sim.Run(s.SendToAsync(B, 7, new byte[65508])));
        Assert.Equal(StackError.MessageTooLong, e.Error);
        Assert.Contains("65507", e.Message);
    }

    [Fact]
    public void Close_fails_a_waiting_receive_and_later_calls_with_socket_closed()
    {
        var (sim, a, _) = Pair(10);
        using var __ = sim;
        var s = sim.Run(a.CreateUdpSocketAsync(7));
        var receive = s.ReceiveAsync();
        sim.Advance(TimeSpan.FromMilliseconds(1));
        s.Close();
        Assert.Equal(StackError.SocketClosed, Assert.Throws<StackException>(() => sim.Run(receive)).Error);
        Assert.Equal(StackError.SocketClosed, Assert.Throws<StackException>(() => sim.Run(s.SendToAsync(B, 7, new byte[1]))).Error);
        Assert.Empty(sim.Run(a.GetConnectionsAsync()));
    }

    [Fact]
    public void Waiting_receive_can_be_cancelled_and_the_socket_stays_usable()
    {
        var (sim, a, b) = Pair(11);
        using var __ = sim;
        var sa = sim.Run(a.CreateUdpSocketAsync(7));
        var sb = sim.Run(b.CreateUdpSocketAsync());
        using var cts = new CancellationTokenSource();
        var receive = sa.ReceiveAsync(cts.Token);
        sim.Advance(TimeSpan.FromMilliseconds(1));
        Assert.False(receive.IsCompleted);
        cts.Cancel(); // completes the wait at once, from this thread
        Assert.True(receive.IsCanceled);

        // The cancelled receive does not swallow the next datagram.
        var next = sa.ReceiveAsync();
        sim.Run(sb.SendToAsync(A, 7, "after"u8.ToArray()));
        Assert.Equal("after"u8.ToArray(), sim.Run(next).Data);
    }

    [Fact]
    public void Disposing_the_stack_fails_a_waiting_receive_with_stack_stopped()
    {
        var (sim, a, _) = Pair(12);
        var s = sim.Run(a.CreateUdpSocketAsync(7));
        var receive = s.ReceiveAsync();
        sim.Advance(TimeSpan.FromMilliseconds(1));
        sim.Dispose();
        Assert.True(SpinWait.SpinUntil(() => receive.IsCompleted, TimeSpan.FromSeconds(5)));
        var e = Assert.Throws<StackException>(() => receive.GetAwaiter().GetResult());
        Assert.Equal(StackError.StackStopped, e.Error);
        Assert.Equal(StackError.StackStopped, Assert.Throws<StackException>(() => s.ReceiveAsync().GetAwaiter().GetResult()).Error);
    }
}
