using NetStack;
using NetStack.Link;
using NetStack.Sockets;
using NetStack.Tcp;
using Stack.Tests.Tcp;

namespace Stack.Tests.Sockets;

/// <summary>
/// The socket API's threading contract: a read right after a set returns the new value (published on the caller's
/// side at once), the loop applies it in the order the setters ran, a setter that can no longer apply is refused,
/// and what the loop owns (state, endpoints, closed) reaches readers as the loop published it.
/// </summary>
public class SocketOptionTests
{
    [Fact]
    public void Each_tcp_option_reads_back_right_after_it_is_set_before_the_loop_ran()
    {
        var (sim, a, _) = TcpSim.Pair(1);
        using var __ = sim;
        var s = a.CreateTcpSocket();

        // No loop turn between the sets and the reads: each value is the caller's, published at once.
        s.NoDelay = true;
        Assert.True(s.NoDelay);
        s.Keepalive = true;
        Assert.True(s.Keepalive);
        s.SendBufferSize = 32 * 1024;
        Assert.Equal(32 * 1024, s.SendBufferSize);
        s.ReceiveBufferSize = 48 * 1024;
        Assert.Equal(48 * 1024, s.ReceiveBufferSize);
        s.Bind(7001);
        Assert.Equal(7001, s.LocalEndPoint.Port);
        s.NoDelay = false;
        Assert.False(s.NoDelay);

        // The loop applies them at its next turn, in order: the last set wins there too.
        Assert.False(s.Tcb.Keepalive);
        sim.Step();
        Assert.False(s.Tcb.NoDelay);
        Assert.True(s.Tcb.Keepalive);
        Assert.Equal(32 * 1024, s.Tcb.SndBuf.Limit);
        Assert.Equal(48 * 1024, s.Tcb.RcvBuf.Limit);
        Assert.Equal(7001, s.Tcb.BoundPort);
    }

    [Fact]
    public void Options_set_on_a_connection_apply_on_the_loop_and_read_back_at_once()
    {
        var (sim, a, b) = TcpSim.Pair(2);
        using var __ = sim;
        var (c, s) = TcpSim.Connect(sim, a, b);
        foreach (var socket in new[] { c, s })
        {
            socket.NoDelay = true;
            socket.Keepalive = true;
            Assert.True(socket.NoDelay);
            Assert.True(socket.Keepalive);
        }
        sim.Step();
        Assert.True(c.Tcb.NoDelay && s.Tcb.NoDelay);
        Assert.NotEqual(TimeSpan.MaxValue, c.Tcb.KeepAt); // keepalive armed on the established connection
        c.Keepalive = false;
        Assert.False(c.Keepalive);
        sim.Step();
        Assert.Equal(TimeSpan.MaxValue, c.Tcb.KeepAt);
    }

    [Fact]
    public void Options_that_can_no_longer_apply_are_refused_with_the_reason()
    {
        var (sim, a, b) = TcpSim.Pair(3);
        using var __ = sim;
        var (c, s) = TcpSim.Connect(sim, a, b);

        // The window scale and the port are fixed by the SYN: after ConnectAsync, or on an accepted connection.
        foreach (var socket in new[] { c, s })
        {
            Assert.Equal(StackError.InvalidState, Assert.Throws<StackException>(() => socket.ReceiveBufferSize = 4096).Error);
            Assert.Equal(StackError.InvalidState, Assert.Throws<StackException>(() => socket.SendBufferSize = 4096).Error);
            Assert.Equal(StackError.InvalidState, Assert.Throws<StackException>(() => socket.Bind(7002)).Error);
        }
        Assert.Equal(a.Config.Tcp.ReceiveBufferSize, c.ReceiveBufferSize); // a refused set publishes nothing

        // Refused as soon as ConnectAsync was called, before the loop has run it.
        var fresh = a.CreateTcpSocket();
        _ = fresh.ConnectAsync(TcpSim.B, 5000);
        Assert.Equal(StackError.InvalidState, Assert.Throws<StackException>(() => fresh.ReceiveBufferSize = 4096).Error);

        // Out of range: the argument is named.
        var other = a.CreateTcpSocket();
        Assert.Throws<ArgumentOutOfRangeException>(() => other.ReceiveBufferSize = 100);

        // Closed: no option applies any more.
        sim.Run(c.CloseAsync());
        Assert.True(c.IsClosed);
        Assert.Equal(StackError.SocketClosed, Assert.Throws<StackException>(() => c.NoDelay = true).Error);
        Assert.Equal(StackError.SocketClosed, Assert.Throws<StackException>(() => c.Keepalive = true).Error);
        Assert.False(c.NoDelay); // a refused set publishes nothing
    }

