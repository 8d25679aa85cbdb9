using System.Buffers.Binary;
using NetStack;
using NetStack.Diagnostics;
using Stack.Tests.Support;

namespace Stack.Tests.Diagnostics;

/// <summary>Decoded TCP frames of one conversation, crafted in order (for analysis tests with exact numbers).</summary>
public sealed class FrameFactory(Ipv4Address? client = null, Ipv4Address? server = null, ushort serverPort = 80)
{
    private readonly FrameDecoder _decoder = new();
    private long _number;
    public Ipv4Address Client { get; } = client ?? new Ipv4Address(192, 0, 2, 2);
    public Ipv4Address Server { get; } = server ?? new Ipv4Address(192, 0, 2, 1);

    public FrameSummary Tcp(bool fromClient, uint seq, uint ack, byte flags, int len, ushort window = 1000)
    {
        var t = new byte[20 + len];
        BinaryPrimitives.WriteUInt16BigEndian(t, fromClient ? (ushort)40000 : serverPort);
        BinaryPrimitives.WriteUInt16BigEndian(t.AsSpan(2), fromClient ? serverPort : (ushort)40000);
        BinaryPrimitives.WriteUInt32BigEndian(t.AsSpan(4), seq);
        BinaryPrimitives.WriteUInt32BigEndian(t.AsSpan(8), ack);
        t[12] = 5 << 4;
        t[13] = flags;
        BinaryPrimitives.WriteUInt16BigEndian(t.AsSpan(14), window);
        var (s, d) = fromClient ? (Client, Server) : (Server, Client);
        var frame = Frames.Ipv4(new MacAddress(0x0200_0000_0000UL | s.Value), new MacAddress(0x0200_0000_0000UL | d.Value), s, d, 6, t);
        _number++;
        return _decoder.Decode(new LoggedFrame(_number, TimeSpan.FromMilliseconds(_number), FrameDirection.Unknown, frame.AsSpan(0, Math.Min(frame.Length, 128)).ToArray(), frame.Length));
    }
}
