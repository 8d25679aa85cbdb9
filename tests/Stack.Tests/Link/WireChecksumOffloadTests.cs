using System.Buffers.Binary;
using System.Runtime.InteropServices;
using NetStack;
using NetStack.Link;
using Stack.Tests.Tcp;

namespace Stack.Tests.Link;

/// <summary>
/// The in-memory wire's checksum offload (VirtualWire.TcpChecksumOffload, as veth's CHECKSUM_PARTIAL) and its lent transmit
/// slots: TCP's larger frames cross between two stacks with only the pseudo-header sum in their checksum field and are
/// taken unverified, yet whatever else looks at a frame (a plain sink, a capture, the packet log) sees its final checksum,
/// and a frame the wire corrupts is still verified and dropped. A frame built in a lent slot crosses without a copy and is
/// never overwritten or damaged by another frame.
/// </summary>
public class WireChecksumOffloadTests
{
    private static readonly MacAddress MacA = new(0x020000000001), MacB = new(0x020000000002);
    private static readonly Ipv4Address IpA = Ipv4Address.Parse("192.0.2.1"), IpB = Ipv4Address.Parse("192.0.2.2");

    /// <summary>Frames as handed: pending ones (with the field as it came) apart from plain ones.</summary>
    private sealed class Sink : IFrameSink
    {
        public readonly List<byte[]> Plain = new(), Pending = new();
        public void OnFrame(ReadOnlySpan<byte> frame, TimeSpan now) => Plain.Add(frame.ToArray());
        public void OnFrameChecksumPending(Span<byte> frame, TimeSpan now) => Pending.Add(frame.ToArray());
    }

    /// <summary>Takes only OnFrame, as a capture or a test's sink does.</summary>
    private sealed class PlainSink : IFrameSink
    {
        public readonly List<byte[]> Frames = new();
        public void OnFrame(ReadOnlySpan<byte> frame, TimeSpan now) => Frames.Add(frame.ToArray());
    }

    /// <summary>An Ethernet/IPv4/TCP frame A -> B with <paramref name="data"/>, its TCP checksum field holding the pseudo-header sum.</summary>
    private static byte[] PendingTcpFrame(int dataLength, int tag = 0)
    {
        var f = new byte[14 + 20 + 20 + dataLength];
        Ethernet.WriteHeader(f, MacB, MacA, Ethernet.TypeIpv4);
        var ip = f.AsSpan(14);
        ip[0] = 0x45;
        BinaryPrimitives.WriteUInt16BigEndian(ip[2..], (ushort)(20 + 20 + dataLength));
        ip[8] = 64;
        ip[9] = 6;
        IpA.Write(ip[12..]);
        IpB.Write(ip[16..]);
        BinaryPrimitives.WriteUInt16BigEndian(ip[10..], Checksum.Compute(ip[..20]));
        var tcp = ip[20..];
        BinaryPrimitives.WriteUInt16BigEndian(tcp, 40000);
        BinaryPrimitives.WriteUInt16BigEndian(tcp[2..], 5000);
        tcp[12] = 5 << 4;
        tcp[13] = 0x18;
        for (int i = 0; i < dataLength; i++) tcp[20 + i] = (byte)(i * 7 + tag);
        BinaryPrimitives.WriteUInt16BigEndian(tcp[16..], (ushort)Checksum.PseudoHeader(IpA, IpB, 6, tcp.Length));
        return f;
    }

    private static bool TcpChecksumValid(byte[] f)
    {
        var total = BinaryPrimitives.ReadUInt16BigEndian(f.AsSpan(16));
        var ihl = (f[14] & 0xF) * 4;
        var tcp = f.AsSpan(14 + ihl, total - ihl);
        return Checksum.Verify(Checksum.PseudoHeader(Ipv4Address.Read(f.AsSpan(26)), Ipv4Address.Read(f.AsSpan(30)), 6, tcp.Length), tcp);
    }

    private static int BitsDiffering(byte[] x, byte[] y)
    {
        Assert.Equal(x.Length, y.Length);
        int bits = 0;
        for (int i = 0; i < x.Length; i++) bits += System.Numerics.BitOperations.PopCount((uint)(x[i] ^ y[i]));
        return bits;
    }

    [Fact]
    public void The_ports_complete_tcp_checksums_unless_the_wire_is_told_not_to()
    {
        Assert.True(new VirtualWire(1).CreatePort("a", MacA).CompletesTcpChecksum);
        Assert.False(new VirtualWire(1) { TcpChecksumOffload = false }.CreatePort("a", MacA).CompletesTcpChecksum);
    }

