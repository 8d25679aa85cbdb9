using NetStack;
using NetStack.Link;

namespace Stack.Tests.Core;

public class VirtualWireTests
{
    private sealed class Collect : IFrameSink
    {
        public readonly List<(byte[] Frame, TimeSpan At)> Frames = new();
        public void OnFrame(ReadOnlySpan<byte> frame, TimeSpan now) => Frames.Add((frame.ToArray(), now));
    }

    private static byte[] Frame(MacAddress dst, MacAddress src, int n)
    {
        var f = new byte[60];
        Ethernet.WriteHeader(f, dst, src, 0x88B5);
        BitConverter.TryWriteBytes(f.AsSpan(14), n);
        return f;
    }

    private static List<int> Run(int seed, WireFaults faults, int count = 1000)
    {
        var wire = new VirtualWire(seed, faults) { PortQueueLimit = 100_000 };
        var a = wire.CreatePort("a", new MacAddress(0x020000000001));
        var b = wire.CreatePort("b", new MacAddress(0x020000000002));
        var sink = new Collect();
        for (int i = 0; i < count; i++) a.Transmit(Frame(b.HardwareAddress, a.HardwareAddress, i), TimeSpan.FromMilliseconds(i));
        b.Receive(sink, TimeSpan.FromHours(1), int.MaxValue);
        return sink.Frames.Select(f => BitConverter.ToInt32(f.Frame, 14)).ToList();
    }

    [Fact]
    public void Same_seed_replays_the_same_faults_and_another_seed_differs()
    {
        var faults = new WireFaults { LossRate = 0.1, DuplicateRate = 0.05, ReorderRate = 0.1, ReorderDelay = TimeSpan.FromMilliseconds(5) };
        Assert.Equal(Run(42, faults), Run(42, faults));
        Assert.NotEqual(Run(42, faults), Run(43, faults));
    }

    [Fact]
    public void Loss_duplication_and_reordering_happen_at_about_their_rates()
    {
        var got = Run(5, new WireFaults { LossRate = 0.2 }, 10_000);
        Assert.InRange(got.Count, 7_700, 8_300);
        var dup = Run(5, new WireFaults { DuplicateRate = 0.1 }, 10_000);
        Assert.InRange(dup.Count, 10_800, 11_200);
        var reordered = Run(5, new WireFaults { ReorderRate = 0.2, ReorderDelay = TimeSpan.FromMilliseconds(3) }, 10_000);
        Assert.Equal(10_000, reordered.Count);
        Assert.NotEqual(reordered.OrderBy(x => x), reordered);
    }

    [Fact]
    public void Delay_and_rate_limit_set_arrival_times()
    {
        var wire = new VirtualWire(1, new WireFaults { Delay = TimeSpan.FromMilliseconds(10), RateBitsPerSecond = 8_000_000 });
        var a = wire.CreatePort("a", new MacAddress(0x020000000001));
        var b = wire.CreatePort("b", new MacAddress(0x020000000002));
        // 60 bytes + 24 of preamble, FCS and gap = 84 bytes = 672 bits = 84 µs at 8 Mbit/s.
        a.Transmit(Frame(b.HardwareAddress, a.HardwareAddress, 1), TimeSpan.Zero);
        a.Transmit(Frame(b.HardwareAddress, a.HardwareAddress, 2), TimeSpan.Zero);
        Assert.Equal(TimeSpan.FromMilliseconds(10) + TimeSpan.FromMicroseconds(84), b.NextArrival);
        var sink = new Collect();
        var first = TimeSpan.FromMilliseconds(10) + TimeSpan.FromMicroseconds(84);
        Assert.Equal(0, b.Receive(sink, first - TimeSpan.FromTicks(1), 10));
        Assert.Equal(1, b.Receive(sink, first, 10));
        Assert.Equal(first + TimeSpan.FromMicroseconds(84), b.NextArrival); // the second waited for the first to be serialised
        Assert.Equal(1, b.Receive(sink, first + TimeSpan.FromMicroseconds(84), 10));
    }

