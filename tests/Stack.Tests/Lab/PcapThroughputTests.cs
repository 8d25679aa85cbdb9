using System.Diagnostics;
using System.Text.Json;
using NetStack.Link;
using NetStack.Tests.Link;
using Xunit.Abstractions;

namespace NetStack.Tests.Lab;

/// <summary>
/// Bulk frame rates of the pcap device over the veth pair, printed for docs/lab.md. They assert only that every
/// frame was accounted for; the figures are the point (the machine is shared and noisy).
/// </summary>
[Collection(KernelLabCollection.Name)]
[Trait("Category", "Performance")]
public sealed class PcapThroughputTests(ITestOutputHelper output)
{
    private const int FrameLength = 1514;
    private const int Frames = 200_000;

    private sealed record LinkCounters(long RxPackets, long RxDropped, long TxPackets, long TxDropped);

    private static LinkCounters Counters(string ns, string dev)
    {
        var json = LabProcess.Run("ip", ["-n", ns, "-s", "-j", "link", "show", dev]).EnsureSuccess().Output;
        var s = JsonDocument.Parse(json).RootElement[0].GetProperty("stats64");
        return new LinkCounters(s.GetProperty("rx").GetProperty("packets").GetInt64(), s.GetProperty("rx").GetProperty("dropped").GetInt64(),
            s.GetProperty("tx").GetProperty("packets").GetInt64(), s.GetProperty("tx").GetProperty("dropped").GetInt64());
    }

    private static string Rate(long frames, TimeSpan elapsed) =>
        $"{frames / elapsed.TotalSeconds / 1000:0} kframes/s = {frames * FrameLength * 8 / elapsed.TotalSeconds / 1e9:0.00} Gbit/s";

    [KernelTheory]
    [InlineData(true, false)]
    [InlineData(false, false)]
    [InlineData(true, true)]
    public void BulkSend(bool batched, bool bypassQdisc)
    {
        using var lab = new KernelLab();
        var dev = lab.OpenStackDevice(new PcapDeviceOptions { BatchTransmit = batched, BypassQdisc = bypassQdisc });
        var frame = LinkTestKit.TaggedFrame(lab.KernelMac, dev.HardwareAddress, "bulk", FrameLength);
        var before = Counters(lab.KernelNamespace, KernelLab.KernelInterface);
        var cpu0 = LibC.ThreadCpuTime();
        var clock = Stopwatch.StartNew();
        for (int i = 0; i < Frames; i++)
        {
            dev.Transmit(frame, clock.Elapsed);
            if ((i & 63) == 63) dev.Flush(clock.Elapsed); // a loop turn's worth
        }
        dev.Flush(clock.Elapsed);
        var elapsed = clock.Elapsed;
        var cpu = LibC.ThreadCpuTime() - cpu0;
        var after = Counters(lab.KernelNamespace, KernelLab.KernelInterface);

        Assert.Equal(Frames, dev.Statistics.FramesSent + dev.Statistics.SendErrors);
        var arrived = after.RxPackets - before.RxPackets;
        output.WriteLine($"send ({(batched ? "sendmmsg batches of 64" : "one send per frame")}{(bypassQdisc ? ", qdisc bypass" : "")}): {Frames} x {FrameLength} B in {elapsed.TotalMilliseconds:0} ms, " +
                         $"{Rate(Frames, elapsed)}; loop thread CPU {cpu.TotalMilliseconds:0} ms ({cpu.TotalMicroseconds * 1000 / Frames:0} ns/frame, kernel's veth receive included); " +
                         $"send errors {dev.Statistics.SendErrors}; k0 counted {arrived} received (and dropped {after.RxDropped - before.RxDropped}: unknown EtherType, as intended)");
        Assert.True(arrived >= dev.Statistics.FramesSent * 99 / 100,
            $"only {arrived} of {dev.Statistics.FramesSent} frames reached k0");
    }

