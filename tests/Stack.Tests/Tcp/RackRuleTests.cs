using NetStack;
using NetStack.Tcp;
using static NetStack.Tcp.TcpFlags;

namespace Stack.Tests.Tcp;

/// <summary>
/// RACK-TLP (RFC 8985), PRR (RFC 6937) and the undo of spurious reductions on a bare connection: crafted ACKs with
/// SACK blocks in, on the test's clock, and exactly the segments that must come out. 1000-byte segments, NewReno
/// window arithmetic (ssthresh = FlightSize / 2), a 10 ms round trip measured by the handshake and the first ACK.
/// </summary>
public class RackRuleTests
{
    private const uint P = BareTcp.PeerIss + 1;
    private const int Mss = 1000;
    private static readonly TimeSpan Rtt = TimeSpan.FromMilliseconds(10);

    private sealed class Sender
    {
        public required BareTcp T;
        public required TcpConnection C;
        public required uint Us;
        public uint S(int i) => Us + (uint)(i * Mss);
        public List<Seg> Ack(int cumulative, params (int From, int To)[] sacked) =>
            T.Feed(BareTcp.From(C.Key.LocalPort, P, S(cumulative), TcpFlags.Ack,
                options: sacked.Length == 0 ? null : SegCodec.SackOption(sacked.Select(b => (S(b.From), S(b.To))).ToArray())));
        public List<Seg> AckRaw(uint ack, params (uint, uint)[] blocks) =>
            T.Feed(BareTcp.From(C.Key.LocalPort, P, ack, TcpFlags.Ack, options: blocks.Length == 0 ? null : SegCodec.SackOption(blocks)));
        public TcpCounters Counters => T.Layer.Counters;
        public RackRecovery Rack => Assert.IsType<RackRecovery>(C.Snd.Recovery);
    }

    /// <summary>A SACK connection with a 10 ms handshake RTT that has sent the initial window of 10 segments of <paramref name="segments"/>.</summary>
    private static Sender Start(int segments = 10)
    {
        var t = new BareTcp(s => s with { Sack = true, Congestion = CongestionAlgorithm.NewReno });
        var (c, us) = t.Established(Mss, Rtt, sack: true);
        var s = new Sender { T = t, C = c, Us = us };
        var sent = t.Do(now => c.Send(new byte[segments * Mss], now));
        Assert.Equal(Enumerable.Range(0, Math.Min(segments, 10)).Select(s.S), sent.Select(x => x.Seq));
        return s;
    }

    private static IEnumerable<uint> Data(List<Seg> segs) => segs.Where(x => x.Payload.Length > 0).Select(x => x.Seq);

    [Fact]
    public void A_hole_with_one_segment_sacked_above_waits_the_reordering_window_then_the_reorder_timer_resends_it()
    {
        var s = Start();
        s.T.Advance(Rtt);
        Assert.Empty(Data(s.Ack(1)));                                  // segment 0: RACK.rtt = min_RTT = 10 ms
        Assert.Empty(Data(s.Ack(1, (2, 3))));                          // 2 arrived, 1 not: reordering or loss?
        // RFC 8985 6.2: segment 1 was sent before segment 2 (delivered), so it is lost once its send time + RACK.rtt
        // + reo_wnd has passed; reo_wnd = min_RTT / 4 = 2.5 ms while fewer than DupThresh segments are SACKed.
        Assert.Equal(s.T.Now + TimeSpan.FromMilliseconds(2.5), s.C.LossAt);
        Assert.Equal(TimeSpan.FromMilliseconds(2.5), s.Rack.Stats.ReorderWindow);
        Assert.Empty(Data(s.T.Advance(TimeSpan.FromMilliseconds(2))));
        var resent = s.T.Advance(TimeSpan.FromMilliseconds(1));       // RFC 8985 6.3: the reorder timer
        Assert.Equal(new[] { s.S(1) }, Data(resent));
        Assert.Equal(Mss, resent.Single(x => x.Payload.Length > 0).Payload.Length);
        Assert.True(s.C.Snd.Recovery.InRecovery);
        Assert.Equal(1, s.Counters.RackLosses);
        Assert.Equal(0, s.Counters.Timeouts);
    }

