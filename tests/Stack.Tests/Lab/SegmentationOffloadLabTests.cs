using System.Buffers.Binary;
using NetStack.Link;
using static NetStack.Tests.Lab.KernelTcpKit;

namespace NetStack.Tests.Lab;

/// <summary>
/// PcapDeviceOptions.SegmentationOffload: a bulk send leaves as GSO packets, and what reaches the kernel is the same
/// stream of MTU-sized frames with valid checksums (the stack left them to the device and the kernel), every byte delivered.
/// </summary>
[Collection(KernelLabCollection.Name)]
public sealed class SegmentationOffloadLabTests
{
    /// <param name="txOffload">
    /// u0's TX offload. Off (as in the benchmark): the kernel cuts the GSO packets and k0 gets MTU-sized frames.
    /// On (veth's default): veth would hand them to k0 whole, so the device sends frame by frame as before.
    /// </param>
    [KernelTheory]
    [InlineData(false)]
    [InlineData(true)]
    public async Task BulkSend_LeavesAsGsoPacketsWithoutTso_AndTheKernelGetsMtuSizedFramesWithValidHeaders(bool txOffload)
    {
        using var lab = new KernelLab();
        if (!txOffload) lab.RunInStackNamespace($"ethtool -K {KernelLab.StackInterface} tx off").EnsureSuccess();
        var sink = lab.StartPeer(PeerScript, "server", "7001", "recv");
        var device = lab.OpenStackDevice();
        Assert.Equal(!txOffload, device.SegmentationOffload);
        Assert.Equal(!txOffload, device.CompletesTcpChecksum); // the stack leaves the TCP checksum of its data to it
        var wire = new WireCheck();
        using var capture = lab.OpenKernelSideDevice();
        var pump = Task.Run(() => NetStack.Tests.Link.LinkTestKit.PumpUntil(capture, wire, () => wire.Stop, TimeSpan.FromSeconds(120)));
        using var stack = new NetworkStack(device, new StackConfig { Address = KernelLab.StackAddress, PrefixLength = KernelLab.PrefixLength }, name: "lab");
        stack.Start();
        var before = PcapThroughputTests.KernelSnmp(lab);

        using (var up = await stack.ConnectTcpAsync(KernelLab.KernelAddress, 7001).WaitAsync(Generous))
        {
            var sha = await SendBlocksAsync(up, 4_000_000, Block(5)).WaitAsync(Generous);
            await up.CloseAsync().WaitAsync(Generous);
            Assert.Equal((4_000_000L, sha), sink.WaitSummary("got"));
        }
        wire.Stop = true;
        await pump.WaitAsync(Generous);
        var after = PcapThroughputTests.KernelSnmp(lab);

        Assert.Equal(!txOffload, device.FramesSegmentedByKernel > 0);
        Assert.Equal(0, after["Tcp.InCsumErrors"] - before["Tcp.InCsumErrors"]);
        Assert.Equal(0, after["Ip.InHdrErrors"] - before["Ip.InHdrErrors"]);        // The capture may miss frames on a loaded machine; those it saw are all plain MTU-sized frames.
        Assert.True(wire.DataFrames > 0, "the capture on k0 saw none of our data");
        Assert.Equal(0, wire.Oversized);
        Assert.Equal(0, capture.FramesTruncated);
        Assert.Equal(0, wire.BadChecksums);
    }

    [KernelFact]
    public async Task BulkSend_WithQdiscBypass_StillLeavesAsGsoPackets_AndEveryByteArrives()
    {
        // BypassQdisc is the capture socket's: the kernel's direct transmit drops a packet it would have to cut, so on
        // the segmentation socket every GSO packet was lost (ENOBUFS, counted) and the send stalled.
        using var lab = new KernelLab();
        lab.RunInStackNamespace($"ethtool -K {KernelLab.StackInterface} tx off").EnsureSuccess();
        var sink = lab.StartPeer(PeerScript, "server", "7001", "recv");
        var device = lab.OpenStackDevice(new PcapDeviceOptions { BypassQdisc = true });
        using var stack = new NetworkStack(device, new StackConfig { Address = KernelLab.StackAddress, PrefixLength = KernelLab.PrefixLength }, name: "lab");
        stack.Start();
        using (var up = await stack.ConnectTcpAsync(KernelLab.KernelAddress, 7001).WaitAsync(Generous))
        {
            var sha = await SendBlocksAsync(up, 4_000_000, Block(5)).WaitAsync(Generous);
            await up.CloseAsync().WaitAsync(Generous);
            Assert.Equal((4_000_000L, sha), sink.WaitSummary("got"));
        }
        Assert.True(device.FramesSegmentedByKernel > 0);
        Assert.Equal(0, device.Statistics.SendErrors);
    }

    /// <summary>Checks our TCP frames as k0 receives them: at most 1514 bytes, IP and TCP checksums valid.</summary>
    private sealed class WireCheck : IFrameSink
    {
        public volatile bool Stop;
        public int DataFrames, Oversized, BadChecksums;

        public void OnFrame(ReadOnlySpan<byte> f, TimeSpan now)
        {
            if (f.Length < 54 || f[12] != 0x08 || f[13] != 0x00 || f[23] != 6) return;
            var src = Ipv4Address.Read(f[26..]);
            var dst = Ipv4Address.Read(f[30..]);
            if (src != KernelLab.StackAddress) return;
            var ihl = (f[14] & 0xF) * 4;
            var total = BinaryPrimitives.ReadUInt16BigEndian(f[16..]);
            if (f.Length > 1514) Oversized++;
            var ip = f.Slice(14, total);
            var tcp = ip[ihl..];
            if (!Checksum.Verify(0, ip[..ihl]) || !Checksum.Verify(Checksum.PseudoHeader(src, dst, 6, tcp.Length), tcp)) BadChecksums++;
            if (tcp.Length > (tcp[12] >> 4) * 4) DataFrames++;
        }
    }
}
