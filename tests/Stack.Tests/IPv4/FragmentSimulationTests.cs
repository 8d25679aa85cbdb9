using NetStack;
using NetStack.Icmp;
using NetStack.Link;

namespace Stack.Tests.IPv4;

/// <summary>Fragmentation and reassembly between two stacks on the virtual wire, in virtual time.</summary>
public class FragmentSimulationTests
{
    private static (Simulation Sim, NetworkStack A, NetworkStack B) Pair(int seed, WireFaults? faults = null)
    {
        var sim = new Simulation(seed, faults ?? new WireFaults { Delay = TimeSpan.FromMilliseconds(1) });
        var a = sim.AddStack("192.0.2.1/24");
        var b = sim.AddStack("192.0.2.2/24");
        sim.Run(a.ResolveArpAsync(b.Config.Address));
        return (sim, a, b);
    }

    [Theory]
    [InlineData(4000, 3)]
    [InlineData(65000, 44)]
    [InlineData(65507, 45)] // the largest echo: 65535 bytes of datagram
    public void Large_ping_is_fragmented_and_reassembled_both_ways(int size, int fragments)
    {
        var (sim, a, b) = Pair(1);
        using var _ = sim;
        var reply = sim.Run(a.PingAsync(b.Config.Address, payloadSize: size));
        Assert.Equal(PingStatus.Success, reply.Status);
        Assert.Equal(size, reply.Bytes);
        foreach (var s in new[] { a, b })
        {
            Assert.Equal(1, s.Ip.Counters.DatagramsFragmented);
            Assert.Equal(fragments, s.Ip.Counters.FragmentsSent);
            Assert.Equal(1, s.Ip.Counters.DatagramsReassembled);
            Assert.Equal(0, s.Ip.Reassembly.MemoryInUse);
        }
    }

    [Theory]
    [InlineData(1)]
    [InlineData(2)]
    [InlineData(3)]
    [InlineData(4)]
    [InlineData(5)]
    public void Reordered_and_duplicated_fragments_still_reassemble(int seed)
    {
        var (sim, a, b) = Pair(seed);
        using var _ = sim;
        sim.Wire.Faults = new WireFaults
        {
            Delay = TimeSpan.FromMilliseconds(1), ReorderRate = 0.3, ReorderDelay = TimeSpan.FromMilliseconds(3), DuplicateRate = 0.2,
        };
        for (int i = 0; i < 10; i++)
        {
            var reply = sim.Run(a.PingAsync(b.Config.Address, payloadSize: 5000 + 700 * i));
            Assert.Equal(PingStatus.Success, reply.Status);
            Assert.Equal(5000 + 700 * i, reply.Bytes);
        }
        Assert.True(sim.Wire.FramesReordered > 0 && sim.Wire.FramesDuplicated > 0);
        Assert.Equal(10, b.Ip.Counters.DatagramsReassembled);
        Assert.Equal(0, b.Ip.Counters.ReassemblyOverlaps + b.Ip.Counters.ReassemblyMalformed);
        // Duplicates that arrive after their datagram completed start a new one that can only time out.
        sim.Advance(TimeSpan.FromSeconds(31));
        Assert.Equal(0, b.Ip.Reassembly.Count);
        Assert.Equal(0, b.Ip.Reassembly.MemoryInUse);
    }

    [Fact]
    public void Datagram_missing_a_fragment_times_out_and_releases_its_memory()
    {
        var (sim, a, b) = Pair(11);
        using var _ = sim;
        sim.Wire.Faults = new WireFaults { Delay = TimeSpan.FromMilliseconds(1), LossRate = 0.15 };
        int success = 0, timedOut = 0;
        for (int i = 0; i < 20; i++)
        {
            var reply = sim.Run(a.PingAsync(b.Config.Address, payloadSize: 4000, timeout: TimeSpan.FromSeconds(1)));
            if (reply.Status == PingStatus.Success) success++; else timedOut++;
        }
        Assert.True(success > 0 && timedOut > 0, $"seed should give both outcomes: {success} ok, {timedOut} lost");
        Assert.True(b.Ip.Reassembly.Count > 0 || b.Ip.Counters.ReassemblyTimeouts > 0);
        sim.Advance(TimeSpan.FromSeconds(31));
        // Every datagram B began either completed or timed out; nothing is held afterwards.
        var started = b.Ip.Counters.DatagramsReassembled + b.Ip.Counters.ReassemblyTimeouts;
        Assert.True(b.Ip.Counters.ReassemblyTimeouts > 0);
        Assert.True(started >= 20 - timedOut);
        Assert.Equal(0, b.Ip.Reassembly.Count);
        Assert.Equal(0, b.Ip.Reassembly.MemoryInUse);
        Assert.Equal(0, a.Ip.Reassembly.MemoryInUse);
        // B told A about the datagrams whose first fragment it had (type 11 code 1), within its rate limit.
        // (The wire may lose some of those too.)
        Assert.True(b.Icmp.Counters.TimeExceededSent > 0);
        Assert.InRange(a.Icmp.Counters.TimeExceededReceived, 1, b.Icmp.Counters.TimeExceededSent);
        Assert.Equal(0, a.LoopFaults + b.LoopFaults);
    }
}
