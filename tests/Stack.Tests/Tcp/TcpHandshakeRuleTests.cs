using NetStack;
using NetStack.Tcp;
using Stack.Tests.Support;
using static NetStack.Tcp.TcpFlags;

namespace Stack.Tests.Tcp;

/// <summary>Opening and refusing connections: one crafted segment in, the exact reply out (RFC 9293 3.10.7).</summary>
public class TcpHandshakeRuleTests
{
    [Fact]
    public void Syn_to_closed_port_gets_rst_ack_acknowledging_the_syn()
    {
        using var rig = new TcpRig();
        var r = rig.FeedOne(rig.From(5000, 0, Syn));
        Assert.Equal(Rst | Ack, r.Flags);
        Assert.Equal(0u, r.Seq);
        Assert.Equal(5001u, r.Ack);
        Assert.Equal(TcpRig.PeerPort, r.DstPort);
        Assert.Equal(1, rig.Counter("DroppedNoSocket"));
    }

    [Fact]
    public void Ack_to_closed_port_gets_rst_with_seq_of_its_ack()
    {
        using var rig = new TcpRig();
        var r = rig.FeedOne(rig.From(5000, 777, Ack, new byte[] { 1, 2, 3 }));
        Assert.Equal(Rst, r.Flags);
        Assert.Equal(777u, r.Seq);
    }

    [Fact]
    public void Rst_to_closed_port_is_never_answered()
    {
        using var rig = new TcpRig();
        rig.FeedNone(rig.From(5000, 777, Rst | Ack));
    }

    [Fact]
    public void Bad_checksum_is_counted_and_dropped()
    {
        using var rig = new TcpRig();
        rig.Feed(rig.From(5000, 0, Syn), corrupt: true);
        Assert.Equal(1, rig.Counter("DroppedBadChecksum"));
    }

    [Fact]
    public void Listener_answers_syn_with_syn_ack_and_options()
    {
        using var rig = new TcpRig(t => t with { Timestamps = true, Sack = true, WindowScaling = true, ReceiveBufferSize = 256 * 1024 });
        rig.Stack.Listen(TcpRig.ServerPort);
        var opts = SegCodec.MssOption(1400).Concat(new byte[] { 4, 2, 1, 3, 3, 7 }).Concat(SegCodec.TimestampOption(5555, 0)).ToArray();
        var r = rig.FeedOne(rig.From(TcpRig.PeerIss, 0, Syn, options: opts));
        Assert.Equal(Syn | Ack, r.Flags);
        Assert.Equal(TcpRig.PeerIss + 1, r.Ack);
        Assert.Equal(1460, r.Mss);
        Assert.Equal(7, r.WindowScale); // room for what auto-tuning may grow the buffer to (Tcp.ReceiveBufferMax, 6 MiB)
        Assert.True(r.SackPermitted);
        Assert.Equal(5555u, r.TsEcr);
        Assert.Equal(65535, r.Window); // a SYN's window is never scaled
    }

    [Fact]
    public void Syn_ack_omits_options_the_syn_did_not_offer()
    {
        using var rig = new TcpRig(t => t with { Timestamps = true, Sack = true, WindowScaling = true });
        rig.Stack.Listen(TcpRig.ServerPort);
        var r = rig.FeedOne(rig.From(TcpRig.PeerIss, 0, Syn));
        Assert.Equal(1460, r.Mss);
        Assert.Equal(-1, r.WindowScale);
        Assert.False(r.SackPermitted);
        Assert.Null(r.TsVal);
    }

    [Fact]
    public void Ecn_setup_syn_is_accepted_without_agreeing_to_ecn()
    {
        using var rig = new TcpRig();
        rig.Stack.Listen(TcpRig.ServerPort);
        var r = rig.FeedOne(rig.From(TcpRig.PeerIss, 0, Syn | Ece | Cwr));
        Assert.Equal(Syn | Ack, r.Flags); // no ECE: RFC 3168 6.1.1, ECN is not negotiated
        var again = rig.FeedOne(rig.From(TcpRig.PeerIss, 0, Syn | Ece | Cwr)); // its retransmission gets the SYN-ACK again
        Assert.Equal(Syn | Ack, again.Flags);
    }