    [KernelFact]
    public void BulkReceive()
    {
        using var lab = new KernelLab();
        var dev = lab.OpenStackDevice();
        var peer = lab.OpenKernelSideDevice();
        var frame = LinkTestKit.TaggedFrame(dev.HardwareAddress, peer.HardwareAddress, "bulk", FrameLength);
        var before = Counters(lab.StackNamespace, KernelLab.StackInterface);
        var kernelBefore = Counters(lab.KernelNamespace, KernelLab.KernelInterface);
        var sink = new CountingSink();
        var clock = Stopwatch.StartNew();
        TimeSpan sendDone = default, senderCpu = default;
        var sender = new Thread(() =>
        {
            var c0 = LibC.ThreadCpuTime();
            for (int i = 0; i < Frames; i++)
            {
                peer.Transmit(frame, clock.Elapsed);
                if ((i & 63) == 63) peer.Flush(clock.Elapsed);
            }
            peer.Flush(clock.Elapsed);
            sendDone = clock.Elapsed;
            senderCpu = LibC.ThreadCpuTime() - c0;
        });
        var cpu0 = LibC.ThreadCpuTime();
        sender.Start();
        TimeSpan first = default, last = default;
        var idleSince = clock.Elapsed;
        // Run the loop until every frame is in, or nothing has come for a second after the sender finished.
        while (sink.Count < Frames)
        {
            var n = dev.Receive(sink, clock.Elapsed, 64);
            if (n > 0)
            {
                if (first == default) first = clock.Elapsed;
                last = idleSince = clock.Elapsed;
                continue;
            }
            if (!sender.IsAlive && clock.Elapsed - idleSince > TimeSpan.FromSeconds(1)) break;
            if (clock.Elapsed > TimeSpan.FromSeconds(60)) break;
            dev.WaitForFrames(TimeSpan.FromMilliseconds(100));
        }
        Assert.True(sender.Join(TimeSpan.FromSeconds(30)));
        var cpu = LibC.ThreadCpuTime() - cpu0;
        dev.RefreshStatistics();
        var after = Counters(lab.StackNamespace, KernelLab.StackInterface);
        var kernelAfter = Counters(lab.KernelNamespace, KernelLab.KernelInterface);
        // veth counts a frame its peer's backlog refused as a drop on one end or the other, depending on the kernel.
        var vethDrops = after.RxDropped - before.RxDropped + kernelAfter.TxDropped - kernelBefore.TxDropped;
        output.WriteLine($"receive: {sink.Count} of {Frames} x {FrameLength} B in {(last - first).TotalMilliseconds:0} ms, {Rate(sink.Count, last - first)}; " +
                         $"sender done at {sendDone.TotalMilliseconds:0} ms; loop thread CPU {cpu.TotalMilliseconds:0} ms ({cpu.TotalMicroseconds * 1000 / Math.Max(1, sink.Count):0} ns/frame), sender thread CPU {senderCpu.TotalMilliseconds:0} ms; " +
                         $"pcap dropped {dev.Statistics.DroppedByDevice}; veth u0 rx dropped {vethDrops}; u0 rx {after.RxPackets - before.RxPackets}");
        Assert.Equal(Frames, peer.Statistics.FramesSent);
        // Every frame is either received or counted as dropped somewhere below us.
        Assert.True(sink.Count + dev.Statistics.DroppedByDevice + vethDrops >= Frames * 99L / 100,
            $"{Frames - sink.Count} frames missing, pcap counted {dev.Statistics.DroppedByDevice} drops, veth {vethDrops}");
    }