    [Fact]
    public void Three_segments_sacked_above_a_hole_with_no_reordering_seen_resend_it_at_once()
    {
        var s = Start();
        s.T.Advance(Rtt);
        s.Ack(1);
        Assert.Empty(Data(s.Ack(1, (2, 3))));
        Assert.Empty(Data(s.Ack(1, (2, 4))));
        // RFC 8985 6.2 step 4: no reordering seen and DupThresh segments SACKed: reo_wnd = 0, segment 1 is lost now.
        Assert.Equal(new[] { s.S(1) }, Data(s.Ack(1, (2, 5))));
        Assert.Equal(TimeSpan.Zero, s.Rack.Stats.ReorderWindow);
    }

    [Fact]
    public void Once_reordering_is_seen_the_window_stays_open_with_three_segments_sacked()
    {
        var s = Start();
        s.T.Advance(Rtt);
        s.Ack(1, (2, 3));                                              // 2 before 1...
        Assert.Empty(Data(s.Ack(3)));                                  // ...then 1: reordering (RFC 8985 6.2 step 3)
        Assert.Empty(Data(s.Ack(3, (4, 7))));                          // 3 missing, 4-6 SACKed: still within the window
        Assert.Equal(TimeSpan.FromMilliseconds(2.5), s.Rack.Stats.ReorderWindow);
        Assert.Equal(new[] { s.S(3) }, Data(s.T.Advance(TimeSpan.FromMilliseconds(3))));
    }

    [Fact]
    public void A_lost_retransmission_is_found_by_a_segment_sent_after_it_not_by_the_rto()
    {
        var s = Start(segments: 20);
        s.T.Advance(Rtt);
        s.Ack(1);
        s.Ack(1, (2, 3));
        s.Ack(1, (2, 4));
        Assert.Equal(new[] { s.S(1) }, Data(s.Ack(1, (2, 5))));        // the first retransmission of 1
        // The originals keep arriving; PRR lets new data go after the retransmission.
        var sent = new List<uint>();
        int next = 5;
        while (sent.Count == 0 && next < 14) sent.AddRange(Data(s.Ack(1, (2, ++next))));
        var after = (int)((sent[0] - s.Us) / Mss);
        Assert.DoesNotContain(s.S(1), sent);
        // Everything up to that new segment arrives, sent before or after the retransmission of 1; 1 does not: the
        // retransmission was lost too, and RACK says so at once (reo_wnd is 0 in recovery), without an RTO.
        Assert.Equal(new[] { s.S(1) }, Data(s.Ack(1, (2, after + 1))).Take(1));
        Assert.Equal(0, s.Counters.Timeouts);
        Assert.Equal(2, s.Counters.RackLosses);
    }
}

/// <summary>The tail loss probe (RFC 8985 7) on a bare connection: when it goes, what it is, and what its ACK starts.</summary>
public class TailLossProbeRuleTests
{
    private const uint P = BareTcp.PeerIss + 1;
    private const int Mss = 1000;
    private static readonly TimeSpan Ms = TimeSpan.FromMilliseconds(1);

    /// <summary>A SACK connection (10 ms handshake RTT) that sent <paramref name="segments"/> and got the first two acknowledged 10 ms later.</summary>
    private static (BareTcp T, TcpConnection C, Func<int, uint> S) TwoOfSegmentsAcked(int segments)
    {
        var t = new BareTcp(s => s with { Sack = true, Congestion = CongestionAlgorithm.NewReno });
        var (c, us) = t.Established(Mss, 10 * Ms, sack: true);
        uint S(int i) => us + (uint)(i * Mss);
        t.Do(now => c.Send(new byte[segments * Mss], now));
        t.Advance(10 * Ms);
        t.Feed(BareTcp.From(c.Key.LocalPort, P, S(2), Ack));
        return (t, c, S);
    }

