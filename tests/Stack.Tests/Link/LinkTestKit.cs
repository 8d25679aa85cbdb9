using System.Buffers.Binary;
using System.Diagnostics;
using NetStack.Link;

namespace NetStack.Tests.Link;

/// <summary>Keeps a copy of every frame it is handed.</summary>
public sealed class FrameLog : IFrameSink
{
    private readonly List<byte[]> _frames = new();
    public IReadOnlyList<byte[]> Frames => _frames;
    public void OnFrame(ReadOnlySpan<byte> frame, TimeSpan now) => _frames.Add(frame.ToArray());
    public bool Any(Func<byte[], bool> predicate) => _frames.Any(predicate);
}

/// <summary>Crafted Ethernet frames and a bounded receive loop, for link-level tests.</summary>
public static class LinkTestKit
{
    /// <summary>IEEE 802 "local experimental" EtherType: the kernel has no handler for it and drops it quietly.</summary>
    public const ushort ExperimentalEtherType = 0x88B5;

    public static byte[] EthernetFrame(MacAddress dst, MacAddress src, ushort etherType, ReadOnlySpan<byte> payload, int minLength = 60)
    {
        var frame = new byte[Math.Max(minLength, 14 + payload.Length)];
        dst.Write(frame);
        src.Write(frame.AsSpan(6));
        BinaryPrimitives.WriteUInt16BigEndian(frame.AsSpan(12), etherType);
        payload.CopyTo(frame.AsSpan(14));
        return frame;
    }

    /// <summary>An experimental-EtherType frame whose payload starts with an ASCII tag, for telling frames apart.</summary>
    public static byte[] TaggedFrame(MacAddress dst, MacAddress src, string tag, int length = 60) =>
        EthernetFrame(dst, src, ExperimentalEtherType, System.Text.Encoding.ASCII.GetBytes(tag + "\0"), length);

    public static bool HasTag(byte[] frame, string tag)
    {
        if (frame.Length < 14 + tag.Length + 1 || BinaryPrimitives.ReadUInt16BigEndian(frame.AsSpan(12)) != ExperimentalEtherType) return false;
        return frame.AsSpan(14, tag.Length).SequenceEqual(System.Text.Encoding.ASCII.GetBytes(tag)) && frame[14 + tag.Length] == 0;
    }

    /// <summary>An ARP request (RFC 826) from <paramref name="senderMac"/>/<paramref name="senderIp"/> asking who has <paramref name="targetIp"/>.</summary>
    public static byte[] ArpRequest(MacAddress senderMac, Ipv4Address senderIp, Ipv4Address targetIp)
    {
        Span<byte> arp = stackalloc byte[28];
        BinaryPrimitives.WriteUInt16BigEndian(arp, 1);          // hardware type: Ethernet
        BinaryPrimitives.WriteUInt16BigEndian(arp[2..], 0x0800); // protocol type: IPv4
        arp[4] = 6;
        arp[5] = 4;
        BinaryPrimitives.WriteUInt16BigEndian(arp[6..], 1);      // request
        senderMac.Write(arp[8..]);
        senderIp.Write(arp[14..]);
        MacAddress.Zero.Write(arp[18..]);
        targetIp.Write(arp[24..]);
        return EthernetFrame(MacAddress.Broadcast, senderMac, 0x0806, arp);
    }

    /// <summary>If <paramref name="frame"/> is an ARP reply, its sender's addresses.</summary>
    public static (MacAddress Mac, Ipv4Address Ip)? ParseArpReply(byte[] frame)
    {
        if (frame.Length < 42 || BinaryPrimitives.ReadUInt16BigEndian(frame.AsSpan(12)) != 0x0806) return null;
        if (BinaryPrimitives.ReadUInt16BigEndian(frame.AsSpan(20)) != 2) return null;
        return (MacAddress.Read(frame.AsSpan(22)), Ipv4Address.Read(frame.AsSpan(28)));
    }

    /// <summary>
    /// Runs a device's receive side the way a stack loop would (Receive, then WaitForFrames) until
    /// <paramref name="done"/> holds or <paramref name="timeout"/> passes. No sleeps.
    /// </summary>
    public static bool PumpUntil(ILinkDevice device, IFrameSink sink, Func<bool> done, TimeSpan timeout)
    {
        var clock = Stopwatch.StartNew();
        while (true)
        {
            device.Receive(sink, clock.Elapsed, 64);
            if (done()) return true;
            var left = timeout - clock.Elapsed;
            if (left <= TimeSpan.Zero) return false;
            device.WaitForFrames(left < TimeSpan.FromMilliseconds(100) ? left : TimeSpan.FromMilliseconds(100));
        }
    }
}