    [Fact]
    public void Passive_open_completes_on_ack_and_is_accepted()
    {
        using var rig = new TcpRig();
        var s = rig.AcceptOne();
        Assert.Equal(TcpState.Established, s.State);
        var row = rig.Row(s);
        Assert.Equal("Established", row.State);
        Assert.Equal(rig.OurIss + 1, row.Tcp!.SndNxt);
        Assert.Equal(TcpRig.PeerIss + 1, row.Tcp.RcvNxt);
        Assert.Equal(1460, row.Tcp.Mss);
    }

    [Fact]
    public void Ack_to_listener_gets_rst()
    {
        using var rig = new TcpRig();
        rig.Stack.Listen(TcpRig.ServerPort);
        var r = rig.FeedOne(rig.From(5000, 4242, Ack));
        Assert.Equal(Rst, r.Flags);
        Assert.Equal(4242u, r.Seq);
    }

    [Fact]
    public void Syn_received_answers_wrong_ack_with_rst_and_stays_half_open()
    {
        using var rig = new TcpRig();
        rig.Stack.Listen(TcpRig.ServerPort);
        var synAck = rig.FeedOne(rig.From(TcpRig.PeerIss, 0, Syn));
        var r = rig.FeedOne(rig.From(TcpRig.PeerIss + 1, synAck.Seq, Ack)); // acknowledges nothing of ours
        Assert.Equal(Rst, r.Flags);
        Assert.Equal(synAck.Seq, r.Seq);
        var rows = rig.H.Run(rig.Stack.GetConnectionsAsync());
        Assert.Contains(rows, x => x.State == "SynReceived");
    }

    [Fact]
    public void Rst_in_syn_received_removes_the_half_open_connection_only()
    {
        using var rig = new TcpRig();
        var l = rig.Stack.Listen(TcpRig.ServerPort);
        rig.FeedOne(rig.From(TcpRig.PeerIss, 0, Syn));
        rig.FeedNone(rig.From(TcpRig.PeerIss + 1, 0, Rst));
        var rows = rig.H.Run(rig.Stack.GetConnectionsAsync());
        Assert.DoesNotContain(rows, x => x.State == "SynReceived");
        Assert.Contains(rows, x => x.State == "Listen");
        // The listener still works.
        var again = rig.FeedOne(rig.From(9000, 0, Syn));
        Assert.Equal(Syn | Ack, again.Flags);
        GC.KeepAlive(l);
    }

    [Fact]
    public void Active_open_sends_syn_then_acks_the_syn_ack()
    {
        using var rig = new TcpRig();
        var s = rig.Stack.CreateTcpSocket();
        var connect = s.ConnectAsync(StackHarness.PeerIp, TcpRig.PeerPort);
        var syn = rig.Drain().Single();
        Assert.Equal(Syn, syn.Flags);
        Assert.Equal(0u, syn.Ack);
        Assert.Equal(1460, syn.Mss);
        Assert.InRange(syn.SrcPort, 49152, 65535);
        Assert.Equal(TcpState.SynSent, s.State);
        rig.LocalPort = syn.SrcPort;
        var ack = rig.FeedOne(rig.From(7000, syn.Seq + 1, Syn | Ack, options: SegCodec.MssOption(1000)));
        Assert.Equal(Ack, ack.Flags);
        Assert.Equal(syn.Seq + 1, ack.Seq);
        Assert.Equal(7001u, ack.Ack);
        rig.H.Run(connect);
        Assert.Equal(TcpState.Established, s.State);
        Assert.Equal(1000, rig.Row(s).Tcp!.Mss);
    }

    [Fact]
    public void Rst_answering_the_syn_refuses_the_connect()
    {
        using var rig = new TcpRig();
        var s = rig.Stack.CreateTcpSocket();
        var connect = s.ConnectAsync(StackHarness.PeerIp, TcpRig.PeerPort);
        var syn = rig.Drain().Single();
        rig.LocalPort = syn.SrcPort;
        rig.FeedNone(rig.From(0, syn.Seq + 1, Rst | Ack));
        var ex = Assert.Throws<StackException>(() => rig.H.Run(connect));
        Assert.Equal(StackError.ConnectionRefused, ex.Error);
        Assert.Equal(TcpState.Closed, s.State);
    }

    [Fact]
    public void Syn_sent_ignores_rst_without_ack_and_rejects_bad_ack_with_rst()
    {
        using var rig = new TcpRig();
        var s = rig.Stack.CreateTcpSocket();
        _ = s.ConnectAsync(StackHarness.PeerIp, TcpRig.PeerPort);
        var syn = rig.Drain().Single();
        rig.LocalPort = syn.SrcPort;
        rig.FeedNone(rig.From(0, 0, Rst));
        var r = rig.FeedOne(rig.From(7000, syn.Seq + 5, Syn | Ack));
        Assert.Equal(Rst, r.Flags);
        Assert.Equal(syn.Seq + 5, r.Seq);
        Assert.Equal(TcpState.SynSent, s.State);
    }

