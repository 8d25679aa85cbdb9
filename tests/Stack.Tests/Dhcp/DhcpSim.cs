using System.Buffers.Binary;
using NetStack;
using NetStack.Dhcp;
using NetStack.Link;
using NetStack.Services;
using NetStack.Sockets;
using NetStack.Udp;

namespace Stack.Tests.Dhcp;

/// <summary>A frame a stack put on the wire, with when, decoded as far as DHCP tests need.</summary>
internal sealed record SentFrame(TimeSpan At, byte[] Frame)
{
    public MacAddress Destination => MacAddress.Read(Frame);
    public ushort EtherType => BinaryPrimitives.ReadUInt16BigEndian(Frame.AsSpan(12));
    public bool IsIpv4 => EtherType == 0x0800;
    public bool IsArp => EtherType == 0x0806;
    public Ipv4Address IpSource => Ipv4Address.Read(Frame.AsSpan(14 + 12));
    public Ipv4Address IpDestination => Ipv4Address.Read(Frame.AsSpan(14 + 16));
    private int Ihl => (Frame[14] & 0xF) * 4;
    public bool IsUdp => IsIpv4 && Frame[14 + 9] == 17;
    public ushort UdpSourcePort => BinaryPrimitives.ReadUInt16BigEndian(Frame.AsSpan(14 + Ihl));
    public ushort UdpDestinationPort => BinaryPrimitives.ReadUInt16BigEndian(Frame.AsSpan(14 + Ihl + 2));
    public bool IsDhcp => IsUdp && UdpDestinationPort == 67;

    public DhcpMessage Dhcp
    {
        get
        {
            Assert.True(DhcpMessage.TryParse(Frame.AsSpan(14 + Ihl + 8), out var m, out var error), error);
            return m;
        }
    }

    /// <summary>ARP: operation, sender IP, target IP.</summary>
    public (ushort Op, Ipv4Address Sender, Ipv4Address Target) Arp =>
        (BinaryPrimitives.ReadUInt16BigEndian(Frame.AsSpan(14 + 6)), Ipv4Address.Read(Frame.AsSpan(14 + 14)), Ipv4Address.Read(Frame.AsSpan(14 + 24)));
}

/// <summary>A link wrapper that keeps every frame the stack transmits, stamped with the loop's time.</summary>
internal sealed class SendLog(ILinkDevice inner) : ForwardingLink(inner)
{
    public List<SentFrame> Sent { get; } = new();
    public override void Transmit(ReadOnlySpan<byte> frame, TimeSpan now)
    {
        Sent.Add(new SentFrame(now, frame.ToArray()));
        base.Transmit(frame, now);
    }
    public IEnumerable<DhcpMessage> Dhcp(DhcpMessageType type) => Sent.Where(f => f.IsDhcp).Select(f => f.Dhcp).Where(m => m.Type == type);
    public IEnumerable<SentFrame> DhcpFrames(DhcpMessageType type) => Sent.Where(f => f.IsDhcp && f.Dhcp.Type == type);
}

/// <summary>
/// The service host's DHCP server logic (<see cref="DhcpServer"/>) answering on the server stack's loop, in the same
/// turn a request arrives, so a simulation's timings are exact. It can be told to stay silent, to NAK, or to answer
/// by unicast to the offered address at the client's MAC (as Linux servers do, with a static ARP entry).
/// </summary>
internal sealed class LoopDhcpServer : IUdpReceiver
{
    private readonly NetworkStack _stack;
    private readonly byte[] _buffer = new byte[DhcpMessage.MaxWrittenLength];

    public LoopDhcpServer(NetworkStack stack, DhcpServerSettings settings, TimeSpan now)
    {
        _stack = stack;
        Logic = new DhcpServer(settings);
        var socket = new UdpSocket(stack) { Receiver = this };
        socket.Bind(DhcpMessage.ServerPort, Ipv4Address.Any, now);
    }

    public DhcpServer Logic { get; }
    public List<(TimeSpan At, DhcpMessage Message, Ipv4Address Source)> Received { get; } = new();
    /// <summary>Answer nothing (a server that went away).</summary>
    public bool Silent { get; set; }
    /// <summary>Answer every REQUEST with a NAK.</summary>
    public bool NakRequests { get; set; }
    /// <summary>Send OFFER and ACK to the offered address at the client's MAC instead of broadcasting them.</summary>
    public bool UnicastReplies { get; set; }
    /// <summary>Datagrams to broadcast to port 68 before each real reply (wrong xid, another client, garbage...).</summary>
    public Func<DhcpMessage, DhcpMessage, IEnumerable<byte[]>>? SendFirst { get; set; }

