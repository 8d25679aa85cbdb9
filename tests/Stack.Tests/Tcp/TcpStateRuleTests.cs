using NetStack;
using NetStack.Sockets;
using NetStack.Tcp;
using static NetStack.Tcp.TcpFlags;

namespace Stack.Tests.Tcp;

/// <summary>Synchronized states: data, ACK policy, RFC 5961, closing (RFC 9293 3.10.7.4): crafted segment in, exact reply out.</summary>
public class TcpStateRuleTests
{
    private const uint P = TcpRig.PeerIss + 1; // the peer's next sequence number after its SYN

    /// <summary>A challenge ACK (RFC 5961): &lt;SEQ=SND.NXT&gt;&lt;ACK=RCV.NXT&gt;&lt;CTL=ACK&gt; and nothing else.</summary>
    private static void AssertChallengeAck(Seg r, uint sndNxt, uint rcvNxt)
    {
        Assert.Equal(Ack, r.Flags);
        Assert.Equal(sndNxt, r.Seq);
        Assert.Equal(rcvNxt, r.Ack);
        Assert.Empty(r.Payload);
    }

    private static byte[] Bytes(int n, byte start = 1) => Enumerable.Range(0, n).Select(i => (byte)(start + i)).ToArray();

    [Fact]
    public void One_segment_is_acknowledged_after_the_delayed_ack_timer()
    {
        using var rig = new TcpRig();
        rig.AcceptOne();
        var us = rig.OurIss + 1;
        rig.FeedNone(rig.From(P, us, Ack | Psh, Bytes(100)));
        Assert.Empty(rig.Advance(TimeSpan.FromMilliseconds(39)));
        var ack = Assert.Single(rig.Advance(TimeSpan.FromMilliseconds(1)));
        Assert.Equal(Ack, ack.Flags);
        Assert.Equal(us, ack.Seq);
        Assert.Equal(P + 100, ack.Ack);
        Assert.Equal(65535 - 100, ack.Window); // 100 bytes wait unread in a 64 KiB buffer
    }

    [Fact]
    public void Every_second_full_segment_is_acknowledged_at_once()
    {
        using var rig = new TcpRig();
        rig.AcceptOne();
        var us = rig.OurIss + 1;
        rig.FeedNone(rig.From(P, us, Ack, Bytes(1460)));
        var ack = rig.FeedOne(rig.From(P + 1460, us, Ack, Bytes(1460)));
        Assert.Equal(P + 2920, ack.Ack);
    }

    [Fact]
    public void Out_of_order_segment_gets_an_immediate_duplicate_ack_with_sack_and_the_fill_acks_everything()
    {
        using var rig = new TcpRig(t => t with { Sack = true });
        var s = rig.AcceptOne(synOptions: SegCodec.MssOption(1460).Concat(new byte[] { 1, 1, 4, 2 }).ToArray());
        var us = rig.OurIss + 1;
        var dup = rig.FeedOne(rig.From(P + 1000, us, Ack, Bytes(500)));
        Assert.Equal(P, dup.Ack);
        Assert.Equal(new[] { (P + 1000, P + 1500) }, dup.Sack);
        var fill = rig.FeedOne(rig.From(P, us, Ack, Bytes(1000)));
        Assert.Equal(P + 1500, fill.Ack);
        Assert.Empty(fill.Sack);
        var buf = new byte[4000];
        var n = rig.H.Run(s.ReceiveAsync(buf).AsTask());
        Assert.Equal(1500, n);
        Assert.Equal(Bytes(1000), buf[..1000]);
        Assert.Equal(Bytes(500), buf[1000..1500]);
        Assert.Equal(1, rig.Counter("OutOfOrderSegments"));
    }

    [Fact]
    public void Overlapping_retransmission_is_trimmed_to_the_new_bytes()
    {
        using var rig = new TcpRig();
        var s = rig.AcceptOne();
        var us = rig.OurIss + 1;
        rig.FeedNone(rig.From(P, us, Ack, Bytes(100)));
        rig.Feed(rig.From(P + 50, us, Ack, Bytes(100, 51))); // bytes 50..149, of which 50..99 are old
        var buf = new byte[400];
        var n = rig.H.Run(s.ReceiveAsync(buf).AsTask());
        Assert.Equal(150, n);
        Assert.Equal(Bytes(150), buf[..150]);
    }

