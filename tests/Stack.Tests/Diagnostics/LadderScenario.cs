using System.Text;
using NetStack;
using NetStack.Diagnostics;
using NetStack.Link;
using NetStack.Sockets;
using NetStack.Tcp;

namespace Stack.Tests.Diagnostics;

/// <summary>Drops the first frame the predicate picks on its way out, once: a known loss on the virtual wire.</summary>
public sealed class DropOnceLink(ILinkDevice inner, Func<byte[], bool> pick) : ForwardingLink(inner)
{
    public bool Dropped { get; private set; }

    public override void Transmit(ReadOnlySpan<byte> frame, TimeSpan now)
    {
        if (!Dropped && pick(frame.ToArray())) { Dropped = true; return; }
        base.Transmit(frame, now);
    }

    /// <summary>True for an IPv4/TCP frame that carries data.</summary>
    public static bool IsTcpData(byte[] f)
    {
        if (f.Length < 54 || f[12] != 0x08 || f[13] != 0x00 || f[23] != 6) return false;
        var ihl = (f[14] & 0x0F) * 4;
        var total = f[16] << 8 | f[17];
        var doff = (f[14 + ihl + 12] >> 4) * 4;
        return total - ihl - doff > 0;
    }
}

/// <summary>
/// The known exchange of the ladder tests, on the virtual wire with 1 ms each way: a client (192.0.2.2) connects to a
/// server (192.0.2.1:80), sends 100 bytes (the first copy is lost and retransmitted on timeout), the server answers 50,
/// the client closes, then the server; the client ends in TIME-WAIT.
/// </summary>
public sealed class LadderScenario : IDisposable
{
    public Simulation Sim { get; }
    public NetworkStack Client { get; }
    public NetworkStack Server { get; }
    public DropOnceLink ClientLink { get; private set; } = null!;
    public TcpSocket ClientSocket { get; }

    public LadderScenario(int seed = 7, Func<ILinkDevice, ILinkDevice>? clientTap = null, Func<ILinkDevice, ILinkDevice>? serverTap = null)
    {
        Sim = new Simulation(seed, new WireFaults { Delay = TimeSpan.FromMilliseconds(1) });
        var tcp = new TcpSettings { Timestamps = false };
        Server = Sim.AddStack("192.0.2.1/24", c => c with { Tcp = tcp }, link: serverTap);
        Client = Sim.AddStack("192.0.2.2/24", c => c with { Tcp = tcp }, link: port =>
        {
            ClientLink = new DropOnceLink(port, DropOnceLink.IsTcpData); // lost on the wire: a tap above still records it
            return clientTap?.Invoke(ClientLink) ?? ClientLink;
        });
        var listener = Server.Listen(80);
        var accept = listener.AcceptAsync();
        ClientSocket = Client.CreateTcpSocket();
        Sim.Run(ClientSocket.ConnectAsync(Server.Config.Address, 80));
        var server = Sim.Run(accept);
        Sim.Run(ClientSocket.SendAsync(new byte[100]));
        var buf = new byte[1000];
        var got = 0;
        while (got < 100) got += Sim.Run(server.ReceiveAsync(buf).AsTask());
        Sim.Run(server.SendAsync(new byte[50]));
        got = 0;
        while (got < 50) got += Sim.Run(ClientSocket.ReceiveAsync(buf).AsTask());
        ClientSocket.ShutdownSend();
        Assert.Equal(0, Sim.Run(server.ReceiveAsync(buf).AsTask()));
        Sim.Run(server.CloseAsync());
        Assert.True(Sim.RunUntil(() => ClientSocket.State == TcpState.TimeWait, TimeSpan.FromSeconds(30)), "the client should reach TIME-WAIT");
        Sim.Advance(TimeSpan.FromMilliseconds(50));
        Assert.True(ClientLink.Dropped);
    }

    public PacketTrace ClientTrace => Sim.Run(Client.GetPacketTraceAsync());
    public PacketTrace ServerTrace => Sim.Run(Server.GetPacketTraceAsync());

    /// <summary>The client's view with both stacks' own state transitions.</summary>
    public Ladder ClientLadder(bool tcpOnly = true)
    {
        var frames = ClientTrace.Decode().Where(f => !tcpOnly || f.Protocol == "TCP").ToList();
        return LadderBuilder.Build(frames, ClientTrace.StateChanges.Concat(ServerTrace.StateChanges));
    }

    public void Dispose() => Sim.Dispose();
}
