using System.Globalization;
using System.Text;
using NetStack;
using NetStack.Services;
using NetStack.Icmp;
using NetStack.Sockets;
using NetStack.Tcp;

namespace Stack.Tests.Services;

/// <summary>Echo, discard, daytime and chargen of the lab's service host, over TCP and UDP, from a client stack.</summary>
public class SimpleServiceTests
{
    private static readonly DateTimeOffset Fixed = new(1982, 2, 22, 17, 37, 43, TimeSpan.Zero);

    [Fact]
    public async Task Tcp_echo_returns_every_byte_then_closes_after_the_client()
    {
        using var lab = new LabRig();
        using var c = await lab.ConnectAsync(7);
        var data = new byte[300_000];
        new Random(7).NextBytes(data);
        var reading = lab.ReadToEndAsync(c);
        await c.SendAsync(data, lab.Token);
        c.ShutdownSend();
        Assert.Equal(data, await reading); // and the server's FIN ended the read
        await lab.WaitUntilAsync(() => c.State == TcpState.TimeWait || c.State == TcpState.Closed, "the connection to close");
    }

    [Fact]
    public async Task Udp_echo_returns_the_datagram_and_discard_returns_nothing()
    {
        using var lab = new LabRig();
        using var u = await lab.Client.CreateUdpSocketAsync();
        await u.SendToAsync(LabRig.HostAddress, 9, "into the void"u8.ToArray());
        await u.SendToAsync(LabRig.HostAddress, 7, "ping"u8.ToArray());
        // Sent in that order over one wire: a reply from discard would come first.
        var reply = await u.ReceiveAsync(lab.Token);
        Assert.Equal(7, reply.RemotePort);
        Assert.Equal("ping", Encoding.ASCII.GetString(reply.Data));
        // Discard counts on its own socket's loop, which may run after echo's reply arrived: wait for the count.
        await lab.WaitUntilAsync(() => Interlocked.Read(ref lab.Host.Counters.UdpDatagrams) >= 2, "both datagrams to be counted");
    }

    [Fact]
    public async Task Tcp_discard_reads_everything_and_sends_nothing()
    {
        using var lab = new LabRig();
        using var c = await lab.ConnectAsync(9);
        await c.SendAsync(new byte[200_000], lab.Token);
        c.ShutdownSend();
        Assert.Empty(await lab.ReadToEndAsync(c)); // the server closes after our FIN, having sent nothing
    }

    [Fact]
    public async Task Daytime_sends_one_line_over_tcp_and_udp()
    {
        using var lab = new LabRig(new ServiceHostOptions { WallClock = () => Fixed });
        using var c = await lab.ConnectAsync(13);
        var line = Encoding.ASCII.GetString(await lab.ReadToEndAsync(c));
        Assert.Equal("Monday, February 22, 1982 17:37:43 UTC\r\n", line);
        Assert.Equal(Fixed, DateTimeOffset.ParseExact(line.TrimEnd(), "dddd, MMMM d, yyyy HH:mm:ss 'UTC'", CultureInfo.InvariantCulture, DateTimeStyles.AssumeUniversal));

        using var u = await lab.Client.CreateUdpSocketAsync();
        await u.SendToAsync(LabRig.HostAddress, 13, Array.Empty<byte>());
        Assert.Equal(line, Encoding.ASCII.GetString((await u.ReceiveAsync(lab.Token)).Data));
    }

    [Fact]
    public void Chargen_pattern_is_rfc_864s()
    {
        var p = Encoding.ASCII.GetString(ChargenService.Pattern(3 * 74));
        var lines = p.Split("\r\n");
        Assert.Equal(""" !"#$%&'()*+,-./0123456789:;<=>?@ABCDEFGHIJKLMNOPQRSTUVWXYZ[\]^_`abcdefg""", lines[0]);
        Assert.Equal(lines[0][1..], lines[1][..71]); // each line starts one character further on
        Assert.Equal(72, lines[2].Length);
        Assert.Equal(ChargenService.Pattern(74), ChargenService.Pattern(95 * 74 + 74)[(95 * 74)..]); // the cycle is 95 lines
    }

    [Fact]
    public async Task Tcp_chargen_sends_its_limit_then_closes()
    {
        using var lab = new LabRig(new ServiceHostOptions { ChargenLimit = 100_000 });
        using var c = await lab.ConnectAsync(19);
        Assert.Equal(ChargenService.Pattern(100_000), await lab.ReadToEndAsync(c));
    }

    [Fact]
    public async Task Tcp_chargen_stops_when_the_client_closes_after_reading_some()
    {
        using var lab = new LabRig(); // the default limit: 1 MiB, more than the client reads
        var c = await lab.ConnectAsync(19);
        Assert.Equal(ChargenService.Pattern(740), await lab.ReadExactlyAsync(c, 740));
        await c.CloseAsync().WaitAsync(lab.Token); // unread data: the close is a reset
        // The server's connection ends (its send fails, or it sees our FIN) and leaves the host's table.
        await lab.WaitUntilAsync(() => !lab.HostStack.GetConnectionsAsync().Result.Any(r => r.Protocol == SocketProtocol.Tcp && r.LocalPort == 19 && r.State != "Listen"),
            "the host's chargen connection to end");
    }

    [Fact]
    public async Task Udp_chargen_answers_with_512_pattern_characters()
    {
        using var lab = new LabRig();
        using var u = await lab.Client.CreateUdpSocketAsync();
        await u.SendToAsync(LabRig.HostAddress, 19, "x"u8.ToArray());
        Assert.Equal(ChargenService.Pattern(512), (await u.ReceiveAsync(lab.Token)).Data);
    }

    [Fact]
    public async Task Host_answers_arp_and_ping_and_lists_its_services()
    {
        using var lab = new LabRig();
        var reply = await lab.Client.PingAsync(LabRig.HostAddress, timeout: TimeSpan.FromSeconds(30));
        Assert.Equal(PingStatus.Success, reply.Status);
        Assert.Equal(LabRig.HostAddress, reply.Address);
        var listening = (await lab.HostStack.GetConnectionsAsync()).Select(r => (r.Protocol, (int)r.LocalPort)).ToHashSet();
        foreach (var s in lab.Host.Services) Assert.Contains((s.Protocol, (int)s.Port), listening);
        Assert.Equal(new[] { 7, 9, 13, 19, 53, 67, 80 }, lab.Host.Services.Select(s => (int)s.Port).Distinct().Order());
    }

    [Fact]
    public async Task Dispose_closes_the_ports_and_resets_open_connections()
    {
        using var lab = new LabRig();
        using var open = await lab.ConnectAsync(7);
        lab.Host.Dispose();
        var e = await Assert.ThrowsAsync<StackException>(() => open.ReceiveAsync(new byte[1], lab.Token).AsTask());
        Assert.Equal(StackError.ConnectionReset, e.Error);
        var refused = await Assert.ThrowsAsync<StackException>(() => lab.ConnectAsync(80));
        Assert.Equal(StackError.ConnectionRefused, refused.Error);
    }

    [Fact]
    public async Task A_second_host_on_the_same_stack_fails_with_address_in_use()
    {
        using var lab = new LabRig();
        var e = await Assert.ThrowsAsync<StackException>(() => ServiceHost.StartAsync(lab.HostStack));
        Assert.Equal(StackError.AddressInUse, e.Error);
        using var c = await lab.ConnectAsync(7); // the first one still serves
    }
}