    [Fact]
    public void Old_duplicate_and_out_of_window_segments_get_an_ack_and_are_dropped()
    {
        using var rig = new TcpRig();
        rig.AcceptOne();
        var us = rig.OurIss + 1;
        var old = rig.FeedOne(rig.From(P - 200, us, Ack, Bytes(100)));
        Assert.Equal(Ack, old.Flags);
        Assert.Equal(us, old.Seq);
        Assert.Equal(P, old.Ack);
        var beyond = rig.FeedOne(rig.From(P + 70000, us, Ack, Bytes(10)));
        Assert.Equal(P, beyond.Ack);
    }

    [Fact]
    public void Rst_with_exact_sequence_resets_the_connection()
    {
        using var rig = new TcpRig();
        var s = rig.AcceptOne();
        var recv = s.ReceiveAsync(new byte[10]).AsTask();
        rig.Drain();
        rig.FeedNone(rig.From(P, 0, Rst));
        var ex = Assert.Throws<StackException>(() => rig.H.Run(recv));
        Assert.Equal(StackError.ConnectionReset, ex.Error);
        Assert.Equal(TcpState.Closed, s.State);
        Assert.Equal(1, rig.Counter("EstablishedResets"));
    }

    [Fact]
    public void Rst_in_window_but_not_exact_gets_a_challenge_ack_rfc5961()
    {
        using var rig = new TcpRig();
        var s = rig.AcceptOne();
        AssertChallengeAck(rig.FeedOne(rig.From(P + 10, 0, Rst)), rig.OurIss + 1, P);
        Assert.Equal(TcpState.Established, s.State);
        Assert.Equal(1, rig.Counter("ChallengeAcksSent"));
    }

    [Fact]
    public void Rst_outside_the_window_is_dropped_silently()
    {
        using var rig = new TcpRig();
        var s = rig.AcceptOne();
        rig.FeedNone(rig.From(P + 100_000, 0, Rst));
        rig.FeedNone(rig.From(P - 1, 0, Rst));
        Assert.Equal(TcpState.Established, s.State);
    }

    [Fact]
    public void Ack_of_unsent_data_or_far_below_the_window_gets_a_challenge_ack_and_is_dropped()
    {
        using var rig = new TcpRig();
        var s = rig.AcceptOne();
        var us = rig.OurIss + 1;
        AssertChallengeAck(rig.FeedOne(rig.From(P, us + 1000, Ack, Bytes(10))), us, P); // the data was not taken
        rig.Advance(TimeSpan.FromMilliseconds(500)); // one challenge ACK per Tcp.InvalidAckInterval per connection
        var r2 = rig.FeedOne(rig.From(P, us - 200_000, Ack));
        Assert.Equal(P, r2.Ack);
        Assert.Equal(2, rig.Counter("ChallengeAcksSent"));
        Assert.Equal(0, rig.Row(s).RecvQ);
    }

    [Fact]
    public void Challenge_acks_are_rate_limited_across_the_stack()
    {
        // The stack-wide budget alone (RFC 5961 7); the per-connection limit is off here (AckRateLimitRuleTests).
        using var rig = new TcpRig(t => t with { ChallengeAcksPerSecond = 2, InvalidAckInterval = TimeSpan.Zero });
        rig.AcceptOne();
        rig.FeedOne(rig.From(P + 10, 0, Rst));
        rig.FeedOne(rig.From(P + 11, 0, Rst));
        rig.FeedNone(rig.From(P + 12, 0, Rst));
        Assert.Equal(1, rig.Counter("ChallengeAcksSuppressed"));
    }

    [Fact]
    public void Fin_is_acknowledged_at_once_and_reads_then_return_zero()
    {
        using var rig = new TcpRig();
        var s = rig.AcceptOne();
        var us = rig.OurIss + 1;
        var ack = rig.FeedOne(rig.From(P, us, Fin | Ack, Bytes(3)));
        Assert.Equal(Ack, ack.Flags);
        Assert.Equal(P + 4, ack.Ack);
        Assert.Equal(TcpState.CloseWait, s.State);
        var buf = new byte[10];
        Assert.Equal(3, rig.H.Run(s.ReceiveAsync(buf).AsTask()));
        Assert.Equal(0, rig.H.Run(s.ReceiveAsync(buf).AsTask()));
    }

