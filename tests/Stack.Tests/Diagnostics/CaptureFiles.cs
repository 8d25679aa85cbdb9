using System.Buffers.Binary;

namespace Stack.Tests.Diagnostics;

/// <summary>Rewrites a classic pcap file in other forms libpcap reads: pcapng, and raw IP (link type 101, no Ethernet header).</summary>
public static class CaptureFiles
{
    public static List<(uint Sec, uint Usec, byte[] Data, uint OrigLen)> ReadPcap(string path)
    {
        var b = File.ReadAllBytes(path);
        Assert.Equal(0xA1B2C3D4u, BinaryPrimitives.ReadUInt32LittleEndian(b));
        var list = new List<(uint, uint, byte[], uint)>();
        for (int i = 24; i + 16 <= b.Length;)
        {
            var caplen = (int)BinaryPrimitives.ReadUInt32LittleEndian(b.AsSpan(i + 8));
            list.Add((BinaryPrimitives.ReadUInt32LittleEndian(b.AsSpan(i)), BinaryPrimitives.ReadUInt32LittleEndian(b.AsSpan(i + 4)),
                b.AsSpan(i + 16, caplen).ToArray(), BinaryPrimitives.ReadUInt32LittleEndian(b.AsSpan(i + 12))));
            i += 16 + caplen;
        }
        return list;
    }

    /// <summary>The same frames as pcapng: a section header, one Ethernet interface, an enhanced packet block per frame.</summary>
    public static void WritePcapng(string path, IEnumerable<(uint Sec, uint Usec, byte[] Data, uint OrigLen)> frames)
    {
        using var f = File.Create(path);
        Block(f, 0x0A0D0D0A, w => { w.Write(0x1A2B3C4Du); w.Write((ushort)1); w.Write((ushort)0); w.Write(-1L); });
        Block(f, 1, w => { w.Write((ushort)1); w.Write((ushort)0); w.Write(65535u); }); // LINKTYPE_ETHERNET, microsecond resolution by default
        foreach (var (sec, usec, data, orig) in frames)
            Block(f, 6, w =>
            {
                var ts = (ulong)sec * 1_000_000 + usec;
                w.Write(0u);
                w.Write((uint)(ts >> 32));
                w.Write((uint)ts);
                w.Write((uint)data.Length);
                w.Write(orig);
                w.Write(data);
                for (int p = data.Length; p % 4 != 0; p++) w.Write((byte)0);
            });
    }

    private static void Block(Stream s, uint type, Action<BinaryWriter> body)
    {
        var ms = new MemoryStream();
        using (var w = new BinaryWriter(ms, System.Text.Encoding.UTF8, leaveOpen: true)) body(w);
        var total = (uint)(12 + ms.Length);
        using var bw = new BinaryWriter(s, System.Text.Encoding.UTF8, leaveOpen: true);
        bw.Write(type);
        bw.Write(total);
        bw.Write(ms.ToArray());
        bw.Write(total);
    }

    /// <summary>The same frames without their Ethernet headers, as LINKTYPE_RAW (IPv4 only; ARP is left out).</summary>
    public static void WriteRawIp(string path, IEnumerable<(uint Sec, uint Usec, byte[] Data, uint OrigLen)> frames)
    {
        using var f = File.Create(path);
        using var w = new BinaryWriter(f);
        w.Write(0xA1B2C3D4u); w.Write((ushort)2); w.Write((ushort)4); w.Write(0); w.Write(0u); w.Write(65535u); w.Write(101u);
        foreach (var (sec, usec, data, orig) in frames)
        {
            if (data.Length < 14 || data[12] != 0x08 || data[13] != 0x00) continue;
            w.Write(sec); w.Write(usec); w.Write((uint)(data.Length - 14)); w.Write(orig - 14); w.Write(data, 14, data.Length - 14);
        }
    }
}
