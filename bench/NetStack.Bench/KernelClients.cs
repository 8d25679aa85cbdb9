using System.Diagnostics;
using System.Globalization;
using System.Net;
using System.Net.Sockets;
using System.Runtime.InteropServices;
using NetStack.Link;

namespace NetStack.Bench;

/// <summary>
/// The kernel in our stack's position: the same client work as <see cref="Scenarios"/>, with kernel sockets created on a
/// thread that entered U (so they live there), blocking calls. The peer in K is the same for both.
/// </summary>
internal static class KernelClients
{
    private static readonly Ipv4Address Kernel = BenchLab.KernelAddress;
    private static readonly IPEndPoint KernelEp = new(IPAddress.Parse("192.0.2.1"), 0);

    internal static T InU<T>(BenchLab lab, Func<T> work) => PcapDevice.RunInNetworkNamespace(lab.StackNamespace, work);

    internal static Socket KernelConnect(int port, bool noDelay = false)
    {
        var s = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp) { NoDelay = noDelay, ReceiveTimeout = 10_000, SendTimeout = 10_000 };
        s.Connect(new IPEndPoint(KernelEp.Address, port));
        return s;
    }

    public static Measurement Bulk(BenchLab lab, BenchOptions o, bool receive) => InU(lab, () =>
    {
        using var s = KernelConnect(receive ? Peer.SourcePort : Peer.SinkPort);
        var buffer = new byte[o.BulkChunk];
        new Random(2).NextBytes(buffer);
        var clock = Stopwatch.StartNew();
        long bytes = 0;
        TimeSpan? start = null;
        var cpu0 = TimeSpan.Zero;
        var probe = default(CpuProbe);
        while (true)
        {
            if (start is null && clock.Elapsed >= o.BulkWarmup) { start = clock.Elapsed; bytes = 0; cpu0 = Native.ThreadCpuTime(); probe = CpuProbe.Take(); }
            if (start is { } st && clock.Elapsed - st >= o.BulkDuration) break;
            if (receive)
            {
                var n = s.Receive(buffer);
                if (n == 0) throw new InvalidOperationException("the peer closed the bulk connection early");
                bytes += n;
            }
            else bytes += s.Send(buffer);
        }
        var elapsed = clock.Elapsed - start!.Value;
        var cpu = Native.ThreadCpuTime() - cpu0;
        var probeEnd = CpuProbe.Take();
        s.LingerState = new LingerOption(true, 0); // RST: stops the peer's sender at once
        var details = new Dictionary<string, double>
        {
            ["bytes"] = bytes,
            ["client_thread_cpu_share"] = cpu / elapsed,
        };
        CpuProbe.Describe(probe, probeEnd, details);
        return new Measurement(bytes * 8 / elapsed.TotalSeconds / 1e9, details);
    });

    public static Measurement ConnectRate(BenchLab lab, BenchOptions o) => InU(lab, () =>
    {
        for (int i = 0; i < 100; i++) KernelConnect(Peer.ClosePort).Dispose();
        var clock = Stopwatch.StartNew();
        var cpu0 = Native.ThreadCpuTime();
        var (threads0, peer0, pool0) = (ThreadCounters.Take(), ThreadCounters.Take(CpuProbe.PeerPid), ThreadPool.CompletedWorkItemCount);
        WindowMarks.Mark("kernel", "start");
        for (int i = 0; i < o.Connects; i++) KernelConnect(Peer.ClosePort).Dispose();
        WindowMarks.Mark("kernel", "end");
        var elapsed = clock.Elapsed;
        var (threads1, peer1, pool1) = (ThreadCounters.Take(), ThreadCounters.Take(CpuProbe.PeerPid), ThreadPool.CompletedWorkItemCount);
        var details = new Dictionary<string, double>
        {
            ["client_thread_cpu_us_per_connection"] = (Native.ThreadCpuTime() - cpu0).TotalMicroseconds / o.Connects,
            ["pool_work_items_per_connection"] = (double)(pool1 - pool0) / o.Connects,
        };
        ThreadCounters.Describe("per_connection_", threads0, threads1, o.Connects, details, split: true);
        ThreadCounters.Describe("peer_per_connection_", peer0, peer1, o.Connects, details, split: false);
        return new Measurement(o.Connects / elapsed.TotalSeconds, details);
    });

    public static Measurement RequestResponse(BenchLab lab, BenchOptions o) => InU(lab, () =>
    {
        using var s = KernelConnect(Peer.EchoPort, noDelay: true);
        var one = new byte[1] { 42 };
        var back = new byte[1];
        void Exchange()
        {
            s.Send(one);
            if (s.Receive(back) != 1) throw new InvalidOperationException("the echo peer closed");
        }
        for (int i = 0; i < 1000; i++) Exchange();
        var clock = Stopwatch.StartNew();
        var cpu0 = Native.ThreadCpuTime();
        for (int i = 0; i < o.RoundTrips; i++) Exchange();
        var elapsed = clock.Elapsed;
        return new Measurement(elapsed.TotalMicroseconds / o.RoundTrips, new Dictionary<string, double>
        {
            ["client_thread_cpu_us_per_round_trip"] = (Native.ThreadCpuTime() - cpu0).TotalMicroseconds / o.RoundTrips,
        });
    });

    private static int _flatRuns;

    /// <summary>
    /// The kernel's "flat with scale", the mirror of <see cref="Scale.OursFlatWithScale"/>: bulk receive, connect+close and
    /// request/response in U with none and with N idle connections open. U cannot hold N descriptors (this machine caps a
    /// process at 20,000), so the N connections come from K (processes of this program, each within its limit, spread over
    /// K's addresses) to a listener in U that never accepts: U's kernel holds them established in its accept queue, in the
    /// same lookup table as its own sockets, without a descriptor each. Odd runs measure "none" first.
    /// </summary>
    public static Dictionary<string, Measurement> FlatWithScale(BenchLab lab, BenchOptions o)
    {
        lab.EnsureSecondaryAddresses();
        var noneFirst = Interlocked.Increment(ref _flatRuns) % 2 == 1;
        var short_ = o with { BulkDuration = TimeSpan.FromSeconds(Math.Max(1, o.BulkDuration.TotalSeconds / 2)) };
        (Measurement Recv, Measurement Connect, Measurement Rr) Figures() => (Bulk(lab, short_, receive: true), ConnectRate(lab, o), RequestResponse(lab, o));
        using var listener = InU(lab, () =>
        {
            var l = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
            l.SetSocketOption(SocketOptionLevel.Socket, SocketOptionName.ReuseAddress, true);
            l.Bind(new IPEndPoint(IPAddress.Any, Peer.KernelScaleHoldPort));
            l.Listen(262_144);
            return l;
        });
        (Measurement Recv, Measurement Connect, Measurement Rr) none, many;
        int open;
        if (noneFirst)
        {
            none = Figures();
            var holders = OpenFromK(lab, o.ScaleConnections, out open);
            try { many = Figures(); }
            finally { Release(holders); }
        }
        else
        {
            var holders = OpenFromK(lab, o.ScaleConnections, out open);
            try { many = Figures(); }
            finally { Release(holders); }
            none = Figures();
        }
        return Scale.WithAndWithout(many, none, open, noneFirst);
    }

    /// <summary>
    /// Starts the holders in K (at most 19,000 connections each, round-robin over K's addresses, each its own range of
    /// local ports from 10,000: a second holder on an address starts 25,000 higher) and waits for them.
    /// </summary>
    private static List<Process> OpenFromK(BenchLab lab, int connections, out int established)
    {
        Ipv4Address[] sources = [BenchLab.KernelAddress, .. BenchLab.KernelSecondaryAddresses];
        var before = EstablishedInU(lab);
        var processes = (connections + 18_999) / 19_000;
        var holders = new List<Process>();
        try
        {
            for (int i = 0; i < processes; i++)
            {
                var count = connections / processes + (i < connections % processes ? 1 : 0);
                holders.Add(Program.StartSelfInKernel(lab, "hold", sources[i % sources.Length].ToString()!, BenchLab.StackAddress.ToString()!,
                    Peer.KernelScaleHoldPort.ToString(CultureInfo.InvariantCulture), count.ToString(CultureInfo.InvariantCulture),
                    (10_000 + i / sources.Length * 25_000).ToString(CultureInfo.InvariantCulture)));
            }
            foreach (var h in holders)
            {
                var line = h.StandardOutput.ReadLineAsync();
                if (!line.Wait(TimeSpan.FromMinutes(3)) || line.Result != "ready")
                    throw new InvalidOperationException("a holder in K did not open its connections: " + (line.IsCompleted ? line.Result : "timed out"));
            }
        }
        catch
        {
            Release(holders);
            throw;
        }
        Thread.Sleep(300); // the last ACKs settle: the connections are idle
        established = EstablishedInU(lab) - before;
        return holders;
    }

    /// <summary>Ends the holders (their connections close with them) and waits for them.</summary>
    private static void Release(List<Process> holders)
    {
        foreach (var h in holders)
        {
            try { h.StandardInput.Close(); } catch (Exception) { }
        }
        foreach (var h in holders)
        {
            try { if (!h.WaitForExit(30_000)) h.Kill(entireProcessTree: true); } catch (Exception) { }
        }
        Thread.Sleep(200);
    }

    /// <summary>Established sockets in U (accept queues included): /proc/net/sockstat's "TCP: inuse" is per namespace.</summary>
    private static int EstablishedInU(BenchLab lab)
    {
        var stat = lab.RunInStackNamespace(TimeSpan.FromSeconds(30), "cat", "/proc/net/sockstat").EnsureSuccess().Output;
        var tcp = stat.Split('\n').First(l => l.StartsWith("TCP:", StringComparison.Ordinal)).Split(' ');
        return int.Parse(tcp[Array.IndexOf(tcp, "inuse") + 1], CultureInfo.InvariantCulture);
    }

    /// <summary>iputils ping in flood mode from U (the next echo as soon as the reply is in): rtt avg.</summary>
    public static Measurement Ping(BenchLab lab, BenchOptions o)
    {
        var r = lab.RunInStackNamespace(TimeSpan.FromSeconds(60), "ping", "-f", "-q", "-c", o.Pings.ToString(CultureInfo.InvariantCulture), "-s", "56", Kernel.ToString()!).EnsureSuccess();
        // rtt min/avg/max/mdev = 0.004/0.006/0.080/0.002 ms
        var line = r.Output.Split('\n').FirstOrDefault(l => l.Contains("min/avg/max", StringComparison.Ordinal))
                   ?? throw new InvalidOperationException("ping printed no rtt line: " + r.Output);
        var v = line.Split('=')[1].Trim().Split(' ')[0].Split('/').Select(x => double.Parse(x, CultureInfo.InvariantCulture) * 1000).ToArray();
        return new Measurement(v[1], new Dictionary<string, double> { ["rtt_min_us"] = v[0], ["rtt_max_us"] = v[2], ["rtt_mdev_us"] = v[3] });
    }
}