    [Fact]
    public void Fin_arriving_before_a_hole_is_taken_when_the_hole_fills()
    {
        using var rig = new TcpRig();
        var s = rig.AcceptOne();
        var us = rig.OurIss + 1;
        Assert.Equal(P, rig.FeedOne(rig.From(P + 100, us, Fin | Ack, Bytes(50))).Ack);
        Assert.Equal(TcpState.Established, s.State);
        var ack = rig.FeedOne(rig.From(P, us, Ack, Bytes(100)));
        Assert.Equal(P + 151, ack.Ack); // the data, the held data and the FIN
        Assert.Equal(TcpState.CloseWait, s.State);
    }

    [Fact]
    public void Passive_close_goes_close_wait_last_ack_closed()
    {
        using var rig = new TcpRig();
        var s = rig.AcceptOne();
        var us = rig.OurIss + 1;
        rig.FeedOne(rig.From(P, us, Fin | Ack));
        var close = s.CloseAsync();
        var fin = rig.Drain().Single();
        Assert.Equal(Fin | Ack, fin.Flags);
        Assert.Equal(us, fin.Seq);
        Assert.Equal(P + 1, fin.Ack);
        Assert.Equal(TcpState.LastAck, s.State);
        rig.FeedNone(rig.From(P + 1, us + 1, Ack));
        rig.H.Run(close);
        Assert.Equal(TcpState.Closed, s.State);
        Assert.DoesNotContain(rig.H.Run(rig.Stack.GetConnectionsAsync()), r => r.Id == s.Id);
    }

    [Fact]
    public void Active_close_goes_fin_wait_to_time_wait_and_is_gone_after_two_msl()
    {
        using var rig = new TcpRig(t => t with { Msl = TimeSpan.FromSeconds(30) });
        var s = rig.AcceptOne();
        var us = rig.OurIss + 1;
        var close = s.CloseAsync();
        var fin = rig.Drain().Single();
        Assert.Equal(Fin | Ack, fin.Flags);
        Assert.Equal(TcpState.FinWait1, s.State);
        rig.FeedNone(rig.From(P, us + 1, Ack));
        Assert.Equal(TcpState.FinWait2, s.State);
        rig.H.Run(close);
        var ack = rig.FeedOne(rig.From(P, us + 1, Fin | Ack));
        Assert.Equal(P + 1, ack.Ack);
        Assert.Equal(us + 1, ack.Seq);
        Assert.Equal(TcpState.TimeWait, s.State);
        Assert.Equal("TimeWait", rig.Row(s).State);
        // A retransmitted FIN in TIME-WAIT is acknowledged again.
        rig.Advance(TimeSpan.FromSeconds(10));
        Assert.Equal(P + 1, rig.FeedOne(rig.From(P, us + 1, Fin | Ack)).Ack);
        rig.Advance(TimeSpan.FromSeconds(59));
        Assert.Equal(TcpState.TimeWait, s.State); // the FIN restarted the 60 s
        rig.Advance(TimeSpan.FromSeconds(1.1));
        Assert.Equal(TcpState.Closed, s.State);
        Assert.DoesNotContain(rig.H.Run(rig.Stack.GetConnectionsAsync()), r => r.Id == s.Id);
    }

    [Fact]
    public void A_new_syn_beyond_the_old_sequence_space_reopens_a_pair_in_time_wait()
    {
        using var rig = new TcpRig();
        var s = Reach(rig, TcpState.TimeWait);
        var synAck = rig.FeedOne(rig.From(P + 100_000, 0, Syn));
        Assert.Equal(Syn | Ack, synAck.Flags);
        Assert.Equal(P + 100_001, synAck.Ack);
        Assert.Equal(TcpState.Closed, s.State);
    }

    [Fact]
    public void An_old_syn_does_not_reopen_a_pair_in_time_wait()
    {
        using var rig = new TcpRig();
        var s = Reach(rig, TcpState.TimeWait);
        var r = rig.FeedOne(rig.From(P - 1000, 0, Syn));
        Assert.Equal(Ack, r.Flags);
        Assert.Equal(P + 1, r.Ack);
        Assert.Equal(TcpState.TimeWait, s.State);
    }

    [Fact]
    public void Simultaneous_close_passes_through_closing()
    {
        using var rig = new TcpRig();
        var s = rig.AcceptOne();
        var us = rig.OurIss + 1;
        s.ShutdownSend();
        Assert.Equal(Fin | Ack, rig.Drain().Single().Flags);
        var ack = rig.FeedOne(rig.From(P, us, Fin | Ack)); // their FIN crossed ours: it does not acknowledge our FIN
        Assert.Equal(P + 1, ack.Ack);
        Assert.Equal(TcpState.Closing, s.State);
        rig.FeedNone(rig.From(P + 1, us + 1, Ack));
        Assert.Equal(TcpState.TimeWait, s.State);
    }