    [Fact]
    public void Learning_switch_sends_unicast_only_to_the_port_that_owns_the_mac()
    {
        var wire = new VirtualWire(1);
        var a = wire.CreatePort("a", new MacAddress(0x020000000001));
        var b = wire.CreatePort("b", new MacAddress(0x020000000002));
        var c = wire.CreatePort("c", new MacAddress(0x020000000003));
        b.Transmit(Frame(MacAddress.Broadcast, b.HardwareAddress, 0), TimeSpan.Zero); // b announces itself
        a.Transmit(Frame(b.HardwareAddress, a.HardwareAddress, 1), TimeSpan.Zero);
        var sb = new Collect();
        var sc = new Collect();
        b.Receive(sb, TimeSpan.FromSeconds(1), 10);
        c.Receive(sc, TimeSpan.FromSeconds(1), 10);
        Assert.Single(sb.Frames);  // only a's unicast (b's own broadcast is not echoed back)
        Assert.Single(sc.Frames);  // only b's broadcast
    }

    private sealed class Check : IFrameSink
    {
        public readonly int[] Next = new int[4];
        public int Total, Bad;
        public void OnFrame(ReadOnlySpan<byte> frame, TimeSpan now)
        {
            int tag = frame[14], n = BitConverter.ToInt32(frame[15..]);
            var intact = frame.Length == 100 + n % 900;
            for (int k = 19; intact && k < frame.Length; k++) intact = frame[k] == (byte)(tag * 31 + n + k);
            if (!intact || n != Next[tag]) Bad++;
            Next[tag] = n + 1;
            Total++;
        }
    }

    [Fact]
    public async Task Frames_sent_from_other_threads_arrive_whole_and_in_each_senders_order()
    {
        // Two threads on one port and a third on another, against a loop thread that receives and sleeps: a send copied
        // into a slot another send also took, a frame skipped by an empty-queue check, or one reordered, shows here.
        const int each = 5000;
        var wire = new VirtualWire(1) { PortQueueLimit = 100_000 };
        var a = wire.CreatePort("a", new MacAddress(0x020000000001));
        var b = wire.CreatePort("b", new MacAddress(0x020000000002));
        var c = wire.CreatePort("c", new MacAddress(0x020000000003));
        c.Transmit(Frame(MacAddress.Broadcast, c.HardwareAddress, 0), TimeSpan.Zero); // the switch learns c
        a.Receive(new Collect(), TimeSpan.Zero, 10);
        b.Receive(new Collect(), TimeSpan.Zero, 10);
        var sink = new Check();
        var receiver = new Thread(() =>
        {
            var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(60);
            while (sink.Total < 3 * each && DateTime.UtcNow < deadline)
                if (c.Receive(sink, TimeSpan.Zero, 64) == 0) c.WaitForFrames(TimeSpan.FromMilliseconds(100));
        });
        receiver.Start();
        var senders = new[] { (a, 1), (a, 2), (b, 3) }.Select(s => Task.Run(() =>
        {
            var (port, tag) = s;
            for (int n = 0; n < each; n++)
            {
                var f = new byte[100 + n % 900];
                Ethernet.WriteHeader(f, c.HardwareAddress, port.HardwareAddress, 0x88B5);
                f[14] = (byte)tag;
                BitConverter.TryWriteBytes(f.AsSpan(15), n);
                for (int k = 19; k < f.Length; k++) f[k] = (byte)(tag * 31 + n + k);
                port.Transmit(f, TimeSpan.Zero);
            }
        })).ToArray();
        await Task.WhenAll(senders).WaitAsync(TimeSpan.FromSeconds(60));
        Assert.True(receiver.Join(TimeSpan.FromSeconds(90)));
        Assert.Equal(0, sink.Bad);
        Assert.Equal(3 * each, sink.Total);
        Assert.Equal(new[] { 0, each, each, each }, sink.Next);
    }

    [Fact]
    public void Invalid_fault_settings_are_refused()
    {
        Assert.Throws<ArgumentOutOfRangeException>(() => new VirtualWire(1, new WireFaults { LossRate = 1.5 }));
        Assert.Throws<ArgumentOutOfRangeException>(() => new VirtualWire(1, new WireFaults { Delay = TimeSpan.FromMilliseconds(-1) }));
    }
}