    /// <summary>
    /// The receive path's own cost: frames already waiting in the kernel ring are drained by Receive alone,
    /// with no sender competing for the two cores.
    /// </summary>
    [KernelTheory]
    [InlineData(false)]
    [InlineData(true)]
    public void DrainReceiveRing(bool copying)
    {
        const int Burst = 10_000; // fits the 32 MiB ring (about 16,000 slots at MTU 1500)
        using var lab = new KernelLab();
        var dev = lab.OpenStackDevice(new PcapDeviceOptions { CopyingReceive = copying });
        var peer = lab.OpenKernelSideDevice();
        var frame = LinkTestKit.TaggedFrame(dev.HardwareAddress, peer.HardwareAddress, "bulk", FrameLength);
        var sink = new CountingSink();
        var clock = Stopwatch.StartNew();
        for (int round = 0; round < 3; round++)
        {
            var before = Counters(lab.StackNamespace, KernelLab.StackInterface).RxPackets;
            for (int i = 0; i < Burst; i++)
            {
                peer.Transmit(frame, clock.Elapsed);
                if ((i & 63) == 63) peer.Flush(clock.Elapsed);
            }
            peer.Flush(clock.Elapsed);
            // Wait (bounded) until the kernel has delivered the whole burst to u0.
            var deadline = clock.Elapsed + TimeSpan.FromSeconds(10);
            while (Counters(lab.StackNamespace, KernelLab.StackInterface).RxPackets - before < Burst && clock.Elapsed < deadline) dev.WaitForFrames(TimeSpan.FromMilliseconds(10));

            var start = sink.Count;
            var cpu0 = LibC.ThreadCpuTime();
            var t0 = clock.Elapsed;
            while (dev.Receive(sink, clock.Elapsed, 64) > 0) { }
            var wall = clock.Elapsed - t0;
            var cpu = LibC.ThreadCpuTime() - cpu0;
            var got = sink.Count - start;
            dev.RefreshStatistics();
            output.WriteLine($"drain ({(copying ? "pcap_next_ex" : "pcap_dispatch")}) round {round}: {got} frames in {wall.TotalMilliseconds:0.0} ms ({wall.TotalMicroseconds * 1000 / Math.Max(1, got):0} ns/frame wall, " +
                             $"{cpu.TotalMicroseconds * 1000 / Math.Max(1, got):0} ns/frame CPU) = {Rate(got, wall)}; pcap dropped {dev.Statistics.DroppedByDevice}");
            Assert.Equal(Burst, got);
            Assert.Equal(0, dev.Statistics.DroppedByDevice);
        }
    }

    /// <summary>Request/response through the whole stack: the kernel's flood ping (next request as soon as the reply is in).</summary>
    [KernelFact(Programs = ["ping"])]
    public void KernelFloodPingsOurStack()
    {
        using var lab = new KernelLab();
        using var stack = new NetworkStack(lab.OpenStackDevice(), new StackConfig { Address = KernelLab.StackAddress, PrefixLength = KernelLab.PrefixLength }, name: "lab");
        stack.Start();
        var r = lab.RunInKernel($"ping -f -q -c 20000 -W 5 {KernelLab.StackAddress}", TimeSpan.FromSeconds(120));
        output.WriteLine("kernel flood ping of our stack: " + string.Join(" | ", r.Output.Split('\n', StringSplitOptions.RemoveEmptyEntries).Skip(1)));
        Assert.Equal(0, r.ExitCode);
        Assert.Contains("20000 received", r.Output);
    }

    private static long Counter(IReadOnlyList<StackCounter> stats, string layer, string name) =>
        stats.Single(c => c.Layer == layer && c.Name == name).Value;

    internal static Dictionary<string, long> KernelSnmp(KernelLab lab)
    {
        var lines = lab.RunInKernel("cat /proc/net/snmp").EnsureSuccess().Output.Split('\n', StringSplitOptions.RemoveEmptyEntries);
        var result = new Dictionary<string, long>();
        for (int i = 0; i + 1 < lines.Length; i += 2)
        {
            var names = lines[i].Split(' ', StringSplitOptions.RemoveEmptyEntries);
            var values = lines[i + 1].Split(' ', StringSplitOptions.RemoveEmptyEntries);
            for (int j = 1; j < names.Length && j < values.Length; j++) result[names[0].TrimEnd(':') + "." + names[j]] = long.Parse(values[j]);
        }
        return result;
    }

