using NetStack;
using NetStack.Tcp;
using Stack.Tests.Support;
using static NetStack.Tcp.TcpFlags;

namespace Stack.Tests.Tcp;

/// <summary>
/// SYN cookies (RFC 4987; ListenEndpoint.cs, SynCookies.cs) on a bare listener: the cookie SYN-ACK keeps no state, a
/// valid returning ACK makes the connection with the options the cookie carried (the MSS in the ISN; window scale and
/// SACK-permitted in our timestamp's low bits), stale and forged cookies get the RST of RFC 9293 3.10.7.2.
/// </summary>
public class SynCookieRuleTests
{
    private const uint PeerIss = BareTcp.PeerIss;

    private static byte[] Options(params byte[][] parts) => parts.SelectMany(p => p).ToArray();
    private static byte[] WindowScale(byte shift) => [1, 3, 3, shift];
    private static readonly byte[] SackPermitted = [1, 1, 4, 2];

    private static BareTcp Cookies(SynCookieMode mode, bool options = false) => new(s => s with
    {
        SynCookies = mode,
        Timestamps = options, Sack = options, WindowScaling = options, ReceiveBufferSize = options ? 256 * 1024 : 65535,
    });

    /// <summary>Our timestamp clock for the four-tuple with <paramref name="peerPort"/>, now.</summary>
    private static uint TsNow(BareTcp t, ushort peerPort) =>
        (uint)(t.Now.Ticks / TimeSpan.TicksPerMillisecond) + t.Layer.TimestampOffset(new ConnKey(BareTcp.Peer.Value, peerPort, 80));

    private static TcpConnection Made(BareTcp.Owner owner) => Assert.Single(owner.Created);

    [Fact]
    public void With_a_full_syn_queue_a_syn_gets_a_cookie_syn_ack_and_the_returning_ack_makes_the_connection_without_timestamps()
    {
        var t = Cookies(SynCookieMode.Auto);
        var (listen, owner) = t.Listen(80, backlog: 1);
        Assert.Single(t.Feed(BareTcp.From(80, PeerIss, 0, Syn, peerPort: 40001)));      // the SYN queue's one place
        owner.Created.Clear();

        // The peer offers MSS 1400, window scale and SACK, but no timestamps: the cookie can carry only the MSS.
        var syn = BareTcp.From(80, PeerIss, 0, Syn, peerPort: 40002, options: Options(SegCodec.MssOption(1400), WindowScale(7), SackPermitted));
        var synAck = Assert.Single(t.Feed(syn));
        Assert.Equal(Syn | Ack, synAck.Flags);
        Assert.Equal(PeerIss + 1, synAck.Ack);
        Assert.Equal(1460, synAck.Mss);
        Assert.Equal(65535, synAck.Window);
        Assert.Equal(-1, synAck.WindowScale);      // nothing would remember the peer's scale: none offered
        Assert.False(synAck.SackPermitted);
        Assert.Null(synAck.TsVal);
        Assert.Empty(owner.Created);              // no state kept
        Assert.Equal(1, listen.SynQueueCount);
        Assert.Equal(1, t.Layer.Counters.SynCookiesSent);

        // The returning ACK, with data: the connection is made, established, queued for accept, and takes the data.
        Assert.Empty(t.Feed(BareTcp.From(80, PeerIss + 1, synAck.Seq + 1, Ack | Psh, new byte[100], window: 20000, peerPort: 40002)));
        var c = Made(owner);
        Assert.Equal(TcpState.Established, c.State);
        Assert.Equal(synAck.Seq, c.Iss);
        Assert.Equal(PeerIss, c.Irs);
        Assert.Equal(1300, c.PeerMss);            // the largest of 536, 1300, 1440, 1460 not above 1400
        Assert.Equal(1300, c.SndMss);
        Assert.False(c.WsEnabled);
        Assert.False(c.SackEnabled);
        Assert.False(c.TsEnabled);
        Assert.Equal(20000u, c.Snd.Wnd);
        Assert.Equal(100, c.RcvBuf.Count);
        Assert.Equal(1, listen.AcceptQueueCount);
        Assert.Equal(1, listen.SynQueueCount);    // only the first SYN's half-open connection
        Assert.Equal(1, t.Layer.Counters.SynCookiesAccepted);

        // Data flows back in segments of the MSS the cookie carried.
        var sent = t.Do(now => c.Send(new byte[3000], now));
        Assert.Equal(new[] { 1300, 1300 }, sent.Select(s => s.Payload.Length));
        Assert.All(sent, s => Assert.Equal(PeerIss + 101, s.Ack));
    }

