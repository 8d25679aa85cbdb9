using NetStack;
using NetStack.Link;
using NetStack.Tcp;

namespace Stack.Tests.Tcp;

/// <summary>
/// Stopping a stack resets its open connections, as the kernel does for a process that exits (RFC 9293 3.10.5 ABORT
/// for each), so no peer is left half-open; the stack's own pending operations still fail with StackStopped.
/// </summary>
public class TcpStopResetTests
{
    [Fact]
    public async Task Dispose_resets_the_peer_of_every_open_connection()
    {
        var wire = new VirtualWire(1);
        var clock = new SystemClock(); // one clock for the wire's stacks
        var a = new NetworkStack(wire.CreatePort("a", new MacAddress(0x020000000001)), new StackConfig { Address = Ipv4Address.Parse("192.0.2.1") }, clock);
        using var b = new NetworkStack(wire.CreatePort("b", new MacAddress(0x020000000002)), new StackConfig { Address = Ipv4Address.Parse("192.0.2.2") }, clock);
        a.Start();
        b.Start();
        var listener = await b.ListenAsync(80).WaitAsync(TimeSpan.FromSeconds(30));
        var accepts = new[] { listener.AcceptAsync(), listener.AcceptAsync() };
        var clients = new[] { a.CreateTcpSocket(), a.CreateTcpSocket() };
        foreach (var c in clients) await c.ConnectAsync(b.Config.Address, 80).WaitAsync(TimeSpan.FromSeconds(30));
        var servers = await Task.WhenAll(accepts).WaitAsync(TimeSpan.FromSeconds(30));
        var peerReceives = servers.Select(s => s.ReceiveAsync(new byte[100]).AsTask()).ToArray();
        var ownReceive = clients[0].ReceiveAsync(new byte[100]).AsTask();

        a.Dispose();

        foreach (var r in peerReceives)
        {
            var e = await Assert.ThrowsAsync<StackException>(() => r.WaitAsync(TimeSpan.FromSeconds(30)));
            Assert.Equal(StackError.ConnectionReset, e.Error);
        }
        Assert.All(servers, s => Assert.Equal(TcpState.Closed, s.State));
        var own = await Assert.ThrowsAsync<StackException>(() => ownReceive.WaitAsync(TimeSpan.FromSeconds(30)));
        Assert.Equal(StackError.StackStopped, own.Error);
        var stats = await b.GetStatisticsAsync();
        Assert.Equal(2, stats.Single(c => c.Layer == "Tcp" && c.Name == "ResetsReceived").Value);
    }
}