    [Fact]
    public void A_pending_frame_reaches_a_sink_that_takes_it_as_sent_and_any_other_sink_with_its_final_checksum()
    {
        var wire = new VirtualWire(1);
        var a = wire.CreatePort("a", MacA);
        var b = wire.CreatePort("b", MacB);
        var sent = PendingTcpFrame(1000);
        a.TransmitChecksumPending(sent, TimeSpan.Zero);
        a.TransmitChecksumPending(sent, TimeSpan.Zero);

        var aware = new Sink();
        Assert.Equal(1, b.Receive(aware, TimeSpan.Zero, 1));
        Assert.Equal(sent, Assert.Single(aware.Pending));
        Assert.Empty(aware.Plain);

        var plain = new PlainSink();
        Assert.Equal(1, b.Receive(plain, TimeSpan.Zero, 1));
        var got = Assert.Single(plain.Frames);
        Assert.True(TcpChecksumValid(got), "a plain sink got a frame without its final checksum");
        Assert.Equal(sent.AsSpan(0, 50).ToArray(), got.AsSpan(0, 50).ToArray()); // only the checksum field differs
        Assert.Equal(sent.AsSpan(52).ToArray(), got.AsSpan(52).ToArray());
    }

    [Fact]
    public void A_pending_frame_the_wire_corrupts_carries_its_final_checksum_damaged_so_it_fails_verification()
    {
        var wire = new VirtualWire(3, new WireFaults { CorruptRate = 1 });
        var a = wire.CreatePort("a", MacA);
        var b = wire.CreatePort("b", MacB);
        var sink = new Sink();
        for (int i = 0; i < 200; i++)
        {
            var sent = PendingTcpFrame(1000, tag: i);
            a.TransmitChecksumPending(sent, TimeSpan.Zero);
            Assert.Equal(1, b.Receive(sink, TimeSpan.Zero, 1));
            Assert.Empty(sink.Pending); // a damaged frame is never vouched for
            var got = sink.Plain[^1];
            var final = (byte[])sent.Clone();
            Ethernet.CompleteTcpChecksum(final);
            Assert.Equal(1, BitsDiffering(final, got)); // completed, then one bit flipped
        }
        Assert.Equal(200, wire.FramesCorrupted);
        // Those whose flip hit the TCP segment fail TCP's checksum (the others fail Ethernet's or IP's checks).
        Assert.Contains(sink.Plain, f => !TcpChecksumValid(f));
    }

    [Fact]
    public void A_bulk_transfer_crosses_with_pending_checksums_and_corrupted_segments_are_still_dropped_and_counted()
    {
        using var sim = new Simulation(23, new WireFaults { CorruptRate = 0.02 });
        var a = sim.AddStack("192.0.2.1/24");
        var b = sim.AddStack("192.0.2.2/24");
        var (c, s) = TcpSim.Connect(sim, a, b);
        var flow = new Flow(c, s, TcpSim.Data(1 << 20, 23));
        Assert.True(TcpSim.Drive(sim, flow.Pump, () => flow.Done, TimeSpan.FromMinutes(2)), "the transfer did not finish");

        Assert.Equal(flow.ExpectedHash, flow.ReceivedHash); // no damaged segment was taken
        Assert.True(sim.Wire.FramesCorrupted > 0);
        var dropped = b.Tcp.Counters.DroppedBadChecksum + b.Ip.Counters.DroppedBadChecksum + a.Tcp.Counters.DroppedBadChecksum + a.Ip.Counters.DroppedBadChecksum;
        Assert.True(b.Tcp.Counters.DroppedBadChecksum > 0, $"no corrupted segment was counted by TCP ({sim.Wire.FramesCorrupted} corrupted, {dropped} dropped)");
    }

    [Fact]
    public void A_capture_on_the_receiving_stack_writes_final_checksums_of_frames_that_crossed_pending()
    {
        var dir = Directory.CreateTempSubdirectory("netstack-wire2-").FullName;
        try
        {
            var path = Path.Combine(dir, "b.pcap");
            using (var sim = new Simulation(24))
            {
                var a = sim.AddStack("192.0.2.1/24", cfg => cfg with { PacketLogCapacity = 0 }); // every data frame leaves pending
                var b = sim.AddStack("192.0.2.2/24", link: d => new CaptureTap(d, path));
                var (c, s) = TcpSim.Connect(sim, a, b);
                var flow = new Flow(c, s, TcpSim.Data(256 * 1024, 24));
                Assert.True(TcpSim.Drive(sim, flow.Pump, () => flow.Done, TimeSpan.FromMinutes(1)), "the transfer did not finish");
                Assert.Equal(flow.ExpectedHash, flow.ReceivedHash);
            }
            var cap = NetStack.Tests.Link.CaptureTapTests.Parse(File.ReadAllBytes(path));
            var tcp = cap.Records.Where(r => r.Data.Length == r.OrigLen && r.Data.Length > 54 && r.Data[23] == 6).ToList();
            Assert.True(tcp.Count(r => r.Data.Length > 1000) > 100, $"only {tcp.Count} TCP frames captured");
            Assert.All(tcp, r => Assert.True(TcpChecksumValid(r.Data), "a captured TCP frame has no final checksum"));
        }
        finally { Directory.Delete(dir, recursive: true); }
    }

