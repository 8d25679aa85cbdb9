using NetStack;
using NetStack.Link;
using NetStack.Sockets;
using NetStack.Tcp;

namespace Stack.Tests.Tcp;

/// <summary>Connection life-cycle flows between two stacks on the virtual wire (seeded, virtual time).</summary>
public class TcpFlowTests
{
    private static WireFaults Lan => new() { Delay = TimeSpan.FromMilliseconds(1) };

    private static (Simulation, NetworkStack, NetworkStack) ResolvedPair(int seed, Func<TcpSettings, TcpSettings>? tcp = null)
    {
        var (sim, a, b) = TcpSim.Pair(seed, Lan, tcp);
        sim.Run(a.ResolveArpAsync(b.Config.Address));
        sim.Run(b.ResolveArpAsync(a.Config.Address));
        return (sim, a, b);
    }

    /// <summary>Listens on B:80 and starts a connect from A; returns the client, both tasks and the start time.</summary>
    private static (TcpSocket Client, Task Connect, Task<TcpSocket> Accept, TimeSpan Start) StartConnect(Simulation sim, NetworkStack a, NetworkStack b)
    {
        var accept = b.Listen(80).AcceptAsync();
        var start = sim.Now;
        var c = a.CreateTcpSocket();
        return (c, c.ConnectAsync(b.Config.Address, 80), accept, start);
    }

    [Fact]
    public void Connect_to_a_closed_port_is_refused_within_a_round_trip()
    {
        var (sim, a, b) = ResolvedPair(1);
        using var _ = sim;
        var start = sim.Now;
        var s = a.CreateTcpSocket();
        var ex = Assert.Throws<StackException>(() => sim.Run(s.ConnectAsync(b.Config.Address, 81)));
        Assert.Equal(StackError.ConnectionRefused, ex.Error);
        Assert.Equal(TimeSpan.FromMilliseconds(2), sim.Now - start);
    }

    [Fact]
    public void Lost_syn_is_retransmitted_after_one_second()
    {
        var (sim, a, b) = ResolvedPair(2);
        using var _ = sim;
        sim.Wire.Faults = Lan with { LossRate = 1 };
        var (_, connect, accept, start) = StartConnect(sim, a, b);
        sim.Advance(TimeSpan.FromMilliseconds(500)); // the SYN is lost
        sim.Wire.Faults = Lan;
        sim.Run(connect);
        Assert.InRange(sim.Now - start, TimeSpan.FromSeconds(1), TimeSpan.FromSeconds(1.01));
        sim.Run(accept);
    }

    [Fact]
    public void Lost_syn_ack_is_resent_when_the_syn_is_retransmitted()
    {
        var (sim, a, b) = ResolvedPair(3);
        using var _ = sim;
        var (_, connect, accept, start) = StartConnect(sim, a, b);
        sim.Step(); // the SYN is on the wire (faults are drawn when a frame is sent)
        sim.Wire.Faults = Lan with { LossRate = 1 };
        sim.Advance(TimeSpan.FromMilliseconds(1.5)); // B answers; its SYN-ACK is lost
        sim.Wire.Faults = Lan;
        sim.Run(connect);
        sim.Run(accept);
        Assert.InRange(sim.Now - start, TimeSpan.FromSeconds(1), TimeSpan.FromSeconds(1.01));
        Assert.Equal(1, sim.Run(b.GetStatisticsAsync()).Single(x => x.Layer == "Tcp" && x.Name == "DuplicateSegments").Value);
    }

    [Fact]
    public void Lost_final_ack_is_repaired_by_the_syn_ack_retransmission()
    {
        var (sim, a, b) = ResolvedPair(4);
        using var _ = sim;
        var (c, connect, accept, start) = StartConnect(sim, a, b);
        sim.Advance(TimeSpan.FromMilliseconds(1.5)); // SYN delivered, SYN-ACK on the wire
        sim.Wire.Faults = Lan with { LossRate = 1 };
        sim.Advance(TimeSpan.FromMilliseconds(1)); // A is established; its ACK is lost
        sim.Wire.Faults = Lan;
        Assert.True(connect.IsCompleted);
        Assert.Equal(TcpState.Established, c.State);
        Assert.False(accept.IsCompleted);
        var s = sim.Run(accept);
        Assert.Equal(TcpState.Established, s.State);
        Assert.InRange(sim.Now - start, TimeSpan.FromSeconds(1), TimeSpan.FromSeconds(1.01)); // B's SYN-ACK timer
    }

    [Fact]
    public void Simultaneous_open_connects_both_ends()
    {
        var (sim, a, b) = ResolvedPair(5);
        using var _ = sim;
        var x = a.CreateTcpSocket();
        var y = b.CreateTcpSocket();
        x.Bind(7000);
        y.Bind(7001);
        var cx = x.ConnectAsync(b.Config.Address, 7001);
        var cy = y.ConnectAsync(a.Config.Address, 7000);
        sim.Run(cx);
        sim.Run(cy);
        Assert.Equal(TcpState.Established, x.State);
        Assert.Equal(TcpState.Established, y.State);
        sim.Run(x.SendAsync(new byte[] { 42 }));
        var buf = new byte[4];
        Assert.Equal(1, sim.Run(y.ReceiveAsync(buf).AsTask()));
        Assert.Equal(42, buf[0]);
    }

