using System.Text.RegularExpressions;
using Xunit.Abstractions;

namespace NetStack.Tests.Lab;

/// <summary>
/// Reassembly under pressure against real traffic (issue 14): a Python raw socket in the kernel's namespace floods our
/// stack with fragments that never complete while the kernel's own ping sends 3000-byte (fragmented) echo requests.
/// </summary>
[Collection(KernelLabCollection.Name)]
public sealed partial class KernelFragmentFloodTests(ITestOutputHelper output)
{
    /// <summary>
    /// argv: RATE SECONDS. Sends RATE first fragments per second (MF set, offset 0, 1000 bytes of UDP payload, a fresh
    /// random id, a random source in 203.0.113.0/24) to 192.0.2.2 for SECONDS, paced in 1 ms steps; prints "ready" when
    /// it starts and "sent N in S s" at the end. IP_HDRINCL: the kernel fills in the checksum, nothing else.
    /// </summary>
    private static readonly string FloodScript = RawFlood.Script("""
payload = bytes(1000)
def packet():
    src = socket.inet_aton('203.0.113.%d' % random.randint(1, 254))
    return struct.pack('!BBHHHBBH4s4s', 0x45, 0, 20 + len(payload), random.randint(0, 65535), 0x2000, 64, 17, 0, src, dst) + payload
""");

    [GeneratedRegex(@"(\d+) packets transmitted, (\d+) received")]
    private static partial Regex PingCounts();

    [KernelFact(Programs = ["python3", "ping"])]
    public async Task Kernel_pings_of_3000_bytes_are_answered_during_a_fragment_flood()
    {
        using var lab = new KernelLab();
        using var stack = lab.StartTcpStack();
        // The kernel learns our MAC first, so the first pings do not wait for ARP behind the flood.
        lab.RunInKernel($"ping -c 1 -W 5 {KernelLab.StackAddress}", KernelTcpKit.Generous).EnsureSuccess();

        const int Rate = 5000, Pings = 40;
        var flood = lab.StartPeer(FloodScript, Rate.ToString(), "8");
        await Task.Delay(500); // the flood fills the reassembly table first (64 entries take 13 ms at 5,000/s)
        // 40 pings 0.1 s apart, each a 3000-byte datagram (2972 bytes of data): three fragments each way.
        var ping = lab.RunInKernel($"ping -q -c {Pings} -i 0.1 -W 2 -s 2972 {KernelLab.StackAddress}", TimeSpan.FromSeconds(60));
        Assert.True(flood.WaitForOutput(o => RawFlood.Summary().IsMatch(o), KernelTcpKit.Generous), $"the flood did not finish: {flood.Output} {flood.Error}");
        var f = RawFlood.Summary().Match(flood.Output);
        var counts = PingCounts().Match(ping.Output);
        Assert.True(counts.Success, $"ping printed no summary: {ping.Output} {ping.Error}");
        var received = int.Parse(counts.Groups[2].Value);
        var stats = await stack.GetStatisticsAsync().WaitAsync(KernelTcpKit.Generous);
        long Counter(string name) => stats.Single(c => c.Layer == "IPv4" && c.Name == name).Value;
        output.WriteLine($"flood: {f.Groups[1].Value} fragments in {f.Groups[2].Value} s; pings answered during it: {received}/{Pings} " +
                         $"({100.0 * received / Pings:0}%); reassembled {Counter("DatagramsReassembled")}, evicted {Counter("ReassemblyEvictions")}, " +
                         $"refused {Counter("ReassemblyMemoryExceeded")}");
        Assert.True(received >= Pings * 8 / 10, $"only {received} of {Pings} 3000-byte pings were answered during the flood");
        Assert.True(Counter("ReassemblyEvictions") > 0);
    }
}
