using System.Buffers.Binary;
using NetStack;
using NetStack.IPv4;
using NetStack.Icmp;
using NetStack.Link;
using Stack.Tests.Support;
using Xunit.Abstractions;
using static Stack.Tests.IPv4.IpTestFrames;
using static Stack.Tests.Support.StackHarness;

namespace Stack.Tests.IPv4;

/// <summary>
/// Reassembly under pressure (issue 14): when the table or its memory budget is full the oldest incomplete datagram is
/// evicted, so junk fragments cannot lock legitimate fragmented traffic out.
/// </summary>
public class ReassemblyPressureTests(ITestOutputHelper output)
{
    private static readonly byte[] Request = Frames.IcmpEcho(IcmpCodes.TypeEchoRequest, 0x4242, 9, Pattern(2992));
    private static readonly LinkInfo Unicast = new(PeerMac, isBroadcast: false, "test0");

    private static bool Feed(Reassembler r, byte[] frame, TimeSpan now, out ReassembledDatagram whole)
    {
        var ip = frame.AsSpan(Ethernet.HeaderLength);
        return r.OnFragment(ip[..Ipv4Header.TotalLength(ip)], Ipv4Header.MinLength, Unicast, now, out whole);
    }

    private static (Reassembler Reassembler, Ipv4Counters Counters) Alone(Ipv4Settings settings)
    {
        var context = new LayerContext("alone", new StackConfig { Address = OurIp, Ip = settings }, new Random(1));
        var counters = new Ipv4Counters();
        return (new Reassembler(context, counters), counters);
    }

    [Fact]
    public void A_full_table_evicts_the_oldest_datagram_whatever_its_progress()
    {
        var (r, c) = Alone(new Ipv4Settings { MaxReassemblies = 3 });
        var ms = TimeSpan.FromMilliseconds(1);
        for (ushort id = 1; id <= 3; id++) Assert.False(Feed(r, Fragment(Request, 0, 1480, true, id), id * ms, out _));
        // The oldest has made the most progress (two of three fragments): it still goes first, since progress is
        // what junk can fake and age is not.
        Assert.False(Feed(r, Fragment(Request, 1480, 1480, true, id: 1), 4 * ms, out _));
        Assert.False(Feed(r, Fragment(Request, 0, 1480, true, id: 4), 5 * ms, out _));
        Assert.Equal(1, c.ReassemblyEvictions);
        Assert.Equal(3, r.Count);
        Assert.Equal(2 * ms + TimeSpan.FromSeconds(30), r.NextExpiry); // id 2 is now the oldest
        // The evicted one is gone: its last fragment starts a new datagram (evicting id 2) and completes nothing.
        Assert.False(Feed(r, Fragment(Request, 2960, 40, false, id: 1), 6 * ms, out _));
        Assert.Equal(2, c.ReassemblyEvictions);
        // The survivors complete.
        foreach (ushort id in new ushort[] { 3, 4 })
        {
            Assert.False(Feed(r, Fragment(Request, 1480, 1480, true, id), 7 * ms, out _));
            Assert.True(Feed(r, Fragment(Request, 2960, 40, false, id), 7 * ms, out var whole));
            Assert.Equal(Frames.Hex(Request), Frames.Hex(whole.Datagram[whole.HeaderLength..]));
            whole.Release();
        }
        Assert.Equal(1, r.Count);
        Assert.Equal(0, c.ReassemblyMemoryExceeded + c.ReassemblyTimeouts);
        // Nothing about an eviction is quoted at expiry time: only the datagram still held expires.
        Span<byte> quote = stackalloc byte[IcmpLayer.MaxQuote];
        Assert.True(r.TryExpire(TimeSpan.FromMinutes(1), quote, out var quoted, out _));
        Assert.Equal(0, quoted); // the re-created id 1 never got fragment zero
        Assert.False(r.TryExpire(TimeSpan.FromMinutes(1), quote, out _, out _));
        Assert.Equal(0, r.MemoryInUse);
    }

    [Fact]
    public void A_full_memory_budget_evicts_the_oldest_other_datagram_while_one_grows()
    {
        var (r, c) = Alone(new Ipv4Settings { MaxDatagramSize = 4000, ReassemblyMemoryLimit = 6000 });
        Assert.False(Feed(r, Fragment(Request, 0, 1480, true, id: 1), TimeSpan.Zero, out _)); // 2048 held (length unknown)
        Assert.False(Feed(r, Fragment(Request, 1480, 1520, false, id: 2), TimeSpan.Zero, out _)); // 3000 held (length known)
        Assert.Equal(5048, r.MemoryInUse);
        // Datagram 1, the oldest, grows to 4000: the room comes from datagram 2, never from the one growing.
        Assert.False(Feed(r, Fragment(Request, 1480, 1480, true, id: 1), TimeSpan.Zero, out _));
        Assert.Equal(1, c.ReassemblyEvictions);
        Assert.Equal(1, r.Count);
        Assert.Equal(4000, r.MemoryInUse);
        Assert.True(Feed(r, Fragment(Request, 2960, 40, false, id: 1), TimeSpan.Zero, out var whole));
        whole.Release();
        Assert.Equal(0, r.MemoryInUse);
        Assert.Equal(0, c.ReassemblyMemoryExceeded);
    }

