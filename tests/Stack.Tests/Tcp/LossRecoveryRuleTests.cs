using NetStack;
using NetStack.Tcp;
using static NetStack.Tcp.TcpFlags;

namespace Stack.Tests.Tcp;

/// <summary>NewReno loss recovery (RFC 6582) on a bare connection through the recovery interface: crafted ACKs in, retransmissions out.</summary>
public class LossRecoveryRuleTests
{
    private const uint P = BareTcp.PeerIss + 1;
    private const int Mss = 1000;

    [Fact]
    public void Three_duplicate_acks_start_newreno_recovery_a_partial_ack_resends_the_next_hole_and_a_full_ack_ends_it()
    {
        var t = new BareTcp(s => s with { Congestion = CongestionAlgorithm.NewReno });
        var (c, connected, syn) = t.Connect();
        t.Feed(BareTcp.From(syn.SrcPort, BareTcp.PeerIss, syn.Seq + 1, Syn | Ack, options: SegCodec.MssOption(Mss)));
        var us = syn.Seq + 1;
        var port = c.Key.LocalPort;
        Assert.IsType<NewRenoRecovery>(c.Snd.Recovery);   // no SACK negotiated
        Assert.Equal(5, t.Do(now => c.Send(new byte[5 * Mss], now)).Count);

        Assert.Empty(t.Feed(BareTcp.From(port, P, us, Ack)));
        Assert.Empty(t.Feed(BareTcp.From(port, P, us, Ack)));
        var fast = Assert.Single(t.Feed(BareTcp.From(port, P, us, Ack)));   // RFC 5681 3.2: the third duplicate
        Assert.Equal(us, fast.Seq);
        Assert.Equal(Mss, fast.Payload.Length);
        Assert.True(c.Snd.Recovery.InRecovery);
        Assert.Equal(2500u, c.Snd.Ssthresh);                                 // FlightSize / 2
        Assert.Equal(2500u + 3 * Mss, c.Snd.Cwnd);                          // RFC 6582 3.2 step 2
        Assert.Equal(1, t.Layer.Counters.FastRetransmits);

        var next = Assert.Single(t.Feed(BareTcp.From(port, P, us + 2 * Mss, Ack)));  // partial ACK: step 4
        Assert.Equal(us + 2 * Mss, next.Seq);
        Assert.True(c.Snd.Recovery.InRecovery);

        Assert.Empty(t.Feed(BareTcp.From(port, P, us + 5 * Mss, Ack)));    // full ACK: step 3
        Assert.False(c.Snd.Recovery.InRecovery);
        Assert.Equal(2000u, c.Snd.Cwnd);                                     // min(ssthresh, max(FlightSize, SMSS) + SMSS)
    }

    [Theory]
    [InlineData(LossDetection.Rack, typeof(RackRecovery))]
    [InlineData(LossDetection.DupAck, typeof(SackRecovery))]
    public void With_sack_the_setting_chooses_rack_or_sack_recovery(LossDetection detection, Type expected)
    {
        var t = new BareTcp(s => s with { Sack = true, LossDetection = detection });
        var (c, _, syn) = t.Connect();
        Assert.True(syn.SackPermitted);
        t.Feed(BareTcp.From(syn.SrcPort, BareTcp.PeerIss, syn.Seq + 1, Syn | Ack, options: SegCodec.MssOption(Mss).Concat(new byte[] { 1, 1, 4, 2 }).ToArray()));
        Assert.IsType(expected, c.Snd.Recovery);
    }

    [Fact]
    public void Rack_is_the_default_loss_detection() => Assert.Equal(LossDetection.Rack, new TcpSettings().LossDetection);
}
