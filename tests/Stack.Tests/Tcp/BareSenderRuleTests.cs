using NetStack.Tcp;
using static NetStack.Tcp.TcpFlags;

namespace Stack.Tests.Tcp;

/// <summary>
/// The sender's short path while it has sent no data (TcpSender.Bare.cs): the FIN of a connection that sent nothing is
/// retransmitted at the RTO (RFC 6298 5.4, RFC 9293 3.10.4) and its ACK ends FIN-WAIT-1; a connection that goes on to
/// send after the handshake's ACK took the short path recovers losses as usual. Crafted segments in, exact replies out.
/// </summary>
public class BareSenderRuleTests
{
    private const uint P = TcpRig.PeerIss + 1;

    /// <summary>What Linux offers: MSS, SACK permitted, window scale, timestamps (so RACK, as with a kernel peer).</summary>
    private static byte[] LinuxOptions(uint tsVal, uint tsEcr) => SegCodec.MssOption(1460)
        .Concat(new byte[] { 4, 2, 1, 3, 3, 7 }).Concat(SegCodec.TimestampOption(tsVal, tsEcr)).ToArray();

    private static TcpRig Rig() => new(t => t with { Sack = true, Timestamps = true, WindowScaling = true });

    [Fact]
    public void A_lost_fin_of_a_connection_that_sent_nothing_is_sent_again_at_the_rto_and_its_ack_ends_fin_wait_1()
    {
        using var rig = Rig();
        var s = rig.ConnectOne(synAckOptions: LinuxOptions(1, 0));
        var us = rig.OurIss + 1;
        s.Dispose(); // close in the background, as close(2)
        var fin = Assert.Single(rig.Drain());
        Assert.Equal(Fin | Ack, fin.Flags);
        Assert.Equal(us, fin.Seq);
        Assert.Equal(TcpState.FinWait1, s.State);

        // The FIN is lost: the retransmission timer sends it again, with the same sequence number, and backs off.
        var again = rig.Advance(TimeSpan.FromSeconds(1.5));
        Assert.NotEmpty(again);
        Assert.All(again, r => { Assert.Equal(Fin | Ack, r.Flags); Assert.Equal(us, r.Seq); });
        var info = rig.H.Run(s.GetInfoAsync());
        Assert.True(info.Tcp!.Retransmits >= 1, $"{info.Tcp.Retransmits} retransmissions counted");

        rig.FeedNone(rig.From(P, us + 1, Ack, options: SegCodec.TimestampOption(2, fin.TsVal ?? 0)));
        Assert.Equal(TcpState.FinWait2, s.State);
        var last = rig.FeedOne(rig.From(P, us + 1, Fin | Ack, options: SegCodec.TimestampOption(3, fin.TsVal ?? 0)));
        Assert.Equal(P + 1, last.Ack);
        Assert.Equal(TcpState.TimeWait, s.State);
        Assert.Empty(rig.Advance(TimeSpan.FromSeconds(10))); // nothing more outstanding: no timer resends anything
    }

    [Fact]
    public void An_accepted_connection_whose_handshake_ack_took_the_short_path_fast_retransmits_a_lost_segment()
    {
        using var rig = Rig();
        var s = rig.AcceptOne(synOptions: LinuxOptions(1, 0));
        var us = rig.OurIss + 1;
        const int Seg = 1448; // MSS 1460 less the timestamps option
        var send = s.SendAsync(new byte[4 * Seg]);
        var sent = rig.Drain();
        rig.H.Run(send);
        Assert.Equal(4, sent.Count(r => r.Payload.Length == Seg));
        // The first segment is lost: three ACKs SACKing the rest.
        var ts = sent[^1].TsVal ?? 0;
        var replies = new List<Seg>();
        for (uint i = 1; i <= 3; i++)
        {
            var sack = SegCodec.SackOption((us + Seg, us + Seg * (i + 1)));
            replies.AddRange(rig.Feed(rig.From(P, us, Ack, options: sack.Concat(SegCodec.TimestampOption(10, ts)).ToArray())));
        }
        Assert.Contains(replies, r => r.Seq == us && r.Payload.Length == Seg); // resent without waiting for the RTO
    }

    [Fact]
    public void A_snapshot_of_a_connection_that_only_receives_keeps_its_sender_on_the_short_path()
    {
        using var rig = Rig();
        var s = rig.ConnectOne(synAckOptions: LinuxOptions(1, 0));
        var us = rig.OurIss + 1;
        const int Seg = 1448;
        var data = new byte[Seg];
        uint seq = P;
        var acks = new List<Seg>();
        for (int i = 0; i < 4; i++, seq += Seg) acks.AddRange(rig.Feed(rig.From(seq, us, Ack | Psh, data, options: SegCodec.TimestampOption(10u + (uint)i, 1))));
        var row = rig.Row(s); // a snapshot (Get-NetStackConnection, the bench's window samples) reads the recovery's figures
        Assert.Equal("rack", row.Tcp!.LossRecovery);
        for (int i = 0; i < 4; i++, seq += Seg) acks.AddRange(rig.Feed(rig.From(seq, us, Ack | Psh, data, options: SegCodec.TimestampOption(20u + (uint)i, 1))));
        // Nothing was sent but the SYN: no transmit records, no loss recovery (every ACK of the peer's data takes OnAckBare).
        Assert.Null(s.Tcb.Snd.SentIfMade);
        Assert.Null(s.Tcb.Snd.RecoveryIfMade);
        acks.AddRange(rig.Drain());
        acks.AddRange(rig.Advance(TimeSpan.FromMilliseconds(500)));
        Assert.Equal(seq, acks.Max(r => r.Ack)); // and all of it acknowledged
    }
}
