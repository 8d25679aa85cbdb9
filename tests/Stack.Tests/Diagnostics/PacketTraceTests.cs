using NetStack;
using NetStack.Diagnostics;
using NetStack.Sockets;
using NetStack.Tcp;
using Stack.Tests.Tcp;

namespace Stack.Tests.Diagnostics;

/// <summary>The stack's TCP state log and the packet trace built on it (Get-StackPacket's relative numbers).</summary>
public class PacketTraceTests
{
    [Fact]
    public void State_log_records_every_transition_of_both_sides_with_the_isns()
    {
        using var s = new LadderScenario();
        var client = s.ClientTrace.StateChanges.Where(c => c.LocalPort == s.ClientSocket.LocalEndPoint.Port).ToList();
        var server = s.ServerTrace.StateChanges.Where(c => c.LocalPort == 80).ToList();
        Assert.Equal(new[] { TcpState.SynSent, TcpState.Established, TcpState.FinWait1, TcpState.FinWait2, TcpState.TimeWait }, client.Select(c => c.To));
        Assert.Equal(new[] { TcpState.SynReceived, TcpState.Established, TcpState.CloseWait, TcpState.LastAck, TcpState.Closed }, server.Select(c => c.To));
        Assert.Equal(TcpState.Closed, client[0].From);
        Assert.All(client.Zip(client.Skip(1)), p => Assert.Equal(p.First.To, p.Second.From));
        Assert.False(client[0].IrsKnown); // SYN-SENT: the peer's ISN is not known yet
        Assert.Equal(client[1].Iss, server[1].Irs); // each side's ISS is the other's IRS
        Assert.Equal(client[1].Irs, server[1].Iss);
        Assert.True(client.Zip(client.Skip(1)).All(p => p.First.Time <= p.Second.Time));
    }

    [Fact]
    public void State_log_is_bounded_and_keeps_the_newest()
    {
        var log = new TcpStateLog(capacity: 40);
        for (int i = 0; i < 100; i++)
            log.Record(new TcpStateChange(TimeSpan.FromSeconds(i), new Ipv4Address(1), (ushort)i, new Ipv4Address(2), 80, TcpState.Closed, TcpState.SynSent, 0, 0));
        var snap = log.Snapshot();
        Assert.Equal(40, snap.Length);
        Assert.Equal(Enumerable.Range(60, 40).Select(i => (ushort)i), snap.Select(c => c.LocalPort));
        Assert.Equal(100, log.Total);
    }

    /// <summary>Issue 15: relative Seq/Ack must stay right after the handshake has left the packet log.</summary>
    [Fact]
    public void Relative_numbers_and_scaled_windows_survive_the_handshake_leaving_a_small_packet_log()
    {
        var (sim, a, b) = TcpSim.Pair(seed: 3);
        using var _ = sim;
        // A stack with a packet log of 16 frames: by the end only the last segments remain.
        var small = sim.AddStack("192.0.2.3/24", c => c with { PacketLogCapacity = 16 });
        var (client, server) = TcpSim.Connect(sim, small, b);
        var data = TcpSim.Data(40_000, 1);
        var flow = new Flow(client, server, data);
        Assert.True(TcpSim.Drive(sim, flow.Pump, () => flow.Done, TimeSpan.FromMinutes(1)));
        var trace = sim.Run(small.GetPacketTraceAsync());
        var frames = trace.Decode().Where(f => f.Tcp != null).ToList();
        Assert.DoesNotContain(frames, f => f.Tcp!.Has(TcpFlags.Syn)); // the handshake is gone from the log
        var fin = frames.Last(f => f.SourcePort == client.LocalEndPoint.Port && f.Tcp!.Has(TcpFlags.Fin));
        Assert.Equal(40_001u, fin.Tcp!.RelativeSeq); // 1 for the SYN, then every data byte
        Assert.Contains("Seq=40001", fin.Info);
        var lastAck = frames.Last(f => f.SourcePort == 5000);
        Assert.Equal(40_002u, lastAck.Tcp!.RelativeAck); // the server acknowledges the data and the FIN
        Assert.True(lastAck.Tcp.WindowScaleKnown);
        Assert.True(server.Tcb.RcvWndShift > 0);
        Assert.Equal((long)lastAck.Tcp.WindowField << server.Tcb.RcvWndShift, lastAck.Tcp.Window); // scaled by the shift in its SYN-ACK
    }
}
