using System.Diagnostics;
using System.Net;
using System.Net.Sockets;
using System.Text;

namespace NetStack.Bench;

/// <summary>
/// Issue 14's lossy transfers: <see cref="BenchOptions.LossyBytes"/> (32 MiB) through the peer in K with random loss
/// each way on K's side (<see cref="BenchLab.SetKernelLoss"/>: nftables drops N% of the segments into and out of
/// the lossy ports, independently; no delay and no reordering: this kernel has no netem, and FaultyLink around our
/// adapter would apply to our side only). Timed from the connect until the receiver has everything (send: the
/// peer's byte count is back; receive: the peer's FIN). The sender's loss-recovery counters are reported with the
/// same names on both sides: ours from the stack's statistics, the kernel's from its namespace's counters (nstat's).
/// </summary>
internal static class Lossy
{
    private static readonly Ipv4Address Kernel = BenchLab.KernelAddress;
    private const int TcpCongestion = 13; // TCP_CONGESTION (linux/tcp.h), level IPPROTO_TCP

    /// <summary>The kernel's counters for the figures' names (Linux MIB names: Tcp.* from /proc/net/snmp, TcpExt.* from netstat).</summary>
    private static readonly (string Detail, string[] Kernel)[] SenderCounters =
    [
        ("retransmitted_segments", ["Tcp.RetransSegs"]),
        ("timeouts_rto", ["TcpExt.TCPTimeouts"]),
        ("fast_retransmits", ["TcpExt.TCPFastRetrans"]),
        ("probe_timeouts_tlp", ["TcpExt.TCPLossProbes"]),
        ("spurious_rtos", ["TcpExt.TCPSpuriousRTOs"]),
        ("undo_dsack", ["TcpExt.TCPDSACKUndo"]),
    ];

    /// <summary>
    /// Our counters for the same names: the first that exists of each list (the loss-recovery work adds TLP and
    /// spurious-retransmission counters; until then those figures read n/a).
    /// </summary>
    private static readonly (string Detail, string[] Ours)[] OurSenderCounters =
    [
        ("retransmitted_segments", ["SegmentsRetransmitted"]),
        ("timeouts_rto", ["Timeouts"]),
        ("fast_retransmits", ["FastRetransmits"]),
        ("probe_timeouts_tlp", ["TailLossProbes", "LossProbes", "ProbeTimeouts", "TlpProbes"]),
        ("spurious_rtos", ["SpuriousRtos", "SpuriousTimeouts", "SpuriousRetransmissions", "SpuriousRetransmits"]),
        ("undo_dsack", ["DsackUndos", "Undos", "UndoDsack", "RecoveryUndos"]),
    ];

    /// <summary>What the receiver in K saw, the same for both sides: D-SACKs it sent = duplicate segments it got (spurious retransmissions).</summary>
    private static readonly (string Detail, string[] Kernel)[] ReceiverInK =
    [
        ("receiver_dsacks_sent", ["TcpExt.TCPDSACKOldSent", "TcpExt.TCPDSACKOfoSent"]),
    ];

    public static async Task<Measurement> OursSend(BenchLab lab, BenchOptions o, CongestionPair cc, int loss)
    {
        Func<StackConfig, StackConfig>? config = cc.Ours is { } name ? c => c with { Tcp = c.Tcp with { CongestionControl = name } } : null;
        using var stack = await Scenarios.StartStack(lab, o, config);
        // Warm-up without loss, untimed (as the other scenarios warm up): otherwise the first run in the process times
        // the JIT of the send path (the kernel has none).
        using (var w = await stack.ConnectTcpAsync(Kernel, Peer.LossySinkPort)) await SendAndCount(w, 4 << 20);
        var ours0 = await TcpCounters(stack);
        var k0 = lab.Counters(lab.KernelNamespace);
        lab.SetKernelLoss(loss, Peer.LossySinkPort, Peer.LossySourcePort);
        try
        {
            var clock = Stopwatch.StartNew();
            using var s = await stack.ConnectTcpAsync(Kernel, Peer.LossySinkPort);
            await SendAndCount(s, o.LossyBytes);
            var elapsed = clock.Elapsed;
            return new Measurement(elapsed.TotalSeconds, Details(lab, k0, (await TcpCounters(stack), ours0)));
        }
        finally { lab.SetKernelLoss(0); }
    }