    [Theory]
    [InlineData((byte)7, true)]
    [InlineData((byte)0, false)]
    [InlineData((byte)14, true)]
    public void With_timestamps_the_peers_window_scale_and_sack_permitted_come_back_in_tsecr(byte peerScale, bool sack)
    {
        var t = Cookies(SynCookieMode.Always, options: true);
        var (listen, owner) = t.Listen(80);
        var syn = BareTcp.From(80, PeerIss, 0, Syn, options: Options(SegCodec.MssOption(1460), sack ? SackPermitted : [],
            SegCodec.TimestampOption(5000, 0), WindowScale(peerScale)));
        var tsNow = TsNow(t, BareTcp.PeerPort);
        var synAck = Assert.Single(t.Feed(syn));
        Assert.Empty(owner.Created);               // Always: no half-open state even with room
        Assert.Equal(0, listen.SynQueueCount);
        Assert.Equal(1460, synAck.Mss);
        Assert.Equal(sack, synAck.SackPermitted);
        Assert.Equal(7, synAck.WindowScale);        // ours: room for Tcp.ReceiveBufferMax (6 MiB) needs a shift of 7
        Assert.Equal(5000u, synAck.TsEcr);
        // Linux's layout: the low 6 bits of TSval are the peer's shift (bits 0-3) and SACK-permitted (bit 4), never ahead of the clock.
        var expected = (tsNow & ~0x3fu) | peerScale | (sack ? 0x10u : 0);
        if ((int)(expected - tsNow) > 0) expected -= 64;
        Assert.Equal(expected, synAck.TsVal);

        var ack = BareTcp.From(80, PeerIss + 1, synAck.Seq + 1, Ack, window: 1000, options: SegCodec.TimestampOption(5001, synAck.TsVal!.Value));
        Assert.Empty(t.Feed(ack));
        var c = Made(owner);
        Assert.Equal(TcpState.Established, c.State);
        Assert.True(c.WsEnabled);
        Assert.Equal(peerScale, c.SndWndShift);
        Assert.Equal(7, c.RcvWndShift);
        Assert.Equal(1000u << peerScale, c.Snd.Wnd);
        Assert.Equal(sack, c.SackEnabled);
        Assert.True(c.TsEnabled);
        Assert.Equal(5001u, c.TsRecent);
        Assert.Equal(1460 - 12, c.SndMss);

        // Our segments carry the timestamp clock the cookie used, echo the peer's, and advertise a window scaled by 7.
        var data = Assert.Single(t.Do(now => c.Send(new byte[500], now)));
        Assert.Equal(5001u, data.TsEcr);
        Assert.True(data.TsVal >= synAck.TsVal);
        Assert.Equal(256 * 1024 >> 7, data.Window);
    }

    [Fact]
    public void A_peer_that_offered_no_window_scale_gets_none_back_from_the_cookie()
    {
        var t = Cookies(SynCookieMode.Always, options: true);
        var (_, owner) = t.Listen(80);
        var synAck = Assert.Single(t.Feed(BareTcp.From(80, PeerIss, 0, Syn, options: Options(SegCodec.MssOption(536), SegCodec.TimestampOption(7, 0)))));
        Assert.Equal(-1, synAck.WindowScale);
        Assert.Equal(0x0fu, synAck.TsVal!.Value & 0x3f); // 15: no window scale; no SACK
        t.Feed(BareTcp.From(80, PeerIss + 1, synAck.Seq + 1, Ack, options: SegCodec.TimestampOption(8, synAck.TsVal.Value)));
        var c = Made(owner);
        Assert.False(c.WsEnabled);
        Assert.Equal(0, c.RcvWndShift);
        Assert.False(c.SackEnabled);
        Assert.Equal(536, c.PeerMss);
    }

