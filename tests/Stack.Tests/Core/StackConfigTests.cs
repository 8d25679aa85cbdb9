using NetStack;
using Stack.Tests.Support;

namespace Stack.Tests.Core;

public class StackConfigTests
{
    private static StackConfigurationException Refused(StackConfig c) =>
        Assert.Throws<StackConfigurationException>(() => new NetworkStack(new TestDevice(), c, new ManualClock()));

    private static readonly StackConfig Good = new() { Address = Ipv4Address.Parse("192.0.2.2"), PrefixLength = 24 };

    [Theory]
    [InlineData("0.0.0.0", 24, "Address")]
    [InlineData("255.255.255.255", 24, "Address")]
    [InlineData("224.0.0.5", 24, "Address")]
    [InlineData("127.0.0.1", 8, "Address")]
    [InlineData("192.0.2.0", 24, "Address")]
    [InlineData("192.0.2.255", 24, "Address")]
    [InlineData("192.0.2.2", 0, "PrefixLength")]
    [InlineData("192.0.2.2", 31, "PrefixLength")]
    public void Invalid_address_or_prefix_is_refused_naming_the_field(string address, int prefix, string field)
    {
        var e = Refused(Good with { Address = Ipv4Address.Parse(address), PrefixLength = prefix });
        Assert.Equal(field, e.Field);
        Assert.Contains(field, e.Message);
    }

    /// <summary>RFC 1122 3.2.1.3, the one rule IPv4, ICMP, TCP, DNS and ARP share (StackConfig.IsUnicastHost).</summary>
    [Theory]
    [InlineData("192.0.2.7", true)]
    [InlineData("198.51.100.1", true)]   // off-link hosts are hosts too
    [InlineData("192.0.2.2", true)]      // our own address names a host (callers that must not talk to us check that apart)
    [InlineData("0.0.0.0", false)]
    [InlineData("255.255.255.255", false)]
    [InlineData("192.0.2.255", false)]   // our subnet's broadcast
    [InlineData("224.0.0.1", false)]
    [InlineData("239.255.255.250", false)]
    [InlineData("127.0.0.1", false)]
    public void Unicast_host_rule(string address, bool expected) =>
        Assert.Equal(expected, Good.IsUnicastHost(Ipv4Address.Parse(address)));

    [Fact]
    public void Gateway_off_the_subnet_is_refused()
    {
        var e = Refused(Good with { Gateway = Ipv4Address.Parse("198.51.100.1") });
        Assert.Equal("Gateway", e.Field);
        Assert.Contains("not on the subnet 192.0.2.0/24", e.Message);
    }

    [Fact]
    public void Multicast_mac_mtu_over_the_adapter_and_bad_port_range_are_refused()
    {
        Assert.Equal("MacAddress", Refused(Good with { MacAddress = MacAddress.Parse("01-00-5E-00-00-01") }).Field);
        Assert.Equal("Mtu", Refused(Good with { Mtu = 9000 }).Field);
        Assert.Equal("Mtu", Refused(Good with { Mtu = 500 }).Field);
        Assert.Equal("EphemeralPortFirst", Refused(Good with { EphemeralPortFirst = 60000, EphemeralPortLast = 50000 }).Field);
        Assert.Equal("Arp.MaxRequests", Refused(Good with { Arp = new ArpSettings { MaxRequests = 0 } }).Field);
    }

    [Fact]
    public void Defaults_take_mac_and_mtu_from_the_adapter()
    {
        var device = new TestDevice(MacAddress.Parse("02-11-22-33-44-55"), mtu: 1400);
        using var s = new NetworkStack(device, Good, new ManualClock());
        Assert.Equal(MacAddress.Parse("02-11-22-33-44-55"), s.MacAddress);
        Assert.Equal(1400, s.Mtu);
        using var t = new NetworkStack(new TestDevice(), Good with { MacAddress = MacAddress.Parse("02-00-5E-10-00-01"), Mtu = 1280 }, new ManualClock());
        Assert.Equal("02-00-5E-10-00-01", t.MacAddress.ToString());
        Assert.Equal(1280, t.Mtu);
    }

    [Theory]
    [InlineData("192.0.2.1", true)]
    [InlineData("192.0.2.256", false)]
    [InlineData("192.0.2", false)]
    [InlineData("192.0.2.1.5", false)]
    [InlineData(" 203.0.113.9 ", true)]
    [InlineData("1e1.0.0.1", false)]
    public void Ipv4_address_parsing(string text, bool ok) => Assert.Equal(ok, Ipv4Address.TryParse(text, out _));

    [Theory]
    [InlineData("00-15-5D-25-05-1D")]
    [InlineData("00:15:5d:25:05:1d")]
    [InlineData("00155D25051D")]
    public void Mac_parsing_accepts_common_forms_and_formats_like_GetNetNeighbor(string text) =>
        Assert.Equal("00-15-5D-25-05-1D", MacAddress.Parse(text).ToString());
}
