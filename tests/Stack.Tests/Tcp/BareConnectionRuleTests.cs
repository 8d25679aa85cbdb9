using NetStack;
using NetStack.Tcp;
using static NetStack.Tcp.TcpFlags;

namespace Stack.Tests.Tcp;

/// <summary>
/// Rules driven on a bare connection (<see cref="BareTcp"/>: no stack, no IP layer): crafted segments in, the exact
/// segments the connection hands to its output back, on the test's clock.
/// </summary>
public class BareConnectionRuleTests
{
    private const uint P = BareTcp.PeerIss + 1; // the peer's next sequence number after its SYN

    /// <summary>The result of a loop-side operation, which must have completed by now.</summary>
    private static T Completed<T>(Task<T> task)
    {
        Assert.True(task.IsCompleted, "the operation should have completed on the loop");
        return task.GetAwaiter().GetResult();
    }

    private static byte[] Bytes(int n, byte start = 1) => Enumerable.Range(0, n).Select(i => (byte)(start + i)).ToArray();

    [Fact]
    public void Active_open_sends_a_syn_with_our_mss_and_acknowledges_the_syn_ack()
    {
        var t = new BareTcp();
        var (c, connected, syn) = t.Connect();
        Assert.Equal(Syn, syn.Flags);
        Assert.Equal(BareTcp.PeerPort, syn.DstPort);
        Assert.Equal(1460, syn.Mss);            // RFC 9293 3.7.1: the path's MTU less 40
        Assert.Equal(65535, syn.Window);        // the receive buffer, unscaled in a SYN
        Assert.Equal(-1, syn.WindowScale);
        Assert.Empty(syn.Payload);
        Assert.Equal(TcpState.SynSent, c.State);
        Assert.False(connected.IsCompleted);

        var ack = Assert.Single(t.Feed(BareTcp.From(syn.SrcPort, BareTcp.PeerIss, syn.Seq + 1, Syn | Ack, options: SegCodec.MssOption(1000))));
        Assert.Equal(Ack, ack.Flags);
        Assert.Equal(syn.Seq + 1, ack.Seq);
        Assert.Equal(P, ack.Ack);
        Assert.Equal(TcpState.Established, c.State);
        Assert.True(connected.IsCompletedSuccessfully);
        Assert.Equal(new[] { TcpState.SynSent, TcpState.Established }, t.LastUser.States);
    }

    [Fact]
    public void Data_goes_out_in_segments_of_the_peer_mss_with_nagle_and_received_data_is_acknowledged_after_the_delay()
    {
        var t = new BareTcp();
        var (c, us) = t.Open(mss: 1000);
        var data = Bytes(2500);
        var sent = t.Do(now => c.Send(data, now));
        Assert.Equal(new[] { us, us + 1000 }, sent.Select(s => s.Seq));
        Assert.All(sent, s => Assert.Equal(P, s.Ack));
        // RFC 896 (Nagle): the 500-byte tail waits while data is unacknowledged, then goes with PSH.
        var tail = Assert.Single(t.Feed(BareTcp.From(c.Key.LocalPort, P, us + 2000, Ack)));
        Assert.Equal(us + 2000, tail.Seq);
        Assert.Equal(Ack | Psh, tail.Flags);
        Assert.Equal(data, sent.Append(tail).SelectMany(s => s.Payload));
        Assert.Empty(t.Feed(BareTcp.From(c.Key.LocalPort, P, us + 2500, Ack)));

        Assert.Empty(t.Feed(BareTcp.From(c.Key.LocalPort, P, us + 2500, Ack | Psh, Bytes(100, 7))));
        Assert.Empty(t.Advance(TimeSpan.FromMilliseconds(39)));
        var ack = Assert.Single(t.Advance(TimeSpan.FromMilliseconds(1))); // RFC 1122 4.2.3.2: the delayed ACK
        Assert.Equal(P + 100, ack.Ack);
        Assert.Equal(us + 2500, ack.Seq);
        var buffer = new byte[200];
        var read = c.Receive(buffer, t.Now);
        Assert.Equal(100, Completed(read));
        Assert.Equal(Bytes(100, 7), buffer[..100]);
    }

    [Fact]
    public void Unacknowledged_data_is_sent_again_when_the_retransmission_timer_expires_and_the_timer_backs_off()
    {
        var t = new BareTcp();
        var (c, us) = t.Open();
        var first = Assert.Single(t.Do(now => c.Send(Bytes(600), now)));
        // The handshake's sample (0 s) gives the RTO floor, Tcp.MinRto = 200 ms (RFC 6298 2.4 with Linux's bound).
        Assert.Empty(t.Advance(TimeSpan.FromMilliseconds(199)));
        var again = Assert.Single(t.Advance(TimeSpan.FromMilliseconds(1)));
        Assert.Equal(first.Seq, again.Seq);
        Assert.Equal(first.Payload, again.Payload);
        Assert.Empty(t.Advance(TimeSpan.FromMilliseconds(399)));              // RFC 6298 5.5: doubled
        Assert.Equal(us, Assert.Single(t.Advance(TimeSpan.FromMilliseconds(1))).Seq);
        Assert.Empty(t.Feed(BareTcp.From(c.Key.LocalPort, P, us + 600, Ack)));
        Assert.Empty(t.Advance(TimeSpan.FromSeconds(5)));                      // all acknowledged: the timer is off
    }

