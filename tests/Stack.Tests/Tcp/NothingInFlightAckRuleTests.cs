using static NetStack.Tcp.TcpFlags;

namespace Stack.Tests.Tcp;

/// <summary>
/// The sender's ACK processing with nothing in flight (TcpSender.OnAck's short path, as Linux's tcp_ack with no packets
/// out): a receiving connection's every data segment acknowledges nothing new, and only the window it carries is taken
/// (RFC 9293 3.10.7.4, SND.WND by SND.WL1/WL2). Crafted segments in, exact replies out.
/// </summary>
public class NothingInFlightAckRuleTests
{
    private const uint P = TcpRig.PeerIss + 1;
    private const int Seg = 1448; // MSS 1460 less the timestamps option

    /// <summary>What Linux offers: MSS, SACK permitted, window scale 7, timestamps (so RACK, as with a kernel peer).</summary>
    private static byte[] LinuxOptions(uint tsVal, uint tsEcr) => SegCodec.MssOption(1460)
        .Concat(new byte[] { 4, 2, 1, 3, 3, 7 }).Concat(SegCodec.TimestampOption(tsVal, tsEcr)).ToArray();

    private static TcpRig Rig() => new(t => t with { Sack = true, Timestamps = true, WindowScaling = true });

    [Fact]
    public void A_receiving_connection_takes_the_window_of_data_segments_that_acknowledge_nothing_new()
    {
        using var rig = Rig();
        var s = rig.ConnectOne(synAckOptions: LinuxOptions(1, 0));
        var us = rig.OurIss + 1;
        // A request (so the sender has its records and recovery: the full path, not the never-sent short path) ...
        var request = s.SendAsync(new byte[100]);
        var sent = rig.Drain();
        rig.H.Run(request);
        var ts = Assert.Single(sent, r => r.Payload.Length == 100).TsVal ?? 0;
        // ... answered with data that acknowledges it and closes the window.
        uint seq = P, tsv = 10;
        rig.Feed(rig.From(seq, us + 100, Ack | Psh, new byte[Seg], window: 0, options: SegCodec.TimestampOption(tsv++, ts)));
        seq += Seg;
        // More data, nothing in flight: the window stays shut, so a send queued now waits.
        rig.Feed(rig.From(seq, us + 100, Ack | Psh, new byte[Seg], window: 0, options: SegCodec.TimestampOption(tsv++, ts)));
        seq += Seg;
        var more = s.SendAsync(new byte[200]);
        Assert.DoesNotContain(rig.Drain(), r => r.Payload.Length > 0);
        rig.H.Run(more);
        // The next data segment acknowledges nothing new and opens the window (100 << 7 bytes): the 200 bytes go at once.
        var replies = rig.Feed(rig.From(seq, us + 100, Ack | Psh, new byte[Seg], window: 100, options: SegCodec.TimestampOption(tsv++, ts)));
        seq += Seg;
        var data = Assert.Single(replies, r => r.Payload.Length > 0);
        Assert.Equal(us + 100, data.Seq);
        Assert.Equal(200, data.Payload.Length);
        Assert.Equal(seq, data.Ack); // and it acknowledges all the data received
    }

    [Fact]
    public void A_window_update_older_than_the_last_one_is_not_taken_with_nothing_in_flight()
    {
        using var rig = Rig();
        var s = rig.ConnectOne(synAckOptions: LinuxOptions(1, 0));
        var us = rig.OurIss + 1;
        var request = s.SendAsync(new byte[100]);
        var ts = rig.Drain().Single(r => r.Payload.Length == 100).TsVal ?? 0;
        rig.H.Run(request);
        // Data up to P + 2 segments, the second one shutting the window.
        rig.Feed(rig.From(P, us + 100, Ack | Psh, new byte[Seg], options: SegCodec.TimestampOption(10, ts)));
        rig.Feed(rig.From(P + Seg, us + 100, Ack | Psh, new byte[Seg], window: 0, options: SegCodec.TimestampOption(11, ts)));
        // A copy of the first segment, delayed in the network, carries the old open window: SND.WL1 is newer, so it is
        // not taken (RFC 9293 3.10.7.4) and a queued send keeps waiting.
        rig.Feed(rig.From(P, us + 100, Ack | Psh, new byte[Seg], options: SegCodec.TimestampOption(11, ts)));
        var more = s.SendAsync(new byte[200]);
        Assert.DoesNotContain(rig.Drain(), r => r.Payload.Length > 0);
        rig.H.Run(more);
    }
}
