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
            "Tcp.CongestionControl" => new TcpSettings { CongestionControl = "bbr" },
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
        Assert.Equal("cubic", t.CongestionControl);
        Assert.Equal(10, t.InitialWindowSegments);
        new StackConfig { Address = StackHarness.OurIp }.Validate(1500);
    }
}