    [Fact]
    public void Abort_sends_rst_and_fails_pending_operations()
    {
        using var rig = new TcpRig();
        var s = rig.AcceptOne();
        var recv = s.ReceiveAsync(new byte[10]).AsTask();
        rig.Drain();
        s.Abort();
        var rst = rig.Drain().Single();
        Assert.Equal(Rst, rst.Flags);
        Assert.Equal(rig.OurIss + 1, rst.Seq);
        var ex = Assert.Throws<StackException>(() => rig.H.Run(recv));
        Assert.Equal(StackError.ConnectionAborted, ex.Error);
    }

    [Fact]
    public void Close_with_unread_data_resets_rfc2525()
    {
        using var rig = new TcpRig();
        var s = rig.AcceptOne();
        rig.FeedNone(rig.From(P, rig.OurIss + 1, Ack, Bytes(10)));
        rig.H.Run(s.CloseAsync());
        var rst = Assert.Single(rig.H.Device.Sent.Select(SegCodec.Parse).OfType<Seg>());
        Assert.Equal(Rst, rst.Flags);
        Assert.Equal(rig.OurIss + 1, rst.Seq);
        Assert.Equal(TcpState.Closed, s.State);
    }

    [Fact]
    public void Data_is_cut_at_the_peer_mss_and_nagle_holds_the_runt_until_acked()
    {
        using var rig = new TcpRig();
        var s = rig.AcceptOne(mss: 1000);
        var us = rig.OurIss + 1;
        rig.H.Run(s.SendAsync(Bytes(2500)));
        var segs = rig.H.Device.Sent.Select(SegCodec.Parse).OfType<Seg>().ToList();
        Assert.Equal(new[] { 1000, 1000 }, segs.Select(x => x.Payload.Length));
        Assert.Equal(new[] { us, us + 1000 }, segs.Select(x => x.Seq));
        var tail = rig.FeedOne(rig.From(P, us + 2000, Ack));
        Assert.Equal(500, tail.Payload.Length);
        Assert.Equal(us + 2000, tail.Seq);
        Assert.Equal(Ack | Psh, tail.Flags);
    }

    [Fact]
    public void NoDelay_sends_the_runt_at_once()
    {
        using var rig = new TcpRig();
        var s = rig.AcceptOne(mss: 1000);
        s.NoDelay = true;
        rig.H.Run(s.SendAsync(Bytes(2500)));
        var segs = rig.H.Device.Sent.Select(SegCodec.Parse).OfType<Seg>().ToList();
        Assert.Equal(new[] { 1000, 1000, 500 }, segs.Select(x => x.Payload.Length));
    }

    [Fact]
    public void Unacknowledged_data_is_retransmitted_after_the_rto_with_backoff()
    {
        using var rig = new TcpRig();
        var s = rig.AcceptOne();
        var us = rig.OurIss + 1;
        rig.H.Run(s.SendAsync(Bytes(100)));
        Assert.Empty(rig.Advance(TimeSpan.FromMilliseconds(199)));
        var r1 = Assert.Single(rig.Advance(TimeSpan.FromMilliseconds(1))); // min RTO 200 ms
        Assert.Equal(us, r1.Seq);
        Assert.Equal(100, r1.Payload.Length);
        Assert.Empty(rig.Advance(TimeSpan.FromMilliseconds(399)));
        Assert.Single(rig.Advance(TimeSpan.FromMilliseconds(1))); // doubled
        Assert.Equal(2, rig.Row(s).Tcp!.Retransmits);
    }

    [Fact]
    public void Acks_and_fast_retransmit_still_work_after_two_gigabytes_have_gone_by()
    {
        using var rig = new TcpRig();
        var s = rig.AcceptOne(mss: 1000);
        var us = rig.OurIss + 1;
        // Pretend the connection is old: SND.UNA is now more than 2^31 past the ISS (sequence numbers wrap).
        rig.H.Run(rig.Stack.InvokeAsync(_ => { s.Tcb.Iss = us - 0x8000_0010; }));
        rig.H.Run(s.SendAsync(Bytes(4000)));
        rig.FeedNone(rig.From(P, us + 1000, Ack));
        Assert.Equal(us + 1000, rig.Row(s).Tcp!.SndUna);
        rig.FeedNone(rig.From(P, us + 1000, Ack));
        rig.FeedNone(rig.From(P, us + 1000, Ack));
        var rx = rig.FeedOne(rig.From(P, us + 1000, Ack));
        Assert.Equal(us + 1000, rx.Seq);
        Assert.Equal(3000, rig.Row(s).SendQ);
    }