    /// <summary>UDP through the whole stack and its socket API: our socket sends 1472-byte datagrams to socat in K.</summary>
    [KernelFact(Programs = ["socat"])]
    public async Task UdpBulkSend_ThroughTheStack()
    {
        const int Count = 50_000, Size = 1472, Window = 64;
        using var lab = new KernelLab();
        using var stack = new NetworkStack(lab.OpenStackDevice(), new StackConfig { Address = KernelLab.StackAddress, PrefixLength = KernelLab.PrefixLength }, name: "lab");
        stack.Start();
        var sink = lab.StartProgramInKernel("socat", "-u", "UDP4-RECV:7009,bind=192.0.2.1,rcvbuf=8388608", "OPEN:/dev/null");
        var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(10);
        while (!lab.RunInKernel("ss -Huln 'sport = :7009'").Output.Contains("7009") && DateTime.UtcNow < deadline) sink.WaitForExit(TimeSpan.FromMilliseconds(20));
        using var socket = await stack.CreateUdpSocketAsync().WaitAsync(TimeSpan.FromSeconds(30));
        await socket.SendToAsync(KernelLab.KernelAddress, 7009, new byte[Size]).WaitAsync(TimeSpan.FromSeconds(30)); // ARP first
        var before = KernelSnmp(lab);
        var data = new byte[Size];
        var pending = new Task[Window];
        var sw = Stopwatch.StartNew();
        for (int i = 0; i < Count; i++)
        {
            if (pending[i % Window] is { } t) await t;
            pending[i % Window] = socket.SendToAsync(KernelLab.KernelAddress, 7009, data);
        }
        await Task.WhenAll(pending.Where(t => t is not null)).WaitAsync(TimeSpan.FromSeconds(60));
        var elapsed = sw.Elapsed;
        var after = KernelSnmp(lab);
        var delivered = after["Udp.InDatagrams"] - before["Udp.InDatagrams"];
        var stats = await stack.GetStatisticsAsync().WaitAsync(TimeSpan.FromSeconds(30));
        output.WriteLine($"UDP send through the stack: {Count} x {Size} B in {elapsed.TotalMilliseconds:0} ms = {Count / elapsed.TotalSeconds / 1000:0} kdatagrams/s, " +
                         $"{(double)Count * Size * 8 / elapsed.TotalSeconds / 1e9:0.00} Gbit/s of payload; kernel delivered {delivered}, " +
                         $"rcvbuf errors {after["Udp.RcvbufErrors"] - before["Udp.RcvbufErrors"]}; our send errors {Counter(stats, "Udp", "SendErrors")}, link send errors {Counter(stats, "Link", "SendErrors")}");
        // Our side must have put every datagram on the wire; what socat keeps up with is the kernel's business.
        Assert.Equal(0, Counter(stats, "Udp", "SendErrors"));
        Assert.Equal(0, Counter(stats, "Link", "SendErrors"));
        Assert.True(Counter(stats, "Udp", "DatagramsSent") >= Count + 1);
        Assert.True(delivered > 0);
    }

