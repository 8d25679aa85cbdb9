using System.Buffers.Binary;
using System.Runtime.InteropServices;
using NetStack.Link;
using NetStack.Tests.Lab;
using SharpPcap;
using SharpPcap.LibPcap;

namespace NetStack.Tests.Link;

public sealed class CaptureTapTests : IDisposable
{
    private static readonly MacAddress MacA = MacAddress.Parse("02-00-00-00-00-0A");
    private static readonly MacAddress MacB = MacAddress.Parse("02-00-00-00-00-0B");
    private readonly string _dir = Directory.CreateTempSubdirectory("netstack-tap-").FullName;

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    /// <summary>A capture file parsed by hand: global header fields and each record.</summary>
    internal sealed record ParsedCapture(uint Magic, ushort Major, ushort Minor, uint Snaplen, uint LinkType, List<(DateTime Time, uint OrigLen, byte[] Data)> Records);

    internal static ParsedCapture Parse(byte[] file)
    {
        var s = file.AsSpan();
        var records = new List<(DateTime, uint, byte[])>();
        int at = 24;
        while (at + 16 <= s.Length)
        {
            var sec = BinaryPrimitives.ReadUInt32LittleEndian(s[at..]);
            var usec = BinaryPrimitives.ReadUInt32LittleEndian(s[(at + 4)..]);
            var incl = (int)BinaryPrimitives.ReadUInt32LittleEndian(s[(at + 8)..]);
            var orig = BinaryPrimitives.ReadUInt32LittleEndian(s[(at + 12)..]);
            Assert.True(usec < 1_000_000, "microseconds field out of range");
            records.Add((DateTime.UnixEpoch.AddSeconds(sec).AddTicks(usec * 10L), orig, s.Slice(at + 16, incl).ToArray()));
            at += 16 + incl;
        }
        Assert.Equal(s.Length, at);
        return new ParsedCapture(BinaryPrimitives.ReadUInt32LittleEndian(s), BinaryPrimitives.ReadUInt16LittleEndian(s[4..]),
            BinaryPrimitives.ReadUInt16LittleEndian(s[6..]), BinaryPrimitives.ReadUInt32LittleEndian(s[16..]),
            BinaryPrimitives.ReadUInt32LittleEndian(s[20..]), records);
    }

    private static bool LibpcapPresent() =>
        new[] { "libpcap.so.1", "libpcap.so.0.8", "libpcap.so" }.Any(n => NativeLibrary.TryLoad(n, out _));

    [Fact]
    public void Writer_WritesClassicPcapHeaderAndRecords()
    {
        using var ms = new MemoryStream();
        var t = new DateTime(2026, 11, 25, 8, 0, 0, DateTimeKind.Utc).AddTicks(1234560);
        using (var w = new PcapFileWriter(ms, snaplen: 100))
        {
            w.Write(LinkTestKit.TaggedFrame(MacB, MacA, "one"), t);
            w.Write(new byte[150], t.AddSeconds(1)); // longer than snaplen: truncated, original length kept
            Assert.Equal(2, w.FramesWritten);
        }
        var cap = Parse(ms.ToArray());
        Assert.Equal(0xA1B2C3D4u, cap.Magic);
        Assert.Equal((2, 4), (cap.Major, cap.Minor));
        Assert.Equal(100u, cap.Snaplen);
        Assert.Equal(1u, cap.LinkType);
        Assert.Equal(2, cap.Records.Count);
        Assert.Equal(t.AddTicks(-(t.Ticks % 10)), cap.Records[0].Time);
        Assert.True(LinkTestKit.HasTag(cap.Records[0].Data, "one"));
        Assert.Equal(100, cap.Records[1].Data.Length);
        Assert.Equal(150u, cap.Records[1].OrigLen);
    }

