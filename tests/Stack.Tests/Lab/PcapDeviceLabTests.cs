using System.Diagnostics;
using NetStack.LabSetup;
using NetStack.Link;
using NetStack.Tests.Link;
using Xunit.Abstractions;

namespace NetStack.Tests.Lab;

/// <summary>The pcap device against the real Linux kernel, over a veth pair in namespaces we create.</summary>
[Collection(KernelLabCollection.Name)]
public sealed class PcapDeviceLabTests(ITestOutputHelper output)
{
    private static readonly TimeSpan Generous = TimeSpan.FromSeconds(5);

    [KernelFact]
    public void ArpRequest_FromU_GetsTheKernelsReply()
    {
        using var lab = new KernelLab();
        var dev = lab.OpenStackDevice();
        Assert.Equal(lab.StackMac, dev.HardwareAddress);
        Assert.Equal(1500, dev.Mtu);

        var log = new FrameLog();
        var clock = Stopwatch.StartNew();
        dev.Transmit(LinkTestKit.ArpRequest(dev.HardwareAddress, KernelLab.StackAddress, KernelLab.KernelAddress), clock.Elapsed);
        dev.Flush(clock.Elapsed);
        Assert.True(LinkTestKit.PumpUntil(dev, log, () => log.Any(f => LinkTestKit.ParseArpReply(f) is not null), Generous),
            "no ARP reply from the kernel within 5 s");
        var elapsed = clock.Elapsed;

        var reply = log.Frames.Select(LinkTestKit.ParseArpReply).First(r => r is not null)!.Value;
        Assert.Equal(lab.KernelMac, reply.Mac);
        Assert.Equal(KernelLab.KernelAddress, reply.Ip);
        Assert.DoesNotContain(log.Frames, f => MacAddress.Read(f.AsSpan(6)) == dev.HardwareAddress); // our request is not echoed
        Assert.Equal(1, dev.Statistics.FramesSent);
        Assert.Equal(0, dev.Statistics.SendErrors);
        output.WriteLine($"ARP request -> reply in {elapsed.TotalMilliseconds:0.00} ms; kernel MAC {reply.Mac}");

        // The kernel learnt our address from the request (RFC 826: the target updates its table).
        var neigh = lab.RunInKernel($"ip neigh show {KernelLab.StackAddress} dev k0").EnsureSuccess().Output;
        Assert.Contains(dev.HardwareAddress.ToString().Replace('-', ':').ToLowerInvariant(), neigh);
    }

    [KernelFact]
    public void WaitForFrames_Blocks_AndWakeInterruptsItPromptly()
    {
        using var lab = new KernelLab();
        var dev = lab.OpenStackDevice();

        // Nothing arrives on a quiet link, so a short wait runs its course...
        var sw = Stopwatch.StartNew();
        dev.WaitForFrames(TimeSpan.FromMilliseconds(200));
        Assert.InRange(sw.Elapsed, TimeSpan.FromMilliseconds(150), TimeSpan.FromSeconds(3));

        // ...and Wake from another thread ends a long one at once.
        using var waiting = new ManualResetEventSlim();
        TimeSpan waited = default;
        var waiter = new Thread(() =>
        {
            waiting.Set();
            var t = Stopwatch.StartNew();
            dev.WaitForFrames(TimeSpan.FromSeconds(20));
            waited = t.Elapsed;
        });
        waiter.Start();
        Assert.True(waiting.Wait(Generous));
        dev.Wake();
        Assert.True(waiter.Join(Generous), "Wake did not end WaitForFrames within 5 s");
        Assert.True(waited < TimeSpan.FromSeconds(2), $"WaitForFrames returned after {waited}");
        output.WriteLine($"woken after {waited.TotalMilliseconds:0.00} ms");

        // A Wake with nobody waiting is remembered once, then the device blocks again.
        dev.Wake();
        sw.Restart();
        dev.WaitForFrames(TimeSpan.FromSeconds(10));
        Assert.True(sw.Elapsed < TimeSpan.FromSeconds(2));
        sw.Restart();
        dev.WaitForFrames(TimeSpan.FromMilliseconds(100));
        Assert.True(sw.Elapsed >= TimeSpan.FromMilliseconds(75));
    }