    [Fact]
    public void Simultaneous_open_answers_a_bare_syn_with_syn_ack_from_our_iss()
    {
        using var rig = new TcpRig();
        var s = rig.Stack.CreateTcpSocket();
        var connect = s.ConnectAsync(StackHarness.PeerIp, TcpRig.PeerPort);
        var syn = rig.Drain().Single();
        rig.LocalPort = syn.SrcPort;
        var r = rig.FeedOne(rig.From(7000, 0, Syn));
        Assert.Equal(Syn | Ack, r.Flags);
        Assert.Equal(syn.Seq, r.Seq);
        Assert.Equal(7001u, r.Ack);
        Assert.Equal(TcpState.SynReceived, s.State);
        rig.FeedNone(rig.From(7001, syn.Seq + 1, Ack));
        rig.H.Run(connect);
        Assert.Equal(TcpState.Established, s.State);
    }

    [Fact]
    public void Syn_is_retransmitted_with_backoff_then_connect_times_out()
    {
        using var rig = new TcpRig(t => t with { SynRetries = 2 });
        var s = rig.Stack.CreateTcpSocket();
        var connect = s.ConnectAsync(StackHarness.PeerIp, TcpRig.PeerPort);
        var syn = rig.Drain().Single();
        var r1 = rig.Advance(TimeSpan.FromSeconds(1));
        Assert.Equal(syn.Seq, Assert.Single(r1).Seq); // after the initial RTO of 1 s
        Assert.Empty(rig.Advance(TimeSpan.FromSeconds(1.9)));
        Assert.Single(rig.Advance(TimeSpan.FromSeconds(0.1))); // 2 s later: doubled
        rig.Advance(TimeSpan.FromSeconds(4));
        var ex = Assert.Throws<StackException>(() => rig.H.Run(connect));
        Assert.Equal(StackError.TimedOut, ex.Error);
    }

    [Fact]
    public void Isn_differs_per_connection_and_moves_with_the_clock()
    {
        using var rig = new TcpRig();
        var a = rig.Stack.CreateTcpSocket();
        _ = a.ConnectAsync(StackHarness.PeerIp, TcpRig.PeerPort);
        var s1 = rig.Drain().Single();
        rig.H.Clock.Now += TimeSpan.FromMilliseconds(4);
        var b = rig.Stack.CreateTcpSocket();
        _ = b.ConnectAsync(StackHarness.PeerIp, TcpRig.PeerPort);
        var s2 = rig.Drain().Single();
        Assert.NotEqual(s1.SrcPort, s2.SrcPort);
        Assert.NotEqual(s1.Seq, s2.Seq);
    }

    [Fact]
    public void Icmp_port_unreachable_for_the_syn_refuses_the_connect()
    {
        using var rig = new TcpRig();
        var s = rig.Stack.CreateTcpSocket();
        var connect = s.ConnectAsync(StackHarness.PeerIp, TcpRig.PeerPort);
        rig.H.Device.Sent.Clear();
        rig.Drain();
        Assert.Empty(rig.FeedIcmpUnreachable(3, rig.H.Device.Sent.Single()));
        var ex = Assert.Throws<StackException>(() => rig.H.Run(connect));
        Assert.Equal(StackError.ConnectionRefused, ex.Error);
    }

    [Fact]
    public void Icmp_host_unreachable_for_the_syn_is_soft_and_reported_when_the_connect_times_out()
    {
        using var rig = new TcpRig(t => t with { SynRetries = 1 });
        var s = rig.Stack.CreateTcpSocket();
        var connect = s.ConnectAsync(StackHarness.PeerIp, TcpRig.PeerPort);
        rig.Drain();
        Assert.Empty(rig.FeedIcmpUnreachable(1, rig.H.Device.Sent.Single()));
        Assert.Equal(TcpState.SynSent, s.State); // RFC 1122 4.2.3.9: soft, the SYN is retried
        Assert.Single(rig.Advance(TimeSpan.FromSeconds(1)));
        rig.Advance(TimeSpan.FromSeconds(2));
        var ex = Assert.Throws<StackException>(() => rig.H.Run(connect));
        Assert.Equal(StackError.HostUnreachable, ex.Error);
    }
}
