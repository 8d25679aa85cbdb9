using NetStack.Link;

namespace NetStack.Tests.Link;

/// <summary>The wire's per-port queue (<see cref="ArrivalQueue"/>) and what the wire built on it promises its ports.</summary>
public sealed class ArrivalQueueTests
{
    private static VirtualWire.InFlight At(long ms, long seq) => new(Array.Empty<byte>(), 0, TimeSpan.FromMilliseconds(ms), seq);

    private static List<(TimeSpan, long)> Drain(ArrivalQueue q)
    {
        var order = new List<(TimeSpan, long)>();
        while (q.TryPeek(out var f))
        {
            q.Dequeue();
            order.Add((f.Arrival, f.Sequence));
        }
        return order;
    }

    [Fact]
    public void Frames_leave_by_arrival_then_send_order_whatever_order_they_came_in()
    {
        // Mostly in order, with a seeded share held back (reorder faults) and a ring that must grow past 64.
        var random = new Random(3);
        var q = new ArrivalQueue();
        var all = new List<(TimeSpan, long)>();
        for (long seq = 0; seq < 1000; seq++)
        {
            var ms = seq / 3 + (random.NextDouble() < 0.2 ? random.Next(1, 40) : 0);
            q.Enqueue(At(ms, seq));
            all.Add((TimeSpan.FromMilliseconds(ms), seq));
        }
        Assert.Equal(1000, q.Count);
        Assert.Equal(all.Order().ToList(), Drain(q));
        Assert.Equal(0, q.Count);
        Assert.False(q.TryPeek(out _));
    }

    [Fact]
    public void Equal_arrivals_keep_send_order_even_when_put_back_late()
    {
        // Frames taken in a batch and put back (a sink that threw) have lower sequence numbers than frames queued since.
        var q = new ArrivalQueue();
        q.Enqueue(At(5, 10));
        q.Enqueue(At(5, 11));
        q.Enqueue(At(5, 3));
        q.Enqueue(At(5, 4));
        q.Enqueue(At(4, 12));
        Assert.Equal(new[] { 12L, 3, 4, 10, 11 }, Drain(q).Select(x => x.Item2));
    }

    [Fact]
    public void Peek_and_take_interleaved_with_sends_give_the_earliest_each_time()
    {
        var q = new ArrivalQueue();
        q.Enqueue(At(10, 0));
        q.Enqueue(At(20, 1));
        q.Enqueue(At(15, 2)); // reordered: before the ring's last
        Assert.True(q.TryPeek(out var f));
        Assert.Equal(0, f.Sequence);
        q.Dequeue();
        q.Enqueue(At(12, 3));
        Assert.Equal(new[] { 3L, 2, 1 }, Drain(q).Select(x => x.Item2));
        q.Enqueue(At(1, 4)); // an empty queue takes anything in order
        Assert.Equal(new[] { 4L }, Drain(q).Select(x => x.Item2));
    }

    private sealed class Collect(int throwAt = -1) : IFrameSink
    {
        public readonly List<byte[]> Frames = new();
        public void OnFrame(ReadOnlySpan<byte> frame, TimeSpan now)
        {
            if (Frames.Count == throwAt) { throwAt = -1; Frames.Add(frame.ToArray()); throw new InvalidOperationException("sink failed"); }
            Frames.Add(frame.ToArray());
        }
    }

    private static byte[] Numbered(MacAddress dst, MacAddress src, int n, int length)
    {
        var f = new byte[length];
        Ethernet.WriteHeader(f, dst, src, LinkTestKit.ExperimentalEtherType);
        BitConverter.TryWriteBytes(f.AsSpan(14), n);
        for (int k = 18; k < length; k++) f[k] = (byte)(n * 7 + k);
        return f;
    }

    private static int BitsApart(byte[] a, byte[] b) => a.Zip(b, (x, y) => System.Numerics.BitOperations.PopCount((uint)(x ^ y))).Sum();

    [Fact]
    public void Every_delivered_copy_is_its_own_frame_with_faults_flooding_and_jumbo_frames()
    {
        // A flood to two ports with duplicates and corruption, frames both within a slot and larger (MTU 9000), all sent
        // before any is read: a slot shared by two copies, or reused while in flight, would show as a frame more than
        // one bit away from what was sent.
        var wire = new VirtualWire(11, new WireFaults { DuplicateRate = 0.3, CorruptRate = 0.3, LossRate = 0.1, ReorderRate = 0.1 });
        var a = wire.CreatePort("a", new MacAddress(0x020000000001), 9000);
        var b = wire.CreatePort("b", new MacAddress(0x020000000002), 9000);
        var c = wire.CreatePort("c", new MacAddress(0x020000000003), 9000);
        var sent = new List<byte[]>();
        for (int i = 0; i < 300; i++)
        {
            var frame = Numbered(MacAddress.Broadcast, a.HardwareAddress, i, i % 3 == 0 ? 9014 : 60 + i * 5 % 1900);
            sent.Add(frame);
            a.Transmit(frame, TimeSpan.FromMilliseconds(i));
        }
        foreach (var port in new[] { b, c })
        {
            var sink = new Collect();
            port.Receive(sink, TimeSpan.FromHours(1), int.MaxValue);
            Assert.InRange(sink.Frames.Count, 250, 400);
            foreach (var got in sink.Frames)
            {
                var original = sent.Single(s => s.Length == got.Length && BitsApart(s, got) <= 1);
                Assert.Equal(original.Length, got.Length);
            }
        }
        Assert.True(wire.FramesCorrupted > 0 && wire.FramesDuplicated > 0 && wire.FramesLost > 0 && wire.FramesReordered > 0);
    }

    [Fact]
    public void A_sink_that_throws_loses_only_the_frame_it_threw_on()
    {
        var wire = new VirtualWire(1);
        var a = wire.CreatePort("a", new MacAddress(0x020000000001));
        var b = wire.CreatePort("b", new MacAddress(0x020000000002));
        for (int i = 0; i < 10; i++) a.Transmit(Numbered(b.HardwareAddress, a.HardwareAddress, i, 100), TimeSpan.Zero);
        var sink = new Collect(throwAt: 3);
        Assert.Throws<InvalidOperationException>(() => b.Receive(sink, TimeSpan.Zero, 64));
        Assert.Equal(6, b.Receive(sink, TimeSpan.Zero, 64));
        Assert.Equal(Enumerable.Range(0, 10), sink.Frames.Select(f => BitConverter.ToInt32(f, 14)));
        Assert.Null(b.NextArrival);
    }

    [Fact]
    public void A_disposed_port_gets_nothing_and_the_wire_keeps_carrying_for_the_others()
    {
        var wire = new VirtualWire(1);
        var a = wire.CreatePort("a", new MacAddress(0x020000000001));
        var b = wire.CreatePort("b", new MacAddress(0x020000000002));
        var c = wire.CreatePort("c", new MacAddress(0x020000000003));
        for (int i = 0; i < 5; i++) a.Transmit(Numbered(MacAddress.Broadcast, a.HardwareAddress, i, 200), TimeSpan.Zero);
        b.Dispose();
        Assert.Null(b.NextArrival);
        for (int i = 5; i < 10; i++) a.Transmit(Numbered(MacAddress.Broadcast, a.HardwareAddress, i, 200), TimeSpan.Zero);
        var sink = new Collect();
        Assert.Equal(0, b.Receive(sink, TimeSpan.Zero, 64));
        Assert.Equal(10, c.Receive(sink, TimeSpan.Zero, 64));
        Assert.Equal(Enumerable.Range(0, 10), sink.Frames.Select(f => BitConverter.ToInt32(f, 14)));
    }
}
