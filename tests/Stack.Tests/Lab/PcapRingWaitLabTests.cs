using System.Diagnostics;
using NetStack.Link;
using NetStack.Tests.Link;

namespace NetStack.Tests.Lab;

/// <summary>The pcap device's count of how long received frames waited in the capture ring (where a round trip's µs go).</summary>
[Collection(KernelLabCollection.Name)]
public sealed class PcapRingWaitLabTests
{
    private static readonly TimeSpan Generous = TimeSpan.FromSeconds(30);

    [KernelFact]
    public void A_frame_left_in_the_ring_counts_its_wait_from_the_kernels_capture_to_the_stack_taking_it()
    {
        using var lab = new KernelLab();
        var dev = lab.OpenStackDevice();
        var peer = lab.OpenKernelSideDevice();
        var clock = Stopwatch.StartNew();
        peer.Transmit(LinkTestKit.TaggedFrame(dev.HardwareAddress, peer.HardwareAddress, "held"), clock.Elapsed);
        peer.Flush(clock.Elapsed);
        // Wait until the frame is in the ring (ppoll on the capture socket says so: the lab's links carry nothing else),
        // then leave it there a while before taking it: the count must cover at least that while (load only adds to it).
        dev.WaitForFrames(Generous);
        var inRing = Stopwatch.StartNew();
        Thread.Sleep(50);
        var held = inRing.Elapsed;
        var log = new FrameLog();
        Assert.True(LinkTestKit.PumpUntil(dev, log, () => log.Any(f => LinkTestKit.HasTag(f, "held")), Generous));
        Assert.Equal(1, dev.Statistics.FramesReceived);
        Assert.True(dev.Statistics.ReceiveWaitMicroseconds >= held.TotalMicroseconds - 1000,
            $"waited {dev.Statistics.ReceiveWaitMicroseconds} µs by the count, held {held.TotalMicroseconds:0} µs");
        Assert.True(dev.Statistics.ReceiveWaitMicroseconds < Generous.TotalMicroseconds * 2, "a wait longer than the whole test");
    }
}
