using System.Buffers.Binary;
using NetStack;
using NetStack.Link;
using NetStack.Sockets;
using NetStack.Tcp;
using Stack.Tests.Support;

namespace Stack.Tests.Tcp;

/// <summary>A TCP segment as the test writes it or reads it back from the wire.</summary>
public sealed record Seg
{
    public ushort SrcPort { get; init; }
    public ushort DstPort { get; init; }
    public uint Seq { get; init; }
    public uint Ack { get; init; }
    public TcpFlags Flags { get; init; }
    public ushort Window { get; init; } = 65535;
    public byte[] Payload { get; init; } = Array.Empty<byte>();
    public byte[] Options { get; init; } = Array.Empty<byte>();

    // Parsed options of a segment read back.
    public int Mss { get; init; }
    public int WindowScale { get; init; } = -1;
    public bool SackPermitted { get; init; }
    public uint? TsVal { get; init; }
    public uint? TsEcr { get; init; }
    public (uint Left, uint Right)[] Sack { get; init; } = Array.Empty<(uint, uint)>();

    public override string ToString() => $"{SrcPort}->{DstPort} [{Flags}] seq={Seq} ack={Ack} win={Window} len={Payload.Length}";
}

/// <summary>Builds and parses TCP segments independently of the stack's own codec.</summary>
public static class SegCodec
{
    public static byte[] Build(Seg s, Ipv4Address src, Ipv4Address dst, bool corruptChecksum = false)
    {
        var optLen = (s.Options.Length + 3) & ~3;
        var h = 20 + optLen;
        var b = new byte[h + s.Payload.Length];
        BinaryPrimitives.WriteUInt16BigEndian(b, s.SrcPort);
        BinaryPrimitives.WriteUInt16BigEndian(b.AsSpan(2), s.DstPort);
        BinaryPrimitives.WriteUInt32BigEndian(b.AsSpan(4), s.Seq);
        BinaryPrimitives.WriteUInt32BigEndian(b.AsSpan(8), s.Ack);
        b[12] = (byte)((h / 4) << 4);
        b[13] = (byte)s.Flags;
        BinaryPrimitives.WriteUInt16BigEndian(b.AsSpan(14), s.Window);
        s.Options.CopyTo(b, 20);
        s.Payload.CopyTo(b, h);
        var sum = Checksum.Add(Checksum.PseudoHeader(src, dst, 6, b.Length), b);
        var c = Checksum.Finish(sum);
        if (corruptChecksum) c ^= 0x0101;
        BinaryPrimitives.WriteUInt16BigEndian(b.AsSpan(16), c);
        return b;
    }

    public static byte[] MssOption(ushort mss) => new byte[] { 2, 4, (byte)(mss >> 8), (byte)mss };

    /// <summary>NOP NOP SACK with the given blocks (RFC 2018 3), in order.</summary>
    public static byte[] SackOption(params (uint Left, uint Right)[] blocks)
    {
        var o = new byte[4 + 8 * blocks.Length];
        o[0] = 1; o[1] = 1; o[2] = 5; o[3] = (byte)(2 + 8 * blocks.Length);
        for (int i = 0; i < blocks.Length; i++)
        {
            BinaryPrimitives.WriteUInt32BigEndian(o.AsSpan(4 + 8 * i), blocks[i].Left);
            BinaryPrimitives.WriteUInt32BigEndian(o.AsSpan(8 + 8 * i), blocks[i].Right);
        }
        return o;
    }

    public static byte[] TimestampOption(uint val, uint ecr)
    {
        var o = new byte[12];
        o[0] = 1; o[1] = 1; o[2] = 8; o[3] = 10;
        BinaryPrimitives.WriteUInt32BigEndian(o.AsSpan(4), val);
        BinaryPrimitives.WriteUInt32BigEndian(o.AsSpan(8), ecr);
        return o;
    }

