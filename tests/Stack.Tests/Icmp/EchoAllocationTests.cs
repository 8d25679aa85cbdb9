using NetStack;
using NetStack.Icmp;
using NetStack.Link;
using Stack.Tests.IPv4;
using static Stack.Tests.Support.StackHarness;

namespace Stack.Tests.Icmp;

/// <summary>The echo path allocates nothing per packet once warm (the house rule: no allocation per packet).</summary>
public class EchoAllocationTests
{
    private readonly Xunit.Abstractions.ITestOutputHelper _output;
    public EchoAllocationTests(Xunit.Abstractions.ITestOutputHelper output) => _output = output;

    /// <summary>Hands the same preallocated frame to the stack on every receive and only counts what it sends.</summary>
    private sealed class ReplayDevice : GeneratedFramesDevice
    {
        public byte[] Frame = Array.Empty<byte>();
        public int ToDeliver;

        public override int Receive(IFrameSink sink, TimeSpan now, int max)
        {
            int n = 0;
            while (n < max && ToDeliver > 0) { sink.OnFrame(Frame, now); ToDeliver--; n++; }
            return n;
        }
    }

    [Theory]
    [InlineData(56)]
    [InlineData(3000)] // fragmented on the way in and out: reassembly and fragmentation too
    public void Echo_request_to_reply_allocates_nothing_per_packet(int size)
    {
        var device = new ReplayDevice();
        var clock = new ManualClock();
        var config = new StackConfig { Address = OurIp, Arp = new ArpSettings { GratuitousOnStart = false } };
        using var stack = new NetworkStack(device, config, clock, seed: 1);
        var add = stack.AddArpEntryAsync(PeerIp, PeerMac);
        stack.Poll(clock.Now);
        Assert.True(add.IsCompletedSuccessfully);

        var data = IpTestFrames.Pattern(size);
        var frames = size <= 1472
            ? new List<byte[]> { IpTestFrames.EchoRequest(7, 1, data) }
            : IpTestFrames.Train(Support.Frames.IcmpEcho(IcmpCodes.TypeEchoRequest, 7, 1, data), 1480);

        void Exchange(int count)
        {
            for (int i = 0; i < count; i++)
                foreach (var f in frames)
                {
                    device.Frame = f;
                    device.ToDeliver = 1;
                    stack.Poll(clock.Now);
                }
        }

        Exchange(1000); // warm up: JIT, pools, dictionaries at their size
        var watch = System.Diagnostics.Stopwatch.StartNew();
        var before = GC.GetAllocatedBytesForCurrentThread();
        var sentBefore = device.Transmitted;
        const int Count = 10_000;
        Exchange(Count);
        var allocated = GC.GetAllocatedBytesForCurrentThread() - before;
        watch.Stop();
        _output.WriteLine($"{size}-byte echo: {Count:N0} request/replies in {watch.Elapsed.TotalMilliseconds:F0} ms " +
                          $"({watch.Elapsed.TotalMicroseconds / Count:F2} µs each, {frames.Count} frame(s) each way), {allocated} bytes allocated");

        var framesPerReply = frames.Count;
        Assert.Equal(Count * framesPerReply, device.Transmitted - sentBefore);
        Assert.Equal(11_000, stack.Icmp.Counters.EchoRepliesSent);
        Support.Allocations.AssertNonePerItem(allocated, Count, "echoes");
    }
}
