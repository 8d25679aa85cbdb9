using NetStack;
using NetStack.Tcp;
using static NetStack.Tcp.TcpFlags;

namespace Stack.Tests.Tcp;

/// <summary>
/// Buffer auto-tuning on a bare connection (BufferTuning.cs): the receive buffer grows once per receiver RTT with what
/// the application read, the window scale in the SYN leaves room for Tcp.ReceiveBufferMax, a size the user set is kept;
/// the send buffer grows with the flight.
/// </summary>
public class BufferTuningRuleTests
{
    private const uint P = BareTcp.PeerIss + 1;

    private static BareTcp Tuned(CongestionAlgorithm congestion = CongestionAlgorithm.Bbr) => new(s => s with
    {
        Timestamps = true, WindowScaling = true, ReceiveBufferSize = 64 * 1024, ReceiveBufferMax = 1 << 20,
        SendBufferSize = 64 * 1024, SendBufferMax = 1 << 20, Congestion = congestion,
    });

    /// <summary>Active open against a peer with window scale 7 and timestamps; returns the connection, ISS + 1 and our last TSval.</summary>
    private static (TcpConnection C, uint Us, uint TsVal) Open(BareTcp t, Action<TcpConnection>? beforeConnect = null)
    {
        var c = t.NewConnection();
        beforeConnect?.Invoke(c);
        _ = c.Connect(BareTcp.Peer, BareTcp.PeerPort, t.Now);
        var syn = Assert.Single(t.Take());
        var options = SegCodec.MssOption(1460).Concat(new byte[] { 1, 3, 3, 7 }).Concat(SegCodec.TimestampOption(100, syn.TsVal!.Value)).ToArray();
        var ack = Assert.Single(t.Feed(BareTcp.From(syn.SrcPort, BareTcp.PeerIss, syn.Seq + 1, Syn | Ack, window: 1000, options: options)));
        Assert.Equal(TcpState.Established, c.State);
        return (c, syn.Seq + 1, ack.TsVal!.Value);
    }

    /// <summary>The peer sends <paramref name="count"/> segments of 1000 bytes from <paramref name="seq"/>, echoing <paramref name="tsEcr"/>; returns our last TSval.</summary>
    private static uint Deliver(BareTcp t, TcpConnection c, uint us, ref uint seq, int count, uint tsEcr)
    {
        uint last = 0;
        for (int i = 0; i < count; i++)
        {
            foreach (var r in t.Feed(BareTcp.From(c.Key.LocalPort, seq, us, Ack, new byte[1000], window: 1000, options: SegCodec.TimestampOption(200, tsEcr))))
                last = r.TsVal!.Value;
            seq += 1000;
        }
        return last;
    }

    /// <summary>The application reads everything there is (nothing waits when there is nothing).</summary>
    private static int Read(BareTcp t, TcpConnection c)
    {
        var n = 0;
        if (c.RcvBuf.Count == 0) return 0;
        t.Do(now => n = c.Receive(new byte[1 << 20], now).GetAwaiter().GetResult());
        return n;
    }

    [Fact]
    public void The_syn_offers_a_window_scale_with_room_for_the_maximum_and_a_size_the_user_set_keeps_its_own()
    {
        var t = Tuned();
        Assert.Equal(5, t.Connect().Syn.WindowScale);           // 1 MiB needs 5 (64 KiB alone would need 1)
        var fixedSize = t.NewConnection();
        fixedSize.Rcv.BufferFixed = true;                       // as TcpSocket.ReceiveBufferSize does
        _ = fixedSize.Connect(BareTcp.Peer, BareTcp.PeerPort + 1, t.Now);
        Assert.Equal(1, Assert.Single(t.Take()).WindowScale);
    }