    [Fact]
    public void Tap_OnVirtualWire_RecordsFramesBothWays_InOrder()
    {
        var wire = new VirtualWire(seed: 7);
        var path = Path.Combine(_dir, "wire.pcap");
        var before = DateTime.UtcNow.AddSeconds(-1);
        var portB = wire.CreatePort("b", MacB);
        var sinkA = new FrameLog();
        var sinkB = new FrameLog();
        using (var tap = new CaptureTap(wire.CreatePort("a", MacA), path))
        {
            Assert.Equal("a", tap.Name);
            Assert.Equal(MacA, tap.HardwareAddress);
            var now = TimeSpan.Zero;
            tap.Transmit(LinkTestKit.TaggedFrame(MacB, MacA, "a-to-b"), now);
            tap.Flush(now);
            Assert.Equal(1, portB.Receive(sinkB, now, 10));
            portB.Transmit(LinkTestKit.TaggedFrame(MacA, MacB, "b-to-a", length: 1514), now);
            Assert.Equal(1, tap.Receive(sinkA, now, 10));
            Assert.Equal(0, tap.Receive(sinkA, now, 10));
            Assert.Equal(2, tap.Writer.FramesWritten);
        }
        Assert.True(LinkTestKit.HasTag(sinkB.Frames.Single(), "a-to-b"));
        Assert.True(LinkTestKit.HasTag(sinkA.Frames.Single(), "b-to-a"));

        var cap = Parse(File.ReadAllBytes(path));
        Assert.Equal(2, cap.Records.Count);
        Assert.True(LinkTestKit.HasTag(cap.Records[0].Data, "a-to-b"));
        Assert.True(LinkTestKit.HasTag(cap.Records[1].Data, "b-to-a"));
        Assert.Equal(1514, cap.Records[1].Data.Length);
        Assert.All(cap.Records, r => Assert.InRange(r.Time, before, DateTime.UtcNow.AddSeconds(1)));

        // libpcap itself reads the file (SharpPcap's reader), when it is installed.
        if (LibpcapPresent())
        {
            using var reader = new CaptureFileReaderDevice(path);
            reader.Open();
            Assert.Equal(PacketDotNet.LinkLayers.Ethernet, reader.LinkType);
            var read = new List<byte[]>();
            while (reader.GetNextPacket(out var e) == GetPacketStatus.PacketRead) read.Add(e.Data.ToArray());
            Assert.Equal(cap.Records.Select(r => r.Data), read);
        }

        // And so does tcpdump, when it is installed.
        if (KernelLab.FindProgram("tcpdump") is { } tcpdump)
        {
            var r = LabProcess.Run(tcpdump, ["-r", path, "-nn", "-e"]);
            Assert.Equal(0, r.ExitCode);
            // One summary line per frame; tcpdump adds indented hex lines for an EtherType it does not know.
            var lines = r.Output.Split('\n', StringSplitOptions.RemoveEmptyEntries).Where(l => !char.IsWhiteSpace(l[0])).ToArray();
            Assert.Equal(2, lines.Length);
            Assert.Contains("02:00:00:00:00:0a > 02:00:00:00:00:0b", lines[0]);
            Assert.Contains("length 1514", lines[1]);
        }
    }

    [Fact]
    public void Tap_FlushesTheFileAtItsInterval_SoALiveReaderSeesFrames()
    {
        var wire = new VirtualWire();
        var path = Path.Combine(_dir, "live.pcap");
        using var tap = new CaptureTap(wire.CreatePort("a", MacA), path) { FileFlushInterval = TimeSpan.FromSeconds(1) };
        tap.Transmit(LinkTestKit.TaggedFrame(MacB, MacA, "x"), TimeSpan.Zero);
        tap.Flush(TimeSpan.Zero);
        Assert.Single(Parse(ReadShared(path)).Records);
        tap.Transmit(LinkTestKit.TaggedFrame(MacB, MacA, "y"), TimeSpan.FromMilliseconds(10));
        tap.Flush(TimeSpan.FromMilliseconds(10)); // within the interval: still buffered
        Assert.Single(Parse(ReadShared(path)).Records);
        tap.Flush(TimeSpan.FromSeconds(1));
        Assert.Equal(2, Parse(ReadShared(path)).Records.Count);
    }

    private static byte[] ReadShared(string path)
    {
        using var f = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.ReadWrite);
        using var ms = new MemoryStream();
        f.CopyTo(ms);
        return ms.ToArray();
    }

    [Fact]
    public void Tap_AllocatesNothingPerFrame()
    {
        // A lone port: the wire floods to nobody, so any allocation would be the tap's own.
        var wire = new VirtualWire();
        using var tap = new CaptureTap(wire.CreatePort("a", MacA), new PcapFileWriter(Stream.Null), ownsWriter: true);
        var frame = LinkTestKit.TaggedFrame(MacB, MacA, "z", 1514);
        var sink = new FrameLog();
        for (int i = 0; i < 100; i++) { tap.Transmit(frame, TimeSpan.Zero); tap.Receive(sink, TimeSpan.Zero, 8); tap.Flush(TimeSpan.Zero); } // warm up
        var before = GC.GetAllocatedBytesForCurrentThread();
        for (int i = 0; i < 1000; i++) { tap.Transmit(frame, TimeSpan.Zero); tap.Receive(sink, TimeSpan.Zero, 8); }
        tap.Flush(TimeSpan.FromSeconds(1));
        var after = GC.GetAllocatedBytesForCurrentThread();
        Stack.Tests.Support.Allocations.AssertNonePerItem(after - before, 1000, "frames each way");
    }

    [Fact]
    public void Writer_RejectsABadSnaplen()
    {
        var e = Assert.Throws<ArgumentOutOfRangeException>(() => new PcapFileWriter(Stream.Null, snaplen: 10));
        Assert.Equal("snaplen", e.ParamName);
    }
}
