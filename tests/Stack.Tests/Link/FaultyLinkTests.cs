using System.Buffers.Binary;
using NetStack.Icmp;
using NetStack.Link;

namespace NetStack.Tests.Link;

public sealed class FaultyLinkTests
{
    private static readonly MacAddress Us = MacAddress.Parse("02-00-00-00-00-0A");
    private static readonly MacAddress Peer = MacAddress.Parse("02-00-00-00-00-0B");

    /// <summary>
    /// An inner device for these tests: frames queued to arrive are numbered, transmitted numbers are recorded in a
    /// preallocated list, and nothing here allocates per frame (so the allocation test measures FaultyLink alone).
    /// </summary>
    private sealed class NumberedDevice : ILinkDevice
    {
        private readonly byte[] _frame = new byte[1514];
        private int _nextIn, _lastIn;
        public readonly List<int> Sent = new(100_000);
        public int Wakes, Waits, Flushes;

        public NumberedDevice() => Ethernet.WriteHeader(_frame, Us, Peer, LinkTestKit.ExperimentalEtherType);

        /// <summary>Makes frames numbered [from, to) ready to receive.</summary>
        public void Arrive(int from, int to) { _nextIn = from; _lastIn = to; }

        public string Name => "num0";
        public MacAddress HardwareAddress => Us;
        public int Mtu => 1500;
        public TimeSpan? NextArrival => null;
        public LinkStatistics Statistics { get; } = new() { DroppedByDevice = 7 };

        public int Receive(IFrameSink sink, TimeSpan now, int max)
        {
            int n = 0;
            while (n < max && _nextIn < _lastIn)
            {
                BinaryPrimitives.WriteInt32BigEndian(_frame.AsSpan(14), _nextIn++);
                sink.OnFrame(_frame, now);
                n++;
            }
            return n;
        }

        public void Transmit(ReadOnlySpan<byte> frame, TimeSpan now) => Sent.Add(Number(frame));
        public void Flush(TimeSpan now) => Flushes++;
        public void WaitForFrames(TimeSpan timeout) => Waits++;
        public void Wake() => Wakes++;
        public void Dispose() { }
    }

    /// <summary>Records the numbers of the frames handed up, and when.</summary>
    private sealed class NumberSink : IFrameSink
    {
        public readonly List<(int Number, TimeSpan At)> Got = new(100_000);
        public readonly List<byte[]> Copies = new();
        public bool Keep;
        public void OnFrame(ReadOnlySpan<byte> frame, TimeSpan now)
        {
            Got.Add((Number(frame), now));
            if (Keep) Copies.Add(frame.ToArray());
        }
        public List<int> Numbers => Got.Select(g => g.Number).ToList();
    }

    private static int Number(ReadOnlySpan<byte> frame) => BinaryPrimitives.ReadInt32BigEndian(frame[14..]);

    private static byte[] Numbered(int n)
    {
        var f = new byte[1514];
        Ethernet.WriteHeader(f, Peer, Us, LinkTestKit.ExperimentalEtherType);
        BinaryPrimitives.WriteInt32BigEndian(f.AsSpan(14), n);
        return f;
    }

    private static readonly TimeSpan Ms = TimeSpan.FromMilliseconds(1);

    [Fact]
    public void WithoutFaults_FramesPassStraightThrough_AndTheDevicesPropertiesShow()
    {
        var inner = new NumberedDevice();
        using var link = new FaultyLink(inner);
        Assert.Equal("num0", link.Name);
        Assert.Equal(Us, link.HardwareAddress);
        Assert.Equal(1500, link.Mtu);
        Assert.Same(inner.Statistics, link.Statistics);
        Assert.Null(link.NextArrival);
        link.Wake();
        link.WaitForFrames(Ms);
        Assert.Equal((1, 1), (inner.Wakes, inner.Waits));

        inner.Arrive(0, 5);
        var sink = new NumberSink();
        Assert.Equal(3, link.Receive(sink, TimeSpan.Zero, 3));
        Assert.Equal(2, link.Receive(sink, TimeSpan.Zero, 3));
        Assert.Equal([0, 1, 2, 3, 4], sink.Numbers);
        link.Transmit(Numbered(9), TimeSpan.Zero);
        Assert.Equal([9], inner.Sent); // not held for Flush: the inner device batches as it likes
        link.Flush(TimeSpan.Zero);
        Assert.Equal(1, inner.Flushes);
        Assert.Equal(0, link.HeldFrames);
        Assert.Equal(5, link.InboundCounters.Frames);
        Assert.Equal(1, link.OutboundCounters.Frames);
    }

