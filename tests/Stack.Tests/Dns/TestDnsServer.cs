using System.Buffers.Binary;
using System.Text;
using NetStack;
using NetStack.Sockets;
using NetStack.Udp;

namespace Stack.Tests.Dns;

/// <summary>
/// A tiny authoritative-looking DNS server for tests, written on our own <see cref="UdpSocket"/> and <see cref="TcpListener"/>
/// on a second simulated stack, independent of the resolver's code: it parses queries and builds answers by hand
/// (answer owner names compressed as pointers to the question, RFC 1035 4.1.4), truncates UDP answers over 512 bytes
/// (or the EDNS size the query advertised) and answers over TCP in full. The test thread drives it between
/// simulation steps (see <see cref="DnsSim.Run{T}"/>), so everything stays in virtual time.
/// </summary>
internal sealed class TestDnsServer
{
    public sealed record Query(ushort Id, string Name, ushort Type, Ipv4Address From, ushort FromPort, TimeSpan At, int? EdnsSize = null, bool OverTcp = false);

    private sealed class Connection(TcpSocket socket)
    {
        public readonly TcpSocket Socket = socket;
        public readonly byte[] Buffer = new byte[2 + 65535];
        public int Count;
        public Task<int> Receive = null!;
    }

    private readonly UdpSocket _socket;
    private readonly TcpListener? _listener;
    private readonly Func<TimeSpan> _now;
    private Task<UdpDatagram> _receive;
    private Task<TcpSocket>? _accept;
    private readonly List<Connection> _connections = new();

    public TestDnsServer(UdpSocket socket, Func<TimeSpan> now, TcpListener? listener = null)
    {
        _socket = socket;
        _listener = listener;
        _now = now;
        _receive = socket.ReceiveAsync();
        _accept = listener?.AcceptAsync();
    }

    public Dictionary<string, (Ipv4Address[] Addresses, uint Ttl)> A { get; } = new(StringComparer.OrdinalIgnoreCase);
    public Dictionary<string, (string Target, uint Ttl)> Cname { get; } = new(StringComparer.OrdinalIgnoreCase);
    public Dictionary<string, (string[] Strings, uint Ttl)> Txt { get; } = new(StringComparer.OrdinalIgnoreCase);
    /// <summary>When set, NXDOMAIN and NODATA answers carry an SOA for "test" with this TTL and MINIMUM (RFC 2308 3).</summary>
    public (uint Ttl, uint Minimum)? Soa { get; set; }
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
    /// <summary>Before the real answer, send one whose question asks another type.</summary>
    public bool SendWrongTypeFirst { get; set; }
    /// <summary>Before the real answer, send one whose answer name is a compression pointer to itself.</summary>
    public bool SendPointerLoopFirst { get; set; }
    /// <summary>A server from before EDNS: a query with an OPT record gets FORMERR without OPT (and without the question when so set).</summary>
    public bool RejectEdns { get; set; }
    public bool RejectEdnsWithoutQuestion { get; set; }
    /// <summary>Answer a CNAME's owner with the CNAME alone, leaving the target to the client (as a server outside the target's zone does).</summary>
    public bool StopAtCname { get; set; }
    /// <summary>Over TCP, reset the connection instead of answering.</summary>
    public bool ResetTcp { get; set; }
    /// <summary>Over TCP, take the query and never answer (the connection stays open).</summary>
    public bool SilentTcp { get; set; }

    public bool HasQuery => _receive.IsCompleted || (_accept?.IsCompleted ?? false) || _connections.Any(c => c.Receive.IsCompleted);

