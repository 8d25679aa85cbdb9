using System.Diagnostics;
using System.Text.RegularExpressions;
using NetStack.Arp;
using NetStack.Icmp;
using NetStack.Link;
using Xunit.Abstractions;

namespace NetStack.Tests.Lab;

/// <summary>Our stack (192.0.2.2 on u0, namespace U) against the Linux kernel (192.0.2.1 on k0, namespace K).</summary>
[Collection(KernelLabCollection.Name)]
public sealed partial class KernelInteropTests(ITestOutputHelper output)
{
    private static readonly TimeSpan Generous = TimeSpan.FromSeconds(30);

    private static NetworkStack StartStack(KernelLab lab, Func<StackConfig, StackConfig>? configure = null)
    {
        var config = new StackConfig { Address = KernelLab.StackAddress, PrefixLength = KernelLab.PrefixLength };
        if (configure is not null) config = configure(config);
        var device = lab.OpenStackDevice();
        // NetworkStack passes config.MacAddress to the device (ILinkDevice.SetStackAddress).
        var stack = new NetworkStack(device, config, name: "lab");
        stack.Start();
        return stack;
    }

    [GeneratedRegex(@"rtt min/avg/max/mdev = ([\d.]+)/([\d.]+)/([\d.]+)/([\d.]+) ms")]
    private static partial Regex PingSummary();

    [GeneratedRegex(@"(\d+) packets transmitted, (\d+) received")]
    private static partial Regex PingCounts();

    [KernelFact(Programs = ["ping"])]
    public async Task KernelPingsOurStack()
    {
        using var lab = new KernelLab();
        using var stack = StartStack(lab);
        var r = lab.RunInKernel($"ping -c 3 -i 0.2 -W 5 {KernelLab.StackAddress}", Generous);
        output.WriteLine(r.Output);
        Assert.True(r.ExitCode == 0, $"ping failed: {r.Output} {r.Error}");
        var counts = PingCounts().Match(r.Output);
        Assert.Equal("3", counts.Groups[2].Value);
        var stats = await stack.GetStatisticsAsync().WaitAsync(Generous);
        Assert.Equal(3, stats.Single(c => c.Layer == "Icmp" && c.Name == "EchoRepliesSent").Value);
        Assert.Equal(0, stats.Single(c => c.Name == "LoopFaults").Value);

        // Steady state: 200 pings 2 ms apart, for the latency figure in docs/lab.md.
        var fast = lab.RunInKernel($"ping -q -c 200 -i 0.002 -W 5 {KernelLab.StackAddress}", Generous);
        var summary = PingSummary().Match(fast.Output);
        output.WriteLine($"kernel -> stack, 200 pings 2 ms apart: {PingCounts().Match(fast.Output).Value}; rtt min/avg/max = {summary.Groups[1].Value}/{summary.Groups[2].Value}/{summary.Groups[3].Value} ms");
        Assert.Equal(0, fast.ExitCode);
    }

    [KernelFact]
    public async Task OurStackPingsTheKernel_AndRttIsMeasured()
    {
        using var lab = new KernelLab();
        using var stack = StartStack(lab);
        var rtts = new List<TimeSpan>();
        for (int i = 0; i < 10; i++)
        {
            var reply = await stack.PingAsync(KernelLab.KernelAddress, timeout: TimeSpan.FromSeconds(5)).WaitAsync(Generous);
            Assert.Equal(PingStatus.Success, reply.Status);
            Assert.Equal(KernelLab.KernelAddress, reply.Address);
            Assert.Equal(64, reply.Ttl);
            Assert.Equal(56, reply.Bytes);
            rtts.Add(reply.RoundTripTime);
        }
        var sorted = rtts.Order().ToList();
        output.WriteLine($"stack -> kernel ping RTT: first {rtts[0].TotalMicroseconds:0} µs (includes ARP), median of 10 {sorted[5].TotalMicroseconds:0} µs, min {sorted[0].TotalMicroseconds:0} µs");
        Assert.True(sorted[5] < TimeSpan.FromMilliseconds(100), $"median RTT {sorted[5]}");
    }

