using NetStack;
using NetStack.Link;
using NetStack.Sockets;
using Stack.Tests.Tcp;

namespace Stack.Tests.Sockets;

/// <summary>
/// A call run inline that sent frames and waits for the peer's answer takes a second receive in its turn
/// (NetworkStack.InlineTurn): with a peer that answers inside our send, as a veth peer on this host does, a connect
/// completes on the caller's thread before ConnectTcpAsync returns (no loop wake-up, no hop back).
/// </summary>
public class InlineAnswerTests
{
    /// <summary>
    /// A's link, with B's turn run inside A's flush (where the pcap device's sendmmsg sends a turn's frames): B's answer
    /// is on the wire when A's send returns, after the turn's first receive, as a veth peer's is.
    /// </summary>
    private sealed class AnsweringLink(ILinkDevice inner, Func<NetworkStack> peer) : ForwardingLink(inner)
    {
        public override void Flush(TimeSpan now)
        {
            base.Flush(now);
            peer().Poll(now); // B is never started: only A's turns (one thread at a time) drive it
        }
    }

    [Fact]
    public async Task A_connect_answered_inside_the_send_completes_before_ConnectTcpAsync_returns()
    {
        var wire = new VirtualWire(seed: 21);
        var portA = wire.CreatePort("a", MacAddress.Parse("02-00-00-00-00-01"));
        var portB = wire.CreatePort("b", MacAddress.Parse("02-00-00-00-00-02"));
        using var b = new NetworkStack(portB, new StackConfig { Address = TcpSim.B });
        var listener = b.Listen(21, 1024);
        using var a = new NetworkStack(new AnsweringLink(portA, () => b), new StackConfig { Address = TcpSim.A, EphemeralPortFirst = 1024 });
        a.Start();
        var sockets = new List<TcpSocket> { await a.ConnectTcpAsync(TcpSim.B, 21).WaitAsync(TimeSpan.FromSeconds(30)) }; // ARP first
        // The loop thread may hold the turn when a call comes (the call is then posted): of several, most run inline.
        var inline = 0;
        for (int i = 0; i < 20; i++)
        {
            var connect = a.ConnectTcpAsync(TcpSim.B, 21);
            if (connect.IsCompletedSuccessfully) inline++;
            sockets.Add(await connect.WaitAsync(TimeSpan.FromSeconds(30)));
        }
        Assert.True(inline > 0, "no connect completed before ConnectTcpAsync returned");
        Assert.All(sockets, s => Assert.Equal(NetStack.Tcp.TcpState.Established, s.State));
        GC.KeepAlive(listener);
    }
}