    [Fact]
    public void Delay_HoldsFramesEachWay_UntilTheLoopsNowReachesThem_AndNextArrivalSaysWhen()
    {
        var inner = new NumberedDevice();
        using var link = new FaultyLink(inner, inbound: new WireFaults { Delay = 5 * Ms }, outbound: new WireFaults { Delay = 3 * Ms });
        var sink = new NumberSink();
        inner.Arrive(0, 2);
        Assert.Equal(2, link.Receive(sink, TimeSpan.Zero, 10)); // taken from the device...
        Assert.Empty(sink.Got);                                  // ...but not yet handed up
        link.Transmit(Numbered(7), 1 * Ms);
        link.Flush(1 * Ms);
        Assert.Empty(inner.Sent);
        Assert.Equal(4 * Ms, link.NextArrival);

        link.Flush(4 * Ms);
        Assert.Equal([7], inner.Sent);
        Assert.Equal(5 * Ms, link.NextArrival);
        Assert.Equal(0, link.Receive(sink, 5 * Ms - TimeSpan.FromTicks(1), 10));
        Assert.Equal(2, link.Receive(sink, 5 * Ms, 10));
        Assert.Equal([(0, 5 * Ms), (1, 5 * Ms)], sink.Got);
        Assert.Null(link.NextArrival);
        Assert.Equal(2, link.InboundCounters.Delayed);
        Assert.Equal(1, link.OutboundCounters.Delayed);
    }

    [Fact]
    public void Loss_DropsAboutTheGivenShare_AndCountsIt()
    {
        var inner = new NumberedDevice();
        using var link = new FaultyLink(inner, inbound: new WireFaults { LossRate = 0.25 }, outbound: new WireFaults { LossRate = 1 }, seed: 3);
        var sink = new NumberSink();
        inner.Arrive(0, 10_000);
        while (link.Receive(sink, TimeSpan.Zero, 256) > 0) { }
        Assert.InRange(sink.Got.Count, 7300, 7700);
        Assert.Equal(10_000 - sink.Got.Count, link.InboundCounters.Dropped);
        Assert.Equal(sink.Numbers.Order(), sink.Numbers); // loss alone keeps the order
        for (int i = 0; i < 100; i++) link.Transmit(Numbered(i), TimeSpan.Zero);
        link.Flush(TimeSpan.Zero);
        Assert.Empty(inner.Sent);
        Assert.Equal(100, link.OutboundCounters.Dropped);
    }

    private static List<int> ReorderRun(int seed)
    {
        var inner = new NumberedDevice();
        using var link = new FaultyLink(inner, outbound: new WireFaults { ReorderRate = 0.2, ReorderDelay = 4 * Ms }, seed: seed);
        for (int i = 0; i < 1000; i++)
        {
            var now = TimeSpan.FromTicks(i * Ms.Ticks / 10); // ten frames per millisecond
            link.Transmit(Numbered(i), now);
            link.Flush(now);
        }
        link.Flush(TimeSpan.FromSeconds(1));
        Assert.Equal(0, link.HeldFrames);
        Assert.InRange(link.OutboundCounters.Reordered, 150, 250);
        return [.. inner.Sent];
    }

    [Fact]
    public void Reorder_LetsLaterFramesPassHeldOnes_LosesNothing_AndReplaysWithTheSameSeed()
    {
        var a = ReorderRun(seed: 11);
        Assert.Equal(Enumerable.Range(0, 1000), a.Order());
        Assert.NotEqual(Enumerable.Range(0, 1000), a);
        var inversions = a.Zip(a.Skip(1)).Count(p => p.First > p.Second);
        Assert.InRange(inversions, 100, 300);
        Assert.Equal(a, ReorderRun(seed: 11));
        Assert.NotEqual(a, ReorderRun(seed: 12));
    }

    [Fact]
    public void Reorder_OnReceive_HandsHeldFramesUpLater_AfterFramesThatCameBehindThem()
    {
        var inner = new NumberedDevice();
        using var link = new FaultyLink(inner, inbound: new WireFaults { ReorderRate = 0.3, ReorderDelay = 2 * Ms }, seed: 5);
        var sink = new NumberSink();
        for (int i = 0; i < 500; i++)
        {
            var now = TimeSpan.FromTicks(i * Ms.Ticks / 10);
            inner.Arrive(i, i + 1);
            link.Receive(sink, now, 64);
        }
        var end = TimeSpan.FromSeconds(1);
        Assert.True(link.NextArrival < end);
        link.Receive(sink, end, 1000);
        Assert.Equal(Enumerable.Range(0, 500), sink.Numbers.Order());
        Assert.NotEqual(Enumerable.Range(0, 500), sink.Numbers);
        Assert.All(sink.Got, g => Assert.True(g.At >= TimeSpan.FromTicks(g.Number * Ms.Ticks / 10)));
    }

    [Fact]
    public void Duplicate_And_Corrupt_CopyTheFrame_AndCorruptionFlipsExactlyOneBit()
    {
        var inner = new NumberedDevice();
        using var link = new FaultyLink(inner, inbound: new WireFaults { DuplicateRate = 1, CorruptRate = 1 }, seed: 2);
        var sink = new NumberSink { Keep = true };
        inner.Arrive(0, 1);
        link.Receive(sink, TimeSpan.Zero, 10);
        link.Receive(sink, TimeSpan.Zero, 10); // corrupted copies are held until the next turn at the same time
        Assert.Equal(2, sink.Copies.Count);
        var original = new byte[1514];
        Ethernet.WriteHeader(original, Us, Peer, LinkTestKit.ExperimentalEtherType);
        foreach (var copy in sink.Copies)
        {
            var flipped = 0;
            for (int i = 0; i < copy.Length; i++) flipped += System.Numerics.BitOperations.PopCount((uint)(copy[i] ^ original[i]));
            Assert.Equal(1, flipped);
        }
        Assert.Equal(1, link.InboundCounters.Duplicated);
        Assert.Equal(2, link.InboundCounters.Corrupted);
    }

