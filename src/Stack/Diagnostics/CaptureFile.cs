using PacketDotNet;
using SharpPcap;
using SharpPcap.LibPcap;

namespace NetStack.Diagnostics;

/// <summary>
/// Reads a capture file (pcap or pcapng: libpcap reads both) through SharpPcap's offline reader into the frames the
/// packet log holds, so the decoder, ladders and graphs work on a capture of any conversation, our stack's or two
/// other hosts'. Ethernet frames are kept as they are; other link types (Linux cooked capture from tcpdump -i any,
/// raw IP, loopback) are parsed with PacketDotNet and their IPv4 or ARP packet put behind a blank Ethernet header.
/// Like the packet log, only the first <see cref="PacketLog.SnapLength"/> bytes of each frame are kept (the headers).
/// </summary>
public static class CaptureFile
{
    private const int EthernetHeader = 14;

    /// <summary>
    /// Reads every frame of <paramref name="path"/> (up to <paramref name="maxFrames"/>), times relative to the first.
    /// Throws FileNotFoundException, InvalidDataException (not a capture file libpcap can read), or DllNotFoundException
    /// (libpcap is not installed).
    /// </summary>
    public static PacketTrace Read(string path, int maxFrames = int.MaxValue)
    {
        var full = Path.GetFullPath(path);
        if (!File.Exists(full)) throw new FileNotFoundException($"No capture file at {full}.", full);
        using var device = new CaptureFileReaderDevice(full);
        try { device.Open(); }
        catch (PcapException e)
        {
            throw new InvalidDataException($"{full} is not a capture file libpcap can read (pcap or pcapng): {e.Message}", e);
        }
        var link = device.LinkType;
        var frames = new List<LoggedFrame>();
        DateTime? start = null;
        var skipped = 0;
        while (frames.Count < maxFrames && device.GetNextPacket(out var capture) == GetPacketStatus.PacketRead)
        {
            var raw = capture.GetPacket();
            var utc = raw.Timeval.Date;
            start ??= utc;
            var frame = AsEthernet(link, raw.Data, raw.PacketLength, out var wireLength);
            if (frame is null) { skipped++; continue; }
            frames.Add(new LoggedFrame(frames.Count + skipped + 1, utc - start.Value, FrameDirection.Unknown, frame, wireLength));
        }
        return new PacketTrace(full, frames, startTime: start) { FramesNotDecoded = skipped };
    }

    /// <summary>The frame as Ethernet (first SnapLength bytes), or null when it holds neither IPv4 nor ARP.</summary>
    private static byte[]? AsEthernet(LinkLayers link, byte[] data, int packetLength, out int wireLength)
    {
        if (link == LinkLayers.Ethernet)
        {
            wireLength = packetLength;
            return data.AsSpan(0, Math.Min(data.Length, PacketLog.SnapLength)).ToArray();
        }
        wireLength = 0;
        Packet packet;
        try { packet = Packet.ParsePacket(link, data); }
        catch (Exception e) when (e is ArgumentException or IndexOutOfRangeException or InvalidOperationException or NotImplementedException)
        {
            return null; // a link type or frame PacketDotNet cannot read: counted, not decoded
        }
        ushort type;
        byte[] body;
        if (packet.Extract<IPv4Packet>() is { } ip) { type = 0x0800; body = ip.Bytes; }
        else if (packet.Extract<ArpPacket>() is { } arp) { type = 0x0806; body = arp.Bytes; }
        else return null;
        wireLength = EthernetHeader + body.Length + Math.Max(0, packetLength - data.Length); // what was not captured
        var frame = new byte[Math.Min(EthernetHeader + body.Length, PacketLog.SnapLength)];
        frame[12] = (byte)(type >> 8);
        frame[13] = (byte)type;
        body.AsSpan(0, frame.Length - EthernetHeader).CopyTo(frame.AsSpan(EthernetHeader));
        return frame;
    }
}