    [KernelFact]
    public void FrameArrival_EndsWaitForFrames()
    {
        using var lab = new KernelLab();
        var dev = lab.OpenStackDevice();
        var peer = lab.OpenKernelSideDevice();
        var clock = Stopwatch.StartNew();
        peer.Transmit(LinkTestKit.TaggedFrame(dev.HardwareAddress, peer.HardwareAddress, "hello"), clock.Elapsed);
        peer.Flush(clock.Elapsed);
        var sw = Stopwatch.StartNew();
        dev.WaitForFrames(TimeSpan.FromSeconds(20));
        Assert.True(sw.Elapsed < Generous);
        var log = new FrameLog();
        Assert.True(LinkTestKit.PumpUntil(dev, log, () => log.Any(f => LinkTestKit.HasTag(f, "hello")), Generous));
    }

    [KernelFact]
    public void HeldArrivalWake_AFrameDoesNotEndTheWait_TheReleaseDoes_AndTheFrameStays()
    {
        using var lab = new KernelLab();
        var dev = lab.OpenStackDevice();
        var peer = lab.OpenKernelSideDevice();
        var clock = Stopwatch.StartNew();
        // The loop sleeps; the turn's holder (here the test's thread) holds the arrival wake back, as an inline connect does.
        dev.HoldArrivalWake();
        Assert.Equal(1, dev.ArrivalWakeHolds); // epoll_pwait2 is there (glibc 2.35, Linux 5.11): the hold takes effect
        using var waiting = new ManualResetEventSlim();
        using var returned = new ManualResetEventSlim();
        var waiter = new Thread(() =>
        {
            waiting.Set();
            dev.WaitForFrames(TimeSpan.FromSeconds(20));
            returned.Set();
        });
        waiter.Start();
        Assert.True(waiting.Wait(Generous));
        peer.Transmit(LinkTestKit.TaggedFrame(dev.HardwareAddress, peer.HardwareAddress, "held"), clock.Elapsed);
        peer.Flush(clock.Elapsed);
        Assert.False(returned.Wait(TimeSpan.FromMilliseconds(300)), "a frame that arrived while the wake was held ended the wait");
        // Released with the frame unread: the sleeper wakes at once (level-triggered), and the frame is there to take.
        dev.ReleaseArrivalWake();
        Assert.True(returned.Wait(Generous), "the release did not end the wait with a frame unread");
        Assert.True(waiter.Join(Generous));
        var log = new FrameLog();
        Assert.True(LinkTestKit.PumpUntil(dev, log, () => log.Any(f => LinkTestKit.HasTag(f, "held")), Generous));
    }

    [KernelFact]
    public void ASinkThatThrows_FailsThatReceive_AndTheRestOfTheFramesStayForTheNext()
    {
        using var lab = new KernelLab();
        var dev = lab.OpenStackDevice();
        var peer = lab.OpenKernelSideDevice();
        var clock = Stopwatch.StartNew();
        for (int i = 0; i < 5; i++) peer.Transmit(LinkTestKit.TaggedFrame(dev.HardwareAddress, peer.HardwareAddress, "f" + i), clock.Elapsed);
        peer.Flush(clock.Elapsed);
        var log = new FrameLog();
        var thrower = new ThrowingSink(log, throwOn: "f1");
        Exception? thrown = null;
        while (log.Frames.Count < 5 && clock.Elapsed < Generous)
        {
            try
            {
                if (dev.Receive(thrower, clock.Elapsed, 64) == 0) dev.WaitForFrames(TimeSpan.FromMilliseconds(100));
            }
            catch (InvalidOperationException e) { thrown = e; }
        }
        Assert.NotNull(thrown);
        Assert.Equal(["f0", "f1", "f2", "f3", "f4"], log.Frames.Select(f => System.Text.Encoding.ASCII.GetString(f, 14, 2)));
    }

    private sealed class ThrowingSink(FrameLog log, string throwOn) : IFrameSink
    {
        public void OnFrame(ReadOnlySpan<byte> frame, TimeSpan now)
        {
            log.OnFrame(frame, now);
            if (LinkTestKit.HasTag(frame.ToArray(), throwOn)) throw new InvalidOperationException("a bug in the stack");
        }
    }