    /// <summary>Handles arrived queries and connections (sends are posted to the stack's loop) and waits for the next.</summary>
    public void Serve()
    {
        while (_receive.IsCompleted)
        {
            var d = _receive.GetAwaiter().GetResult();
            _receive = _socket.ReceiveAsync();
            Handle(d.Data, d.RemoteAddress, d.RemotePort, tcp: false, m => _ = _socket.SendToAsync(d.RemoteAddress, d.RemotePort, m));
        }
        while (_accept is { IsCompleted: true } accepted)
        {
            var c = new Connection(accepted.GetAwaiter().GetResult());
            _accept = _listener!.AcceptAsync();
            c.Receive = c.Socket.ReceiveAsync(c.Buffer).AsTask();
            _connections.Add(c);
        }
        foreach (var c in _connections.Where(c => c.Receive.IsCompleted).ToList())
        {
            if (!c.Receive.IsCompletedSuccessfully || c.Receive.Result == 0)
            {
                _connections.Remove(c);
                c.Socket.Dispose();
                continue;
            }
            c.Count += c.Receive.Result;
            var length = c.Count >= 2 ? BinaryPrimitives.ReadUInt16BigEndian(c.Buffer) : int.MaxValue;
            if (c.Count >= 2 + length)
            {
                var query = c.Buffer.AsSpan(2, length).ToArray();
                c.Count = 0;
                var remote = c.Socket.RemoteEndPoint;
                if (SilentTcp)
                {
                    Queries.Add(new Query(BinaryPrimitives.ReadUInt16BigEndian(query), "", 0, remote.Address, remote.Port, _now(), OverTcp: true));
                    c.Receive = c.Socket.ReceiveAsync(c.Buffer.AsMemory(c.Count)).AsTask();
                    continue;
                }
                if (ResetTcp)
                {
                    Queries.Add(new Query(BinaryPrimitives.ReadUInt16BigEndian(query), "", 0, remote.Address, remote.Port, _now(), OverTcp: true));
                    c.Socket.Abort();
                    _connections.Remove(c);
                    continue;
                }
                Handle(query, remote.Address, remote.Port, tcp: true, m => _ = c.Socket.SendAsync((byte[])[(byte)(m.Length >> 8), (byte)m.Length, .. m]));
            }
            c.Receive = c.Socket.ReceiveAsync(c.Buffer.AsMemory(c.Count)).AsTask();
        }
    }

    private void Handle(byte[] q, Ipv4Address from, ushort fromPort, bool tcp, Action<byte[]> reply)
    {
        var id = BinaryPrimitives.ReadUInt16BigEndian(q);
        var (name, end) = ReadName(q, 12);
        var type = BinaryPrimitives.ReadUInt16BigEndian(q.AsSpan(end));
        // An OPT record in the additional section: root name, type 41, its class the advertised UDP size (RFC 6891).
        int? edns = BinaryPrimitives.ReadUInt16BigEndian(q.AsSpan(10)) > 0 && q.Length >= end + 4 + 11 && q[end + 4] == 0
            && BinaryPrimitives.ReadUInt16BigEndian(q.AsSpan(end + 5)) == 41 ? BinaryPrimitives.ReadUInt16BigEndian(q.AsSpan(end + 7)) : null;
        Queries.Add(new Query(id, name, type, from, fromPort, _now(), edns, tcp));
        if (DropAll || Queries.Count <= DropFirst) return;
        var question = q.AsSpan(12, end + 4 - 12).ToArray();

        if (RejectEdns && edns is not null)
        {
            reply(RejectEdnsWithoutQuestion ? [(byte)(id >> 8), (byte)id, 0x81, 0x81, 0, 0, 0, 0, 0, 0, 0, 0] : Response(id, question, 1, new()));
            return;
        }
        if (SendWrongIdFirst) reply(Response((ushort)(id + 1), question, 0, Answers(name, type)));
        if (SendWrongQuestionFirst) reply(Response(id, [.. EncodeName("other.example"), 0, 1, 0, 1], 0, new()));
        if (SendWrongTypeFirst) reply(Response(id, [.. question[..^4], 0, 28, 0, 1], 0, new()));
        if (SendPointerLoopFirst)
        {
            // One answer whose owner name is a pointer to its own offset.
            var loopAt = 12 + question.Length;
            var rr = new byte[] { (byte)(0xC0 | loopAt >> 8), (byte)loopAt, 0, 1, 0, 1, 0, 0, 0, 60, 0, 4, 192, 0, 2, 66 };
            reply(Response(id, question, 0, new List<byte[]> { rr }));
        }

        if (ForceRcode is { } rc) { reply(Response(id, question, rc, new List<byte[]>())); return; }
        var answers = Answers(name, type);
        var exists = A.ContainsKey(name) || Cname.ContainsKey(name) || Txt.ContainsKey(name);
        var rcode = answers.Count == 0 && !exists ? 3 : 0; // NXDOMAIN
        var authority = new List<byte[]>();
        if (answers.Count == 0 && Soa is { } soa)
            authority.Add(Rr(EncodeName("test"), 6, soa.Ttl,
                [.. EncodeName("ns.test"), .. EncodeName("hostmaster.test"), 0, 0, 0, 1, 0, 0, 14, 16, 0, 0, 2, 88, 0, 1, 81, 128,
                 (byte)(soa.Minimum >> 24), (byte)(soa.Minimum >> 16), (byte)(soa.Minimum >> 8), (byte)soa.Minimum]));
        var message = Response(id, question, rcode, answers, authority);
        var limit = edns is { } size ? Math.Max(512, size) : 512;
        if (!tcp && message.Length > limit) message = Response(id, question, rcode, new(), truncated: true); // RFC 2181 9
        reply(message);
    }

