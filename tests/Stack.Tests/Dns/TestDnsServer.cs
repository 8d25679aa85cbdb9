using System.Buffers.Binary;
using System.Text;
using NetStack;
using NetStack.Sockets;
using NetStack.Udp;

namespace Stack.Tests.Dns;

/// <summary>
/// A tiny authoritative-looking DNS server for tests, written on our own <see cref="UdpSocket"/> on a second
/// simulated stack, independent of the resolver's code: it parses queries and builds answers by hand
/// (answer owner names compressed as pointers to the question, RFC 1035 4.1.4). The test thread drives it
/// between simulation steps (see <see cref="DnsSim.Run{T}"/>), so everything stays in virtual time.
/// </summary>
internal sealed class TestDnsServer
{
    public sealed record Query(ushort Id, string Name, ushort Type, Ipv4Address From, ushort FromPort, TimeSpan At);

    private readonly UdpSocket _socket;
    private readonly Func<TimeSpan> _now;
    private Task<UdpDatagram> _receive;

    public TestDnsServer(UdpSocket socket, Func<TimeSpan> now)
    {
        _socket = socket;
        _now = now;
        _receive = socket.ReceiveAsync();
    }

    public Dictionary<string, (Ipv4Address[] Addresses, uint Ttl)> A { get; } = new(StringComparer.OrdinalIgnoreCase);
    public Dictionary<string, (string Target, uint Ttl)> Cname { get; } = new(StringComparer.OrdinalIgnoreCase);
    /// <summary>Queries received, answered or not.</summary>
    public List<Query> Queries { get; } = new();
    /// <summary>The first this-many queries get no answer (to provoke retries and timeouts).</summary>
    public int DropFirst { get; set; }
    public bool DropAll { get; set; }
    /// <summary>Answer every query with this RCODE instead (2 SERVFAIL, 5 REFUSED).</summary>
    public int? ForceRcode { get; set; }
    /// <summary>Before the real answer, send one with the id off by one.</summary>
    public bool SendWrongIdFirst { get; set; }
    /// <summary>Before the real answer, send one whose question names another host.</summary>
    public bool SendWrongQuestionFirst { get; set; }
    /// <summary>Before the real answer, send one whose answer name is a compression pointer to itself.</summary>
    public bool SendPointerLoopFirst { get; set; }

    public bool HasQuery => _receive.IsCompleted;

    /// <summary>Handles an arrived query (sends are posted to the stack's loop) and waits for the next.</summary>
    public void Serve()
    {
        while (_receive.IsCompleted)
        {
            var d = _receive.GetAwaiter().GetResult();
            _receive = _socket.ReceiveAsync();
            Handle(d);
        }
    }

    private void Handle(UdpDatagram d)
    {
        var q = d.Data;
        var id = BinaryPrimitives.ReadUInt16BigEndian(q);
        var (name, end) = ReadName(q, 12);
        var type = BinaryPrimitives.ReadUInt16BigEndian(q.AsSpan(end));
        Queries.Add(new Query(id, name, type, d.RemoteAddress, d.RemotePort, _now()));
        if (DropAll || Queries.Count <= DropFirst) return;
        var question = q.AsSpan(12, end + 4 - 12).ToArray();

        if (SendWrongIdFirst) Reply(d, Response((ushort)(id + 1), question, 0, Answers(name)));
        if (SendWrongQuestionFirst)
        {
            var other = new List<byte>(EncodeName("other.example")) { 0, 1, 0, 1 };
            Reply(d, Response(id, other.ToArray(), 0, new List<byte[]>()));
        }
        if (SendPointerLoopFirst)
        {
            // One answer whose owner name is a pointer to its own offset.
            var loopAt = 12 + question.Length;
            var rr = new byte[] { (byte)(0xC0 | loopAt >> 8), (byte)loopAt, 0, 1, 0, 1, 0, 0, 0, 60, 0, 4, 192, 0, 2, 66 };
            Reply(d, Response(id, question, 0, new List<byte[]> { rr }));
        }

        if (ForceRcode is { } rc) { Reply(d, Response(id, question, rc, new List<byte[]>())); return; }
        var answers = Answers(name);
        var rcode = answers.Count == 0 && !A.ContainsKey(name) && !Cname.ContainsKey(name) ? 3 : 0; // NXDOMAIN
        Reply(d, Response(id, question, rcode, answers));
    }

    /// <summary>The CNAME chain from the question and the A records at its end, as resource records.</summary>
    private List<byte[]> Answers(string name)
    {
        var list = new List<byte[]>();
        var current = name;
        var first = true;
        for (int hop = 0; hop < 10; hop++)
        {
            // The first owner is the question's name: compress it as a pointer to offset 12.
            var owner = first ? new byte[] { 0xC0, 12 } : EncodeName(current);
            first = false;
            if (Cname.TryGetValue(current, out var c))
            {
                list.Add(Rr(owner, 5, c.Ttl, EncodeName(c.Target)));
                current = c.Target;
                continue;
            }
            if (A.TryGetValue(current, out var a))
                foreach (var addr in a.Addresses)
                {
                    var rdata = new byte[4];
                    addr.Write(rdata);
                    list.Add(Rr(owner, 1, a.Ttl, rdata));
                }
            break;
        }
        return list;
    }