    [Fact]
    public async Task Setters_racing_on_many_threads_leave_the_loop_with_the_value_readers_see()
    {
        var wire = new VirtualWire(4);
        using var stack = new NetworkStack(wire.CreatePort("a", MacAddress.Parse("02-00-00-00-00-01")), new StackConfig { Address = TcpSim.A });
        stack.Start();
        for (int round = 0; round < 20; round++)
        {
            var s = stack.CreateTcpSocket();
            using var go = new ManualResetEventSlim();
            var setters = Enumerable.Range(0, 4).Select(t => Task.Run(() =>
            {
                go.Wait();
                for (int i = 0; i < 200; i++)
                {
                    s.NoDelay = (i + t) % 2 == 0;
                    s.ReceiveBufferSize = 4096 + 1024 * ((i * 7 + t) % 16);
                }
            })).ToArray();
            go.Set();
            await Task.WhenAll(setters).WaitAsync(TimeSpan.FromSeconds(30));
            var (noDelay, rcvBuf) = await stack.InvokeAsync(_ => (s.Tcb.NoDelay, s.Tcb.RcvBuf.Limit)).WaitAsync(TimeSpan.FromSeconds(30));
            Assert.Equal(s.NoDelay, noDelay);
            Assert.Equal(s.ReceiveBufferSize, rcvBuf);
            s.Abort();
        }
    }

    [Fact]
    public void Endpoints_and_closed_are_what_the_loop_published()
    {
        var (sim, a, b) = TcpSim.Pair(5);
        using var __ = sim;
        var fresh = a.CreateTcpSocket();
        Assert.Equal(new IpEndPoint(Ipv4Address.Any, 0), fresh.LocalEndPoint);
        Assert.Equal(new IpEndPoint(Ipv4Address.Any, 0), fresh.RemoteEndPoint);
        Assert.False(fresh.IsClosed);

        var (c, s) = TcpSim.Connect(sim, a, b);
        Assert.Equal(TcpSim.A, c.LocalEndPoint.Address);
        Assert.Equal(new IpEndPoint(TcpSim.B, 5000), c.RemoteEndPoint);
        Assert.Equal(c.LocalEndPoint, s.RemoteEndPoint);
        Assert.Equal(new IpEndPoint(TcpSim.B, 5000), s.LocalEndPoint);

        // The user's close shows at once; the peer's end shows when the loop has seen the reset.
        c.Abort();
        Assert.True(c.IsClosed);
        Assert.False(s.IsClosed);
        Assert.True(sim.RunUntil(() => s.State == TcpState.Closed, TimeSpan.FromSeconds(10)));
        Assert.True(s.IsClosed);
        Assert.True(c.IsClosedByUser);
        Assert.False(s.IsClosedByUser); // the peer ended it: its user closed nothing
        Assert.Equal(new IpEndPoint(TcpSim.B, 5000), s.LocalEndPoint); // kept for the record

        var l = b.Listen(6000);
        Assert.False(l.IsClosed);
        l.Dispose();
        Assert.True(l.IsClosed);
    }

    [Fact]
    public void Udp_endpoints_and_closed_read_as_the_loop_published_them()
    {
        var (sim, a, _) = TcpSim.Pair(6);
        using var __ = sim;
        var u = sim.Run(a.CreateUdpSocketAsync(5353));
        Assert.Equal(5353, u.LocalPort);
        Assert.Equal(new IpEndPoint(Ipv4Address.Any, 5353), u.LocalEndPoint);
        Assert.Null(u.RemoteEndPoint);
        Assert.False(u.IsConnected);
        sim.Run(u.ConnectAsync(TcpSim.B, 53));
        Assert.Equal(new IpEndPoint(TcpSim.B, 53), u.RemoteEndPoint);
        sim.Run(u.ConnectAsync(TcpSim.B, 54));
        Assert.Equal(new IpEndPoint(TcpSim.B, 54), u.RemoteEndPoint);
        Assert.True(u.IsConnected);
        u.Close();
        Assert.True(u.IsClosed); // at once, before the loop released the port
        sim.Step();
        Assert.Empty(sim.Run(a.GetConnectionsAsync()));
    }
}
