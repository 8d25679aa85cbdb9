using NetStack;
using NetStack.Tcp;
using static NetStack.Tcp.TcpFlags;

namespace Stack.Tests.Tcp;

/// <summary>
/// BBR's window in a loss episode (Linux's tcp_bbr bbr_set_cwnd_to_recover_or_restore; draft-ietf-ccwg-bbr 4.6.4.4):
/// the first round of recovery holds the flight to what was in flight when the loss was found plus what is delivered
/// (packet conservation: cwnd = max(cwnd, inflight + acked), never less), and PRR (RFC 6937), the window of
/// window-based controls, does not apply: Linux calls tcp_cwnd_reduction only when the control has no cong_control.
/// On a bare connection, on the test's clock: 1000-byte segments, a 10 ms round trip; ACKs that arrive together (one
/// receive batch, one instant) as our loop reads them from the ring.
/// </summary>
public class BbrRecoveryRuleTests
{
    private const uint P = BareTcp.PeerIss + 1;
    private const int Mss = 1000;
    private static readonly TimeSpan Ms = TimeSpan.FromMilliseconds(1);

    /// <summary>
    /// A BBR sender in PROBE_BW with a flight of <see cref="Window"/> bytes from the returned SND.UNA, more data queued:
    /// its first ACK came after 1 ms (the min RTT), every later round took 10 ms and was acknowledged by one ACK (the
    /// peer's window holds the flight), so the flight is many times the model's BDP and its window stands on the ACK
    /// aggregation allowance, as on a fast path whose ACKs come in batches.
    /// </summary>
    private static (BareTcp T, TcpConnection C, uint Una) Flight()
    {
        var t = new BareTcp(s => s with { Sack = true, Congestion = CongestionAlgorithm.Bbr });
        var (c, us) = t.Established(Mss, 10 * Ms, sack: true);
        t.Do(now => c.Send(new byte[1000 * Mss], now));
        t.Advance(Ms);
        t.Feed(BareTcp.From(c.Key.LocalPort, P, us + Mss, Ack, window: Window));
        var bbr = Assert.IsType<BbrCongestionControl>(c.Snd.Cc);
        for (int round = 0; round < 40 && !bbr.FullBandwidthReached; round++)
        {
            t.Advance(10 * Ms);
            t.Feed(BareTcp.From(c.Key.LocalPort, P, c.Snd.Max, Ack, window: Window));
        }
        // DRAIN ends on an ACK that leaves no more than the BDP in flight: the last segment's, alone.
        t.Advance(Ms);
        t.Feed(BareTcp.From(c.Key.LocalPort, P, c.Snd.Max - Mss, Ack, window: Window));
        t.Feed(BareTcp.From(c.Key.LocalPort, P, c.Snd.Max, Ack, window: Window));
        Assert.Equal(BbrState.ProbeBw, bbr.State);
        t.Advance(15 * Ms);
        Assert.Equal(c.Snd.Una + Window, c.Snd.Max); // the peer's window is full
        return (t, c, c.Snd.Una);
    }

    private const ushort Window = 20 * Mss;

    [Fact]
    public void A_batch_of_sacks_that_finds_a_loss_keeps_the_window_at_the_flight_not_the_shrinking_pipe()
    {
        var (t, c, una) = Flight();
        var flight = (int)(c.Snd.Max - una) / Mss;
        Assert.Equal(20, flight);
        // The first segment is lost; SACKs for the others arrive in one batch (the same instant). RACK marks it lost on
        // the third (DupThresh SACKed, no reordering seen): recovery begins with cwnd = inflight + acked.
        uint atEntry = 0;
        var sent = new List<Seg>(); // data segments sent from the ACK that began recovery on
        for (int i = 1; i < flight; i++)
        {
            var replies = t.Feed(BareTcp.From(c.Key.LocalPort, P, una, Ack, window: 60 * Mss, options: SegCodec.SackOption((una + Mss, una + (uint)(i + 1) * Mss))));
            if (atEntry == 0 && c.Snd.RecoveryIfMade!.InRecovery) atEntry = c.Snd.Cwnd;
            if (atEntry == 0) continue;
            sent.AddRange(replies.Where(s => s.Payload.Length > 0));
            Assert.True(c.Snd.Cwnd >= atEntry, $"SACK {i}: cwnd {c.Snd.Cwnd} fell below {atEntry}, its value when recovery began");
        }
        Assert.Equal(1, t.Layer.Counters.FastRetransmits);
        Assert.True(c.Snd.Ssthresh < 5 * Mss, $"ssthresh {c.Snd.Ssthresh}: BBR's BDP, far below the flight (PRR would bring cwnd down to it)");
        Assert.Equal(0, t.Layer.Counters.PrrRecoveries); // PRR is not BBR's
        Assert.True(atEntry >= (flight - 3) * Mss, $"cwnd {atEntry} at entry: the flight then ({flight - 3} segments) and what the ACK delivered");
        // As the pacer lets the sender go (within the batch and after it): the lost segment first, then new data until the
        // pipe is back at the window.
        sent.AddRange(t.Advance(10 * Ms));
        Assert.Equal(una, sent[0].Seq);
        Assert.True(sent.Skip(1).All(s => Seq.Ge(s.Seq, una + (uint)flight * Mss)), "then new data only");
        Assert.Equal(1, t.Layer.Counters.SegmentsRetransmitted);
        Assert.Equal(c.Snd.Cwnd, (uint)c.Snd.RecoveryIfMade!.Pipe());
        Assert.True(c.Snd.Cwnd >= atEntry && sent.Count >= flight - 4, $"cwnd {c.Snd.Cwnd}, {sent.Count} segments sent: the flight is restored, not held to the pipe"); // the batch left 1 in flight
    }

    [Fact]
    public void A_recovery_in_startup_ends_with_the_window_from_before_not_an_unbounded_one()
    {
        // STARTUP has no ssthresh of its own (BBR's is the BDP from DRAIN on): RFC 6937's cwnd = ssthresh at recovery's
        // end made cwnd 4 GiB here, which STARTUP's growth never capped. BBR restores the window it had instead.
        var t = new BareTcp(s => s with { Sack = true, Congestion = CongestionAlgorithm.Bbr });
        var (c, us) = t.Established(Mss, 10 * Ms, sack: true);
        t.Do(now => c.Send(new byte[100 * Mss], now));
        t.Advance(10 * Ms);
        var before = c.Snd.Cwnd;
        var max = c.Snd.Max;
        Assert.Equal(10 * Mss, (int)(max - us));
        for (int i = 2; i <= 10; i++) t.Feed(BareTcp.From(c.Key.LocalPort, P, us, Ack, options: SegCodec.SackOption((us + Mss, us + (uint)i * Mss))));
        Assert.True(c.Snd.RecoveryIfMade!.InRecovery);
        Assert.Equal(BbrState.Startup, Assert.IsType<BbrCongestionControl>(c.Snd.Cc).State);
        t.Advance(2 * Ms);                                  // the lost segment goes again
        t.Feed(BareTcp.From(c.Key.LocalPort, P, c.Snd.Max, Ack)); // all of it acknowledged: recovery is over
        Assert.False(c.Snd.RecoveryIfMade!.InRecovery);
        Assert.InRange(c.Snd.Cwnd, before, before + (uint)(c.Snd.Max - us)); // the window before, grown at most by what was delivered
    }
}