    /// <summary>Parses the TCP segment in an Ethernet/IPv4 frame the stack sent; null if it is not TCP.</summary>
    public static Seg? Parse(byte[] frame)
    {
        if (frame.Length < 14 + 20 + 20 || frame[12] != 0x08 || frame[13] != 0x00 || frame[14 + 9] != 6) return null;
        var ihl = (frame[14] & 0xF) * 4;
        var total = BinaryPrimitives.ReadUInt16BigEndian(frame.AsSpan(16));
        var t = frame.AsSpan(14 + ihl, total - ihl);
        var src = Ipv4Address.Read(frame.AsSpan(14 + 12));
        var dst = Ipv4Address.Read(frame.AsSpan(14 + 16));
        Assert.True(Checksum.Verify(Checksum.PseudoHeader(src, dst, 6, t.Length), t), "the stack sent a segment with a bad checksum");
        var h = (t[12] >> 4) * 4;
        int mss = 0, ws = -1; bool sackOk = false; uint? tsv = null, tse = null;
        var sack = new List<(uint, uint)>();
        var o = t[20..h];
        for (int i = 0; i < o.Length;)
        {
            if (o[i] == 0) break;
            if (o[i] == 1) { i++; continue; }
            var len = o[i + 1];
            switch (o[i])
            {
                case 2: mss = BinaryPrimitives.ReadUInt16BigEndian(o[(i + 2)..]); break;
                case 3: ws = o[i + 2]; break;
                case 4: sackOk = true; break;
                case 5:
                    for (int k = i + 2; k < i + len; k += 8)
                        sack.Add((BinaryPrimitives.ReadUInt32BigEndian(o[k..]), BinaryPrimitives.ReadUInt32BigEndian(o[(k + 4)..])));
                    break;
                case 8: tsv = BinaryPrimitives.ReadUInt32BigEndian(o[(i + 2)..]); tse = BinaryPrimitives.ReadUInt32BigEndian(o[(i + 6)..]); break;
            }
            i += len;
        }
        return new Seg
        {
            SrcPort = BinaryPrimitives.ReadUInt16BigEndian(t),
            DstPort = BinaryPrimitives.ReadUInt16BigEndian(t[2..]),
            Seq = BinaryPrimitives.ReadUInt32BigEndian(t[4..]),
            Ack = BinaryPrimitives.ReadUInt32BigEndian(t[8..]),
            Flags = (TcpFlags)t[13],
            Window = BinaryPrimitives.ReadUInt16BigEndian(t[14..]),
            Payload = t[h..].ToArray(),
            Options = o.ToArray(),
            Mss = mss,
            WindowScale = ws,
            SackPermitted = sackOk,
            TsVal = tsv,
            TsEcr = tse,
            Sack = sack.ToArray(),
        };
    }
}

/// <summary>
/// Our stack (192.0.2.2) on a test device, talking to a scripted peer (192.0.2.1:PeerPort): the test feeds
/// crafted segments and reads the exact replies. By default timestamps, SACK and window scaling are off and
/// the receive buffer is 64 KiB - 1, so replies are easy to state; tests that need options turn them on.
/// </summary>
public sealed class TcpRig : IDisposable
{
    public const ushort PeerPort = 40000;
    public const ushort ServerPort = 80;
    public const uint PeerIss = 1000;

    public TcpRig(Func<TcpSettings, TcpSettings>? tcp = null)
    {
        var settings = new TcpSettings { Timestamps = false, Sack = false, WindowScaling = false, ReceiveBufferSize = 65535, MinRto = TimeSpan.FromMilliseconds(200) };
        if (tcp != null) settings = tcp(settings);
        H = new StackHarness(c => c with { Tcp = settings });
        H.Stack.Arp.AddStatic(StackHarness.PeerIp, StackHarness.PeerMac, H.Clock.Now);
    }

    public StackHarness H { get; }
    public NetworkStack Stack => H.Stack;
    public TimeSpan Now => H.Clock.Now;
    /// <summary>The local port of the connection under test.</summary>
    public ushort LocalPort { get; set; } = ServerPort;
    /// <summary>Our ISS as learned from our SYN or SYN-ACK.</summary>
    public uint OurIss { get; set; }

    public byte[] Frame(Seg s, bool corrupt = false) =>
        Frames.Ipv4(StackHarness.PeerMac, StackHarness.OurMac, StackHarness.PeerIp, StackHarness.OurIp, 6, SegCodec.Build(s, StackHarness.PeerIp, StackHarness.OurIp, corrupt));

    /// <summary>A segment from the peer to the connection under test.</summary>
    public Seg From(uint seq, uint ack, TcpFlags flags, byte[]? payload = null, ushort window = 65535, byte[]? options = null) => new()
    {
        SrcPort = PeerPort, DstPort = LocalPort, Seq = seq, Ack = ack, Flags = flags, Window = window,
        Payload = payload ?? Array.Empty<byte>(), Options = options ?? Array.Empty<byte>(),
    };