    public void OnUdpDatagram(IUdpPort port, Ipv4Address source, ushort sourcePort, ReadOnlySpan<byte> data, TimeSpan now)
    {
        Assert.True(DhcpMessage.TryParse(data, out var m, out var error), error);
        Received.Add((now, m, source));
        if (Silent) return;
        var answer = Logic.Answer(m, now);
        if (answer is not var (reply, destination)) return;
        if (NakRequests && m.Type == DhcpMessageType.Request)
        {
            reply = new DhcpMessage { Op = DhcpMessage.OpReply, Type = DhcpMessageType.Nak, TransactionId = m.TransactionId, ClientMac = m.ClientMac, ServerId = Logic.Settings.ServerAddress, Message = "test says no" };
            destination = Ipv4Address.Broadcast;
        }
        else if (UnicastReplies && destination.IsBroadcast && reply.Type != DhcpMessageType.Nak)
        {
            _stack.Arp.AddStatic(reply.YourAddress, reply.ClientMac, now);
            destination = reply.YourAddress;
        }
        foreach (var extra in SendFirst?.Invoke(m, reply) ?? [])
            Assert.Equal(StackError.None, port.Send(Ipv4Address.Broadcast, DhcpMessage.ClientPort, extra, now));
        var length = reply.Write(_buffer);
        Assert.Equal(StackError.None, port.Send(destination, DhcpMessage.ClientPort, _buffer.AsSpan(0, length), now));
    }

    public bool OnUdpError(IUdpPort port, StackError error, Ipv4Address destination, ushort destinationPort, TimeSpan now) => true;

    public IEnumerable<DhcpMessage> Of(DhcpMessageType type) => Received.Select(r => r.Message).Where(m => m.Type == type);

    /// <summary>A message's bytes as the server would send them.</summary>
    public static byte[] Bytes(DhcpMessage m)
    {
        var b = new byte[DhcpMessage.MaxWrittenLength];
        return b.AsSpan(0, m.Write(b)).ToArray();
    }
}

/// <summary>A server stack at 192.0.2.1/24 serving DHCP from .100-.199, and a client stack with DHCP on, in virtual time.</summary>
internal sealed class DhcpSim : IDisposable
{
    public static readonly Ipv4Address ServerAddress = new(192, 0, 2, 1);
    public static readonly MacAddress ClientMac = MacAddress.Parse("02-00-00-00-dc-01");

    public DhcpSim(int seed, Func<StackConfig, StackConfig>? client = null, Func<DhcpServerSettings, DhcpServerSettings>? server = null)
    {
        Sim = new Simulation(seed);
        Server = Sim.AddStack("192.0.2.1/24", name: "server");
        var settings = new DhcpServerSettings(ServerAddress, 24, new Ipv4Address(192, 0, 2, 100), new Ipv4Address(192, 0, 2, 199),
            TimeSpan.FromSeconds(120), ServerAddress, [ServerAddress], "lab.test", null);
        Dhcp = new LoopDhcpServer(Server, server?.Invoke(settings) ?? settings, Sim.Now);
        var config = new StackConfig { Dhcp = new DhcpSettings { Enabled = true } };
        if (client != null) config = client(config);
        Client = Sim.AddStack(config, ClientMac, "client", port => Log = new SendLog(port));
    }

    public Simulation Sim { get; }
    public NetworkStack Server { get; }
    public NetworkStack Client { get; }
    public LoopDhcpServer Dhcp { get; }
    public SendLog Log { get; private set; } = null!;

    public DhcpLease Lease => Client.DhcpLease!;

    /// <summary>Runs until the client is bound (at most five virtual minutes) and returns the lease.</summary>
    public DhcpLease Bind() => Sim.Run(Client.WaitForDhcpLeaseAsync(), TimeSpan.FromMinutes(5));

    public long Counter(NetworkStack stack, string layer, string name) =>
        Sim.Run(stack.GetStatisticsAsync()).Single(c => c.Layer == layer && c.Name == name).Value;

    public void Dispose() => Sim.Dispose();
}
