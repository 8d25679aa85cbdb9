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
    public void A_capture_of_a_stack_in_virtual_time_carries_the_stack_s_times_and_a_real_time_one_the_wall_clock()
    {
        var pcap = Path.Combine(_dir, "virtual.pcap");
        var before = DateTime.UtcNow;
        using (var s = new LadderScenario(clientTap: port => new CaptureTap(port, pcap)))
        {
            var live = s.Sim.Run(s.Client.GetPacketTraceAsync()).Decode().Where(f => f.Protocol == "TCP").ToList();
            s.Sim.Dispose(); // completes the capture file
            var read = CaptureFile.Read(pcap).Decode().Where(f => f.Protocol == "TCP").ToList();
            Assert.Equal(live.Count, read.Count);
            Assert.True(live[^1].Time - live[0].Time > TimeSpan.FromMilliseconds(100), $"the scenario spans virtual time (a retransmission; {(live[^1].Time - live[0].Time).TotalMilliseconds} ms)");
            for (int i = 0; i < live.Count; i++)
            {
                var want = live[i].Time - live[0].Time;
                var got = read[i].Time - read[0].Time;
                Assert.True(Math.Abs((want - got).TotalMicroseconds) <= 1, $"frame {i}: the stack logged it at +{want.TotalMilliseconds} ms, the capture says +{got.TotalMilliseconds} ms");
            }
        }
        // The absolute times start at the wall clock of the run (the stack's clock epoch mapped onto it).
        var start = CaptureFile.Read(pcap).StartTime!.Value;
        Assert.InRange(start, before.AddSeconds(-1), DateTime.UtcNow.AddSeconds(1));

        // A stack on the real-time clock: the capture's stamps are the wall clock's.
        var real = Path.Combine(_dir, "real.pcap");
        var clock = new NetStack.SystemClock();
        using (var writer = new PcapFileWriter(real))
        {
            var t0 = DateTime.UtcNow;
            writer.Write(new byte[60], clock.Now);
            Thread.Sleep(50);
            writer.Write(new byte[60], clock.Now);
            var t1 = DateTime.UtcNow;
            writer.Dispose();
            var frames = CaptureFile.Read(real);
            var first = frames.StartTime!.Value;
            Assert.InRange(first, t0.AddMilliseconds(-5), t1);
            Assert.InRange(frames.Frames[1].Time - frames.Frames[0].Time, TimeSpan.FromMilliseconds(45), t1 - t0 + TimeSpan.FromMilliseconds(5));
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