    /// <summary>UDP through the whole stack: python3 in K sends 1472-byte datagrams as fast as it can, our socket reads them.</summary>
    [KernelFact(Programs = ["python3"])]
    public async Task UdpBulkReceive_ThroughTheStack()
    {
        const int Count = 50_000, Size = 1472;
        using var lab = new KernelLab();
        using var stack = new NetworkStack(lab.OpenStackDevice(), new StackConfig { Address = KernelLab.StackAddress, PrefixLength = KernelLab.PrefixLength, Udp = new UdpSettings { ReceiveBufferSize = 16 << 20 } }, name: "lab");
        stack.Start();
        using var socket = await stack.CreateUdpSocketAsync(7010).WaitAsync(TimeSpan.FromSeconds(30));
        var received = 0;
        var done = new TaskCompletionSource();
        var firstAt = TimeSpan.Zero;
        var lastAt = TimeSpan.Zero;
        var sw = Stopwatch.StartNew();
        using var cts = new CancellationTokenSource();
        var reader = Task.Run(async () =>
        {
            try
            {
                while (received < Count)
                {
                    await socket.ReceiveAsync(cts.Token);
                    if (received++ == 0) firstAt = sw.Elapsed;
                    lastAt = sw.Elapsed;
                }
            }
            catch (OperationCanceledException) { }
            done.TrySetResult();
        });
        var r = lab.RunProgramInKernel("python3", ["-c",
            "import socket, time\n" +
            "s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)\n" +
            "s.connect(('192.0.2.2', 7010))\n" +
            "b = bytes(" + Size + ")\n" +
            "t = time.perf_counter()\n" +
            "for i in range(" + Count + "):\n" +
            "    s.send(b)\n" +
            "print(round(time.perf_counter() - t, 4))\n"], TimeSpan.FromSeconds(120));
        Assert.Equal(0, r.ExitCode);
        // Wait for the reader to catch up, or for a second without progress.
        var lastCount = -1;
        while (received < Count && received != lastCount)
        {
            lastCount = received;
            await Task.WhenAny(done.Task, Task.Delay(1000));
        }
        cts.Cancel();
        await reader.WaitAsync(TimeSpan.FromSeconds(30));
        var stats = await stack.GetStatisticsAsync().WaitAsync(TimeSpan.FromSeconds(30));
        var span = lastAt - firstAt;
        output.WriteLine($"UDP receive through the stack: {received} of {Count} x {Size} B read by the socket in {span.TotalMilliseconds:0} ms " +
                         $"= {received / span.TotalSeconds / 1000:0} kdatagrams/s, {(double)received * Size * 8 / span.TotalSeconds / 1e9:0.00} Gbit/s of payload; " +
                         $"python sender took {r.Output.Trim()} s; stack: Udp.DatagramsReceived {Counter(stats, "Udp", "DatagramsReceived")}, " +
                         $"DroppedReceiveBufferFull {Counter(stats, "Udp", "DroppedReceiveBufferFull")}, Link.DroppedByDevice {Counter(stats, "Link", "DroppedByDevice")}");
        // The sender outruns a reader that takes one ReceiveAsync per datagram: the socket's buffer overflows,
        // counted. Every datagram that reached the stack is either read or counted as dropped.
        Assert.True(received > 0);
        Assert.Equal(Counter(stats, "Udp", "DatagramsReceived"), received + Counter(stats, "Udp", "DroppedReceiveBufferFull"));
        // (How many reach the stack at all depends on the loop getting a core while python3 sends: not asserted.)
    }

    /// <summary>The baseline for the figure above: the kernel itself in the stack's position (u0 given 192.0.2.2).</summary>
    [KernelFact(Programs = ["ping"])]
    public void KernelFloodPingsTheKernelInOurPlace()
    {
        using var lab = new KernelLab();
        lab.RunInStackNamespace($"ip addr add {KernelLab.StackAddress}/{KernelLab.PrefixLength} dev {KernelLab.StackInterface}").EnsureSuccess();
        var r = lab.RunInKernel($"ping -f -q -c 20000 -W 5 {KernelLab.StackAddress}", TimeSpan.FromSeconds(120));
        output.WriteLine("kernel flood ping of the kernel in U: " + string.Join(" | ", r.Output.Split('\n', StringSplitOptions.RemoveEmptyEntries).Skip(1)));
        Assert.Equal(0, r.ExitCode);
    }

    private sealed class CountingSink : IFrameSink
    {
        public int Count;
        public void OnFrame(ReadOnlySpan<byte> frame, TimeSpan now) => Count++;
    }
}