    /// <summary>
    /// The virtual wire with three stations: a pinger, the target, and a flooder whose link sends
    /// <paramref name="rate"/> never-completing first fragments per second of virtual time at the target (random ids
    /// and sources, 1000 bytes of UDP). The pinger sends 3000-byte echo requests (three fragments) every 100 ms
    /// during the flood.
    /// </summary>
    [Theory]
    [InlineData(1)]
    [InlineData(2)]
    [InlineData(3)]
    public void Legitimate_fragmented_pings_are_answered_during_a_fragment_flood(int seed)
    {
        using var sim = new Simulation(seed, new WireFaults { Delay = TimeSpan.FromMilliseconds(1), RateBitsPerSecond = 100_000_000 });
        var pinger = sim.AddStack("192.0.2.1/24");
        var target = sim.AddStack("192.0.2.2/24");
        FragmentFlood? flood = null;
        sim.AddStack("192.0.2.66/24", link: port => flood = new FragmentFlood(port, target.MacAddress, target.Config.Address, rate: 5000, seed));
        sim.Run(pinger.ResolveArpAsync(target.Config.Address));
        sim.Advance(TimeSpan.FromSeconds(1)); // the flood has filled the table long before the first ping

        const int Pings = 50;
        var answered = 0;
        for (int i = 0; i < Pings; i++)
        {
            var reply = sim.Run(pinger.PingAsync(target.Config.Address, payloadSize: 2972, timeout: TimeSpan.FromSeconds(1)));
            if (reply.Status == PingStatus.Success) answered++;
            sim.Advance(TimeSpan.FromMilliseconds(100));
        }
        var c = target.Ip.Counters;
        output.WriteLine($"seed {seed}: {flood!.Sent:N0} junk fragments in {sim.Now.TotalSeconds:0.0} s of virtual time; " +
                         $"{answered}/{Pings} 3000-byte pings answered ({100.0 * answered / Pings:0}%); evictions {c.ReassemblyEvictions:N0}, " +
                         $"reassembled {c.DatagramsReassembled}");
        Assert.True(flood.Sent > 5000 * 6, $"the flood sent only {flood.Sent}");
        Assert.True(answered >= Pings * 8 / 10, $"only {answered} of {Pings} pings were answered during the flood");
        Assert.True(c.ReassemblyEvictions > flood.Sent / 2);
        Assert.InRange(target.Ip.Reassembly.Count, 1, target.Config.Ip.MaxReassemblies);
        Assert.InRange(target.Ip.Reassembly.MemoryInUse, 1, target.Config.Ip.ReassemblyMemoryLimit);
        flood.Stop();
        sim.Advance(TimeSpan.FromSeconds(31));
        Assert.Equal(0, target.Ip.Reassembly.MemoryInUse);
        Assert.Equal(0, target.LoopFaults);
    }

    /// <summary>A station's link that also sends junk first fragments at a fixed rate of virtual time.</summary>
    private sealed class FragmentFlood(ILinkDevice inner, MacAddress targetMac, Ipv4Address target, int rate, int seed) : ForwardingLink(inner)
    {
        private readonly Random _random = new(seed);
        private readonly byte[] _payload = new byte[1000];
        private TimeSpan? _started;
        private bool _stopped;

        public long Sent;

        public void Stop() => _stopped = true;

        private TimeSpan NextSend => _started!.Value + TimeSpan.FromTicks(TimeSpan.TicksPerSecond * Sent / rate);

        public override int Receive(IFrameSink sink, TimeSpan now, int max)
        {
            _started ??= now;
            while (!_stopped && NextSend <= now)
            {
                var source = new Ipv4Address(203, 0, 113, (byte)_random.Next(1, 255));
                var frame = Frames.Ipv4(Inner.HardwareAddress, targetMac, source, target, 17, _payload,
                    id: (ushort)_random.Next(65536), flagsAndOffset: Ipv4Header.FlagMoreFragments);
                Inner.Transmit(frame, now);
                Sent++;
            }
            return Inner.Receive(sink, now, max);
        }

        public override TimeSpan? NextArrival => _stopped || _started is null ? Inner.NextArrival
            : Inner.NextArrival is { } a && a < NextSend ? a : NextSend;
    }
}