    [KernelFact]
    public void FramesFromOurOwnMac_AreIgnoredAndCounted()
    {
        using var lab = new KernelLab();
        var dev = lab.OpenStackDevice();
        var peer = lab.OpenKernelSideDevice();
        var clock = Stopwatch.StartNew();
        // A broadcast claiming to come from our MAC passes the filter but must not reach the stack.
        peer.Transmit(LinkTestKit.TaggedFrame(MacAddress.Broadcast, dev.HardwareAddress, "own"), clock.Elapsed);
        peer.Transmit(LinkTestKit.TaggedFrame(dev.HardwareAddress, peer.HardwareAddress, "marker"), clock.Elapsed);
        peer.Flush(clock.Elapsed);

        var log = new FrameLog();
        Assert.True(LinkTestKit.PumpUntil(dev, log, () => log.Any(f => LinkTestKit.HasTag(f, "marker")), Generous));
        Assert.DoesNotContain(log.Frames, f => LinkTestKit.HasTag(f, "own"));
        Assert.Equal(1, dev.Statistics.OwnFramesIgnored);
        Assert.Equal(2, peer.Statistics.FramesSent);
    }

    [KernelFact]
    public void Filter_DropsUnicastForOtherMacs_AndFollowsTheStacksAddress()
    {
        using var lab = new KernelLab();
        var dev = lab.OpenStackDevice();
        var peer = lab.OpenKernelSideDevice();
        var other = MacAddress.Parse("02-00-5E-00-00-99");
        var clock = Stopwatch.StartNew();
        Assert.Equal(PcapDevice.FilterFor(dev.HardwareAddress), dev.Filter);

        peer.Transmit(LinkTestKit.TaggedFrame(other, peer.HardwareAddress, "other"), clock.Elapsed);
        peer.Transmit(LinkTestKit.TaggedFrame(MacAddress.Parse("01-00-5E-00-00-FB"), peer.HardwareAddress, "multicast"), clock.Elapsed);
        peer.Transmit(LinkTestKit.TaggedFrame(dev.HardwareAddress, peer.HardwareAddress, "marker1"), clock.Elapsed);
        peer.Flush(clock.Elapsed);
        var log = new FrameLog();
        Assert.True(LinkTestKit.PumpUntil(dev, log, () => log.Any(f => LinkTestKit.HasTag(f, "marker1")), Generous));
        Assert.DoesNotContain(log.Frames, f => LinkTestKit.HasTag(f, "other"));
        Assert.Contains(log.Frames, f => LinkTestKit.HasTag(f, "multicast"));

        // The stack chose a MAC of its own: the filter now passes unicast for it instead of the adapter's.
        dev.SetStackAddress(other);
        Assert.Equal(other, dev.StackAddress);
        Assert.Contains(other.ToString().Replace('-', ':').ToLowerInvariant(), dev.Filter);
        peer.Transmit(LinkTestKit.TaggedFrame(dev.HardwareAddress, peer.HardwareAddress, "to-adapter"), clock.Elapsed);
        peer.Transmit(LinkTestKit.TaggedFrame(MacAddress.Broadcast, other, "own-again"), clock.Elapsed);
        peer.Transmit(LinkTestKit.TaggedFrame(other, peer.HardwareAddress, "marker2"), clock.Elapsed);
        peer.Flush(clock.Elapsed);
        Assert.True(LinkTestKit.PumpUntil(dev, log, () => log.Any(f => LinkTestKit.HasTag(f, "marker2")), Generous));
        Assert.DoesNotContain(log.Frames, f => LinkTestKit.HasTag(f, "to-adapter"));
        Assert.DoesNotContain(log.Frames, f => LinkTestKit.HasTag(f, "own-again"));
        Assert.Equal(1, dev.Statistics.OwnFramesIgnored);
    }