    /// <summary>Sends <paramref name="bytes"/> to the peer's sink, half-closes, and waits for its count of what it received.</summary>
    private static async Task SendAndCount(NetStack.Sockets.TcpSocket s, long bytes)
    {
        var chunk = new byte[Peer.ChunkSize];
        new Random(4).NextBytes(chunk);
        for (long left = bytes; left > 0; left -= chunk.Length) await s.SendAsync(chunk.AsMemory(0, (int)Math.Min(left, chunk.Length)));
        s.ShutdownSend();
        var count = new byte[8];
        for (int got = 0; got < 8;)
        {
            var n = await s.ReceiveAsync(count.AsMemory(got));
            if (n == 0) throw new InvalidOperationException("the peer closed before it reported the byte count");
            got += n;
        }
        if (BitConverter.ToInt64(count) != bytes) throw new InvalidOperationException($"the peer received {BitConverter.ToInt64(count)} bytes, not {bytes}");
    }

    public static Measurement KernelSend(BenchLab lab, BenchOptions o, CongestionPair cc, int loss)
    {
        if (cc.Kernel is { } name && !lab.KernelCongestionControls().Contains(name))
            throw new NotSupportedException($"this kernel has no '{name}' congestion control (tcp_available_congestion_control: {string.Join(' ', lab.KernelCongestionControls())})");
        var u0 = lab.Counters(lab.StackNamespace);
        var k0 = lab.Counters(lab.KernelNamespace);
        lab.SetKernelLoss(loss, Peer.LossySinkPort, Peer.LossySourcePort);
        try
        {
            var clock = Stopwatch.StartNew();
            using var s = ConnectFromU(lab, Peer.LossySinkPort, cc.Kernel);
            var used = UsedCongestionControl(s);
            var chunk = new byte[Peer.ChunkSize];
            new Random(4).NextBytes(chunk);
            for (long left = o.LossyBytes; left > 0;) left -= s.Send(chunk.AsSpan(0, (int)Math.Min(left, chunk.Length)));
            s.Shutdown(SocketShutdown.Send);
            var count = new byte[8];
            for (int got = 0; got < 8;)
            {
                var n = s.Receive(count.AsSpan(got));
                if (n == 0) throw new InvalidOperationException("the peer closed before it reported the byte count");
                got += n;
            }
            var elapsed = clock.Elapsed;
            if (BitConverter.ToInt64(count) != o.LossyBytes) throw new InvalidOperationException($"the peer received {BitConverter.ToInt64(count)} bytes, not {o.LossyBytes}");
            var u1 = lab.Counters(lab.StackNamespace);
            var details = Details(lab, k0, null);
            foreach (var (detail, names) in SenderCounters) details[detail] = Delta(u1, u0, names);
            details[$"congestion_control_{used}"] = 1;
            return new Measurement(elapsed.TotalSeconds, details);
        }
        finally { lab.SetKernelLoss(0); }
    }

    public static async Task<Measurement> OursReceive(BenchLab lab, BenchOptions o, int loss)
    {
        using var stack = await Scenarios.StartStack(lab, o);
        var ours0 = await TcpCounters(stack);
        var k0 = lab.Counters(lab.KernelNamespace);
        lab.SetKernelLoss(loss, Peer.LossySinkPort, Peer.LossySourcePort);
        try
        {
            var clock = Stopwatch.StartNew();
            using var s = await stack.ConnectTcpAsync(Kernel, Peer.LossySourcePort);
            await s.SendAsync(BitConverter.GetBytes(o.LossyBytes));
            var buffer = new byte[Peer.ChunkSize];
            long total = 0;
            int n;
            while ((n = await s.ReceiveAsync(buffer)) > 0) total += n;
            var elapsed = clock.Elapsed;
            if (total != o.LossyBytes) throw new InvalidOperationException($"received {total} bytes, not {o.LossyBytes}");
            var ours1 = await TcpCounters(stack);
            var details = ReceiveDetails(lab, k0);
            details["receiver_out_of_order_segments"] = ours1.GetValueOrDefault("OutOfOrderSegments") - ours0.GetValueOrDefault("OutOfOrderSegments");
            details["receiver_duplicate_segments"] = ours1.GetValueOrDefault("DuplicateSegments") - ours0.GetValueOrDefault("DuplicateSegments");
            return new Measurement(elapsed.TotalSeconds, details);
        }
        finally { lab.SetKernelLoss(0); }
    }