    [Fact]
    public void A_cookie_is_good_for_at_least_64_s_and_stale_after_128_s()
    {
        var t = Cookies(SynCookieMode.Always);
        var (_, owner) = t.Listen(80);
        var fresh = Assert.Single(t.Feed(BareTcp.From(80, PeerIss, 0, Syn, peerPort: 40001)));
        var old = Assert.Single(t.Feed(BareTcp.From(80, PeerIss, 0, Syn, peerPort: 40002)));

        t.Advance(TimeSpan.FromSeconds(63.9));
        Assert.Empty(t.Feed(BareTcp.From(80, PeerIss + 1, fresh.Seq + 1, Ack, peerPort: 40001)));
        Assert.Equal(TcpState.Established, Made(owner).State);

        t.Advance(TimeSpan.FromSeconds(64.2)); // 128.1 s after it was made: two periods have begun since
        var rst = Assert.Single(t.Feed(BareTcp.From(80, PeerIss + 1, old.Seq + 1, Ack, peerPort: 40002)));
        Assert.Equal(Rst, rst.Flags);                       // RFC 9293 3.10.7.2: <SEQ=SEG.ACK><CTL=RST>
        Assert.Equal(old.Seq + 1, rst.Seq);
        Assert.Single(owner.Created);
        Assert.Equal(1, t.Layer.Counters.SynCookiesRejected);
        Assert.Equal(1, t.Layer.Counters.SynCookiesAccepted);
    }

    [Fact]
    public void Forged_cookies_get_rst_and_make_nothing()
    {
        var t = Cookies(SynCookieMode.Always);
        var (_, owner) = t.Listen(80);
        var synAck = Assert.Single(t.Feed(BareTcp.From(80, PeerIss, 0, Syn)));
        var cookie = synAck.Seq + 1;
        foreach (var (seq, ack, port) in new[]
                 {
                     (PeerIss + 1, cookie ^ 1, BareTcp.PeerPort),          // one bit of the hash wrong
                     (PeerIss + 1, cookie + (1u << 24), BareTcp.PeerPort), // another MSS index
                     (PeerIss + 2, cookie, BareTcp.PeerPort),              // not the ISN the cookie was made for
                     (PeerIss + 1, cookie, (ushort)(BareTcp.PeerPort + 1)), // another four-tuple
                 })
        {
            var rst = Assert.Single(t.Feed(BareTcp.From(80, seq, ack, Ack, peerPort: port)));
            Assert.Equal(Rst, rst.Flags);
            Assert.Equal(ack, rst.Seq);
        }
        Assert.Empty(owner.Created);
        Assert.Equal(4, t.Layer.Counters.SynCookiesRejected);
        Assert.Equal(0, t.Layer.Counters.SynCookiesAccepted);
        // The real one still works.
        Assert.Empty(t.Feed(BareTcp.From(80, PeerIss + 1, cookie, Ack)));
        Assert.Equal(TcpState.Established, Made(owner).State);
    }

    [Fact]
    public void Without_cookies_sent_lately_an_ack_in_listen_is_reset_unchecked_and_never_makes_a_connection()
    {
        var t = Cookies(SynCookieMode.Auto);
        var (_, owner) = t.Listen(80, backlog: 1);
        var rst = Assert.Single(t.Feed(BareTcp.From(80, 5000, 7777, Ack)));
        Assert.Equal(7777u, rst.Seq);
        Assert.Equal(0, t.Layer.Counters.SynCookiesRejected); // not even checked: no cookie went out

        var never = Cookies(SynCookieMode.Never);
        var (listen, _) = never.Listen(80, backlog: 1);
        Assert.Single(never.Feed(BareTcp.From(80, PeerIss, 0, Syn, peerPort: 40001)));
        Assert.Empty(never.Feed(BareTcp.From(80, PeerIss, 0, Syn, peerPort: 40002))); // dropped: the client retries
        Assert.Equal(1, never.Layer.Counters.ListenSynQueueFull);
        Assert.Equal(0, never.Layer.Counters.SynCookiesSent);
        Assert.Equal(1, listen.SynQueueCount);
        Assert.Empty(owner.Created);
    }

