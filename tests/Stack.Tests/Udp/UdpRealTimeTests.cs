using NetStack;
using NetStack.Link;

namespace Stack.Tests.Udp;

/// <summary>The API as a user awaits it: two stacks running their own loop threads on a virtual wire, real time.</summary>
public class UdpRealTimeTests
{
    private static readonly TimeSpan Generous = TimeSpan.FromSeconds(10);

    [Fact]
    public async Task Echo_and_resolve_across_running_stacks()
    {
        var wire = new VirtualWire(1);
        var clock = new SystemClock();
        var serverIp = Ipv4Address.Parse("192.0.2.1");
        using var server = new NetworkStack(wire.CreatePort("s", MacAddress.Parse("02-00-00-00-00-01")),
            new StackConfig { Address = serverIp }, clock, name: "server");
        using var client = new NetworkStack(wire.CreatePort("c", MacAddress.Parse("02-00-00-00-00-02")),
            new StackConfig { Address = Ipv4Address.Parse("192.0.2.2"), DnsServers = new[] { serverIp } }, clock, name: "client");
        server.Start();
        client.Start();

        using var echo = await server.CreateUdpSocketAsync(7).WaitAsync(Generous);
        using var dns = await server.CreateUdpSocketAsync(53).WaitAsync(Generous);
        using var stop = new CancellationTokenSource();
        var echoLoop = Task.Run(async () =>
        {
            while (true)
            {
                var d = await echo.ReceiveAsync(stop.Token);
                await echo.SendToAsync(d.RemoteAddress, d.RemotePort, d.Data);
            }
        });
        var dnsLoop = Task.Run(async () =>
        {
            while (true)
            {
                // Answer any A query with 192.0.2.80, TTL 60: the question echoed, one answer pointing at it.
                var q = await dns.ReceiveAsync(stop.Token);
                var qEnd = Array.IndexOf(q.Data, (byte)0, 12) + 5;
                byte[] answer = [0xC0, 12, 0, 1, 0, 1, 0, 0, 0, 60, 0, 4, 192, 0, 2, 80];
                byte[] reply = [q.Data[0], q.Data[1], 0x81, 0x80, 0, 1, 0, 1, 0, 0, 0, 0, .. q.Data.AsSpan(12, qEnd - 12), .. answer];
                await dns.SendToAsync(q.RemoteAddress, q.RemotePort, reply);
            }
        });

        using var c = client.CreateUdpSocket();
        await c.ConnectAsync(serverIp, 7).WaitAsync(Generous);
        for (int i = 0; i < 20; i++)
        {
            var payload = new byte[100 + i];
            payload[0] = (byte)i;
            await c.SendAsync(payload).WaitAsync(Generous);
            var back = await c.ReceiveAsync().WaitAsync(Generous);
            Assert.Equal(payload, back.Data);
            Assert.Equal(7, back.RemotePort);
        }

        var r = await client.ResolveAsync("www.example.com").WaitAsync(Generous);
        Assert.Equal(new[] { Ipv4Address.Parse("192.0.2.80") }, r.Addresses);
        Assert.Equal(60, r.Ttl);

        stop.Cancel();
        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => echoLoop.WaitAsync(Generous));
        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => dnsLoop.WaitAsync(Generous));
    }
}
