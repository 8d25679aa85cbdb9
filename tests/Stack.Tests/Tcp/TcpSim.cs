using System.Security.Cryptography;
using NetStack;
using NetStack.Link;
using NetStack.Sockets;
using NetStack.Tcp;

namespace Stack.Tests.Tcp;

/// <summary>
/// Drives TCP flows between stacks on a virtual wire from the test thread, deterministically: between loop
/// steps the test issues socket operations (they run at the next step, at the same virtual instant) and
/// virtual time only moves when nobody has anything left to do now.
/// </summary>
public static class TcpSim
{
    public static readonly Ipv4Address A = Ipv4Address.Parse("192.0.2.1");
    public static readonly Ipv4Address B = Ipv4Address.Parse("192.0.2.2");

    public static (Simulation Sim, NetworkStack A, NetworkStack B) Pair(int seed, WireFaults? faults = null, Func<TcpSettings, TcpSettings>? tcp = null)
    {
        var sim = new Simulation(seed, faults);
        var settings = tcp?.Invoke(new TcpSettings()) ?? new TcpSettings();
        var a = sim.AddStack("192.0.2.1/24", c => c with { Tcp = settings });
        var b = sim.AddStack("192.0.2.2/24", c => c with { Tcp = settings });
        return (sim, a, b);
    }

    /// <summary>Runs <paramref name="pump"/> (returns true when it issued work) and the simulation until <paramref name="done"/>.</summary>
    public static bool Drive(Simulation sim, Func<bool> pump, Func<bool> done, TimeSpan limit) => Drive(sim, _ => pump(), done, limit);

    /// <summary>As above; the pump's argument says whether the simulation would otherwise have to move time on (nothing left to do now).</summary>
    public static bool Drive(Simulation sim, Func<bool, bool> pump, Func<bool> done, TimeSpan limit)
    {
        var end = sim.Now + limit;
        while (true)
        {
            var issued = pump(false);
            var next = sim.Step();
            if (done()) return true;
            if (issued) continue;
            if (pump(true)) continue;
            if (sim.Now >= end) return false;
            var target = next ?? end;
            if (target > end) target = end;
            if (target <= sim.Now) target = sim.Now + TimeSpan.FromTicks(1);
            sim.Clock.Now = target;
        }
    }

    /// <summary>Connects a client on <paramref name="client"/> to a listener on <paramref name="server"/>.</summary>
    public static (TcpSocket Client, TcpSocket Server) Connect(Simulation sim, NetworkStack client, NetworkStack server, ushort port = 5000)
    {
        var listener = server.Listen(port);
        var accept = listener.AcceptAsync();
        var c = client.CreateTcpSocket();
        var connect = c.ConnectAsync(server.Config.Address, port);
        sim.Run(connect, TimeSpan.FromMinutes(5));
        var s = sim.Run(accept, TimeSpan.FromMinutes(5));
        return (c, s);
    }

    public static string Dump(Simulation sim)
    {
        var sb = new System.Text.StringBuilder();
        sb.AppendLine($"at {sim.Now}");
        foreach (var st in sim.Stacks)
            sb.AppendLine(st.Name + ": " + string.Join(", ", sim.Run(st.GetStatisticsAsync()).Where(c => c.Value != 0 && c.Layer is "Tcp" or "IPv4" or "Arp").Select(c => $"{c.Layer}.{c.Name}={c.Value}")));
        foreach (var st in sim.Stacks)
            foreach (var r in sim.Run(st.GetConnectionsAsync()))
            {
                sb.AppendLine($"{st.Name}: {r.LocalPort}->{r.RemotePort} {r.State} recvq {r.RecvQ} sendq {r.SendQ} {r.Tcp}");
                if (st.FindSocket(r.Id) is TcpSocket ts)
                    sb.AppendLine($"   rtoAt {ts.Tcb.RtoAt} heapAt {ts.Tcb.HeapAt} delack {ts.Tcb.DelAckAt} retries {ts.Tcb.Snd.Retries} recovery {ts.Tcb.Snd.Recovery?.InRecovery} sndmax {ts.Tcb.Snd.Max} fin {ts.Tcb.Snd.FinQueued} err {ts.Tcb.Error}");
            }
        return sb.ToString();
    }

    /// <summary>Retransmission figures of both stacks: segments and bytes sent again, and duplicate segments received.</summary>
    public static string RetransmitSummary(Simulation sim)
    {
        var t = RetransmitTotals(sim);
        return $"retransmitted {t.Segments} segments / {t.Bytes} bytes, timeouts {t.Timeouts}, duplicates received {t.Duplicates}";
    }

    /// <summary>Both stacks' totals: segments and bytes sent again, retransmission timeouts, duplicate segments received.</summary>
    public static (long Segments, long Bytes, long Timeouts, long Duplicates) RetransmitTotals(Simulation sim)
    {
        long segs = 0, bytes = 0, timeouts = 0, dups = 0;
        foreach (var st in sim.Stacks)
            foreach (var c in sim.Run(st.GetStatisticsAsync()))
            {
                if (c.Layer != "Tcp") continue;
                if (c.Name == "SegmentsRetransmitted") segs += c.Value;
                else if (c.Name == "BytesRetransmitted") bytes += c.Value;
                else if (c.Name == "Timeouts") timeouts += c.Value;
                else if (c.Name == "DuplicateSegments") dups += c.Value;
            }
        return (segs, bytes, timeouts, dups);
    }

    public static byte[] Data(int size, int seed)
    {
        var d = new byte[size];
        new Random(seed).NextBytes(d);
        return d;
    }
}

/// <summary>One direction of a bulk transfer: sends <c>data</c> then FIN; hashes what arrives until the FIN.</summary>
public sealed class Flow
{
    private readonly TcpSocket _sender;
    private readonly TcpSocket _receiver;
    private readonly byte[] _data;
    private readonly byte[] _buffer = new byte[64 * 1024];
    private readonly IncrementalHash _hash = IncrementalHash.CreateHash(HashAlgorithmName.SHA256);
    private readonly int _chunk;
    private int _sent;
    private bool _shut;
    private Task? _send;
    private Task<int>? _recv;

    public Flow(TcpSocket sender, TcpSocket receiver, byte[] data, int chunk = 64 * 1024)
    {
        _sender = sender;
        _receiver = receiver;
        _data = data;
        _chunk = chunk;
    }

    public long Received { get; private set; }
    public bool Done { get; private set; }
    public byte[] ReceivedHash => _hash.GetCurrentHash();
    public byte[] ExpectedHash => SHA256.HashData(_data);

    public bool Pump()
    {
        var issued = false;
        if (_send is { IsCompleted: true } st) { st.GetAwaiter().GetResult(); _send = null; }
        if (_send is null)
        {
            if (_sent < _data.Length)
            {
                var n = Math.Min(_chunk, _data.Length - _sent);
                _send = _sender.SendAsync(_data.AsMemory(_sent, n));
                _sent += n;
                issued = true;
            }
            else if (!_shut)
            {
                _sender.ShutdownSend();
                _shut = true;
                issued = true;
            }
        }
        if (Done) return issued;
        if (_recv is { IsCompleted: true } rt)
        {
            var n = rt.GetAwaiter().GetResult();
            _recv = null;
            if (n == 0) { Done = true; return true; }
            _hash.AppendData(_buffer, 0, n);
            Received += n;
        }
        if (_recv is null)
        {
            _recv = _receiver.ReceiveAsync(_buffer).AsTask();
            issued = true;
        }
        return issued;
    }
}