    [Fact]
    public void Simultaneous_close_ends_in_time_wait_on_both_sides_then_both_rows_go()
    {
        var (sim, a, b) = ResolvedPair(6, t => t with { Msl = TimeSpan.FromSeconds(5) });
        using var _ = sim;
        var (c, s) = TcpSim.Connect(sim, a, b);
        var cc = c.CloseAsync();
        var sc = s.CloseAsync();
        sim.Run(cc);
        sim.Run(sc);
        sim.Advance(TimeSpan.FromMilliseconds(10));
        Assert.Equal(TcpState.TimeWait, c.State);
        Assert.Equal(TcpState.TimeWait, s.State);
        Assert.Contains(sim.Run(a.GetConnectionsAsync()), r => r.State == "TimeWait");
        sim.Advance(TimeSpan.FromSeconds(10));
        Assert.Equal(TcpState.Closed, c.State);
        Assert.Equal(TcpState.Closed, s.State);
        Assert.DoesNotContain(sim.Run(a.GetConnectionsAsync()), r => r.Protocol == NetStack.SocketProtocol.Tcp);
    }

    [Fact]
    public void Orderly_close_after_data_delivers_everything_then_end_of_stream()
    {
        var (sim, a, b) = ResolvedPair(7);
        using var _ = sim;
        var (c, s) = TcpSim.Connect(sim, a, b);
        var data = TcpSim.Data(100_000, 7);
        var send = s.SendAsync(data);
        var close = s.CloseAsync(); // queued behind the data: FIN follows it
        var got = new List<byte>();
        var buf = new byte[8192];
        while (true)
        {
            var n = sim.Run(c.ReceiveAsync(buf).AsTask());
            if (n == 0) break;
            got.AddRange(buf.AsSpan(0, n).ToArray());
        }
        sim.Run(send);
        sim.Run(close);
        Assert.Equal(data, got.ToArray());
        Assert.Equal(TcpState.CloseWait, c.State);
        Assert.Equal(TcpState.FinWait2, s.State);
        sim.Run(c.CloseAsync());
        Assert.Equal(TcpState.Closed, c.State);
        sim.Advance(TimeSpan.FromMilliseconds(5));
        Assert.Equal(TcpState.TimeWait, s.State);
    }

    [Fact]
    public void Abort_during_a_transfer_resets_the_peer()
    {
        var (sim, a, b) = ResolvedPair(8);
        using var _ = sim;
        var (c, s) = TcpSim.Connect(sim, a, b);
        var send = s.SendAsync(TcpSim.Data(1 << 20, 1)); // more than the buffers hold: it waits
        sim.Advance(TimeSpan.FromMilliseconds(20));
        c.Abort();
        var ex = Assert.Throws<StackException>(() => sim.Run(send));
        Assert.Equal(StackError.ConnectionReset, ex.Error);
        Assert.Equal(TcpState.Closed, s.State);
    }

    [Fact]
    public void Close_racing_the_peers_close_with_data_in_flight_loses_nothing()
    {
        var (sim, a, b) = ResolvedPair(9, t => t with { Msl = TimeSpan.FromSeconds(1) });
        using var _ = sim;
        var (c, s) = TcpSim.Connect(sim, a, b);
        var up = new Flow(c, s, TcpSim.Data(50_000, 1));
        var down = new Flow(s, c, TcpSim.Data(70_000, 2));
        Assert.True(TcpSim.Drive(sim, () => up.Pump() | down.Pump(), () => up.Done && down.Done, TimeSpan.FromSeconds(30)));
        Assert.Equal(up.ExpectedHash, up.ReceivedHash);
        Assert.Equal(down.ExpectedHash, down.ReceivedHash);
        sim.Run(c.CloseAsync());
        sim.Run(s.CloseAsync());
        sim.Advance(TimeSpan.FromSeconds(3));
        Assert.Equal(TcpState.Closed, c.State);
        Assert.Equal(TcpState.Closed, s.State);
    }