    [KernelFact]
    public void RingOverflow_IsCountedInDroppedByDevice_AndTheBigRingAvoidsIt()
    {
        const int Burst = 5000;
        using var lab = new KernelLab();
        var small = lab.OpenStackDevice(new PcapDeviceOptions { KernelBufferSize = 256 * 1024 });
        var big = lab.OpenStackDevice(); // 32 MiB
        var peer = lab.OpenKernelSideDevice();
        var clock = Stopwatch.StartNew();
        var frame = LinkTestKit.TaggedFrame(small.HardwareAddress, peer.HardwareAddress, "flood", 1514);
        for (int i = 0; i < Burst; i++) peer.Transmit(frame, clock.Elapsed);
        var marker = LinkTestKit.TaggedFrame(small.HardwareAddress, peer.HardwareAddress, "last", 60);
        peer.Transmit(marker, clock.Elapsed);
        peer.Flush(clock.Elapsed);

        // Both devices capture the same wire; nobody reads until the burst is over.
        var bigLog = new FrameLog();
        Assert.True(LinkTestKit.PumpUntil(big, bigLog, () => bigLog.Any(f => LinkTestKit.HasTag(f, "last")), Generous));
        var smallCount = new FrameLog();
        small.Receive(smallCount, clock.Elapsed, int.MaxValue);
        small.RefreshStatistics();
        big.RefreshStatistics();
        output.WriteLine($"256 KiB ring: {smallCount.Frames.Count} received, {small.Statistics.DroppedByDevice} dropped; 32 MiB ring: {bigLog.Frames.Count} received, {big.Statistics.DroppedByDevice} dropped");
        Assert.Equal(Burst + 1, bigLog.Frames.Count);
        Assert.Equal(0, big.Statistics.DroppedByDevice);
        Assert.True(small.Statistics.DroppedByDevice > 0, "a 256 KiB ring held 5000 full-size frames?");
        Assert.Equal(Burst + 1, smallCount.Frames.Count + small.Statistics.DroppedByDevice);
    }

    [KernelTheory]
    [InlineData(true)]
    [InlineData(false)]
    public void JumboFrames_PassWhole_BothWays(bool batched)
    {
        using var lab = new KernelLab();
        lab.RunInStackNamespace("ip link set u0 mtu 9000").EnsureSuccess();
        lab.RunInKernel("ip link set k0 mtu 9000").EnsureSuccess();
        var dev = lab.OpenStackDevice(new PcapDeviceOptions { BatchTransmit = batched });
        var peer = lab.OpenKernelSideDevice();
        Assert.Equal(9000, dev.Mtu);
        Assert.Equal(9018, dev.Snaplen);
        var clock = Stopwatch.StartNew();
        var toPeer = LinkTestKit.TaggedFrame(peer.HardwareAddress, dev.HardwareAddress, "jumbo-out", 9014);
        var toUs = LinkTestKit.TaggedFrame(dev.HardwareAddress, peer.HardwareAddress, "jumbo-in", 9014);
        new Random(3).NextBytes(toPeer.AsSpan(40));
        new Random(4).NextBytes(toUs.AsSpan(40));
        dev.Transmit(toPeer, clock.Elapsed);
        dev.Flush(clock.Elapsed);
        peer.Transmit(toUs, clock.Elapsed);
        peer.Flush(clock.Elapsed);
        var atPeer = new FrameLog();
        var atUs = new FrameLog();
        Assert.True(LinkTestKit.PumpUntil(peer, atPeer, () => atPeer.Any(f => LinkTestKit.HasTag(f, "jumbo-out")), Generous));
        Assert.True(LinkTestKit.PumpUntil(dev, atUs, () => atUs.Any(f => LinkTestKit.HasTag(f, "jumbo-in")), Generous));
        Assert.Equal(toPeer, atPeer.Frames.Single(f => LinkTestKit.HasTag(f, "jumbo-out")));
        Assert.Equal(toUs, atUs.Frames.Single(f => LinkTestKit.HasTag(f, "jumbo-in")));
        Assert.Equal(0, dev.FramesTruncated);
    }

    [KernelFact]
    public void FramesLongerThanTheSnaplen_AreDroppedAndCounted_NotHandedUpCut()
    {
        using var lab = new KernelLab();
        var dev = lab.OpenStackDevice(new PcapDeviceOptions { Snaplen = 200 });
        var peer = lab.OpenKernelSideDevice();
        var clock = Stopwatch.StartNew();
        peer.Transmit(LinkTestKit.TaggedFrame(dev.HardwareAddress, peer.HardwareAddress, "long", 1514), clock.Elapsed);
        peer.Transmit(LinkTestKit.TaggedFrame(dev.HardwareAddress, peer.HardwareAddress, "short", 200), clock.Elapsed);
        peer.Flush(clock.Elapsed);
        var log = new FrameLog();
        Assert.True(LinkTestKit.PumpUntil(dev, log, () => log.Any(f => LinkTestKit.HasTag(f, "short")), Generous));
        Assert.DoesNotContain(log.Frames, f => LinkTestKit.HasTag(f, "long"));
        Assert.Equal(1, dev.FramesTruncated);
    }