    public static Measurement KernelReceive(BenchLab lab, BenchOptions o, int loss)
    {
        var u0 = lab.Counters(lab.StackNamespace);
        var k0 = lab.Counters(lab.KernelNamespace);
        lab.SetKernelLoss(loss, Peer.LossySinkPort, Peer.LossySourcePort);
        try
        {
            var clock = Stopwatch.StartNew();
            using var s = ConnectFromU(lab, Peer.LossySourcePort, congestion: null);
            s.Send(BitConverter.GetBytes(o.LossyBytes));
            var buffer = new byte[Peer.ChunkSize];
            long total = 0;
            int n;
            while ((n = s.Receive(buffer)) > 0) total += n;
            var elapsed = clock.Elapsed;
            if (total != o.LossyBytes) throw new InvalidOperationException($"received {total} bytes, not {o.LossyBytes}");
            var u1 = lab.Counters(lab.StackNamespace);
            var details = ReceiveDetails(lab, k0);
            details["receiver_out_of_order_segments"] = Delta(u1, u0, ["TcpExt.TCPOFOQueue"]);
            details["receiver_duplicate_segments"] = Delta(u1, u0, ["TcpExt.TCPDSACKOldSent", "TcpExt.TCPDSACKOfoSent"]);
            return new Measurement(elapsed.TotalSeconds, details);
        }
        finally { lab.SetKernelLoss(0); }
    }

    /// <summary>A kernel socket in U (the kernel in our place) connected to the peer's <paramref name="port"/>, with TCP_CONGESTION if given.</summary>
    private static Socket ConnectFromU(BenchLab lab, int port, string? congestion) => KernelClients.InU(lab, () =>
    {
        var k = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp) { ReceiveTimeout = 300_000, SendTimeout = 300_000 };
        if (congestion is not null) k.SetRawSocketOption(6, TcpCongestion, Encoding.ASCII.GetBytes(congestion));
        k.Connect(new IPEndPoint(IPAddress.Parse(Kernel.ToString()!), port));
        return k;
    });

    /// <summary>What the sender in K (the kernel, its default control) did while we or the kernel in U received.</summary>
    private static Dictionary<string, double> ReceiveDetails(BenchLab lab, Dictionary<string, long> k0)
    {
        var k1 = lab.Counters(lab.KernelNamespace);
        var d = new Dictionary<string, double>();
        foreach (var (detail, names) in SenderCounters) d["sender_in_k_" + detail] = Delta(k1, k0, names);
        var (to, from) = lab.KernelLossDrops();
        d["loss_dropped_to_kernel"] = to;
        d["loss_dropped_from_kernel"] = from;
        return d;
    }

    /// <summary>The receiver's view in K and the loss rule's drops, plus our sender counters when <paramref name="ours"/> is given.</summary>
    private static Dictionary<string, double> Details(BenchLab lab, Dictionary<string, long> k0, (Dictionary<string, long> After, Dictionary<string, long> Before)? ours)
    {
        var k1 = lab.Counters(lab.KernelNamespace);
        var d = new Dictionary<string, double>();
        if (ours is { } c)
            foreach (var (detail, names) in OurSenderCounters)
                d[detail] = names.FirstOrDefault(c.After.ContainsKey) is { } name ? c.After[name] - c.Before.GetValueOrDefault(name) : double.NaN;
        foreach (var (detail, names) in ReceiverInK) d[detail] = Delta(k1, k0, names);
        var (to, from) = lab.KernelLossDrops();
        d["loss_dropped_to_kernel"] = to;
        d["loss_dropped_from_kernel"] = from;
        return d;
    }

    private static double Delta(Dictionary<string, long> after, Dictionary<string, long> before, string[] names) =>
        names.Sum(n => after.GetValueOrDefault(n) - before.GetValueOrDefault(n));

    private static async Task<Dictionary<string, long>> TcpCounters(NetworkStack stack) =>
        (await stack.GetStatisticsAsync()).Where(c => c.Layer == "Tcp").GroupBy(c => c.Name).ToDictionary(g => g.Key, g => g.First().Value);

    /// <summary>The congestion control the kernel socket actually uses (getsockopt TCP_CONGESTION).</summary>
    private static string UsedCongestionControl(Socket s)
    {
        var buffer = new byte[16];
        var n = s.GetRawSocketOption(6, TcpCongestion, buffer);
        return Encoding.ASCII.GetString(buffer, 0, n).TrimEnd('\0');
    }
}