    [Fact]
    public void Listener_with_more_clients_than_its_backlog_serves_them_all_as_it_accepts()
    {
        var (sim, a, b) = ResolvedPair(10);
        using var _ = sim;
        var l = b.Listen(80, backlog: 2);
        var clients = Enumerable.Range(0, 6).Select(_ => a.CreateTcpSocket()).ToList();
        var connects = clients.Select(c => c.ConnectAsync(b.Config.Address, 80)).ToList();
        sim.Advance(TimeSpan.FromMilliseconds(50));
        var rows = sim.Run(b.GetConnectionsAsync());
        Assert.Equal(2, rows.Single(r => r.State == "Listen").RecvQ); // the accept queue is full at its bound
        var stats = sim.Run(b.GetStatisticsAsync());
        Assert.True(stats.Single(x => x.Layer == "Tcp" && x.Name == "ListenSynQueueFull").Value
                    + stats.Single(x => x.Layer == "Tcp" && x.Name == "ListenAcceptQueueFull").Value > 0);
        var accepted = new List<TcpSocket>();
        for (int i = 0; i < 6; i++) accepted.Add(sim.Run(l.AcceptAsync(), TimeSpan.FromSeconds(30)));
        foreach (var t in connects) sim.Run(t, TimeSpan.FromSeconds(30));
        Assert.All(accepted, s => Assert.Equal(TcpState.Established, s.State));
        Assert.Equal(6, accepted.Select(s => s.RemoteEndPoint.Port).Distinct().Count());
    }

    [Fact]
    public void A_cancelled_accept_does_not_swallow_the_next_connection()
    {
        var (sim, a, b) = ResolvedPair(14);
        using var _ = sim;
        var l = b.Listen(80);
        using var cts = new CancellationTokenSource();
        var cancelled = l.AcceptAsync(cts.Token);
        sim.Advance(TimeSpan.FromMilliseconds(1));
        cts.Cancel();
        sim.Advance(TimeSpan.FromMilliseconds(1));
        // The caller's task completes off the loop (its continuation runs on the thread pool).
        Assert.True(SpinWait.SpinUntil(() => cancelled.IsCompleted, TimeSpan.FromSeconds(10)));
        Assert.True(cancelled.IsCanceled);
        var c = a.CreateTcpSocket();
        sim.Run(c.ConnectAsync(b.Config.Address, 80));
        var s = sim.Run(l.AcceptAsync());
        Assert.Equal(c.LocalEndPoint.Port, s.RemoteEndPoint.Port);
    }

    [Fact]
    public void Key_events_are_narrated_for_verbose_output()
    {
        var (sim, a, b) = ResolvedPair(15);
        using var _ = sim;
        var events = new List<string>();
        a.Event += e => { if (e.Layer == "Tcp") events.Add(e.Message); };
        var (c, s) = TcpSim.Connect(sim, a, b);
        sim.Run(c.CloseAsync());
        sim.Run(s.CloseAsync());
        sim.Advance(TimeSpan.FromMilliseconds(10));
        Assert.Contains(events, m => m.Contains("SYN sent, ISN "));
        Assert.Contains(events, m => m.Contains("SYN-ACK received"));
        Assert.Contains(events, m => m.Contains("-> Established"));
        Assert.Contains(events, m => m.Contains("FIN sent"));
        Assert.Contains(events, m => m.Contains("FIN received"));
        Assert.Contains(events, m => m.Contains("-> TimeWait"));
    }

    [Fact]
    public void Listening_twice_on_a_port_is_address_in_use()
    {
        var (sim, _, b) = ResolvedPair(11);
        using var __ = sim;
        b.Listen(80);
        var ex = Assert.Throws<StackException>(() => b.Listen(80));
        Assert.Equal(StackError.AddressInUse, ex.Error);
    }

    [Fact]
    public void Stream_adapter_carries_text_both_ways()
    {
        var (sim, a, b) = ResolvedPair(12);
        using var _ = sim;
        var (c, s) = TcpSim.Connect(sim, a, b);
        using var cs = c.GetStream();
        using var ss = s.GetStream();
        sim.Run(cs.WriteAsync("ping\n"u8.ToArray()).AsTask());
        var buf = new byte[16];
        var n = sim.Run(ss.ReadAsync(buf).AsTask());
        Assert.Equal("ping\n", System.Text.Encoding.ASCII.GetString(buf, 0, n));
        Assert.False(ss.CanSeek);
        Assert.Throws<NotSupportedException>(() => ss.Length);
    }

    [Fact]
    public void Connection_rows_show_internals()
    {
        var (sim, a, b) = ResolvedPair(13);
        using var _ = sim;
        var (c, s) = TcpSim.Connect(sim, a, b);
        sim.Run(c.SendAsync(new byte[5000]));
        sim.Advance(TimeSpan.FromMilliseconds(100));
        var row = sim.Run(a.GetConnectionsAsync()).Single(r => r.Id == c.Id);
        Assert.Equal("Established", row.State);
        Assert.Equal(b.Config.Address, row.RemoteAddress);
        Assert.Equal(5000, row.Tcp!.BytesSent);
        Assert.Equal(row.Tcp.SndNxt, row.Tcp.SndUna);
        Assert.Equal(1448, row.Tcp.Mss);
        Assert.True(row.Tcp.Timestamps && row.Tcp.SackPermitted);
        Assert.Equal("bbr", row.Tcp.CongestionControl); // the default
        Assert.True(row.Tcp.Srtt > TimeSpan.Zero);
    }
}