    [KernelFact]
    public void Open_ReadsTheMtuOfTheInterfaceInItsOwnNamespace()
    {
        using var lab = new KernelLab();
        lab.RunInStackNamespace("ip link set u0 mtu 1400").EnsureSuccess();
        var dev = lab.OpenStackDevice();
        Assert.Equal(1400, dev.Mtu);
        Assert.Empty(dev.Warnings);
        dev.RefreshStatistics();
        Assert.Equal(0, dev.Statistics.DroppedByDevice);
    }

    [KernelFact]
    public void AdapterRemovedUnderTheStack_IsReported_AndWaitDoesNotSpin()
    {
        using var lab = new KernelLab();
        var dev = lab.OpenStackDevice();
        var log = new FrameLog();
        lab.RunInStackNamespace("ip link del u0").EnsureSuccess();
        var clock = Stopwatch.StartNew();
        Assert.Equal(0, dev.Receive(log, clock.Elapsed, 64));
        var sw = Stopwatch.StartNew();
        int turns = 0;
        while (sw.Elapsed < TimeSpan.FromMilliseconds(300))
        {
            dev.Receive(log, clock.Elapsed, 64);
            dev.WaitForFrames(TimeSpan.FromMilliseconds(100));
            turns++;
        }
        output.WriteLine($"{turns} loop turns in 300 ms; fault: {dev.Fault}");
        Assert.InRange(turns, 2, 10); // each wait ran its course instead of returning at once
        Assert.NotNull(dev.Fault);
        Assert.Contains("u0", dev.Fault);
        dev.Transmit(LinkTestKit.TaggedFrame(MacAddress.Broadcast, dev.HardwareAddress, "late"), clock.Elapsed);
        dev.Flush(clock.Elapsed);
        Assert.Equal(1, dev.Statistics.SendErrors);
        dev.Wake(); // still works for the stack's API calls
        sw.Restart();
        dev.WaitForFrames(TimeSpan.FromSeconds(10));
        Assert.True(sw.Elapsed < TimeSpan.FromSeconds(2));
    }

    [KernelFact]
    public void DisposeFromAnotherThread_WhileTheLoopRuns_IsSafeAndPrompt()
    {
        using var lab = new KernelLab();
        var dev = lab.OpenStackDevice();
        var peer = lab.OpenKernelSideDevice();
        var frame = LinkTestKit.TaggedFrame(peer.HardwareAddress, dev.HardwareAddress, "busy", 1514);
        var sink = new FrameLog();
        using var running = new ManualResetEventSlim();
        Exception? loopError = null;
        var stop = false;
        var loop = new Thread(() =>
        {
            try
            {
                var clock = Stopwatch.StartNew();
                running.Set();
                // A stack's loop: receive, send a burst, flush, wait; until the device is gone.
                for (int turn = 0; !Volatile.Read(ref stop) && clock.Elapsed < TimeSpan.FromSeconds(60); turn++)
                {
                    dev.Receive(sink, clock.Elapsed, 64);
                    for (int i = 0; i < 100; i++) dev.Transmit(frame, clock.Elapsed);
                    dev.Flush(clock.Elapsed);
                    dev.WaitForFrames(turn % 2 == 0 ? TimeSpan.Zero : TimeSpan.FromMilliseconds(250));
                }
            }
            catch (Exception e) { loopError = e; }
        });
        loop.Start();
        Assert.True(running.Wait(Generous));
        // Let the loop get going (sending is observable from the kernel side), then pull the device away.
        var log = new FrameLog();
        Assert.True(LinkTestKit.PumpUntil(peer, log, () => log.Frames.Count >= 500, Generous));
        var sw = Stopwatch.StartNew();
        dev.Dispose();
        output.WriteLine($"Dispose from another thread took {sw.Elapsed.TotalMilliseconds:0.0} ms; sent {dev.Statistics.FramesSent}");
        Assert.True(sw.Elapsed < TimeSpan.FromSeconds(2));
        Volatile.Write(ref stop, true);
        Assert.True(loop.Join(TimeSpan.FromSeconds(30)));
        Assert.Null(loopError);
        var clock2 = Stopwatch.StartNew();
        Assert.Equal(0, dev.Receive(sink, clock2.Elapsed, 64)); // calls after Dispose return at once
        dev.WaitForFrames(TimeSpan.FromSeconds(10));
        Assert.True(clock2.Elapsed < TimeSpan.FromSeconds(1));
        dev.Wake();
    }