    /// <summary>The CNAME chain from the question and the records of the type asked (A or TXT) at its end, as resource records.</summary>
    private List<byte[]> Answers(string name, ushort type)
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
                if (type == 5 || StopAtCname) break;
                current = c.Target;
                continue;
            }
            if (type == 1 && A.TryGetValue(current, out var a))
                foreach (var addr in a.Addresses)
                {
                    var rdata = new byte[4];
                    addr.Write(rdata);
                    list.Add(Rr(owner, 1, a.Ttl, rdata));
                }
            if (type == 16 && Txt.TryGetValue(current, out var t))
                foreach (var text in t.Strings)
                    list.Add(Rr(owner, 16, t.Ttl, [(byte)text.Length, .. Encoding.ASCII.GetBytes(text)]));
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

    private static byte[] Response(ushort id, byte[] question, int rcode, List<byte[]> answers, List<byte[]>? authority = null, bool truncated = false)
    {
        var m = new List<byte>();
        var h = new byte[12];
        BinaryPrimitives.WriteUInt16BigEndian(h, id);
        BinaryPrimitives.WriteUInt16BigEndian(h.AsSpan(2), (ushort)(0x8000 | 0x0100 | 0x0080 | (truncated ? 0x0200 : 0) | rcode)); // QR (TC) RD RA
        BinaryPrimitives.WriteUInt16BigEndian(h.AsSpan(4), 1);
        BinaryPrimitives.WriteUInt16BigEndian(h.AsSpan(6), (ushort)answers.Count);
        BinaryPrimitives.WriteUInt16BigEndian(h.AsSpan(8), (ushort)(authority?.Count ?? 0));
        m.AddRange(h);
        m.AddRange(question);
        foreach (var a in answers.Concat(authority ?? new())) m.AddRange(a);
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

    public DnsSim(int seed, Func<StackConfig, StackConfig>? configure = null, bool bindServer1 = true, bool tcpServer1 = true)
    {
        Sim = new Simulation(seed, new NetStack.Link.WireFaults { Delay = TimeSpan.FromMilliseconds(1) });
        Client = Sim.AddStack("192.0.2.2/24", c =>
        {
            c = c with { DnsServers = new[] { Server1, Server2 } };
            return configure is null ? c : configure(c);
        });
        Stack1 = Sim.AddStack("192.0.2.53/24");
        Stack2 = Sim.AddStack("192.0.2.54/24");
        if (bindServer1) Dns1 = new TestDnsServer(Sim.Run(Stack1.CreateUdpSocketAsync(53)), () => Sim.Now, tcpServer1 ? Sim.Run(Stack1.ListenAsync(53)) : null);
        Dns2 = new TestDnsServer(Sim.Run(Stack2.CreateUdpSocketAsync(53)), () => Sim.Now, Sim.Run(Stack2.ListenAsync(53)));
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
