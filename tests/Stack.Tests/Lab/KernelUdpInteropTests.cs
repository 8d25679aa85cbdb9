using System.Diagnostics;
using System.Text;
using NetStack.Udp;
using Xunit.Abstractions;

namespace NetStack.Tests.Lab;

/// <summary>UDP and DNS between our stack (192.0.2.2, namespace U) and real programs over the Linux kernel (192.0.2.1, namespace K).</summary>
[Collection(KernelLabCollection.Name)]
public sealed class KernelUdpInteropTests(ITestOutputHelper output)
{
    private static readonly TimeSpan Generous = TimeSpan.FromSeconds(30);

    private static NetworkStack StartStack(KernelLab lab, Func<StackConfig, StackConfig>? configure = null)
    {
        var config = new StackConfig { Address = KernelLab.StackAddress, PrefixLength = KernelLab.PrefixLength };
        if (configure is not null) config = configure(config);
        var stack = new NetworkStack(lab.OpenStackDevice(), config, name: "lab");
        stack.Start();
        return stack;
    }

    // A kernel UDP echo server: prints "ready" once bound, then echoes every datagram to its sender.
    private const string EchoServer =
        "import socket\n" +
        "s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)\n" +
        "s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1 << 20)\n" +
        "s.bind(('192.0.2.1', 7007))\n" +
        "print('ready', flush=True)\n" +
        "while True:\n" +
        "    data, peer = s.recvfrom(65535)\n" +
        "    s.sendto(data, peer)\n" +
        "    print('echoed', len(data), peer[0], peer[1], flush=True)\n";

    private static LabProcess StartEchoServer(KernelLab lab)
    {
        var p = lab.StartProgramInKernel("python3", "-u", "-c", EchoServer);
        Assert.True(p.WaitForOutput(o => o.Contains("ready"), Generous), $"echo server did not start: {p.Error}");
        return p;
    }

    private static byte[] Pattern(int length, int seed)
    {
        var data = new byte[length];
        new Random(seed).NextBytes(data);
        return data;
    }

    [KernelTheory(Programs = ["python3"])]
    [InlineData(1)]
    [InlineData(512)]
    [InlineData(1472)]   // the largest that fits one frame at MTU 1500
    public async Task Echo_ThroughTheKernel_BothWays(int size)
    {
        using var lab = new KernelLab();
        using var stack = StartStack(lab);
        StartEchoServer(lab);
        using var socket = await stack.CreateUdpSocketAsync().WaitAsync(Generous);
        var data = Pattern(size, size);
        await socket.SendToAsync(KernelLab.KernelAddress, 7007, data).WaitAsync(Generous);
        var reply = await socket.ReceiveAsync().WaitAsync(Generous);
        Assert.Equal(KernelLab.KernelAddress, reply.RemoteAddress);
        Assert.Equal(7007, reply.RemotePort);
        Assert.Equal(data, reply.Data);
    }

    [KernelTheory(Programs = ["python3"])]
    [InlineData(1473)]   // one byte over: two fragments
    [InlineData(4000)]
    [InlineData(30000)]
    public async Task FragmentedDatagrams_BothWays(int size)
    {
        using var lab = new KernelLab();
        using var stack = StartStack(lab);
        var server = StartEchoServer(lab);
        using var socket = await stack.CreateUdpSocketAsync().WaitAsync(Generous);
        var data = Pattern(size, size);
        await socket.SendToAsync(KernelLab.KernelAddress, 7007, data).WaitAsync(Generous);
        // The kernel reassembled ours (the server saw the whole datagram) ...
        Assert.True(server.WaitForOutput(o => o.Contains($"echoed {size} 192.0.2.2"), Generous), $"kernel side: {server.Output}");
        // ... and we reassembled the kernel's fragmented echo.
        var reply = await socket.ReceiveAsync().WaitAsync(Generous);
        Assert.Equal(data, reply.Data);
        var stats = await stack.GetStatisticsAsync().WaitAsync(Generous);
        var fragmentsIn = stats.Single(c => c.Layer == "IPv4" && c.Name == "FragmentsReceived").Value;
        var fragmentsOut = stats.Single(c => c.Layer == "IPv4" && c.Name == "FragmentsSent").Value;
        output.WriteLine($"{size} bytes: {fragmentsOut} fragments sent, {fragmentsIn} received");
        Assert.Equal((size + 8 + 1479) / 1480, fragmentsIn);
        Assert.Equal(fragmentsIn, fragmentsOut);
    }

    [KernelFact(Programs = ["python3"])]
    public async Task TheKernelSendsFirst_AndOurBoundSocketReceives()
    {
        using var lab = new KernelLab();
        using var stack = StartStack(lab);
        using var socket = await stack.CreateUdpSocketAsync(6000).WaitAsync(Generous);
        var receive = socket.ReceiveAsync();
        var r = lab.RunProgramInKernel("python3", ["-c",
            "import socket\n" +
            "s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)\n" +
            "s.bind(('192.0.2.1', 6001))\n" +
            "s.sendto(b'from-the-kernel', ('192.0.2.2', 6000))\n"], Generous);
        Assert.Equal(0, r.ExitCode);
        var d = await receive.WaitAsync(Generous);
        Assert.Equal("from-the-kernel", Encoding.ASCII.GetString(d.Data));
        Assert.Equal(KernelLab.KernelAddress, d.RemoteAddress);
        Assert.Equal(6001, d.RemotePort);
    }

