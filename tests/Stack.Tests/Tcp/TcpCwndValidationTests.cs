using NetStack.Link;

namespace Stack.Tests.Tcp;

/// <summary>
/// RFC 7661 congestion window validation: cwnd grows only while the sender uses at least half of it, so an
/// application-limited (or receive-window-limited) sender keeps a window near what it actually sends.
/// </summary>
public class TcpCwndValidationTests
{
    [Theory]
    [InlineData("cubic")]
    [InlineData("newreno")]
    public void An_application_limited_sender_does_not_grow_cwnd(string cc)
    {
        var (sim, a, b) = TcpSim.Pair(41, new WireFaults { Delay = TimeSpan.FromMilliseconds(1) }, t => t with { CongestionControl = cc });
        using var _ = sim;
        var (c, s) = TcpSim.Connect(sim, a, b);
        c.NoDelay = true;
        var initial = c.Tcb.Snd.Cwnd;
        var buf = new byte[1000];
        for (int i = 0; i < 300; i++)
        {
            sim.Run(c.SendAsync(new byte[200]));
            Assert.Equal(200, sim.Run(s.ReceiveAsync(buf).AsTask()));
            sim.Advance(TimeSpan.FromMilliseconds(10));
        }
        Assert.Equal(60_000, c.Tcb.Snd.BytesSent);
        // 300 ACKs of 200 bytes each would have added 60,000 bytes in slow start without validation.
        Assert.Equal(initial, c.Tcb.Snd.Cwnd);
    }

    [Theory]
    [InlineData("cubic")]
    [InlineData("newreno")]
    public void A_bulk_sender_grows_cwnd_up_to_twice_what_the_receive_window_lets_it_use(string cc)
    {
        var (sim, a, b) = TcpSim.Pair(42, new WireFaults { Delay = TimeSpan.FromMilliseconds(1) }, t => t with { CongestionControl = cc, ReceiveBufferSize = 64 * 1024, ReceiveBufferMax = 64 * 1024 }); // a window auto-tuning cannot grow
        using var _ = sim;
        var (c, s) = TcpSim.Connect(sim, a, b);
        var initial = c.Tcb.Snd.Cwnd;
        var up = new Flow(c, s, TcpSim.Data(4 << 20, 7));
        Assert.True(TcpSim.Drive(sim, up.Pump, () => up.Done, TimeSpan.FromMinutes(2)), $"transfer stalled at {up.Received}");
        Assert.Equal(up.ExpectedHash, up.ReceivedHash);
        var cwnd = c.Tcb.Snd.Cwnd;
        var rcvBuf = (uint)s.ReceiveBufferSize;
        Assert.True(cwnd > 4 * initial, $"cwnd {cwnd} did not grow from {initial}");
        // The flight never exceeds the peer's 64 KiB window, so a validated cwnd stays below twice that plus the
        // last ACK's growth (at most a quarter of the window); without validation slow start would add every
        // acknowledged byte of the 4 MiB.
        Assert.True(cwnd <= 2 * rcvBuf + rcvBuf / 4 + 2 * (uint)c.Tcb.SndMss, $"cwnd {cwnd} grew beyond 2.25 times the {rcvBuf}-byte receive window");
    }
}
