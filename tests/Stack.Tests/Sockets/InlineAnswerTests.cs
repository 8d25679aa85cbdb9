using NetStack;
using NetStack.Link;
using NetStack.Sockets;
using Stack.Tests.Tcp;

namespace Stack.Tests.Sockets;

/// <summary>
/// A call run inline that waits for the peer's answer sends its question before the turn's receive (and takes a second
/// receive when the turn sent more, NetworkStack.InlineTurn): with a peer that answers inside our send, as a veth peer on
/// this host does, a connect completes on the caller's thread before ConnectTcpAsync returns (no loop wake-up, no hop
/// back). While the loop thread sleeps, such a turn holds the device's arrival wake-up back, so the answer does not wake
/// the loop for a frame the caller takes itself.
/// </summary>
public class InlineAnswerTests
{
    /// <summary>
    /// A's link, with B's turn run inside A's flush (where the pcap device's sendmmsg sends a turn's frames): B's answer
    /// is on the wire when A's send returns, as a veth peer's is. It counts the arrival-wake holds and releases, and the
    /// flushes that sent frames while a hold was in force.
    /// </summary>
    private sealed class AnsweringLink(ILinkDevice inner, Func<NetworkStack> peer) : ForwardingLink(inner)
    {
        private bool _held;
        public int Holds, Releases, HeldAnswers;

        public override void Flush(TimeSpan now)
        {
            base.Flush(now);
            var before = peer().EthernetCounters.FramesSent;
            peer().Poll(now); // B is never started: only A's turns (one thread at a time) drive it
            if (_held && peer().EthernetCounters.FramesSent != before) HeldAnswers++;
        }

        public override void HoldArrivalWake()
        {
            Assert.False(_held, "a hold while one is in force");
            _held = true;
            Holds++;
            base.HoldArrivalWake();
        }

        public override void ReleaseArrivalWake()
        {
            Assert.True(_held, "a release without a hold");
            _held = false;
            Releases++;
            base.ReleaseArrivalWake();
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

    [Fact]
    public async Task A_connect_run_inline_while_the_loop_sleeps_holds_the_arrival_wake_across_its_turn()
    {
        var wire = new VirtualWire(seed: 22);
        var portA = wire.CreatePort("a", MacAddress.Parse("02-00-00-00-00-01"));
        var portB = wire.CreatePort("b", MacAddress.Parse("02-00-00-00-00-02"));
        using var b = new NetworkStack(portB, new StackConfig { Address = TcpSim.B });
        var listener = b.Listen(21, 1024);
        var link = new AnsweringLink(portA, () => b);
        using var a = new NetworkStack(link, new StackConfig { Address = TcpSim.A, EphemeralPortFirst = 1024 });
        a.Start();
        var sockets = new List<TcpSocket> { await a.ConnectTcpAsync(TcpSim.B, 21).WaitAsync(TimeSpan.FromSeconds(30)) }; // ARP first
        for (int i = 0; i < 20; i++)
        {
            // The loop thread asleep (it may wake for a timer or the wire's wake-up meanwhile: most connects still find it so).
            Assert.True(SpinWait.SpinUntil(() => a.LoopSleeping, TimeSpan.FromSeconds(30)));
            sockets.Add(await a.ConnectTcpAsync(TcpSim.B, 21).WaitAsync(TimeSpan.FromSeconds(30)));
        }
        Assert.True(link.Holds > 0, "no connect held the arrival wake while the loop slept");
        Assert.Equal(link.Holds, link.Releases); // each turn lets go of its hold
        Assert.True(link.HeldAnswers >= link.Holds, $"{link.HeldAnswers} answers came inside {link.Holds} held turns");
        Assert.All(sockets, s => Assert.Equal(NetStack.Tcp.TcpState.Established, s.State));
        GC.KeepAlive(listener);
    }
    [Fact]
    public async Task A_ping_answered_inside_the_send_reports_a_round_trip_above_zero()
    {
        // The answer is taken at a fresh clock reading, not at the send's: the router's TtlExpired in a traceroute over
        // veth read 0 ms (a fresh-clone CI run of the Pester RouteKernel tests) when the answer kept the send's time.
        var wire = new VirtualWire(seed: 23);
        var portA = wire.CreatePort("a", MacAddress.Parse("02-00-00-00-00-01"));
        var portB = wire.CreatePort("b", MacAddress.Parse("02-00-00-00-00-02"));
        using var b = new NetworkStack(portB, new StackConfig { Address = TcpSim.B });
        using var a = new NetworkStack(new AnsweringLink(portA, () => b), new StackConfig { Address = TcpSim.A });
        a.Start();
        Assert.Equal(NetStack.Icmp.PingStatus.Success, (await a.PingAsync(TcpSim.B, timeout: TimeSpan.FromSeconds(30))).Status); // ARP first
        var inline = 0;
        for (int i = 0; i < 20; i++)
        {
            var ping = a.PingAsync(TcpSim.B, timeout: TimeSpan.FromSeconds(30));
            if (ping.IsCompletedSuccessfully) inline++;
            var reply = await ping.WaitAsync(TimeSpan.FromSeconds(30));
            Assert.Equal(NetStack.Icmp.PingStatus.Success, reply.Status);
            Assert.True(reply.RoundTripTime > TimeSpan.Zero, $"ping {i}: round trip {reply.RoundTripTime.Ticks} ticks");
        }
        Assert.True(inline > 0, "no ping completed before PingAsync returned");
    }
}
