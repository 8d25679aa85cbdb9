using NetStack.Link;

namespace NetStack.Tests.Link;

/// <summary>What can be checked about the pcap device without root or an adapter.</summary>
public sealed class PcapDeviceOptionsTests
{
    [Fact]
    public void Filter_PassesOurUnicast_Broadcast_Multicast_AndArp()
    {
        Assert.Equal("ether dst 02:00:5e:10:00:01 or ether broadcast or ether multicast or arp",
            PcapDevice.FilterFor(MacAddress.Parse("02-00-5E-10-00-01")));
    }

    [Theory]
    [InlineData(nameof(PcapDeviceOptions.KernelBufferSize))]
    [InlineData(nameof(PcapDeviceOptions.Snaplen))]
    [InlineData(nameof(PcapDeviceOptions.TransmitBatchSize))]
    [InlineData(nameof(PcapDeviceOptions.StatisticsInterval))]
    public void BadOptions_AreRefused_NamingTheOption(string option)
    {
        var bad = option switch
        {
            nameof(PcapDeviceOptions.KernelBufferSize) => new PcapDeviceOptions { KernelBufferSize = 1000 },
            nameof(PcapDeviceOptions.Snaplen) => new PcapDeviceOptions { Snaplen = 10 },
            nameof(PcapDeviceOptions.TransmitBatchSize) => new PcapDeviceOptions { TransmitBatchSize = 0 },
            _ => new PcapDeviceOptions { StatisticsInterval = TimeSpan.FromSeconds(-1) },
        };
        // Validation comes before anything touches libpcap, so this runs anywhere.
        var e = Assert.Throws<ArgumentOutOfRangeException>(() => PcapDevice.Open("u0", bad));
        Assert.Equal(option, e.ParamName);
    }

    [Fact]
    public void Defaults_AreTheFastOnes()
    {
        var o = new PcapDeviceOptions();
        Assert.Equal(32 * 1024 * 1024, o.KernelBufferSize);
        Assert.True(o.BatchTransmit);
        Assert.Null(o.Snaplen);          // from the MTU
        Assert.False(o.BypassQdisc);
        Assert.True(o.SegmentationOffload);
        Assert.Null(o.NetworkNamespace);
    }

    [Fact]
    public void BlankAdapterName_IsRefused()
    {
        Assert.ThrowsAny<ArgumentException>(() => PcapDevice.Open(" "));
    }
}
