using System.Buffers.Binary;
using NetStack;
using NetStack.Link;
using Stack.Tests.Tcp;

namespace Stack.Tests.Link;

/// <summary>
/// A device that completes TCP checksums (ILinkDevice.CompletesTcpChecksum, as pcap with segmentation offload does):
/// the stack hands it the larger TCP frames with the pseudo-header sum in the checksum field and computes nothing
/// twice; everything else, and whatever the packet log keeps whole, carries its final checksum; the data arrives intact.
/// </summary>
public class ChecksumOffloadTests
{
    /// <summary>Completes the checksums it is handed, as pcap's device does, and checks every frame's checksum state.</summary>
    private sealed class OffloadLink(ILinkDevice inner) : ForwardingLink(inner), ILinkDevice
    {
        public int Pending, PendingWithoutPseudoSum, Final, FinalInvalid;

        public bool CompletesTcpChecksum => true;

        public void TransmitChecksumPending(ReadOnlySpan<byte> frame, TimeSpan now)
        {
            Pending++;
            var copy = frame.ToArray();
            var tcp = Tcp(copy, out var pseudo);
            if (BinaryPrimitives.ReadUInt16BigEndian(tcp[16..]) != (ushort)pseudo) PendingWithoutPseudoSum++;
            Checksum.CompletePartial(tcp, 16);
            base.Transmit(copy, now);
        }

        public override void Transmit(ReadOnlySpan<byte> frame, TimeSpan now)
        {
            if (frame.Length > 34 && frame[12] == 0x08 && frame[13] == 0x00 && frame[23] == 6)
            {
                Final++;
                var copy = frame.ToArray();
                var tcp = Tcp(copy, out var pseudo);
                if (!Checksum.Verify(pseudo, tcp)) FinalInvalid++;
            }
            base.Transmit(frame, now);
        }

        private static Span<byte> Tcp(byte[] f, out uint pseudo)
        {
            var ihl = (f[14] & 0xF) * 4;
            var total = BinaryPrimitives.ReadUInt16BigEndian(f.AsSpan(16));
            var tcp = f.AsSpan(14 + ihl, total - ihl);
            pseudo = Checksum.PseudoHeader(Ipv4Address.Read(f.AsSpan(26)), Ipv4Address.Read(f.AsSpan(30)), 6, tcp.Length);
            return tcp;
        }
    }

    [Fact]
    public void Full_segments_leave_for_the_device_to_checksum_the_rest_complete_and_the_data_arrives_intact()
    {
        using var sim = new Simulation(18);
        OffloadLink? sender = null, receiver = null;
        var a = sim.AddStack("192.0.2.1/24", link: d => sender = new OffloadLink(d));
        var b = sim.AddStack("192.0.2.2/24", link: d => receiver = new OffloadLink(d));
        var (c, s) = TcpSim.Connect(sim, a, b);
        var flow = new Flow(c, s, TcpSim.Data(2 << 20, 18));
        Assert.True(TcpSim.Drive(sim, flow.Pump, () => flow.Done, TimeSpan.FromMinutes(1)), "the transfer did not finish");

        Assert.Equal(flow.ExpectedHash, flow.ReceivedHash);
        Assert.True(sender!.Pending > 2_000_000 / 1460, $"only {sender.Pending} frames left the checksum to the device");
        Assert.Equal(0, sender.PendingWithoutPseudoSum);
        // The handshake, the FIN and the receiver's ACKs: short frames, final checksums (the packet log keeps them whole).
        Assert.True(sender.Final > 0 && receiver!.Final > 0);
        Assert.Equal(0, sender.FinalInvalid + receiver.FinalInvalid);
        Assert.Equal(0, receiver.Pending);
        Assert.Equal(0, b.Tcp.Counters.DroppedBadChecksum);
        foreach (var logged in a.PacketLog.Snapshot())
            if (logged.Bytes.Length == logged.Length && logged.Length > 34 && logged.Bytes[23] == 6)
                Assert.True(Checksum.Verify(Checksum.PseudoHeader(Ipv4Address.Read(logged.Bytes.AsSpan(26)), Ipv4Address.Read(logged.Bytes.AsSpan(30)), 6, logged.Length - 34), logged.Bytes.AsSpan(34)),
                    $"frame {logged.Number} in the packet log ({logged.Length} bytes, kept whole) has no final checksum");
    }

    [Fact]
    public void Without_the_packet_log_every_data_segment_is_left_to_the_device_and_a_plain_device_gets_final_checksums()
    {
        using var sim = new Simulation(19);
        OffloadLink? offload = null;
        var a = sim.AddStack("192.0.2.1/24", cfg => cfg with { PacketLogCapacity = 0 }, link: d => offload = new OffloadLink(d));
        var b = sim.AddStack("192.0.2.2/24");
        var (c, s) = TcpSim.Connect(sim, a, b);
        var (back, forth) = (new Flow(c, s, TcpSim.Data(64 * 1024, 19), chunk: 100), new Flow(s, c, TcpSim.Data(64 * 1024, 20), chunk: 100));
        Assert.True(TcpSim.Drive(sim, () => back.Pump() | forth.Pump(), () => back.Done && forth.Done, TimeSpan.FromMinutes(1)));
        Assert.Equal(back.ExpectedHash, back.ReceivedHash);
        Assert.Equal(forth.ExpectedHash, forth.ReceivedHash);
        Assert.True(offload!.Pending > 0);
        Assert.Equal(0, offload.PendingWithoutPseudoSum + offload.FinalInvalid);
        Assert.Equal(0, b.Tcp.Counters.DroppedBadChecksum + a.Tcp.Counters.DroppedBadChecksum);
    }
}