    [KernelFact(Programs = ["python3"])]
    public async Task PortUnreachable_BothWays()
    {
        using var lab = new KernelLab();
        using var stack = StartStack(lab);

        // The kernel's connected socket learns from our ICMP port unreachable: its recv fails with ECONNREFUSED.
        var r = lab.RunProgramInKernel("python3", ["-c",
            "import socket\n" +
            "s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)\n" +
            "s.settimeout(10)\n" +
            "s.connect(('192.0.2.2', 6999))\n" +
            "s.send(b'anyone?')\n" +
            "try:\n" +
            "    s.recv(100)\n" +
            "    print('answered')\n" +
            "except ConnectionRefusedError:\n" +
            "    print('refused')\n" +
            "except socket.timeout:\n" +
            "    print('timeout')\n"], Generous);
        Assert.Equal("refused", r.Output.Trim());

        // Ours learns from the kernel's: the next receive on the connected socket fails with PortUnreachable.
        using var socket = stack.CreateUdpSocket();
        await socket.ConnectAsync(KernelLab.KernelAddress, 6998).WaitAsync(Generous);
        await socket.SendAsync(new byte[] { 1, 2, 3 }).WaitAsync(Generous);
        var e = await Assert.ThrowsAsync<StackException>(() => socket.ReceiveAsync().WaitAsync(Generous));
        Assert.Equal(StackError.PortUnreachable, e.Error);
    }

    [KernelFact]
    public async Task DatagramToAnUnownedAddress_EndsInHostUnreachable_WithinAboutThreeSeconds()
    {
        using var lab = new KernelLab();
        using var stack = StartStack(lab);
        using var socket = stack.CreateUdpSocket();
        await socket.ConnectAsync(KernelLab.UnownedAddress, 9).WaitAsync(Generous);
        var sw = Stopwatch.StartNew();
        await socket.SendAsync(new byte[] { 1 }).WaitAsync(Generous);
        var e = await Assert.ThrowsAsync<StackException>(() => socket.ReceiveAsync().WaitAsync(Generous));
        output.WriteLine($"{e.Error} after {sw.Elapsed.TotalSeconds:0.00} s: {e.Message}");
        Assert.Equal(StackError.HostUnreachable, e.Error);
        Assert.InRange(sw.Elapsed, TimeSpan.FromSeconds(1.5), TimeSpan.FromSeconds(5));
    }

    private static LabProcess StartDnsmasq(KernelLab lab)
    {
        var p = lab.StartProgramInKernel("dnsmasq", "--no-daemon", "--no-resolv", "--no-hosts", "--log-facility=-", "--log-queries",
            "--address=/example.test/192.0.2.53", "--host-record=www.lab.test,192.0.2.80", "--local=/lab.test/",
            "--local-ttl=60", "--listen-address=192.0.2.1", "--bind-interfaces", "--port=53", "--pid-file=", "--user=root");
        Assert.True(p.WaitForAnyOutput(o => o.Contains("started"), Generous), $"dnsmasq did not start: {p.Output} {p.Error}");
        return p;
    }

    [KernelFact(Programs = ["dnsmasq"])]
    public async Task Dns_AgainstDnsmasq()
    {
        using var lab = new KernelLab();
        using var stack = StartStack(lab, c => c with { DnsServers = [KernelLab.KernelAddress] });
        var dnsmasq = StartDnsmasq(lab);

        var www = await stack.ResolveAsync("www.lab.test").WaitAsync(Generous);
        Assert.Equal([new Ipv4Address(192, 0, 2, 80)], www.Addresses);
        Assert.Equal(KernelLab.KernelAddress, www.Server);
        Assert.False(www.FromCache);
        Assert.Equal(60, www.Ttl);

        var any = await stack.ResolveAsync("anything.example.test").WaitAsync(Generous);
        Assert.Equal([new Ipv4Address(192, 0, 2, 53)], any.Addresses);

        var again = await stack.ResolveAsync("www.lab.test").WaitAsync(Generous);
        Assert.True(again.FromCache);

        // dnsmasq is authoritative for lab.test (--local): an unknown name there is NXDOMAIN.
        var e = await Assert.ThrowsAsync<StackException>(() => stack.ResolveAsync("nope.lab.test").WaitAsync(Generous));
        output.WriteLine($"nope.lab.test: {e.Error}: {e.Message}");
        Assert.Equal(StackError.NameNotFound, e.Error);
        // Elsewhere it has no upstream and answers REFUSED.
        var refused = await Assert.ThrowsAsync<StackException>(() => stack.ResolveAsync("www.elsewhere.test").WaitAsync(Generous));
        output.WriteLine($"www.elsewhere.test: {refused.Error}: {refused.Message}");
        Assert.Equal(StackError.ServerFailure, refused.Error);
        Assert.Contains("REFUSED", refused.Message);
        output.WriteLine(dnsmasq.Error);
    }
}