    [Fact]
    public void Three_duplicate_acks_trigger_fast_retransmit()
    {
        using var rig = new TcpRig();
        var s = rig.AcceptOne(mss: 1000);
        var us = rig.OurIss + 1;
        rig.H.Run(s.SendAsync(Bytes(5000)));
        Assert.Equal(5, rig.H.Device.Sent.Count);
        rig.FeedNone(rig.From(P, us, Ack));
        rig.FeedNone(rig.From(P, us, Ack));
        var rx = rig.FeedOne(rig.From(P, us, Ack));
        Assert.Equal(us, rx.Seq);
        Assert.Equal(1000, rx.Payload.Length);
        Assert.Equal(1, rig.Counter("FastRetransmits"));
    }

    [Fact]
    public void Zero_window_holds_data_and_the_persist_timer_probes()
    {
        using var rig = new TcpRig();
        var s = rig.AcceptOne(mss: 1000);
        var us = rig.OurIss + 1;
        rig.FeedNone(rig.From(P, us, Ack, window: 0));
        rig.H.Run(s.SendAsync(Bytes(100)));
        Assert.Empty(rig.H.Device.Sent.Select(SegCodec.Parse).OfType<Seg>());
        var probe = Assert.Single(rig.Advance(TimeSpan.FromMilliseconds(200)));
        Assert.Equal(us - 1, probe.Seq);
        Assert.Empty(probe.Payload);
        var data = rig.FeedOne(rig.From(P, us, Ack, window: 1000)); // the window opens
        Assert.Equal(us, data.Seq);
        Assert.Equal(100, data.Payload.Length);
        Assert.Equal(1, rig.Counter("ZeroWindowProbes"));
    }

    [Fact]
    public void A_probe_with_data_into_a_closed_window_gets_an_ack_with_the_zero_window()
    {
        using var rig = new TcpRig(t => t with { ReceiveBufferSize = 4096 });
        var s = rig.AcceptOne();
        var us = rig.OurIss + 1;
        rig.FeedNone(rig.From(P, us, Ack, Bytes(2048)));
        var full = rig.FeedOne(rig.From(P + 2048, us, Ack, Bytes(2048)));
        Assert.Equal(0, full.Window);
        var probe = rig.FeedOne(rig.From(P + 4096, us, Ack, Bytes(1)));
        Assert.Equal(P + 4096, probe.Ack);
        Assert.Equal(0, probe.Window);
        rig.H.Run(s.ReceiveAsync(new byte[4096]).AsTask());
        var update = rig.H.Device.Sent.Select(SegCodec.Parse).OfType<Seg>().Last(); // reading reopened the window
        Assert.Equal(4096, update.Window);
    }

    [Fact]
    public void A_window_too_small_to_fill_is_used_when_the_persist_timer_fires()
    {
        using var rig = new TcpRig();
        var s = rig.AcceptOne(mss: 1000);
        var us = rig.OurIss + 1;
        rig.FeedNone(rig.From(P, us, Ack, window: 100)); // far below half of the 65535 offered before
        rig.H.Run(s.SendAsync(Bytes(500)));
        Assert.Empty(rig.H.Device.Sent.Select(SegCodec.Parse).OfType<Seg>()); // sender SWS avoidance holds the runt
        var forced = Assert.Single(rig.Advance(TimeSpan.FromMilliseconds(200)));
        Assert.Equal(us, forced.Seq);
        Assert.Equal(100, forced.Payload.Length);
    }

    [Fact]
    public void Window_scale_applies_to_the_peers_window_after_the_handshake()
    {
        using var rig = new TcpRig(t => t with { WindowScaling = true });
        var s = rig.AcceptOne(synOptions: SegCodec.MssOption(1460).Concat(new byte[] { 1, 3, 3, 4 }).ToArray());
        rig.FeedNone(rig.From(P, rig.OurIss + 1, Ack, window: 100));
        Assert.Equal(1600u, rig.Row(s).Tcp!.SndWnd);
        Assert.Equal(4, rig.Row(s).Tcp!.SndWindowScale);
    }