    [Fact]
    public void The_receive_buffer_grows_once_per_round_trip_with_what_the_application_read()
    {
        var t = Tuned();
        var (c, us, ts) = Open(t);
        var seq = P;
        // One RTT after our handshake ACK 40 KB arrive and are read; the measurement starts (the buffer stays 64 KiB).
        t.Advance(TimeSpan.FromMilliseconds(100));
        ts = Deliver(t, c, us, ref seq, 40, ts);
        Assert.Equal(40_000, Read(t, c));
        Assert.Equal(64 * 1024, c.RcvBuf.Limit);
        // 100 ms later the peer's data echoes our last timestamp again: the receiver's RTT is 100 ms.
        t.Advance(TimeSpan.FromMilliseconds(100));
        ts = Deliver(t, c, us, ref seq, 50, ts);
        Assert.Equal(TimeSpan.FromMilliseconds(100), c.Rcv.Tuning.Rtt);
        Assert.Equal(50_000, Read(t, c));
        // 50,000 read in an RTT against the 10 segments the measurement began with: twice that plus 16 segments, doubled
        // because the rate more than doubled: 2 x (2 x 50,000 + 16 x 1460).
        Assert.Equal(2 * (2 * 50_000 + 16 * 1460), c.RcvBuf.Limit);
        // The window offered says so (scaled by 5): the next ACK offers the whole buffer.
        var ack = Assert.Single(t.Feed(BareTcp.From(c.Key.LocalPort, seq, us, Ack | Psh, new byte[10], window: 1000, options: SegCodec.TimestampOption(200, ts))).Concat(t.Advance(TimeSpan.FromMilliseconds(40))));
        Assert.Equal((2 * (2 * 50_000 + 16 * 1460) - 10) >> 5, ack.Window);
        seq += 10;

        // Reading less than the RTT before lets nothing grow; the buffer never shrinks.
        t.Advance(TimeSpan.FromMilliseconds(100));
        ts = Deliver(t, c, us, ref seq, 5, ack.TsVal!.Value);
        Read(t, c);
        Assert.Equal(2 * (2 * 50_000 + 16 * 1460), c.RcvBuf.Limit);
        // Never beyond Tcp.ReceiveBufferMax (each round within the window offered).
        foreach (var count in new[] { 200, 500 })
        {
            t.Advance(TimeSpan.FromMilliseconds(100));
            ts = Deliver(t, c, us, ref seq, count, ts);
            Assert.Equal(count * 1000, Read(t, c));
        }
        Assert.Equal(1 << 20, c.RcvBuf.Limit);
    }

    [Fact]
    public void A_receive_buffer_the_user_sized_does_not_grow()
    {
        var t = Tuned();
        var (c, us, ts) = Open(t, c => c.Rcv.BufferFixed = true);
        var seq = P;
        for (int round = 0; round < 4; round++)
        {
            t.Advance(TimeSpan.FromMilliseconds(100));
            ts = Deliver(t, c, us, ref seq, 50, ts);
            Read(t, c);
        }
        Assert.Equal(64 * 1024, c.RcvBuf.Limit);
        Assert.False(c.Rcv.Tuning.Enabled);
    }

    [Fact]
    public void The_send_buffer_grows_to_twice_what_may_be_in_flight_unless_the_user_sized_it()
    {
        foreach (var userSized in new[] { false, true })
        {
            // CUBIC, pinned: slow start doubles cwnd on ACKs that come at no interval on the test's clock (BBR reads no
            // delivery rate from them), and cwnd passing the peer's window is what this test needs.
            var t = Tuned(CongestionAlgorithm.Cubic);
            var (c, us, _) = Open(t, c => c.SendBufferFixed = userSized);
            var send = c.Send(new byte[1 << 20], t.Now); // more than the buffer: the rest waits for room
            var limits = new List<int>();
            for (int round = 0; round < 8; round++)
            {
                // The peer acknowledges everything sent and offers 2,000 << 7 = 256,000 bytes.
                var before = c.SndBuf.Limit;
                t.Feed(BareTcp.From(c.Key.LocalPort, P, c.Snd.Max, Ack, window: 2000));
                var expected = userSized ? 64 * 1024 : Math.Max(before, (int)Math.Min(2 * Math.Min(c.Snd.Cwnd, c.Snd.MaxWnd), 1u << 20));
                Assert.Equal(expected, c.SndBuf.Limit);
                limits.Add(c.SndBuf.Limit);
            }
            if (userSized) Assert.All(limits, l => Assert.Equal(64 * 1024, l));
            else Assert.Equal(512_000, limits[^1]); // twice the peer's window, once cwnd has passed it
        }
    }
}
