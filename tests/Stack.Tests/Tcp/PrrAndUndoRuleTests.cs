using NetStack;
using NetStack.Tcp;
using static NetStack.Tcp.TcpFlags;

namespace Stack.Tests.Tcp;

/// <summary>
/// Proportional Rate Reduction (RFC 6937) and the undo of a spurious reduction (RFC 2883/3708 D-SACK, RFC 3522
/// timestamps) under RACK on a bare connection, and the D-SACK blocks we send (RFC 2883). 1000-byte segments,
/// NewReno window arithmetic.
/// </summary>
public class PrrAndUndoRuleTests
{
    private const uint P = BareTcp.PeerIss + 1;
    private const int Mss = 1000;
    private static readonly TimeSpan Ms = TimeSpan.FromMilliseconds(1);

    private static (BareTcp T, TcpConnection C, Func<int, uint> S) Sending(int window, int segments, bool timestamps = false)
    {
        var t = new BareTcp(s => s with { Sack = true, Timestamps = timestamps, Congestion = CongestionAlgorithm.NewReno, InitialWindowSegments = window });
        var (c, us) = t.Established(Mss, 10 * Ms, sack: true, timestamps: timestamps);
        Assert.Equal(window, t.Do(now => c.Send(new byte[segments * c.SndMss], now)).Count);
        t.Advance(10 * Ms);
        var mss = c.SndMss; // 988 with timestamps
        return (t, c, i => us + (uint)(i * mss));
    }

    private static List<Seg> Sack(BareTcp t, TcpConnection c, uint ack, byte[]? more = null, params (uint, uint)[] blocks) =>
        t.Feed(BareTcp.From(c.Key.LocalPort, P, ack, Ack, options: (more ?? Array.Empty<byte>()).Concat(SegCodec.SackOption(blocks)).ToArray()));

    [Fact]
    public void Prr_sends_one_segment_per_two_delivered_while_pipe_exceeds_ssthresh_then_keeps_pipe_at_ssthresh()
    {
        var (t, c, S) = Sending(window: 20, segments: 40);              // 20 in flight; segment 0 is lost
        var sent = new List<string>();
        for (int k = 1; k <= 20; k++)
        {
            var out_ = t.Feed(BareTcp.From(c.Key.LocalPort, P, S(0), Ack, options: SegCodec.SackOption((S(1), S(k + 1)))));
            sent.Add(string.Join(" ", out_.Select(x => ((int)(x.Seq - S(0)) / Mss).ToString())));
            if (k == 3)
            {
                Assert.True(c.Snd.Recovery.InRecovery);
                Assert.Equal(11_000u, c.Snd.Ssthresh);                  // FlightSize 22000 / 2; RecoverFS = 22000
            }
        }
        // ACK k SACKs 1..k. Before recovery each SACKed segment leaves the pipe and new data takes its place (20, 21).
        // Recovery starts at k = 3 (DupThresh SACKed, reo_wnd 0) with the fast retransmit of 0. While pipe > ssthresh:
        // sndcnt = CEIL(prr_delivered * ssthresh / RecoverFS) - prr_out, half a segment per segment delivered, so one
        // new segment every second ACK (the half segment waits: sender SWS avoidance). From k = 16 pipe is at ssthresh
        // and PRR-SSRB sends as much as each ACK delivered: one segment per ACK.
        Assert.Equal("20|21|0|||22||23||24||25||26|||27|28|29|30", string.Join("|", sent));
        Assert.Equal(1, t.Layer.Counters.PrrRecoveries);
        Assert.Equal(c.Snd.Ssthresh, (uint)c.Snd.Recovery.Pipe());                 // held at ssthresh
    }