    /// <summary>Feeds one segment and returns the TCP segments the stack sent in reply.</summary>
    public List<Seg> Feed(Seg s, bool corrupt = false) => H.Feed(Frame(s, corrupt)).Select(SegCodec.Parse).OfType<Seg>().ToList();

    public Seg FeedOne(Seg s)
    {
        var r = Feed(s);
        Assert.True(r.Count == 1, $"expected one reply to {s}, got {r.Count}: {string.Join("; ", r)}");
        return r[0];
    }

    public void FeedNone(Seg s)
    {
        var r = Feed(s);
        Assert.True(r.Count == 0, $"expected no reply to {s}, got: {string.Join("; ", r)}");
    }

    /// <summary>Runs loop turns (posted API work included) and returns what was sent meanwhile.</summary>
    public List<Seg> Drain()
    {
        H.Device.Sent.Clear();
        H.Poll();
        H.Poll();
        return H.Device.Sent.Select(SegCodec.Parse).OfType<Seg>().ToList();
    }

    /// <summary>Moves virtual time and returns what was sent meanwhile.</summary>
    public List<Seg> Advance(TimeSpan by)
    {
        H.Device.Sent.Clear();
        H.Advance(by);
        return H.Device.Sent.Select(SegCodec.Parse).OfType<Seg>().ToList();
    }

    /// <summary>Listens on ServerPort and completes a handshake from the peer; returns the accepted socket.</summary>
    public TcpSocket AcceptOne(ushort mss = 1460, byte[]? synOptions = null)
    {
        var listener = Stack.Listen(ServerPort, 4);
        var accept = listener.AcceptAsync();
        var synAck = FeedOne(From(PeerIss, 0, TcpFlags.Syn, options: synOptions ?? SegCodec.MssOption(mss)));
        Assert.Equal(TcpFlags.Syn | TcpFlags.Ack, synAck.Flags);
        OurIss = synAck.Seq;
        FeedNone(From(PeerIss + 1, OurIss + 1, TcpFlags.Ack));
        return H.Run(accept);
    }

    /// <summary>Connects from our stack to the peer and answers the SYN; returns the connected socket.</summary>
    public TcpSocket ConnectOne(ushort mss = 1460, byte[]? synAckOptions = null)
    {
        var s = Stack.CreateTcpSocket();
        var connect = s.ConnectAsync(StackHarness.PeerIp, PeerPort);
        var syn = Drain().Single();
        Assert.Equal(TcpFlags.Syn, syn.Flags);
        LocalPort = syn.SrcPort;
        OurIss = syn.Seq;
        var ack = FeedOne(new Seg { SrcPort = PeerPort, DstPort = LocalPort, Seq = PeerIss, Ack = OurIss + 1, Flags = TcpFlags.Syn | TcpFlags.Ack, Options = synAckOptions ?? SegCodec.MssOption(mss) });
        Assert.Equal(TcpFlags.Ack, ack.Flags);
        H.Run(connect);
        return s;
    }

    /// <summary>Feeds an ICMP destination-unreachable quoting the IP header and 8 bytes of <paramref name="sentFrame"/>; returns the TCP replies.</summary>
    public List<Seg> FeedIcmpUnreachable(byte code, byte[] sentFrame, ushort nextHopMtu = 0)
    {
        var quote = sentFrame.AsSpan(14, 20 + 8).ToArray();
        var icmp = new byte[8 + quote.Length];
        icmp[0] = 3;
        icmp[1] = code;
        BinaryPrimitives.WriteUInt16BigEndian(icmp.AsSpan(6), nextHopMtu);
        quote.CopyTo(icmp, 8);
        BinaryPrimitives.WriteUInt16BigEndian(icmp.AsSpan(2), Checksum.Compute(icmp));
        return H.Feed(Frames.Ipv4(StackHarness.PeerMac, StackHarness.OurMac, StackHarness.PeerIp, StackHarness.OurIp, 1, icmp))
            .Select(SegCodec.Parse).OfType<Seg>().ToList();
    }

    public NetStack.ConnectionInfo Row(TcpSocket s) => H.Run(Stack.GetConnectionsAsync()).Single(r => r.Id == s.Id);

    public long Counter(string name) => H.Run(Stack.GetStatisticsAsync()).Single(c => c.Layer == "Tcp" && c.Name == name).Value;

    public void Dispose() => H.Dispose();
}