    [KernelFact]
    public void Open_UnknownAdapter_SaysWhichOnesExist()
    {
        using var lab = new KernelLab();
        var e = Assert.Throws<ArgumentException>(() => PcapDevice.Open("nosuch0", new PcapDeviceOptions { NetworkNamespace = lab.StackNamespace }));
        Assert.Equal("interfaceName", e.ParamName);
        Assert.Contains("'nosuch0'", e.Message);
        Assert.Contains("u0", e.Message);
        Assert.Contains("lo", e.Message);
        output.WriteLine(e.Message);
    }

    [KernelFact]
    public void Open_WithoutCaptureCapabilities_SaysToRunAsRootOrGrantThem()
    {
        using var lab = new KernelLab();
        Exception? error = null;
        // A throwaway thread without CAP_NET_RAW/CAP_NET_ADMIN stands in for an unprivileged user.
        var thread = new Thread(() =>
        {
            try
            {
                LibC.DropEffectiveCapabilities(LibC.CAP_NET_RAW, LibC.CAP_NET_ADMIN);
                PcapDevice.Open("u0", new PcapDeviceOptions { NetworkNamespace = lab.StackNamespace }).Dispose();
            }
            catch (Exception e) { error = e; }
        });
        thread.Start();
        Assert.True(thread.Join(Generous));
        var e = Assert.IsType<UnauthorizedAccessException>(error);
        Assert.Contains("run as root", e.Message);
        Assert.Contains("CAP_NET_RAW", e.Message);
        Assert.Contains("CAP_NET_ADMIN", e.Message);
        output.WriteLine(e.Message);
    }

    [Fact]
    public void MissingPeerProgram_SkipReasonNamesThePackage()
    {
        Assert.Null(KernelLab.WhyProgramsMissing([]));
        var reason = KernelLab.WhyProgramsMissing(["no-such-program-x"]);
        Assert.Contains("no-such-program-x", reason);
        Assert.Contains("apt-get install", reason);
        var attribute = new KernelFactAttribute { Programs = ["no-such-program-x"] };
        Assert.False(string.IsNullOrEmpty(attribute.Skip)); // skipped, never silently passed
    }

    [Fact]
    public void MissingLibpcap_MessageSaysHowToInstallIt()
    {
        var e = PcapDevice.Native.LibpcapMissing(null);
        Assert.IsType<PcapUnavailableException>(e);
        Assert.Contains("apt-get install libpcap0.8", e.Message);
    }

    [KernelFact]
    public void Open_AdapterThatIsDown_SaysToBringItUp()
    {
        using var lab = new KernelLab();
        lab.RunInStackNamespace("ip link set u0 down").EnsureSuccess();
        var e = Assert.Throws<InvalidOperationException>(() => lab.OpenStackDevice());
        output.WriteLine(e.Message);
        Assert.Contains("ip link set u0 up", e.Message);
    }

    [KernelFact]
    public void Open_UnknownNamespace_SaysHowToCreateIt()
    {
        var e = Assert.Throws<ArgumentException>(() => PcapDevice.Open("u0", new PcapDeviceOptions { NetworkNamespace = "nsu-does-not-exist" }));
        Assert.Contains("ip netns add", e.Message);
    }

    [KernelFact]
    public void Lab_DeletesLeftoversOfACrashedRun_AndOnlyThose()
    {
        // A process that has exited stands in for a test host that crashed with its namespaces still there.
        int deadPid;
        using (var p = LabProcess.Start("true", []))
        {
            Assert.True(p.WaitForExit(Generous));
            deadPid = p.Id;
        }
        var leftover = $"nsk-{VethLab.TagPrefix()}{deadPid}-1";
        var ours = $"nsu-{VethLab.TagPrefix()}{Environment.ProcessId}-999999";
        LabProcess.Run("ip", ["netns", "add", leftover]).EnsureSuccess();
        LabProcess.Run("ip", ["netns", "add", ours]).EnsureSuccess();
        try
        {
            var deleted = KernelLab.DeleteLeftovers();
            Assert.Contains(leftover, deleted);
            Assert.DoesNotContain(ours, deleted); // its owner (this process) is alive
            Assert.False(File.Exists("/var/run/netns/" + leftover));
            Assert.True(File.Exists("/var/run/netns/" + ours));
        }
        finally
        {
            LabProcess.Run("ip", ["netns", "del", ours]);
            if (File.Exists("/var/run/netns/" + leftover)) LabProcess.Run("ip", ["netns", "del", leftover]);
        }
    }