    [Fact]
    public void A_dsack_for_the_only_retransmission_undoes_the_reduction_and_widens_the_reordering_window()
    {
        var (t, c, S) = Sending(window: 10, segments: 10);
        Sack(t, c, S(0), null, (S(1), S(2)));
        Sack(t, c, S(0), null, (S(1), S(3)));
        var fast = Sack(t, c, S(0), null, (S(1), S(4)));
        Assert.Equal(S(0), Assert.Single(fast).Seq);                    // segment 0 deemed lost: resent, window halved
        Assert.Equal(5000u, c.Snd.Ssthresh);
        t.Feed(BareTcp.From(c.Key.LocalPort, P, S(10), Ack));           // the original 0 was only late: all acknowledged
        Assert.False(c.Snd.Recovery.InRecovery);
        Assert.Equal(5000u, c.Snd.Cwnd);                                 // RFC 6937: cwnd = ssthresh on leaving recovery
        // The retransmission arrives too: the peer reports it with a D-SACK below its cumulative ACK (RFC 2883 4.1).
        Sack(t, c, S(10), null, (S(0), S(1)));
        Assert.Equal(10_000u, c.Snd.Cwnd);                               // RFC 3708: the only retransmission was spurious
        Assert.Equal(uint.MaxValue, c.Snd.Ssthresh);
        var counters = t.Layer.Counters;
        Assert.Equal((1L, 1L, 1L), (counters.DsacksReceived, counters.SpuriousRetransmits, counters.Undos));
        Assert.Equal(5 * Ms, Assert.IsType<RackRecovery>(c.Snd.Recovery).Stats.ReorderWindow); // RFC 8985 6.2: min_RTT/4 x 2
    }

    [Fact]
    public void A_dsack_for_data_never_retransmitted_is_counted_and_undoes_nothing()
    {
        var (t, c, S) = Sending(window: 10, segments: 10);
        t.Feed(BareTcp.From(c.Key.LocalPort, P, S(10), Ack));
        Sack(t, c, S(10), null, (S(3), S(4)));                          // the network duplicated segment 3
        Assert.Equal((1L, 0L, 0L), (t.Layer.Counters.DsacksReceived, t.Layer.Counters.SpuriousRetransmits, t.Layer.Counters.Undos));
    }

    [Fact]
    public void An_ack_echoing_the_originals_timestamp_shows_the_retransmission_spurious_eifel()
    {
        var (t, c, S) = Sending(window: 10, segments: 10, timestamps: true);
        var tsOriginal = c.TsNow(t.Now - 10 * Ms);                       // the originals' TSval
        var echo = SegCodec.TimestampOption(2, tsOriginal);
        Sack(t, c, S(0), echo, (S(1), S(2)));
        Sack(t, c, S(0), echo, (S(1), S(3)));
        Assert.Equal(S(0), Assert.Single(Sack(t, c, S(0), echo, (S(1), S(4)))).Seq);
        Assert.Equal((uint)(5 * c.SndMss), c.Snd.Ssthresh);
        t.Advance(5 * Ms);
        // The cumulative ACK for 0 echoes the original's timestamp, older than the retransmission's (RFC 3522 2).
        t.Feed(BareTcp.From(c.Key.LocalPort, P, S(10), Ack, options: SegCodec.TimestampOption(3, tsOriginal)));
        Assert.Equal(1, t.Layer.Counters.Undos);
        Assert.Equal(uint.MaxValue, c.Snd.Ssthresh);
        Assert.True(c.Snd.Cwnd >= 10u * (uint)c.SndMss);
    }

    [Fact]
    public void Duplicate_data_is_reported_with_a_dsack_block_first()
    {
        var t = new BareTcp(s => s with { Sack = true });
        var (c, us) = t.Established(Mss, TimeSpan.Zero, sack: true);
        var port = c.Key.LocalPort;
        Seg Data(uint from, int len) => BareTcp.From(port, from, us, Ack | Psh, new byte[len]);

        t.Feed(Data(P, 100));
        t.Advance(TimeSpan.FromMilliseconds(50));                         // the delayed ACK
        var dup = Assert.Single(t.Feed(Data(P, 100)));                   // RFC 2883 4.1.1: all below RCV.NXT
        Assert.Equal(P + 100, dup.Ack);
        Assert.Equal(new[] { (P, P + 100) }, dup.Sack);

        Assert.Equal(new[] { (P + 200, P + 300) }, Assert.Single(t.Feed(Data(P + 200, 100))).Sack);
        var ooo = Assert.Single(t.Feed(Data(P + 200, 100)));             // RFC 2883 4.1.2: a duplicate of out-of-order data
        Assert.Equal(new[] { (P + 200, P + 300), (P + 200, P + 300) }, ooo.Sack);
        Assert.Equal(new[] { (P + 200, P + 300) }, Assert.Single(t.Feed(Data(P + 250, 10))).Sack.Skip(1)); // D-SACK first, then the range
        Assert.Equal(3, t.Layer.Counters.DsacksSent);
    }
}
