using NetStack;
using NetStack.Link;
using NetStack.Services;
using NetStack.Sockets;
using NetStack.Tcp;

namespace Stack.Tests.Services;

/// <summary>
/// A service host (192.0.2.1) and a client stack (192.0.2.2, DNS server 192.0.2.1) on one virtual wire, each on its own
/// real-time loop thread, as the embedded lab runs them. Every wait is bounded by <see cref="Token"/> (30 s).
/// </summary>
internal sealed class LabRig : IDisposable
{
    public static readonly Ipv4Address HostAddress = Ipv4Address.Parse("192.0.2.1");
    public static readonly Ipv4Address ClientAddress = Ipv4Address.Parse("192.0.2.2");
    private readonly CancellationTokenSource _timeout = new(TimeSpan.FromSeconds(30));

    public LabRig(ServiceHostOptions? options = null, int seed = 1)
    {
        Wire = new VirtualWire(seed);
        var clock = new SystemClock(); // one clock for the wire's both ends (see the PowerShell VirtualNetwork)
        HostStack = new NetworkStack(Wire.CreatePort("host", MacAddress.Parse("02-00-c0-00-02-01")), new StackConfig { Address = HostAddress }, clock, name: "host");
        Client = new NetworkStack(Wire.CreatePort("client", MacAddress.Parse("02-00-c0-00-02-02")),
            new StackConfig { Address = ClientAddress, Gateway = HostAddress, DnsServers = new[] { HostAddress } }, clock, name: "client");
        HostStack.Start();
        Client.Start();
        Host = ServiceHost.StartAsync(HostStack, options).WaitAsync(Token).GetAwaiter().GetResult();
    }

    public VirtualWire Wire { get; }
    public NetworkStack HostStack { get; }
    public NetworkStack Client { get; }
    public ServiceHost Host { get; }
    public CancellationToken Token => _timeout.Token;

    public Task<TcpSocket> ConnectAsync(ushort port) => Client.ConnectTcpAsync(HostAddress, port, Token);

    /// <summary>Reads until the peer's FIN; everything that came.</summary>
    public async Task<byte[]> ReadToEndAsync(TcpSocket socket)
    {
        var all = new MemoryStream();
        var buffer = new byte[65536];
        int n;
        while ((n = await socket.ReceiveAsync(buffer, Token)) > 0) all.Write(buffer, 0, n);
        return all.ToArray();
    }

    /// <summary>Reads exactly <paramref name="count"/> bytes.</summary>
    public async Task<byte[]> ReadExactlyAsync(TcpSocket socket, int count)
    {
        var data = new byte[count];
        for (int have = 0; have < count;)
        {
            var n = await socket.ReceiveAsync(data.AsMemory(have), Token);
            Assert.True(n > 0, $"the connection ended after {have} of {count} bytes");
            have += n;
        }
        return data;
    }

    /// <summary>Waits (bounded) until <paramref name="condition"/> holds.</summary>
    public async Task WaitUntilAsync(Func<bool> condition, string what)
    {
        while (!condition())
        {
            if (Token.IsCancellationRequested) Assert.Fail($"Timed out waiting for {what}.");
            await Task.Delay(10);
        }
    }

    public void Dispose()
    {
        Host.Dispose();
        Client.Dispose();
        HostStack.Dispose();
        _timeout.Dispose();
    }
}