    [KernelFact]
    public void Lab_DeletesItsNamespaces_OnDispose_EvenAfterAFailure()
    {
        string k, u;
        using (var lab = new KernelLab())
        {
            k = lab.KernelNamespace;
            u = lab.StackNamespace;
            lab.OpenStackDevice();
            lab.StartInKernel("sleep 60"); // a peer still running at teardown is killed
            Assert.Contains(k, KernelLab.NamespacesOfThisProcess());
            try
            {
                throw new InvalidOperationException("a test failing half-way");
            }
            catch (InvalidOperationException) { }
        }
        Assert.DoesNotContain(k, KernelLab.NamespacesOfThisProcess());
        Assert.DoesNotContain(u, KernelLab.NamespacesOfThisProcess());
    }

    [KernelFact]
    public void CaptureTap_OnThePcapDevice_RecordsTheArpExchange_ReadableByTcpdump()
    {
        var dir = Directory.CreateTempSubdirectory("netstack-lab-").FullName;
        try
        {
            var path = Path.Combine(dir, "arp.pcap");
            using (var lab = new KernelLab())
            using (var tap = new CaptureTap(lab.OpenStackDevice(), path))
            {
                var log = new FrameLog();
                var clock = Stopwatch.StartNew();
                tap.Transmit(LinkTestKit.ArpRequest(tap.HardwareAddress, KernelLab.StackAddress, KernelLab.KernelAddress), clock.Elapsed);
                tap.Flush(clock.Elapsed);
                Assert.True(LinkTestKit.PumpUntil(tap, log, () => log.Any(f => LinkTestKit.ParseArpReply(f) is not null), Generous));
            }
            var cap = CaptureTapTests.Parse(File.ReadAllBytes(path));
            Assert.Equal(2, cap.Records.Count);
            if (KernelLab.FindProgram("tcpdump") is { } tcpdump)
            {
                var text = LabProcess.Run(tcpdump, ["-r", path, "-nn"]).EnsureSuccess().Output;
                output.WriteLine(text);
                Assert.Contains("Request who-has 192.0.2.1 tell 192.0.2.2", text);
                Assert.Contains("Reply 192.0.2.1 is-at", text);
            }
        }
        finally
        {
            Directory.Delete(dir, recursive: true);
        }
    }

    [KernelFact]
    public void ReceiveAndTransmit_AllocateNothingPerFrame()
    {
        using var lab = new KernelLab();
        var dev = lab.OpenStackDevice();
        var peer = lab.OpenKernelSideDevice();
        var counter = new CountingSink();
        var clock = Stopwatch.StartNew();
        var toUs = LinkTestKit.TaggedFrame(dev.HardwareAddress, peer.HardwareAddress, "load", 1514);
        var toPeer = LinkTestKit.TaggedFrame(peer.HardwareAddress, dev.HardwareAddress, "load", 1514);

        void Round(int frames)
        {
            for (int i = 0; i < frames; i++) peer.Transmit(toUs, clock.Elapsed);
            peer.Flush(clock.Elapsed);
            var target = counter.Count + frames;
            while (counter.Count < target && clock.Elapsed < TimeSpan.FromSeconds(30))
            {
                if (dev.Receive(counter, clock.Elapsed, 64) == 0) dev.WaitForFrames(TimeSpan.FromMilliseconds(50));
            }
            for (int i = 0; i < frames; i++) dev.Transmit(toPeer, clock.Elapsed);
            dev.Flush(clock.Elapsed);
        }

        Round(200); // warm up (JIT, first statistics read)
        var before = GC.GetAllocatedBytesForCurrentThread();
        Round(500);
        var allocated = GC.GetAllocatedBytesForCurrentThread() - before;
        Assert.Equal(700, counter.Count);
        Assert.Equal(700, dev.Statistics.FramesSent);
        Stack.Tests.Support.Allocations.AssertNonePerItem(allocated, 500, "frames each way");
    }

    private sealed class CountingSink : IFrameSink
    {
        public int Count;
        public void OnFrame(ReadOnlySpan<byte> frame, TimeSpan now) => Count++;
    }
}
