using System.Diagnostics;
using NetStack.Link;
using NetStack.Sockets;
using Xunit.Abstractions;
using static NetStack.Tests.Lab.KernelTcpKit;

namespace NetStack.Tests.Lab;

/// <summary>
/// Transfers with the kernel under random loss in both directions: nftables drops a share of what arrives for the
/// kernel (our segments), <see cref="FaultyLink"/> the same share of what arrives for us (the kernel's). The hashes
/// must match; the time and our loss-recovery counters are written out (figures for docs/tcp.md, never asserted).
/// </summary>
[Collection(KernelLabCollection.Name)]
public sealed class KernelLossyTransferTests(ITestOutputHelper output)
{
    private static readonly Ipv4Address Kernel = KernelLab.KernelAddress;
    private const long Size = 32L << 20;

    private static (NetworkStack Stack, FaultyLink Link) LossyStack(KernelLab lab, int percent, CongestionAlgorithm? congestion = null)
    {
        lab.AddKernelLoss(percent);
        FaultyLink? link = null;
        var faults = new WireFaults { LossRate = percent / 100.0 };
        var stack = lab.StartTcpStack(congestion is { } cc ? c => c with { Tcp = c.Tcp with { Congestion = cc } } : null,
            wrap: d => link = new FaultyLink(d, inbound: faults, outbound: new WireFaults(), seed: percent));
        return (stack, link!);
    }

    private async Task<string> CountersAsync(NetworkStack stack, KernelLab lab, FaultyLink link)
    {
        var stats = await stack.GetStatisticsAsync().WaitAsync(Generous);
        var tcp = string.Join(", ", stats.Where(c => c.Layer == "Tcp" && c.Value != 0 && c.Name is "SegmentsRetransmitted" or "FastRetransmits" or "Timeouts"
            or "TlpProbes" or "TlpRecoveries" or "RackLosses" or "SpuriousRetransmits" or "Undos" or "DsacksReceived" or "DsacksSent" or "PrrRecoveries")
            .Select(c => $"{c.Name} {c.Value}"));
        return $"nft dropped {lab.KernelLossDrops().In} of ours, FaultyLink dropped {link.InboundCounters.Dropped} of the kernel's; ours: {tcp}";
    }

    [KernelTheory]
    [InlineData(1)]
    [InlineData(3)]
    [InlineData(5)]
    public async Task Upload_32MiB_UnderLossBothWays_HashMatches(int percent)
    {
        using var lab = new KernelLab();
        var (stack, link) = LossyStack(lab, percent);
        using var _ = stack;
        var sink = lab.StartPeer(PeerScript, "server", "7400", "recv");
        using var s = await stack.ConnectTcpAsync(Kernel, 7400).WaitAsync(Generous);
        var sw = Stopwatch.StartNew();
        var sha = await SendBlocksAsync(s, Size, Block(5)).WaitAsync(TimeSpan.FromMinutes(2));
        await s.CloseAsync().WaitAsync(TimeSpan.FromMinutes(1)); // done when the kernel has acknowledged everything and our FIN
        var t = sw.Elapsed;
        Assert.Equal((Size, sha), sink.WaitSummary("got"));
        output.WriteLine($"ours -> kernel, {percent}% loss each way: {Size >> 20} MiB in {t.TotalSeconds:0.00} s; {await CountersAsync(stack, lab, link)}");
    }

    /// <summary>Our BBR sender to the kernel under the same loss: the hashes match, and BBR's state is what it shows.</summary>
    [KernelTheory]
    [InlineData(3)]
    [InlineData(5)]
    public async Task Upload_32MiB_WithBbr_UnderLossBothWays_HashMatches(int percent)
    {
        using var lab = new KernelLab();
        var (stack, link) = LossyStack(lab, percent, CongestionAlgorithm.Bbr);
        using var _ = stack;
        var sink = lab.StartPeer(PeerScript, "server", "7402", "recv");
        using var s = await stack.ConnectTcpAsync(Kernel, 7402).WaitAsync(Generous);
        var sw = Stopwatch.StartNew();
        var sha = await SendBlocksAsync(s, Size, Block(6)).WaitAsync(TimeSpan.FromMinutes(2));
        var row = (await stack.GetConnectionsAsync().WaitAsync(Generous)).Single(r => r.Id == s.Id).Tcp!;
        await s.CloseAsync().WaitAsync(TimeSpan.FromMinutes(1));
        var t = sw.Elapsed;
        Assert.Equal((Size, sha), sink.WaitSummary("got"));
        Assert.Equal("bbr", row.CongestionControl);
        Assert.True(row.BbrBandwidth > 0 && row.PacingRate > 0 && row.BbrMinRtt > TimeSpan.Zero, $"BBR's model: bandwidth {row.BbrBandwidth}, pacing {row.PacingRate}, min RTT {row.BbrMinRtt}");
        output.WriteLine($"ours (BBR) -> kernel, {percent}% loss each way: {Size >> 20} MiB in {t.TotalSeconds:0.00} s; state {row.BbrState}, " +
                         $"bandwidth {row.BbrBandwidth * 8 / 1e6:F0} Mbit/s, min RTT {row.BbrMinRtt.TotalMicroseconds:F0} µs, pacing {row.PacingRate * 8 / 1e6:F0} Mbit/s; {await CountersAsync(stack, lab, link)}");
    }

    [KernelFact]
    public async Task Download_32MiB_UnderLossBothWays_HashMatches()
    {
        using var lab = new KernelLab();
        var (stack, link) = LossyStack(lab, 3);
        using var _ = stack;
        var source = lab.StartPeer(PeerScript, "server", "7401", $"send:{Size}", "close");
        using var s = await stack.ConnectTcpAsync(Kernel, 7401).WaitAsync(Generous);
        var sw = Stopwatch.StartNew();
        var got = await ReceiveToEndAsync(s).WaitAsync(TimeSpan.FromMinutes(2));
        var t = sw.Elapsed;
        Assert.Equal(source.WaitSummary("sent"), got);
        output.WriteLine($"kernel -> ours, 3% loss each way: {Size >> 20} MiB in {t.TotalSeconds:0.00} s; {await CountersAsync(stack, lab, link)}");
        await s.CloseAsync().WaitAsync(Generous);
    }
}