    [Fact]
    public void Paws_drops_a_segment_with_an_old_timestamp()
    {
        using var rig = new TcpRig(t => t with { Timestamps = true });
        var s = rig.AcceptOne(synOptions: SegCodec.MssOption(1460).Concat(SegCodec.TimestampOption(1000, 0)).ToArray());
        var us = rig.OurIss + 1;
        rig.FeedNone(rig.From(P, us, Ack, Bytes(10), options: SegCodec.TimestampOption(2000, 0)));
        var r = rig.FeedOne(rig.From(P + 10, us, Ack, Bytes(10), options: SegCodec.TimestampOption(1500, 0)));
        Assert.Equal(P + 10, r.Ack); // not taken
        Assert.Equal(2000u, r.TsEcr);
        Assert.Equal(1, rig.Counter("PawsRejected"));
        Assert.Equal(10, rig.Row(s).RecvQ);
    }

    [Fact]
    public void Keepalive_probes_then_times_out()
    {
        using var rig = new TcpRig(t => t with { KeepaliveIdle = TimeSpan.FromSeconds(10), KeepaliveInterval = TimeSpan.FromSeconds(1), KeepaliveProbes = 2 });
        var s = rig.AcceptOne();
        s.Keepalive = true;
        var recv = s.ReceiveAsync(new byte[10]).AsTask();
        rig.Drain();
        var probe = Assert.Single(rig.Advance(TimeSpan.FromSeconds(10)));
        Assert.Equal(rig.OurIss, probe.Seq); // SND.UNA - 1
        Assert.Equal(Ack, probe.Flags);
        rig.Advance(TimeSpan.FromSeconds(2.5));
        var ex = Assert.Throws<StackException>(() => rig.H.Run(recv));
        Assert.Equal(StackError.TimedOut, ex.Error);
    }

    [Fact]
    public void Keepalive_answered_keeps_the_connection()
    {
        using var rig = new TcpRig(t => t with { KeepaliveIdle = TimeSpan.FromSeconds(10), KeepaliveInterval = TimeSpan.FromSeconds(1), KeepaliveProbes = 2 });
        var s = rig.AcceptOne();
        s.Keepalive = true;
        rig.Drain();
        Assert.Single(rig.Advance(TimeSpan.FromSeconds(10)));
        rig.FeedNone(rig.From(P, rig.OurIss + 1, Ack));
        rig.Advance(TimeSpan.FromSeconds(5));
        Assert.Equal(TcpState.Established, s.State);
    }

    [Fact]
    public void Fragmentation_needed_lowers_the_mss_rfc1191()
    {
        using var rig = new TcpRig();
        var s = rig.AcceptOne();
        rig.H.Run(s.SendAsync(Bytes(1460)));
        var resent = rig.FeedIcmpUnreachable(4, rig.H.Device.Sent[^1], nextHopMtu: 1000);
        Assert.Equal(960, rig.Row(s).Tcp!.Mss);
        Assert.Equal(960, resent[0].Payload.Length);
        Assert.Equal(1, rig.Counter("PathMtuUpdates"));
    }

    /// <summary>Brings an accepted connection to <paramref name="state"/> by scripted segments; returns the socket.</summary>
    private static TcpSocket Reach(TcpRig rig, TcpState state)
    {
        var s = rig.AcceptOne();
        var us = rig.OurIss + 1;
        switch (state)
        {
            case TcpState.Established:
                break;
            case TcpState.CloseWait:
                rig.FeedOne(rig.From(P, us, Fin | Ack));
                break;
            case TcpState.LastAck:
                rig.FeedOne(rig.From(P, us, Fin | Ack));
                s.ShutdownSend();
                rig.Drain();
                break;
            case TcpState.FinWait1:
                s.ShutdownSend();
                rig.Drain();
                break;
            case TcpState.FinWait2:
                s.ShutdownSend();
                rig.Drain();
                rig.FeedNone(rig.From(P, us + 1, Ack));
                break;
            case TcpState.Closing:
                s.ShutdownSend();
                rig.Drain();
                rig.FeedOne(rig.From(P, us, Fin | Ack));
                break;
            case TcpState.TimeWait:
                s.ShutdownSend();
                rig.Drain();
                rig.FeedNone(rig.From(P, us + 1, Ack));
                rig.FeedOne(rig.From(P, us + 1, Fin | Ack));
                break;
        }
        Assert.Equal(state, s.State);
        return s;
    }

