using NetStack.Diagnostics;
using NetStack.Tcp;
using Stack.Tests.Diagnostics;
using Xunit.Abstractions;
using static NetStack.Tests.Lab.KernelTcpKit;

namespace NetStack.Tests.Lab;

/// <summary>tcpdump on the kernel's side of the wire writes a capture that reads back into the ladder our stack's log gives.</summary>
public class KernelCaptureLadderTests(ITestOutputHelper output)
{
    [KernelFact(Programs = ["tcpdump", "python3"])]
    public async Task A_tcpdump_capture_of_the_kernel_side_reads_back_into_the_live_ladder()
    {
        using var lab = new KernelLab();
        var dir = Directory.CreateTempSubdirectory("netstack-tcpdump-").FullName;
        try
        {
            var pcap = Path.Combine(dir, "k0.pcap");
            // -U: each packet is written as it is captured, so the file is whole when tcpdump is killed.
            using var dump = lab.StartProgramInKernel(KernelLab.FindProgram("tcpdump")!, ["-i", KernelLab.KernelInterface, "-n", "-U", "-w", pcap, "tcp", "port", "8700"]);
            Assert.True(dump.WaitForAnyOutput(o => o.Contains("listening on"), Generous), $"tcpdump did not start: {dump.Error}");
            var sink = lab.StartPeer(PeerScript, "server", "8700", "recv", "close");
            using var stack = lab.StartTcpStack();
            var s = await stack.ConnectTcpAsync(KernelLab.KernelAddress, 8700).WaitAsync(Generous);
            await s.SendAsync(new byte[5000]).WaitAsync(Generous);
            s.ShutdownSend();
            sink.WaitSummary("got");
            Assert.Equal(0, await s.ReceiveAsync(new byte[100]).AsTask().WaitAsync(Generous)); // the kernel's FIN
            var deadline = DateTime.UtcNow + Generous;
            while (s.State != TcpState.TimeWait && DateTime.UtcNow < deadline) await Task.Delay(10);
            Assert.Equal(TcpState.TimeWait, s.State);

            var trace = await stack.GetPacketTraceAsync();
            var liveFrames = trace.Decode().Where(f => f.Protocol == "TCP" && (f.SourcePort == 8700 || f.DestinationPort == 8700)).ToList();
            var live = LadderBuilder.Build(liveFrames, trace.StateChanges);
            var deadline2 = DateTime.UtcNow + Generous;
            List<FrameSummary> captured;
            do
            {
                await Task.Delay(50);
                captured = CaptureFile.Read(pcap).Decode().Where(f => f.Protocol == "TCP").ToList();
            }
            while (captured.Count < liveFrames.Count && DateTime.UtcNow < deadline2);
            dump.Kill();
            var fromCapture = LadderBuilder.Build(captured);
            output.WriteLine(LadderText.ToText(live, 110));
            output.WriteLine(LadderText.ToText(fromCapture, 110));

            Assert.Equal(live.Hosts, fromCapture.Hosts);
            // Each host's segments, in the order it sent them, carry the same labels in both views (a link keeps each
            // direction's order; segments crossing on the wire may interleave differently at the two ends).
            foreach (var dir2 in new[] { (0, 1), (1, 0) })
                Assert.Equal(live.Arrows.Where(a => (a.From, a.To) == dir2).Select(a => a.Label),
                             fromCapture.Arrows.Where(a => (a.From, a.To) == dir2).Select(a => a.Label));
            // The states inferred from the kernel-side capture are the ones our stack recorded for its side.
            Assert.Equal(live.States.Where(n => n.Host == 0).Select(n => n.State), fromCapture.States.Where(n => n.Host == 0).Select(n => n.State));
            Assert.All(live.States.Where(n => n.Host == 0), n => Assert.False(n.Inferred));
            Assert.Equal(new[] { "SYN-SENT", "ESTABLISHED", "FIN-WAIT-1", "FIN-WAIT-2", "TIME-WAIT" }, live.States.Where(n => n.Host == 0).Select(n => n.State));
            Assert.Equal(new[] { "SYN-RECEIVED", "ESTABLISHED", "CLOSE-WAIT", "LAST-ACK", "CLOSED" }, fromCapture.States.Where(n => n.Host == 1).Select(n => n.State));
        }
        finally { Directory.Delete(dir, recursive: true); }
    }
}
