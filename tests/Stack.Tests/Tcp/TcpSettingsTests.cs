using NetStack;
using Stack.Tests.Support;

namespace Stack.Tests.Tcp;

public class TcpSettingsTests
{
    [Theory]
    [InlineData("Tcp.CongestionControl")]
    [InlineData("Tcp.MinRto")]
    [InlineData("Tcp.ReceiveBufferSize")]
    [InlineData("Tcp.DelayedAckTimeout")]
    public void Unworkable_tcp_settings_are_refused_naming_the_field(string field)
    {
        var tcp = field switch
        {
            "Tcp.CongestionControl" => new TcpSettings { CongestionControl = "vegas" },
            "Tcp.MinRto" => new TcpSettings { MinRto = TimeSpan.Zero },
            "Tcp.ReceiveBufferSize" => new TcpSettings { ReceiveBufferSize = 100 },
            _ => new TcpSettings { DelayedAckTimeout = TimeSpan.FromSeconds(1) },
        };
        var config = new StackConfig { Address = StackHarness.OurIp, Tcp = tcp };
        var ex = Assert.Throws<StackConfigurationException>(() => config.Validate(1500));
        Assert.Equal(field, ex.Field);
    }

    [Fact]
    public void Defaults_follow_linux_where_the_rfcs_leave_a_choice()
    {
        var t = new TcpSettings();
        Assert.Equal(TimeSpan.FromSeconds(60), 2 * t.Msl); // TIME-WAIT
        Assert.Equal(TimeSpan.FromMilliseconds(200), t.MinRto);
        Assert.Equal("bbr", t.CongestionControl); // as this machine's kernel (net.ipv4.tcp_congestion_control)
        Assert.Equal(10, t.InitialWindowSegments);
        Assert.Equal(0, t.MaxOutOfOrderRanges); // bounded by the receive buffer, as Linux bounds its out-of-order queue by memory
        new StackConfig { Address = StackHarness.OurIp }.Validate(1500);
    }

    [Fact]
    public void The_congestion_algorithm_is_chosen_by_type_and_still_by_its_name()
    {
        Assert.Equal(CongestionAlgorithm.Bbr, new TcpSettings().Congestion);
        Assert.Equal(CongestionAlgorithm.NewReno, new TcpSettings { CongestionControl = "newreno" }.Congestion);
        Assert.Equal("newreno", new TcpSettings { Congestion = CongestionAlgorithm.NewReno }.CongestionControl);
        Assert.Equal("cubic", (new TcpSettings { CongestionControl = "newreno" } with { Congestion = CongestionAlgorithm.Cubic }).CongestionControl);
        Assert.IsType<NetStack.Tcp.NewRenoCongestionControl>(NetStack.Tcp.CongestionControls.Create(CongestionAlgorithm.NewReno));
        Assert.IsType<NetStack.Tcp.CubicCongestionControl>(NetStack.Tcp.CongestionControls.Create(CongestionAlgorithm.Cubic));
        Assert.Equal(CongestionAlgorithm.Bbr, new TcpSettings { CongestionControl = "bbr" }.Congestion);
        Assert.Equal("bbr", new TcpSettings { Congestion = CongestionAlgorithm.Bbr }.CongestionControl);
        Assert.IsType<NetStack.Tcp.BbrCongestionControl>(NetStack.Tcp.CongestionControls.Create(CongestionAlgorithm.Bbr));
        new StackConfig { Address = StackHarness.OurIp, Tcp = new TcpSettings { CongestionControl = "bbr" } }.Validate(1500);
        var unknown = new StackConfig { Address = StackHarness.OurIp, Tcp = new TcpSettings { Congestion = (CongestionAlgorithm)99 } };
        Assert.Equal("Tcp.CongestionControl", Assert.Throws<StackConfigurationException>(() => unknown.Validate(1500)).Field);
    }
}
