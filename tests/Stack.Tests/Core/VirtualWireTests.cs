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

    [Fact]
    public void Invalid_fault_settings_are_refused()
    {
        Assert.Throws<ArgumentOutOfRangeException>(() => new VirtualWire(1, new WireFaults { LossRate = 1.5 }));
        Assert.Throws<ArgumentOutOfRangeException>(() => new VirtualWire(1, new WireFaults { Delay = TimeSpan.FromMilliseconds(-1) }));
    }
}