    [Fact]
    public void With_nothing_new_to_send_the_probe_is_the_last_segment_after_two_srtt_and_its_sack_starts_recovery()
    {
        var (t, c, S) = TwoOfSegmentsAcked(5);                          // 2, 3 and 4 outstanding; 2 and 3 are lost
        Assert.Equal(10 * Ms, c.Snd.Rtt.Srtt);
        // RFC 8985 7.2: PTO = 2 * SRTT (+ 2 ms, as Linux's TCP_TIMEOUT_MIN), well before the 200 ms RTO.
        Assert.Empty(t.Advance(21 * Ms));
        var probe = Assert.Single(t.Advance(1 * Ms));
        Assert.Equal(S(4), probe.Seq);                                   // RFC 8985 7.3: the last segment sent, again
        Assert.Equal(Mss, probe.Payload.Length);
        Assert.Equal(1, t.Layer.Counters.TlpProbes);
        // The probe arrives (SACKed), 2 and 3 do not: RACK finds them lost and fast recovery resends both (PRR-SSRB).
        t.Advance(10 * Ms);
        var resent = t.Feed(BareTcp.From(c.Key.LocalPort, P, S(2), Ack, options: SegCodec.SackOption((S(4), S(5)))));
        Assert.Equal(new[] { S(2), S(3) }, resent.Select(x => x.Seq));
        Assert.True(c.Snd.Recovery.InRecovery);
        Assert.Equal(1, t.Layer.Counters.TlpRecoveries);
        Assert.Equal(0, t.Layer.Counters.Timeouts);
    }

    [Fact]
    public void With_new_data_waiting_the_probe_is_new_data_ignoring_cwnd()
    {
        var (t, c, S) = TwoOfSegmentsAcked(15);                         // the ACK let 10-13 go; 14 waits behind cwnd
        Assert.True(c.Snd.Una + (uint)c.Snd.Buffer.Count != c.Snd.Max, "data should be waiting");
        var probe = Assert.Single(t.Advance(22 * Ms));
        Assert.Equal(S(14), probe.Seq);
        Assert.Equal(Mss, probe.Payload.Length);
        Assert.Equal(1, t.Layer.Counters.TlpProbes);
        Assert.Equal(0, t.Layer.Counters.SegmentsRetransmitted);
    }

    [Fact]
    public void A_probe_whose_ack_finds_losses_does_not_use_up_the_probes_so_lost_retransmissions_get_probes_of_their_own()
    {
        var (t, c, S) = TwoOfSegmentsAcked(5);                          // 2, 3 and 4 outstanding; 2 and 3 are lost
        Assert.Equal(S(4), Assert.Single(t.Advance(22 * Ms)).Seq);        // first probe
        t.Advance(10 * Ms);
        var resent = t.Feed(BareTcp.From(c.Key.LocalPort, P, S(2), Ack, options: SegCodec.SackOption((S(4), S(5)))));
        Assert.Equal(new[] { S(2), S(3) }, resent.Select(x => x.Seq));   // the probe was answered: RACK resends 2 and 3
        // Both retransmissions are lost too and nothing sent after them is outstanding. The probe that found them does not
        // count: a probe goes one PTO after the retransmissions (not twice the PTO), and one more, then the RTO.
        Assert.Equal(S(4), Assert.Single(t.Advance(22 * Ms)).Seq);
        Assert.Empty(t.Advance(43 * Ms));
        Assert.Equal(S(4), Assert.Single(t.Advance(1 * Ms)).Seq);
        Assert.Equal(1 + RackRecovery.MaxProbesInRow, t.Layer.Counters.TlpProbes);
        Assert.Equal(0, t.Layer.Counters.Timeouts);
        var rto = t.Advance(210 * Ms);
        Assert.Equal(S(2), rto.First().Seq);
        Assert.Equal(1, t.Layer.Counters.Timeouts);
        Assert.Equal(1 + RackRecovery.MaxProbesInRow, t.Layer.Counters.TlpProbes);
    }

    [Fact]
    public void An_unanswered_probe_gets_one_more_after_twice_the_pto_then_the_rto_acts()
    {
        var (t, c, S) = TwoOfSegmentsAcked(5);
        Assert.Single(t.Advance(22 * Ms));                               // first probe
        Assert.Empty(t.Advance(43 * Ms));                                // the next waits 2 * PTO
        Assert.Equal(S(4), Assert.Single(t.Advance(1 * Ms)).Seq);
        Assert.Equal(RackRecovery.MaxProbesInRow, t.Layer.Counters.TlpProbes);
        Assert.Empty(t.Advance(150 * Ms));                               // no third probe: the RTO, 200 ms after the last probe
        var rto = t.Advance(60 * Ms);
        Assert.Equal(S(2), rto.First().Seq);
        Assert.Equal(1, t.Layer.Counters.Timeouts);
    }
}