    /// <summary>RCV.NXT of the connection Reach built: one more once the peer's FIN has been taken.</summary>
    private static uint RcvNxt(TcpState state) => state is TcpState.CloseWait or TcpState.LastAck or TcpState.Closing or TcpState.TimeWait ? P + 1 : P;

    [Theory]
    [InlineData(TcpState.Established)]
    [InlineData(TcpState.FinWait1)]
    [InlineData(TcpState.FinWait2)]
    [InlineData(TcpState.CloseWait)]
    [InlineData(TcpState.Closing)]
    [InlineData(TcpState.LastAck)]
    [InlineData(TcpState.TimeWait)]
    public void Exact_rst_closes_the_connection_in_every_synchronized_state(TcpState state)
    {
        using var rig = new TcpRig();
        var s = Reach(rig, state);
        rig.FeedNone(rig.From(RcvNxt(state), 0, Rst));
        Assert.Equal(TcpState.Closed, s.State);
    }

    [Theory]
    [InlineData(TcpState.Established)]
    [InlineData(TcpState.FinWait1)]
    [InlineData(TcpState.FinWait2)]
    [InlineData(TcpState.CloseWait)]
    [InlineData(TcpState.Closing)]
    [InlineData(TcpState.LastAck)]
    public void Syn_gets_a_challenge_ack_in_every_synchronized_state(TcpState state) // TIME-WAIT: see the reopen tests
    {
        using var rig = new TcpRig();
        var s = Reach(rig, state);
        var r = rig.FeedOne(rig.From(RcvNxt(state) + 3, 0, Syn));
        AssertChallengeAck(r, r.Seq, RcvNxt(state));
        Assert.Equal(state, s.State);
    }

    [Theory]
    [InlineData(TcpState.FinWait1, true)]
    [InlineData(TcpState.FinWait2, true)]
    [InlineData(TcpState.CloseWait, false)]
    [InlineData(TcpState.Closing, false)]
    [InlineData(TcpState.LastAck, false)]
    public void Data_is_taken_only_while_the_peer_may_still_send(TcpState state, bool taken)
    {
        using var rig = new TcpRig();
        var s = Reach(rig, state);
        var sndMax = rig.Row(s).Tcp!.SndNxt;
        var unaAck = state is TcpState.FinWait2 ? sndMax : rig.OurIss + 1;
        var replies = rig.Feed(rig.From(RcvNxt(state), unaAck, Ack, Bytes(10))).Concat(rig.Advance(TimeSpan.FromMilliseconds(50))).ToList();
        if (taken) Assert.Equal(RcvNxt(state) + 10, Assert.Single(replies).Ack); // acknowledged (delayed ACK)
        else Assert.Empty(replies); // RFC 9293: after the peer's FIN, segment text is ignored
        Assert.Equal(taken ? 10 : 0, rig.Row(s).RecvQ);
    }

    [Fact]
    public void Retransmitted_syn_in_syn_received_gets_the_syn_ack_again()
    {
        using var rig = new TcpRig();
        rig.Stack.Listen(TcpRig.ServerPort);
        var first = rig.FeedOne(rig.From(TcpRig.PeerIss, 0, Syn));
        var again = rig.FeedOne(rig.From(TcpRig.PeerIss, 0, Syn));
        Assert.Equal(Syn | Ack, again.Flags);
        Assert.Equal(first.Seq, again.Seq);
        Assert.Equal(TcpRig.PeerIss + 1, again.Ack);
    }

    [Fact]
    public void Syn_ack_is_retransmitted_then_the_half_open_connection_is_dropped()
    {
        using var rig = new TcpRig(t => t with { SynAckRetries = 1 });
        rig.Stack.Listen(TcpRig.ServerPort);
        var first = rig.FeedOne(rig.From(TcpRig.PeerIss, 0, Syn));
        var r = Assert.Single(rig.Advance(TimeSpan.FromSeconds(1)));
        Assert.Equal(first.Seq, r.Seq);
        rig.Advance(TimeSpan.FromSeconds(2));
        Assert.DoesNotContain(rig.H.Run(rig.Stack.GetConnectionsAsync()), x => x.State == "SynReceived");
    }
}