    [Fact]
    public void A_valid_cookie_with_a_full_accept_queue_waits_in_syn_received_until_the_user_accepts()
    {
        var t = Cookies(SynCookieMode.Always);
        var (listen, owner) = t.Listen(80, backlog: 1);
        var first = Assert.Single(t.Feed(BareTcp.From(80, PeerIss, 0, Syn, peerPort: 40001)));
        var second = Assert.Single(t.Feed(BareTcp.From(80, PeerIss, 0, Syn, peerPort: 40002)));
        Assert.Empty(t.Feed(BareTcp.From(80, PeerIss + 1, first.Seq + 1, Ack, peerPort: 40001)));
        Assert.Equal(1, listen.AcceptQueueCount);                 // full: backlog 1

        // The cookie is good: the connection is made but cannot be queued, so it waits half-open (no reply now).
        Assert.Empty(t.Feed(BareTcp.From(80, PeerIss + 1, second.Seq + 1, Ack, peerPort: 40002)));
        var waiting = owner.Created[1];
        Assert.Equal(TcpState.SynReceived, waiting.State);
        Assert.Equal(1, t.Layer.Counters.ListenAcceptQueueFull);
        Assert.True(listen.TryAccept(out _));

        // Its SYN-ACK goes again after the initial RTO (1 s) with the cookie's ISN; the peer's duplicate ACK completes it.
        var again = Assert.Single(t.Advance(TimeSpan.FromSeconds(1)));
        Assert.Equal(Syn | Ack, again.Flags);
        Assert.Equal(second.Seq, again.Seq);
        Assert.Equal(PeerIss + 1, again.Ack);
        Assert.Empty(t.Feed(BareTcp.From(80, PeerIss + 1, second.Seq + 1, Ack, peerPort: 40002)));
        Assert.Equal(TcpState.Established, waiting.State);
        Assert.Equal(1, listen.AcceptQueueCount);
        Assert.Equal(0, listen.SynQueueCount);
        Assert.Equal(2, t.Layer.Counters.SynCookiesAccepted);
    }

    /// <summary>Counts what leaves, keeping nothing.</summary>
    private sealed class CountingOutput : ISegmentOutput
    {
        public int Sent;
        public int PathMss => 1460;
        public StackError Send(Ipv4Address remote, in OutgoingSegment segment, TimeSpan now) { Sent++; return StackError.None; }
    }

    [Fact]
    public void A_flood_answered_with_cookies_allocates_nothing_per_syn_nor_per_forged_ack()
    {
        var config = new StackConfig { Address = BareTcp.Us, Tcp = new TcpSettings { SynCookies = SynCookieMode.Always } };
        var random = new Random(1);
        var output = new CountingOutput();
        var layer = new TcpLayer(new LayerContext("bare", config, random), output, new EphemeralPorts(config, random));
        new ListenEndpoint(layer, 80, 128, new BareTcp.Owner(new BareTcp())).Start(); // Always: it is never asked for a connection
        void Flood(int n)
        {
            for (int i = 0; i < n; i++)
            {
                var syn = new TcpSegment { SourcePort = (ushort)(1024 + i % 60000), DestinationPort = 80, Seq = (uint)i * 7919, Flags = Syn, Window = 64240 };
                syn.Options.Mss = 1460;
                syn.Options.WindowScale = 7;
                syn.Options.HasTimestamp = true;
                syn.Options.TsVal = (uint)i;
                layer.Deliver(new Ipv4Address(0xCB007100u | (uint)(i % 254 + 1)), ref syn, TimeSpan.FromMilliseconds(i));
                var ack = new TcpSegment { SourcePort = (ushort)(1024 + i % 60000), DestinationPort = 80, Seq = (uint)i * 7919 + 1, Ack = (uint)i, Flags = Ack, Window = 500 };
                ack.Options.WindowScale = -1;
                layer.Deliver(new Ipv4Address(0xC6336400u | (uint)(i % 254 + 1)), ref ack, TimeSpan.FromMilliseconds(i));
            }
        }
        Flood(1000); // warm up
        var before = GC.GetAllocatedBytesForCurrentThread();
        Flood(20_000);
        var allocated = GC.GetAllocatedBytesForCurrentThread() - before;
        Allocations.AssertNonePerItem(allocated, 40_000, "SYNs and forged ACKs");
        Assert.Equal(0, layer.ConnectionCount);
        Assert.Equal(21_000, layer.Counters.SynCookiesSent);
        Assert.Equal(21_000, layer.Counters.SynCookiesRejected);
        Assert.Equal(42_000, output.Sent);   // a cookie SYN-ACK per SYN, a RST per forged ACK
    }
}
