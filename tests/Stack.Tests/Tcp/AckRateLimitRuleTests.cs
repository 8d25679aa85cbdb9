using NetStack.Tcp;
using static NetStack.Tcp.TcpFlags;

namespace Stack.Tests.Tcp;

/// <summary>
/// No reflection (AckRateLimit.cs; RFC 5961 4.2 and 7, Linux's tcp_invalid_ratelimit): forged segments a connection
/// refuses draw at most one ACK per 500 ms, a SYN in a synchronized state draws a challenge ACK whatever its sequence
/// number under the same limit, while data keeps its ACKs (RFC 5681 4.2). On a bare connection: crafted segments in,
/// exact segments out.
/// </summary>
public class AckRateLimitRuleTests
{
    private const uint P = BareTcp.PeerIss + 1;

    /// <summary>The ACK of an established connection that sent nothing: &lt;SEQ=SND.NXT&gt;&lt;ACK=RCV.NXT&gt;&lt;CTL=ACK&gt;, the full window.</summary>
    private static void AssertAck(Seg s, uint us, uint rcvNxt)
    {
        Assert.Equal(Ack, s.Flags);
        Assert.Equal(us, s.Seq);
        Assert.Equal(rcvNxt, s.Ack);
        Assert.Empty(s.Payload);
        Assert.Equal(65535, s.Window);
    }

    [Fact]
    public void Two_thousand_forged_segments_outside_the_window_draw_one_ack_per_500_ms()
    {
        var t = new BareTcp();
        var (c, us) = t.Open();
        var port = c.Key.LocalPort;
        var acks = new List<(TimeSpan At, Seg Ack)>();
        var start = t.Now;
        for (int i = 0; i < 2000; i++)
        {
            // Beyond the right edge, or an old duplicate below RCV.NXT: both unacceptable (RFC 9293 3.10.7.4), no data.
            var seq = i % 2 == 0 ? P + 70_000 + (uint)i * 13 : unchecked(P - 5000 - (uint)i);
            acks.AddRange(t.Feed(BareTcp.From(port, seq, us, Ack)).Select(a => (t.Now - start, a)));
            Assert.Empty(t.Advance(TimeSpan.FromMilliseconds(1)));
        }
        Assert.Equal(new[] { 0, 500, 1000, 1500 }, acks.Select(a => (int)a.At.TotalMilliseconds));
        Assert.All(acks, a => AssertAck(a.Ack, us, P));
        Assert.Equal(1996, t.Layer.Counters.InvalidAcksSuppressed);
        Assert.Equal(TcpState.Established, c.State);
    }

    [Fact]
    public void A_syn_in_established_gets_one_challenge_ack_whatever_its_sequence_number()
    {
        var t = new BareTcp();
        var (c, us) = t.Open();
        var port = c.Key.LocalPort;
        // RFC 5961 4.2: far outside the window, still a challenge ACK (not the unacceptable-segment ACK) ...
        AssertAck(Assert.Single(t.Feed(BareTcp.From(port, P + 3_000_000, 0, Syn))), us, P);
        Assert.Equal(1, t.Layer.Counters.ChallengeAcksSent);
        // ... and one per 500 ms: a second SYN, in the window this time, gets nothing yet.
        Assert.Empty(t.Feed(BareTcp.From(port, P + 10, 0, Syn)));
        Assert.Empty(t.Advance(TimeSpan.FromMilliseconds(499)));
        Assert.Empty(t.Feed(BareTcp.From(port, unchecked(P - 10), 0, Syn)));
        Assert.Equal(2, t.Layer.Counters.ChallengeAcksSuppressed);
        t.Advance(TimeSpan.FromMilliseconds(1));
        AssertAck(Assert.Single(t.Feed(BareTcp.From(port, P + 10, 0, Syn | Ack))), us, P);
        Assert.Equal(2, t.Layer.Counters.ChallengeAcksSent);
        Assert.Equal(TcpState.Established, c.State);
        Assert.Equal(0, t.Layer.Counters.ResetsSent);
    }

    [Fact]
    public void Out_of_order_data_in_the_window_still_gets_its_duplicate_ack_at_once_while_forged_acks_are_limited()
    {
        var t = new BareTcp();
        var (c, us) = t.Open();
        var port = c.Key.LocalPort;
        AssertAck(Assert.Single(t.Feed(BareTcp.From(port, P + 80_000, us, Ack))), us, P); // uses this 500 ms
        Assert.Empty(t.Feed(BareTcp.From(port, P + 80_001, us, Ack)));

        // RFC 5681 4.2: each out-of-order segment is acknowledged at once, however many and however close.
        for (int i = 1; i <= 3; i++)
        {
            var dup = Assert.Single(t.Feed(BareTcp.From(port, P + 100u * (uint)i, us, Ack, new byte[100])));
            Assert.Equal(P, dup.Ack);
            Assert.Equal(us, dup.Seq);
        }
        // Data below the window (a retransmission of what we have) is acknowledged too: the sender needs that ACK.
        var old = Assert.Single(t.Feed(BareTcp.From(port, P - 100, us, Ack, new byte[100])));
        Assert.Equal(P, old.Ack);
        // The hole fills: one ACK at once for everything (RFC 5681 4.2).
        var filled = Assert.Single(t.Feed(BareTcp.From(port, P, us, Ack, new byte[100])));
        Assert.Equal(P + 400, filled.Ack);
        Assert.Equal(1, t.Layer.Counters.InvalidAcksSuppressed);
    }

    [Fact]
    public void A_challenge_ack_and_the_ack_for_a_forged_segment_share_one_limit()
    {
        var t = new BareTcp();
        var (c, us) = t.Open();
        var port = c.Key.LocalPort;
        AssertAck(Assert.Single(t.Feed(BareTcp.From(port, P + 10, 0, Rst))), us, P);       // RFC 5961 3.2: in window, not exact
        Assert.Empty(t.Feed(BareTcp.From(port, P + 90_000, us, Ack)));                      // out of window: limited
        Assert.Empty(t.Feed(BareTcp.From(port, P, us + 5000, Ack)));                        // RFC 5961 5.2: ACK of unsent data
        Assert.Equal(1, t.Layer.Counters.InvalidAcksSuppressed);
        Assert.Equal(1, t.Layer.Counters.ChallengeAcksSuppressed);
        t.Advance(TimeSpan.FromMilliseconds(500));
        AssertAck(Assert.Single(t.Feed(BareTcp.From(port, P, us + 5000, Ack))), us, P);
        Assert.Equal(TcpState.Established, c.State);
    }
}