    [Fact]
    public void A_zero_window_holds_data_back_until_a_window_update_after_a_probe()
    {
        var t = new BareTcp();
        var (c, us) = t.Open(window: 0);
        Assert.Empty(t.Do(now => c.Send(Bytes(100), now)));
        var probe = Assert.Single(t.Advance(TimeSpan.FromMilliseconds(200))); // RFC 9293 3.8.6.1: the persist timer
        Assert.Equal(Ack, probe.Flags);
        Assert.Equal(us - 1, probe.Seq);
        Assert.Empty(probe.Payload);
        var data = Assert.Single(t.Feed(BareTcp.From(c.Key.LocalPort, P, us, Ack, window: 65535)));
        Assert.Equal(us, data.Seq);
        Assert.Equal(Bytes(100), data.Payload);
    }

    [Fact]
    public void Reading_a_full_receive_buffer_sends_a_window_update()
    {
        var t = new BareTcp(s => s with { ReceiveBufferSize = 4096 });
        var (c, us) = t.Open();
        var port = c.Key.LocalPort;
        Assert.Empty(t.Feed(BareTcp.From(port, P, us, Ack, Bytes(1024))));
        Assert.Equal(2048, Assert.Single(t.Feed(BareTcp.From(port, P + 1024, us, Ack, Bytes(1024)))).Window);
        Assert.Empty(t.Feed(BareTcp.From(port, P + 2048, us, Ack, Bytes(1024))));
        var closed = Assert.Single(t.Feed(BareTcp.From(port, P + 3072, us, Ack, Bytes(1024))));
        Assert.Equal(0, closed.Window);
        Assert.Equal(P + 4096, closed.Ack);
        var update = Assert.Single(t.Do(now => Assert.Equal(4096, Completed(c.Receive(new byte[8192], now)))));
        Assert.Equal(Ack, update.Flags);
        Assert.Equal(P + 4096, update.Ack);
        Assert.Equal(4096, update.Window);
    }

    [Fact]
    public void Our_fin_then_the_peers_fin_lead_through_fin_wait_to_time_wait_and_closed_after_two_msl()
    {
        var t = new BareTcp();
        var (c, us) = t.Open();
        var fin = Assert.Single(t.Do(now => c.ShutdownSend(now)));
        Assert.Equal(Ack | Fin, fin.Flags);
        Assert.Equal(us, fin.Seq);
        Assert.Equal(TcpState.FinWait1, c.State);
        Assert.Empty(t.Feed(BareTcp.From(c.Key.LocalPort, P, us + 1, Ack)));
        Assert.Equal(TcpState.FinWait2, c.State);
        var ack = Assert.Single(t.Feed(BareTcp.From(c.Key.LocalPort, P, us + 1, Ack | Fin)));
        Assert.Equal(P + 1, ack.Ack);
        Assert.Equal(TcpState.TimeWait, c.State);
        Assert.Empty(t.Advance(TimeSpan.FromSeconds(59)));
        Assert.Equal(TcpState.TimeWait, c.State);
        t.Advance(TimeSpan.FromSeconds(1));
        Assert.Equal(TcpState.Closed, c.State);
        Assert.True(t.LastUser.Closed);
        Assert.Equal(0, t.Layer.ConnectionCount);
    }

    [Fact]
    public void The_peers_fin_is_acknowledged_at_once_and_ends_a_waiting_receive()
    {
        var t = new BareTcp();
        var (c, us) = t.Open();
        var receive = c.Receive(new byte[10], t.Now);
        var ack = Assert.Single(t.Feed(BareTcp.From(c.Key.LocalPort, P, us, Ack | Fin)));
        Assert.Equal(P + 1, ack.Ack);
        Assert.Equal(TcpState.CloseWait, c.State);
        Assert.Equal(0, Completed(receive));
    }

    [Fact]
    public void A_segment_for_no_connection_is_answered_with_rst_through_the_same_output()
    {
        var t = new BareTcp();
        var rst = Assert.Single(t.Feed(BareTcp.From(9, BareTcp.PeerIss, 0, Syn)));
        Assert.Equal(Rst | Ack, rst.Flags);  // RFC 9293 3.10.7.1
        Assert.Equal(0u, rst.Seq);
        Assert.Equal(P, rst.Ack);
    }