    [KernelFact]
    public async Task NeighbourTablesLearnEachOther()
    {
        using var lab = new KernelLab();
        using var stack = StartStack(lab);
        var reply = await stack.PingAsync(KernelLab.KernelAddress, timeout: TimeSpan.FromSeconds(5)).WaitAsync(Generous);
        Assert.Equal(PingStatus.Success, reply.Status);

        // Ours: the kernel's MAC, learnt from its ARP reply.
        var cache = await stack.GetArpCacheAsync().WaitAsync(Generous);
        var entry = Assert.Single(cache, e => e.IPAddress == KernelLab.KernelAddress);
        Assert.Equal(lab.KernelMac, entry.LinkLayerAddress);
        Assert.Contains(entry.State, new[] { ArpState.Reachable, ArpState.Stale });

        // The kernel's: our MAC, learnt from our request (and its own resolution when it replied).
        var neigh = lab.KernelNeighbour(KernelLab.StackAddress);
        output.WriteLine($"kernel's entry for {KernelLab.StackAddress}: {neigh}");
        Assert.NotNull(neigh);
        Assert.Equal(stack.MacAddress, neigh.Value.Mac);
        Assert.NotEqual("FAILED", neigh.Value.State);
    }

    [KernelFact(RequiresNetem = true)]
    public async Task NetemDelayOnTheKernelsSide_ShowsInOurRtt()
    {
        using var lab = new KernelLab();
        using var stack = StartStack(lab);
        Assert.Equal(PingStatus.Success, (await stack.PingAsync(KernelLab.KernelAddress, timeout: TimeSpan.FromSeconds(5)).WaitAsync(Generous)).Status);
        lab.SetKernelNetem("delay 30ms");
        var slow = await stack.PingAsync(KernelLab.KernelAddress, timeout: TimeSpan.FromSeconds(5)).WaitAsync(Generous);
        lab.ClearKernelNetem();
        var fast = await stack.PingAsync(KernelLab.KernelAddress, timeout: TimeSpan.FromSeconds(5)).WaitAsync(Generous);
        output.WriteLine($"RTT with netem delay 30ms: {slow.RoundTripTime.TotalMilliseconds:0.0} ms; without: {fast.RoundTripTime.TotalMilliseconds:0.000} ms");
        Assert.Equal(PingStatus.Success, slow.Status);
        Assert.InRange(slow.RoundTripTime, TimeSpan.FromMilliseconds(29), TimeSpan.FromSeconds(2));
        Assert.True(fast.RoundTripTime < TimeSpan.FromMilliseconds(25));
    }

    [KernelFact(Programs = ["ping"])]
    public async Task OurStackAnswersTheKernelsArp_WithAMacOfItsOwnChoosing()
    {
        var chosen = MacAddress.Parse("02-00-5E-10-00-02");
        using var lab = new KernelLab();
        using var stack = StartStack(lab, c => c with { MacAddress = chosen });
        var r = lab.RunInKernel($"ping -c 1 -W 5 {KernelLab.StackAddress}", Generous);
        Assert.True(r.ExitCode == 0, $"ping failed: {r.Output} {r.Error}");
        var neigh = lab.RunInKernel($"ip neigh show {KernelLab.StackAddress} dev {KernelLab.KernelInterface}").EnsureSuccess().Output;
        Assert.Contains("02:00:5e:10:00:02", neigh);
        var stats = await stack.GetStatisticsAsync().WaitAsync(Generous);
        Assert.Equal(1, stats.Single(c => c.Layer == "Icmp" && c.Name == "EchoRepliesSent").Value);
    }

    [KernelFact(Programs = ["ping"])]
    public async Task KernelPingsWithFragmentedEchoRequests_AndWeAnswerInFragments()
    {
        using var lab = new KernelLab();
        using var stack = StartStack(lab);
        var r = lab.RunInKernel($"ping -c 3 -i 0.2 -s 4000 -W 5 {KernelLab.StackAddress}", Generous);
        output.WriteLine(r.Output);
        Assert.True(r.ExitCode == 0, $"ping failed: {r.Output} {r.Error}");
        Assert.Contains("4008 bytes from 192.0.2.2", r.Output);
        var stats = await stack.GetStatisticsAsync().WaitAsync(Generous);
        Assert.Equal(9, stats.Single(c => c.Layer == "IPv4" && c.Name == "FragmentsReceived").Value);
        Assert.Equal(9, stats.Single(c => c.Layer == "IPv4" && c.Name == "FragmentsSent").Value);
    }

