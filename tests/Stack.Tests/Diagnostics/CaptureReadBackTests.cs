using NetStack.Diagnostics;
using NetStack.Link;
using Xunit.Abstractions;

namespace Stack.Tests.Diagnostics;

/// <summary>A test that reads capture files through libpcap: skipped, with the reason, when libpcap is not installed.</summary>
public sealed class CaptureFactAttribute : FactAttribute
{
    private static readonly Lazy<string?> Why = new(() =>
    {
        var probe = Path.GetTempFileName();
        try
        {
            using (var w = new NetStack.Link.PcapFileWriter(probe)) { } // a valid, empty capture
            CaptureFile.Read(probe);
        }
        catch (Exception e) when (e is DllNotFoundException or TypeInitializationException) { return "libpcap is not installed (apt-get install libpcap0.8)"; }
        finally { File.Delete(probe); }
        return null;
    });

    public CaptureFactAttribute()
    {
        if (Why.Value is { } reason) Skip = reason;
    }
}

/// <summary>Captures read back (SharpPcap's offline reader) into the same ladders as the stack's own log.</summary>
public class CaptureReadBackTests(ITestOutputHelper output) : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("netstack-capture-").FullName;

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    private static Ladder LadderOf(PacketTrace trace) => LadderBuilder.Build(trace.Decode().Where(f => f.Protocol == "TCP").ToList());

    [CaptureFact]
    public void A_capture_written_by_our_tap_reads_back_into_the_live_ladder_as_pcap_pcapng_and_raw_ip()
    {
        var pcap = Path.Combine(_dir, "client.pcap");
        using (var s = new LadderScenario(clientTap: port => new CaptureTap(port, pcap)))
        {
            var live = LadderTests.Signature(s.ClientLadder());
            s.Sim.Dispose(); // completes the capture file
            var fromPcap = CaptureFile.Read(pcap);
            Assert.All(fromPcap.Frames, f => Assert.Equal(FrameDirection.Unknown, f.Direction));
            Assert.Equal(0, fromPcap.FramesNotDecoded);
            var ladder = LadderOf(fromPcap);
            output.WriteLine(LadderText.ToText(ladder, 110));
            Assert.Equal(live, LadderTests.Signature(ladder)); // same arrows, same labels; states inferred and matching the stack's
            Assert.All(ladder.States, n => Assert.True(n.Inferred));

            var records = CaptureFiles.ReadPcap(pcap);
            var pcapng = Path.Combine(_dir, "client.pcapng");
            CaptureFiles.WritePcapng(pcapng, records);
            Assert.Equal(live, LadderTests.Signature(LadderOf(CaptureFile.Read(pcapng))));
            var raw = Path.Combine(_dir, "client-rawip.pcap");
            CaptureFiles.WriteRawIp(raw, records);
            var rawTrace = CaptureFile.Read(raw);
            Assert.Equal(live, LadderTests.Signature(LadderOf(rawTrace)));
            Assert.Equal(fromPcap.Frames.Count(f => f.Bytes[12] == 0x08 && f.Bytes[13] == 0), rawTrace.Frames.Count);
        }
    }

    [CaptureFact]
    public void Bad_files_fail_with_the_reason()
    {
        Assert.Throws<FileNotFoundException>(() => CaptureFile.Read(Path.Combine(_dir, "missing.pcap")));
        var junk = Path.Combine(_dir, "junk.pcap");
        File.WriteAllText(junk, "this is not a capture file");
        var e = Assert.Throws<InvalidDataException>(() => CaptureFile.Read(junk));
        Assert.Contains("not a capture file", e.Message);
    }
}