    [Fact]
    public void HeldFrames_AreBounded_AndTheOverflowIsCounted()
    {
        var inner = new NumberedDevice();
        using var link = new FaultyLink(inner, outbound: new WireFaults { Delay = Ms }) { QueueLimit = 10 };
        for (int i = 0; i < 15; i++) link.Transmit(Numbered(i), TimeSpan.Zero);
        Assert.Equal(10, link.HeldFrames);
        Assert.Equal(5, link.OutboundCounters.Overflowed);
        link.Flush(Ms);
        Assert.Equal(Enumerable.Range(0, 10), inner.Sent);
    }

    [Fact]
    public void BadFaults_AreRejected_NamingTheSetting()
    {
        var e = Assert.Throws<ArgumentOutOfRangeException>(() => new FaultyLink(new NumberedDevice(), inbound: new WireFaults { LossRate = 1.5 }));
        Assert.Equal("LossRate", e.ParamName);
        using var link = new FaultyLink(new NumberedDevice());
        e = Assert.Throws<ArgumentOutOfRangeException>(() => link.Outbound = new WireFaults { Delay = -Ms });
        Assert.Equal("Delay", e.ParamName);
    }

    [Fact]
    public void SteadyState_AllocatesNothingPerFrame_WithDelayAndReorderingBothWays()
    {
        var inner = new NumberedDevice();
        var faults = new WireFaults { Delay = Ms, ReorderRate = 0.1, ReorderDelay = 2 * Ms, LossRate = 0.01, DuplicateRate = 0.01 };
        using var link = new FaultyLink(inner, inbound: faults, outbound: faults, seed: 9);
        var sink = new NumberSink();
        var frame = Numbered(1);
        void Run(int from, int to)
        {
            for (int i = from; i < to; i++)
            {
                var now = TimeSpan.FromTicks(i * Ms.Ticks / 10);
                inner.Arrive(i, i + 1);
                link.Receive(sink, now, 64);
                link.Transmit(frame, now);
                link.Flush(now);
            }
        }
        Run(0, 20_000); // the pool and the queues grow to the traffic's peak
        sink.Got.Clear();
        inner.Sent.Clear();
        var before = GC.GetAllocatedBytesForCurrentThread();
        Run(20_000, 30_000);
        var allocated = GC.GetAllocatedBytesForCurrentThread() - before;
        Stack.Tests.Support.Allocations.AssertNonePerItem(allocated, 10_000, "frames each way");
        Assert.InRange(sink.Got.Count, 9500, 10_100);
        Assert.InRange(inner.Sent.Count, 9500, 10_100);
    }

    [Fact]
    public async Task UnderAStack_TheLoopWakesForHeldFrames_AndPingSeesBothDelays()
    {
        // Two stacks on a virtual wire in virtual time; one of them behind a FaultyLink (5 ms in, 3 ms out).
        var clock = new ManualClock();
        var wire = new VirtualWire();
        var link = new FaultyLink(wire.CreatePort("a", Us), inbound: new WireFaults { Delay = 5 * Ms }, outbound: new WireFaults { Delay = 3 * Ms });
        using var a = new NetworkStack(link, new StackConfig { Address = new Ipv4Address(192, 0, 2, 2), PrefixLength = 24 }, clock, seed: 1);
        using var b = new NetworkStack(wire.CreatePort("b", Peer), new StackConfig { Address = new Ipv4Address(192, 0, 2, 1), PrefixLength = 24 }, clock, seed: 2);
        async Task<PingReply> Ping()
        {
            var ping = a.PingAsync(new Ipv4Address(192, 0, 2, 1));
            for (int turns = 0; !ping.IsCompleted && turns < 10_000; turns++)
            {
                TimeSpan? next = null;
                foreach (var s in new[] { a, b })
                    if (s.Poll(clock.Now) is { } n && (next is null || n < next)) next = n;
                if (wire.NextArrival is { } w && (next is null || w < next)) next = w;
                // Continuations of the ping task land without a deadline: give them a tick.
                clock.Now = next is { } t && t > clock.Now ? t : clock.Now + TimeSpan.FromTicks(1);
            }
            Assert.True(ping.IsCompleted, "the ping did not complete");
            return await ping;
        }
        Assert.Equal(PingStatus.Success, (await Ping()).Status); // ARP first
        var reply = await Ping();
        Assert.Equal(PingStatus.Success, reply.Status);
        Assert.InRange(reply.RoundTripTime, 8 * Ms, 8 * Ms + TimeSpan.FromTicks(10)); // 3 ms out + 5 ms back
        Assert.True(link.OutboundCounters.Delayed >= 2 && link.InboundCounters.Delayed >= 2);
        Assert.Equal(0, link.HeldFrames);
    }
}