    [KernelFact]
    public async Task UnownedAddress_EndsInHostUnreachable_WithinAboutThreeSeconds()
    {
        using var lab = new KernelLab();
        using var stack = StartStack(lab);
        var sw = Stopwatch.StartNew();
        var reply = await stack.PingAsync(KernelLab.UnownedAddress, timeout: TimeSpan.FromSeconds(20)).WaitAsync(Generous);
        var elapsed = sw.Elapsed;
        output.WriteLine($"ping {KernelLab.UnownedAddress}: {reply.Status} after {elapsed.TotalSeconds:0.00} s");
        Assert.Equal(PingStatus.HostUnreachable, reply.Status);
        Assert.InRange(elapsed, TimeSpan.FromSeconds(1.5), TimeSpan.FromSeconds(5));

        // While the entry is Failed, a new attempt is refused at once.
        sw.Restart();
        var again = await stack.PingAsync(KernelLab.UnownedAddress, timeout: TimeSpan.FromSeconds(20)).WaitAsync(Generous);
        Assert.Equal(PingStatus.HostUnreachable, again.Status);
        Assert.True(sw.Elapsed < TimeSpan.FromSeconds(1), $"second attempt took {sw.Elapsed}");

        var e = await Assert.ThrowsAnyAsync<Exception>(() => stack.ResolveArpAsync(new Ipv4Address(192, 0, 2, 98)).WaitAsync(Generous));
        Assert.Equal(StackError.HostUnreachable, Assert.IsType<StackException>(e).Error);
    }

    private static Dictionary<string, long> Snmp(KernelLab lab)
    {
        // /proc/net/snmp pairs a header line and a value line per protocol: "Ip: Forwarding ..." / "Ip: 1 ...".
        var lines = lab.RunInKernel("cat /proc/net/snmp").EnsureSuccess().Output.Split('\n', StringSplitOptions.RemoveEmptyEntries);
        var result = new Dictionary<string, long>();
        for (int i = 0; i + 1 < lines.Length; i += 2)
        {
            var names = lines[i].Split(' ', StringSplitOptions.RemoveEmptyEntries);
            var values = lines[i + 1].Split(' ', StringSplitOptions.RemoveEmptyEntries);
            var proto = names[0].TrimEnd(':');
            for (int j = 1; j < names.Length && j < values.Length; j++) result[proto + "." + names[j]] = long.Parse(values[j]);
        }
        return result;
    }

    [KernelFact]
    public async Task OurFragmentedEchoRequest_IsReassembledByTheKernel_AndItsFragmentedReplyByUs()
    {
        using var lab = new KernelLab();
        using var stack = StartStack(lab);
        Assert.Equal(PingStatus.Success, (await stack.PingAsync(KernelLab.KernelAddress, timeout: TimeSpan.FromSeconds(5)).WaitAsync(Generous)).Status);
        var before = Snmp(lab);
        // 4000 bytes of ICMP: three fragments each way.
        var reply = await stack.PingAsync(KernelLab.KernelAddress, payloadSize: 4000, timeout: TimeSpan.FromSeconds(5)).WaitAsync(Generous);
        var after = Snmp(lab);
        output.WriteLine($"kernel: ReasmReqds +{after["Ip.ReasmReqds"] - before["Ip.ReasmReqds"]}, ReasmOKs +{after["Ip.ReasmOKs"] - before["Ip.ReasmOKs"]}, " +
                         $"ReasmFails +{after["Ip.ReasmFails"] - before["Ip.ReasmFails"]}, OutEchoReps +{after["Icmp.OutEchoReps"] - before["Icmp.OutEchoReps"]}, FragCreates +{after["Ip.FragCreates"] - before["Ip.FragCreates"]}; " +
                         $"our ping: {reply.Status} {reply.RoundTripTime.TotalMicroseconds:0} µs");
        Assert.Equal(3, after["Ip.ReasmReqds"] - before["Ip.ReasmReqds"]);
        Assert.Equal(1, after["Ip.ReasmOKs"] - before["Ip.ReasmOKs"]);
        Assert.Equal(0, after["Ip.ReasmFails"] - before["Ip.ReasmFails"]);
        Assert.Equal(1, after["Icmp.OutEchoReps"] - before["Icmp.OutEchoReps"]);
        Assert.Equal(3, after["Ip.FragCreates"] - before["Ip.FragCreates"]);
        Assert.Equal(PingStatus.Success, reply.Status);
        Assert.Equal(4000, reply.Bytes);
    }
}