    [Fact]
    public void Abort_sends_rst_and_fails_the_waiting_send_and_receive()
    {
        var t = new BareTcp(s => s with { SendBufferSize = 2048 });
        var (c, us) = t.Open(window: 0);
        var send = c.Send(Bytes(3000), t.Now);      // 2048 bytes fit the buffer; the rest waits
        var receive = c.Receive(new byte[10], t.Now);
        Assert.False(send.IsCompleted);
        var rst = Assert.Single(t.Do(now => c.Abort(now)));
        Assert.Equal(Rst, rst.Flags);
        Assert.Equal(us, rst.Seq);
        Assert.Equal(StackError.ConnectionAborted, Assert.IsType<StackException>(send.Exception!.InnerException).Error);
        Assert.Equal(StackError.ConnectionAborted, Assert.IsType<StackException>(receive.Exception!.InnerException).Error);
        Assert.Equal(TcpState.Closed, t.LastUser.States[^1]);
        Assert.True(t.LastUser.Closed);
    }

    [Fact]
    public void Stopping_fails_the_waiting_operations_without_sending_and_completes_a_waiting_close()
    {
        var t = new BareTcp(s => s with { SendBufferSize = 2048 });
        var (c, _) = t.Open(window: 0);
        var send = c.Send(Bytes(3000), t.Now);
        var receive = c.Receive(new byte[10], t.Now);
        var (closing, _) = t.Open();
        t.Do(now => closing.Send(Bytes(10), now));
        var close = closing.Close(t.Now);          // waits for the FIN to be acknowledged
        Assert.False(close.IsCompleted);
        t.Take();
        t.Layer.Dispose();
        Assert.Empty(t.Take());
        Assert.Equal(StackError.StackStopped, Assert.IsType<StackException>(send.Exception!.InnerException).Error);
        Assert.Equal(StackError.StackStopped, Assert.IsType<StackException>(receive.Exception!.InnerException).Error);
        Assert.True(close.IsCompletedSuccessfully);
        Assert.Equal(TcpState.Closed, c.State);
        Assert.Equal(TcpState.Closed, closing.State);
    }

    // ---------------- the listener's TCP side ----------------

    [Fact]
    public void A_listening_port_answers_a_syn_with_a_syn_ack_and_queues_the_connection_when_the_handshake_ends()
    {
        var t = new BareTcp();
        var (listen, owner) = t.Listen(80);
        var synAck = Assert.Single(t.Feed(BareTcp.From(80, BareTcp.PeerIss, 0, Syn, options: SegCodec.MssOption(1000))));
        Assert.Equal(Syn | Ack, synAck.Flags);
        Assert.Equal(P, synAck.Ack);
        Assert.Equal(1460, synAck.Mss);
        Assert.Equal(1, listen.SynQueueCount);
        var c = Assert.Single(owner.Created);
        Assert.Equal(TcpState.SynReceived, c.State);

        Assert.Empty(t.Feed(BareTcp.From(80, P, synAck.Seq + 1, Ack)));
        Assert.Equal(TcpState.Established, c.State);
        Assert.Equal(new[] { c }, owner.Offered);     // offered to a waiting accept first; none took it
        Assert.Equal(0, listen.SynQueueCount);
        Assert.Equal(1, listen.AcceptQueueCount);
        Assert.True(listen.TryAccept(out var accepted));
        Assert.Same(c, accepted);
    }

    [Fact]
    public void The_syn_queue_is_bounded_by_the_backlog_and_an_ack_to_a_listening_port_gets_rst()
    {
        var t = new BareTcp(s => s with { SynCookies = SynCookieMode.Never }); // with cookies: SynCookieRuleTests
        var (listen, _) = t.Listen(80, backlog: 1);
        Assert.Single(t.Feed(BareTcp.From(80, BareTcp.PeerIss, 0, Syn, peerPort: 40001)));
        Assert.Empty(t.Feed(BareTcp.From(80, BareTcp.PeerIss, 0, Syn, peerPort: 40002))); // dropped: the client will retry
        Assert.Equal(1, t.Layer.Counters.ListenSynQueueFull);
        // RFC 9293 3.10.7.2: an ACK in LISTEN gets <SEQ=SEG.ACK><CTL=RST>.
        var rst = Assert.Single(t.Feed(BareTcp.From(80, 5000, 7777, Ack, peerPort: 40003)));
        Assert.Equal(Rst, rst.Flags);
        Assert.Equal(7777u, rst.Seq);
        Assert.Equal(1, listen.SynQueueCount);
    }

    [Fact]
    public void Closing_a_listener_resets_the_connections_nobody_accepted()
    {
        var t = new BareTcp();
        var (listen, owner) = t.Listen(80);
        var synAck = Assert.Single(t.Feed(BareTcp.From(80, BareTcp.PeerIss, 0, Syn)));
        t.Feed(BareTcp.From(80, P, synAck.Seq + 1, Ack));
        var rst = Assert.Single(t.Do(now => listen.Close(now)));
        Assert.Equal(Rst, rst.Flags);
        Assert.Equal(synAck.Seq + 1, rst.Seq);
        Assert.True(owner.Closed);
        Assert.Equal(TcpState.Closed, owner.Created[0].State);
        Assert.Single(t.Feed(BareTcp.From(80, BareTcp.PeerIss + 100, 0, Syn, peerPort: 40001))); // the port is free again: RST
    }
}