    [Fact]
    public void A_frame_built_in_the_lent_slot_crosses_without_a_copy_and_a_frame_sent_meanwhile_does_not_overwrite_it()
    {
        var wire = new VirtualWire(1);
        var a = wire.CreatePort("a", MacA);
        var b = wire.CreatePort("b", MacB);
        var lent = a.LendTransmitBuffer(1514);
        Assert.True(lent.Length >= 1514);
        var x = PendingTcpFrame(1400, tag: 1);
        x.CopyTo(lent.Span);
        a.Transmit(PendingTcpFrame(100, tag: 2), TimeSpan.Zero); // another frame (an ARP request, say) before the lent one leaves
        a.Transmit(lent.Span[..x.Length], TimeSpan.Zero);

        Assert.True(MemoryMarshal.TryGetArray<byte>(lent, out var slot));
        var sameSlot = new List<bool>();
        var frames = new List<byte[]>();
        b.Receive(new SpanSink((f, _) =>
        {
            sameSlot.Add(f.Length == x.Length && System.Runtime.CompilerServices.Unsafe.AreSame(ref MemoryMarshal.GetReference(f), ref slot.Array![0]));
            frames.Add(f.ToArray());
        }), TimeSpan.Zero, 10);
        Assert.Equal(2, frames.Count);
        Assert.Equal(PendingTcpFrame(100, tag: 2), frames[0]);
        Assert.Equal(x, frames[1]);
        Assert.Equal([false, true], sameSlot); // the lent slot itself went across
        // The slot went with its frame: the next lend is another buffer.
        Assert.True(MemoryMarshal.TryGetArray<byte>(a.LendTransmitBuffer(1514), out var next));
        Assert.NotSame(slot.Array, next.Array);
    }

    [Fact]
    public void Duplicated_and_corrupted_copies_of_a_lent_frame_carry_only_their_own_damage()
    {
        var wire = new VirtualWire(5, new WireFaults { DuplicateRate = 1, CorruptRate = 0.5 }) { PortQueueLimit = 100_000 };
        var a = wire.CreatePort("a", MacA);
        var b = wire.CreatePort("b", MacB);
        var sent = new List<byte[]>();
        for (int i = 0; i < 300; i++)
        {
            var f = PendingTcpFrame(500, tag: i);
            f.CopyTo(a.LendTransmitBuffer(f.Length).Span);
            a.Transmit(a.LendTransmitBuffer(f.Length).Span[..f.Length], TimeSpan.Zero);
            sent.Add(f);
        }
        var sink = new PlainSink();
        Assert.Equal(600, b.Receive(sink, TimeSpan.Zero, int.MaxValue));
        var damaged = 0;
        for (int i = 0; i < 600; i++)
        {
            var bits = BitsDiffering(sent[i / 2], sink.Frames[i]);
            Assert.InRange(bits, 0, 1);
            damaged += bits;
        }
        Assert.Equal(wire.FramesCorrupted, damaged);
        Assert.InRange(damaged, 200, 400);
    }

    [Fact]
    public void No_slot_is_lent_for_a_jumbo_frame_or_by_a_disposed_port()
    {
        var wire = new VirtualWire(1);
        var jumbo = wire.CreatePort("j", MacA, mtu: 9000);
        Assert.True(jumbo.LendTransmitBuffer(9014).IsEmpty);
        Assert.False(jumbo.LendTransmitBuffer(1514).IsEmpty);
        var gone = wire.CreatePort("g", MacB);
        gone.Dispose();
        Assert.True(gone.LendTransmitBuffer(60).IsEmpty);
        // A capture tap lends none: what it records is what it is handed.
        using var tap = new CaptureTap(wire.CreatePort("t", new MacAddress(0x020000000003)), new PcapFileWriter(Stream.Null), ownsWriter: true);
        Assert.True(((ILinkDevice)tap).LendTransmitBuffer(60).IsEmpty);
        Assert.False(((ILinkDevice)tap).CompletesTcpChecksum);
    }

    private delegate void FrameHandler(ReadOnlySpan<byte> frame, TimeSpan now);

    private sealed class SpanSink(FrameHandler handler) : IFrameSink
    {
        public void OnFrame(ReadOnlySpan<byte> frame, TimeSpan now) => handler(frame, now);
    }
}
