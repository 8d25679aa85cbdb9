using System.Buffers.Binary;
using NetStack;
using NetStack.Arp;
using NetStack.Diagnostics;
using Stack.Tests.Support;
using Xunit;

namespace Stack.Tests.Core;

/// <summary>Get-StackPacket's decoder: tshark-like one-liners from the packet log's truncated copies.</summary>
public class FrameDecoderTests
{
    private static readonly MacAddress MacA = MacAddress.Parse("02-00-C0-00-02-01");
    private static readonly MacAddress MacB = MacAddress.Parse("02-00-C0-00-02-02");
    private static readonly Ipv4Address IpA = new(192, 0, 2, 1);
    private static readonly Ipv4Address IpB = new(192, 0, 2, 2);

    private static LoggedFrame Logged(byte[] frame, long number = 1, FrameDirection dir = FrameDirection.Out) =>
        new(number, TimeSpan.Zero, dir, frame.AsSpan(0, Math.Min(frame.Length, 128)).ToArray(), frame.Length);

    private static byte[] Tcp(Ipv4Address src, Ipv4Address dst, ushort sport, ushort dport, uint seq, uint ack, byte flags, ushort win, int dataLength, byte[]? options = null)
    {
        options ??= Array.Empty<byte>();
        var t = new byte[20 + options.Length + dataLength];
        BinaryPrimitives.WriteUInt16BigEndian(t, sport);
        BinaryPrimitives.WriteUInt16BigEndian(t.AsSpan(2), dport);
        BinaryPrimitives.WriteUInt32BigEndian(t.AsSpan(4), seq);
        BinaryPrimitives.WriteUInt32BigEndian(t.AsSpan(8), ack);
        t[12] = (byte)((20 + options.Length) / 4 << 4);
        t[13] = flags;
        BinaryPrimitives.WriteUInt16BigEndian(t.AsSpan(14), win);
        options.CopyTo(t, 20);
        return Frames.Ipv4(src == IpA ? MacA : MacB, src == IpA ? MacB : MacA, src, dst, 6, t);
    }

    [Fact]
    public void Arp_request_and_reply_read_like_tshark()
    {
        var d = new FrameDecoder();
        var req = d.Decode(Logged(Frames.Arp(ArpPacket.OpRequest, MacB, MacAddress.Broadcast, MacB, IpB, MacAddress.Zero, IpA)));
        Assert.Equal(("ARP", "Who has 192.0.2.1? Tell 192.0.2.2", "Broadcast"), (req.Protocol, req.Info, req.Destination));
        var rep = d.Decode(Logged(Frames.Arp(ArpPacket.OpReply, MacA, MacB, MacA, IpA, MacB, IpB)));
        Assert.Equal("192.0.2.1 is at 02-00-C0-00-02-01", rep.Info);
    }

    [Fact]
    public void Icmp_echo_shows_id_seq_and_ttl()
    {
        var s = new FrameDecoder().Decode(Logged(Frames.Ipv4(MacB, MacA, IpB, IpA, 1, Frames.IcmpEcho(8, 0x1234, 7, new byte[56]), ttl: 63)));
        Assert.Equal(("ICMP", "192.0.2.2", "192.0.2.1"), (s.Protocol, s.Source, s.Destination));
        Assert.Equal("Echo (ping) request  id=0x1234, seq=7, ttl=63", s.Info);
    }

    [Fact]
    public void Tcp_numbers_are_relative_to_each_side_s_first_sequence_number()
    {
        var d = new FrameDecoder();
        byte[] mss = { 2, 4, 0x05, 0xB4, 1, 3, 3, 3, 4, 2, 0, 0 }; // MSS 1460, NOP, WS 8 (shift 3), SACK permitted, EOL pad
        var syn = d.Decode(Logged(Tcp(IpB, IpA, 50000, 80, 1_000_000, 0, 0x02, 65535, 0, mss)));
        var synAck = d.Decode(Logged(Tcp(IpA, IpB, 80, 50000, 7_000_000, 1_000_001, 0x12, 65535, 0, mss)));
        var ack = d.Decode(Logged(Tcp(IpB, IpA, 50000, 80, 1_000_001, 7_000_001, 0x10, 512, 0)));
        var data = d.Decode(Logged(Tcp(IpB, IpA, 50000, 80, 1_000_001, 7_000_001, 0x18, 512, 300)));
        var fin = d.Decode(Logged(Tcp(IpA, IpB, 80, 50000, 7_000_001, 1_000_301, 0x11, 512, 0)));
        Assert.Equal("50000 → 80 [SYN] Seq=0 Win=65535 Len=0 MSS=1460 WS=8 SACK_PERM", syn.Info);
        Assert.Equal("80 → 50000 [SYN, ACK] Seq=0 Ack=1 Win=65535 Len=0 MSS=1460 WS=8 SACK_PERM", synAck.Info);
        Assert.Equal("50000 → 80 [ACK] Seq=1 Ack=1 Win=512 Len=0", ack.Info);
        Assert.Equal("50000 → 80 [PSH, ACK] Seq=1 Ack=1 Win=512 Len=300", data.Info); // real length, though the log kept 128 bytes
        Assert.Equal("80 → 50000 [FIN, ACK] Seq=1 Ack=301 Win=512 Len=0", fin.Info);
        Assert.Equal((50000, 80), ((int)data.SourcePort, (int)data.DestinationPort));
    }

    [Fact]
    public void Truncated_and_random_frames_decode_without_throwing()
    {
        var valid = new[]
        {
            Frames.Arp(ArpPacket.OpRequest, MacB, MacAddress.Broadcast, MacB, IpB, MacAddress.Zero, IpA),
            Frames.Ipv4(MacB, MacA, IpB, IpA, 1, Frames.IcmpEcho(8, 1, 1, new byte[56])),
            Tcp(IpB, IpA, 1, 2, 3, 4, 0x12, 5, 10, new byte[] { 2, 4, 5, 0xB4, 8, 10, 1, 2, 3, 4, 5, 6, 7, 8, 1, 1 }),
            Frames.Ipv4(MacB, MacA, IpB, IpA, 17, new byte[] { 0, 53, 0, 53, 0, 8, 0, 0 }),
        };
        var d = new FrameDecoder();
        long n = 0;
        foreach (var f in valid)
            for (int len = 0; len <= f.Length; len++)
                Assert.NotNull(d.Decode(new LoggedFrame(++n, TimeSpan.Zero, FrameDirection.In, f[..len], len)).Info);
        var random = new Random(7);
        for (int i = 0; i < 20_000; i++)
        {
            var f = valid[i % valid.Length].ToArray();
            for (int k = random.Next(1, 6); k > 0; k--) f[random.Next(f.Length)] = (byte)random.Next(256);
            var cut = f[..Math.Min(f.Length, random.Next(0, 129))];
            Assert.NotNull(d.Decode(new LoggedFrame(++n, TimeSpan.Zero, FrameDirection.In, cut, random.Next(0, 2000))).Info);
        }
    }
}