    private static byte[] Rr(byte[] owner, ushort type, uint ttl, byte[] rdata)
    {
        var rr = new byte[owner.Length + 10 + rdata.Length];
        owner.CopyTo(rr, 0);
        var p = owner.Length;
        BinaryPrimitives.WriteUInt16BigEndian(rr.AsSpan(p), type);
        BinaryPrimitives.WriteUInt16BigEndian(rr.AsSpan(p + 2), 1);
        BinaryPrimitives.WriteUInt32BigEndian(rr.AsSpan(p + 4), ttl);
        BinaryPrimitives.WriteUInt16BigEndian(rr.AsSpan(p + 8), (ushort)rdata.Length);
        rdata.CopyTo(rr, p + 10);
        return rr;
    }

    private static byte[] Response(ushort id, byte[] question, int rcode, List<byte[]> answers)
    {
        var m = new List<byte>();
        var h = new byte[12];
        BinaryPrimitives.WriteUInt16BigEndian(h, id);
        BinaryPrimitives.WriteUInt16BigEndian(h.AsSpan(2), (ushort)(0x8000 | 0x0100 | 0x0080 | rcode)); // QR RD RA
        BinaryPrimitives.WriteUInt16BigEndian(h.AsSpan(4), 1);
        BinaryPrimitives.WriteUInt16BigEndian(h.AsSpan(6), (ushort)answers.Count);
        m.AddRange(h);
        m.AddRange(question);
        foreach (var a in answers) m.AddRange(a);
        return m.ToArray();
    }

    /// <summary>Sends an unsolicited A answer (as a forger would) from this server's socket.</summary>
    public void SendAnswer(Ipv4Address to, ushort port, ushort id, string name, Ipv4Address address)
    {
        var question = new List<byte>(EncodeName(name)) { 0, 1, 0, 1 };
        var rdata = new byte[4];
        address.Write(rdata);
        _ = _socket.SendToAsync(to, port, Response(id, question.ToArray(), 0, new List<byte[]> { Rr(new byte[] { 0xC0, 12 }, 1, 60, rdata) }));
    }

    private void Reply(UdpDatagram to, byte[] message) => _ = _socket.SendToAsync(to.RemoteAddress, to.RemotePort, message);

    public static byte[] EncodeName(string name)
    {
        var b = new List<byte>();
        foreach (var label in name.Split('.'))
        {
            b.Add((byte)label.Length);
            b.AddRange(Encoding.ASCII.GetBytes(label));
        }
        b.Add(0);
        return b.ToArray();
    }

    private static (string, int) ReadName(byte[] m, int pos)
    {
        var labels = new List<string>();
        while (m[pos] != 0)
        {
            labels.Add(Encoding.ASCII.GetString(m, pos + 1, m[pos]));
            pos += 1 + m[pos];
        }
        return (string.Join('.', labels), pos + 1);
    }
}

/// <summary>A client stack and DNS server stacks on one simulated wire.</summary>
internal sealed class DnsSim : IDisposable
{
    public static readonly Ipv4Address Server1 = Ipv4Address.Parse("192.0.2.53");
    public static readonly Ipv4Address Server2 = Ipv4Address.Parse("192.0.2.54");

    public DnsSim(int seed, Func<StackConfig, StackConfig>? configure = null, bool bindServer1 = true)
    {
        Sim = new Simulation(seed, new NetStack.Link.WireFaults { Delay = TimeSpan.FromMilliseconds(1) });
        Client = Sim.AddStack("192.0.2.2/24", c =>
        {
            c = c with { DnsServers = new[] { Server1, Server2 } };
            return configure is null ? c : configure(c);
        });
        Stack1 = Sim.AddStack("192.0.2.53/24");
        Stack2 = Sim.AddStack("192.0.2.54/24");
        if (bindServer1) Dns1 = new TestDnsServer(Sim.Run(Stack1.CreateUdpSocketAsync(53)), () => Sim.Now);
        Dns2 = new TestDnsServer(Sim.Run(Stack2.CreateUdpSocketAsync(53)), () => Sim.Now);
        // Neighbours known up front, so that query timings are the resolver's alone.
        Sim.Run(Client.ResolveArpAsync(Server1));
        Sim.Run(Client.ResolveArpAsync(Server2));
    }

    public Simulation Sim { get; }
    public NetworkStack Client { get; }
    public NetworkStack Stack1 { get; }
    public NetworkStack Stack2 { get; }
    public TestDnsServer? Dns1 { get; }
    public TestDnsServer Dns2 { get; }

    /// <summary>Runs the simulation until <paramref name="task"/> ends, serving queries as they arrive.</summary>
    public T Run<T>(Task<T> task, TimeSpan? limit = null)
    {
        var end = Sim.Now + (limit ?? TimeSpan.FromMinutes(2));
        while (!task.IsCompleted)
        {
            if (Sim.Now >= end) throw new TimeoutException($"The resolution did not end within {limit ?? TimeSpan.FromMinutes(2)} of virtual time.");
            Sim.RunUntil(() => task.IsCompleted || (Dns1?.HasQuery ?? false) || Dns2.HasQuery, end - Sim.Now);
            Dns1?.Serve();
            Dns2.Serve();
        }
        return task.GetAwaiter().GetResult();
    }

    public void Dispose() => Sim.Dispose();
}
