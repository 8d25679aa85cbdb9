using System.Buffers.Binary;
using System.Text;

namespace NetStack.Dhcp;

/// <summary>DHCP message types (RFC 2132 9.6, option 53).</summary>
public enum DhcpMessageType : byte
{
    None = 0,
    Discover = 1,
    Offer = 2,
    Request = 3,
    Decline = 4,
    Ack = 5,
    Nak = 6,
    Release = 7,
    Inform = 8,
}

/// <summary>
/// A DHCP message (RFC 2131 2, options RFC 2132): the BOOTP header, the magic cookie and the options the client and
/// the lab's server use. Parsed from and written to spans; unknown options are skipped. Used by the client
/// (<see cref="DhcpClient"/>) and by the service host's server.
/// </summary>
internal sealed class DhcpMessage
{
    public const ushort ServerPort = 67;
    public const ushort ClientPort = IPv4.AddressAcquisition.DhcpClientPort;
    public const byte OpRequest = 1;
    public const byte OpReply = 2;
    public const ushort FlagBroadcast = 0x8000;
    /// <summary>Op through file: RFC 2131 figure 1.</summary>
    public const int FixedLength = 236;
    public const uint MagicCookie = 0x63825363;
    /// <summary>RFC 2131 2: every DHCP participant accepts messages of up to 576-byte IP datagrams (548 bytes of DHCP).</summary>
    public const int MinimumMaxSize = 576 - 28;
    /// <summary>Room for what we write (header, cookie, options): below the 548 bytes everybody must accept.</summary>
    public const int MaxWrittenLength = 548;

    // RFC 2132 option codes
    private const byte OptPad = 0, OptSubnetMask = 1, OptRouter = 3, OptDns = 6, OptHostName = 12, OptDomainName = 15,
        OptInterfaceMtu = 26, OptRequestedAddress = 50, OptLeaseTime = 51, OptOverload = 52, OptMessageType = 53,
        OptServerId = 54, OptParameterList = 55, OptMessage = 56, OptMaxSize = 57, OptRenewalTime = 58,
        OptRebindingTime = 59, OptClientId = 61, OptDomainSearch = 119, OptEnd = 255;

    /// <summary>What the client asks for (option 55): mask, router, DNS, host name, domain, MTU, lease times, search list.</summary>
    public static readonly byte[] ParametersWanted =
        [OptSubnetMask, OptRouter, OptDns, OptHostName, OptDomainName, OptInterfaceMtu, OptLeaseTime, OptRenewalTime, OptRebindingTime, OptDomainSearch];

    public byte Op { get; set; } = OpRequest;
    public uint TransactionId { get; set; }
    public ushort Seconds { get; set; }
    public ushort Flags { get; set; }
    public bool Broadcast => (Flags & FlagBroadcast) != 0;
    public Ipv4Address ClientAddress { get; set; }
    public Ipv4Address YourAddress { get; set; }
    public Ipv4Address NextServer { get; set; }
    public Ipv4Address RelayAgent { get; set; }
    public MacAddress ClientMac { get; set; }
    /// <summary>Whether chaddr is a 6-byte Ethernet address (htype 1, hlen 6).</summary>
    public bool IsEthernet { get; private set; } = true;

    public DhcpMessageType Type { get; set; }
    public Ipv4Address? ServerId { get; set; }
    public Ipv4Address? RequestedAddress { get; set; }
    public uint? LeaseSeconds { get; set; }
    public uint? RenewalSeconds { get; set; }
    public uint? RebindingSeconds { get; set; }
    public Ipv4Address? SubnetMask { get; set; }
    public Ipv4Address[] Routers { get; set; } = [];
    public Ipv4Address[] DnsServers { get; set; } = [];
    public string? DomainName { get; set; }
    public string[] SearchList { get; set; } = [];
    public ushort? InterfaceMtu { get; set; }
    public string? HostName { get; set; }
    public string? Message { get; set; }
    public byte[]? ClientId { get; set; }
    public ushort? MaxMessageSize { get; set; }
    public byte[] ParameterList { get; set; } = [];

    /// <summary>The prefix length of <see cref="SubnetMask"/>, or null when absent or not contiguous.</summary>
    public int? PrefixLength
    {
        get
        {
            if (SubnetMask is not { } m) return null;
            var ones = System.Numerics.BitOperations.PopCount(m.Value);
            return Ipv4Address.MaskOf(ones) == m.Value ? ones : null;
        }
    }

    // ---------------- parsing ----------------

    /// <summary>
    /// Reads a DHCP message (RFC 2131 2, 3.1; RFC 2132): false with <paramref name="error"/> when it is too short, lacks
    /// the magic cookie, has a malformed option or no message type (a plain BOOTP message, which is not for us).
    /// </summary>
    public static bool TryParse(ReadOnlySpan<byte> data, out DhcpMessage message, out string error)
    {
        message = new DhcpMessage();
        error = "";
        if (data.Length < FixedLength + 4) { error = $"{data.Length} bytes is shorter than a DHCP message"; return false; }
        if (BinaryPrimitives.ReadUInt32BigEndian(data[FixedLength..]) != MagicCookie) { error = "no DHCP magic cookie"; return false; }
        var m = message;
        m.Op = data[0];
        m.IsEthernet = data[1] == 1 && data[2] == 6;
        m.TransactionId = BinaryPrimitives.ReadUInt32BigEndian(data[4..]);
        m.Seconds = BinaryPrimitives.ReadUInt16BigEndian(data[8..]);
        m.Flags = BinaryPrimitives.ReadUInt16BigEndian(data[10..]);
        m.ClientAddress = Ipv4Address.Read(data[12..]);
        m.YourAddress = Ipv4Address.Read(data[16..]);
        m.NextServer = Ipv4Address.Read(data[20..]);
        m.RelayAgent = Ipv4Address.Read(data[24..]);
        m.ClientMac = MacAddress.Read(data[28..]);

        // RFC 2132 9.3: option overload puts more options in the file (1), sname (2) or both (3) fields, read after these.
        var search = new List<byte>();
        if (!m.ReadOptions(data[(FixedLength + 4)..], search, out var overload, out error)) return false;
        if ((overload & 1) != 0 && !m.ReadOptions(data.Slice(108, 128), search, out _, out error)) return false;
        if ((overload & 2) != 0 && !m.ReadOptions(data.Slice(44, 64), search, out _, out error)) return false;
        if (search.Count > 0) m.SearchList = ReadSearchList(search.ToArray());
        if (m.Type == DhcpMessageType.None) { error = "no DHCP message type (option 53)"; return false; }
        return true;
    }

    private bool ReadOptions(ReadOnlySpan<byte> o, List<byte> search, out byte overload, out string error)
    {
        overload = 0;
        error = "";
        var i = 0;
        while (i < o.Length)
        {
            var code = o[i++];
            if (code == OptPad) continue;
            if (code == OptEnd) return true;
            if (i >= o.Length || i + 1 + o[i] > o.Length)
            {
                error = $"option {code} runs past the end of the message";
                return false;
            }
            var len = o[i++];
            var v = o.Slice(i, len);
            i += len;
            switch (code)
            {
                case OptMessageType when len == 1: Type = (DhcpMessageType)v[0]; break;
                case OptServerId when len == 4: ServerId = Ipv4Address.Read(v); break;
                case OptRequestedAddress when len == 4: RequestedAddress = Ipv4Address.Read(v); break;
                case OptLeaseTime when len == 4: LeaseSeconds = BinaryPrimitives.ReadUInt32BigEndian(v); break;
                case OptRenewalTime when len == 4: RenewalSeconds = BinaryPrimitives.ReadUInt32BigEndian(v); break;
                case OptRebindingTime when len == 4: RebindingSeconds = BinaryPrimitives.ReadUInt32BigEndian(v); break;
                case OptSubnetMask when len == 4: SubnetMask = Ipv4Address.Read(v); break;
                case OptRouter when len >= 4 && len % 4 == 0: Routers = ReadAddresses(v); break;
                case OptDns when len >= 4 && len % 4 == 0: DnsServers = ReadAddresses(v); break;
                case OptDomainName when len > 0: DomainName = Text(v); break;
                case OptHostName when len > 0: HostName = Text(v); break;
                case OptMessage when len > 0: Message = Text(v); break;
                case OptInterfaceMtu when len == 2: InterfaceMtu = BinaryPrimitives.ReadUInt16BigEndian(v); break;
                case OptMaxSize when len == 2: MaxMessageSize = BinaryPrimitives.ReadUInt16BigEndian(v); break;
                case OptClientId when len >= 2: ClientId = v.ToArray(); break;
                case OptParameterList: ParameterList = v.ToArray(); break;
                case OptOverload when len == 1: overload = v[0]; break;
                case OptDomainSearch: search.AddRange(v.ToArray()); break; // RFC 3396: split options are concatenated
                default: break; // unknown, or a known one of the wrong length: ignored as RFC 2131 asks of unknown options
            }
        }
        return true; // the end option is missing: what was read stands (some servers omit it)
    }

    private static Ipv4Address[] ReadAddresses(ReadOnlySpan<byte> v)
    {
        var a = new Ipv4Address[v.Length / 4];
        for (int k = 0; k < a.Length; k++) a[k] = Ipv4Address.Read(v[(4 * k)..]);
        return a;
    }

    /// <summary>NVT ASCII text, without the trailing NULs some servers add (RFC 2132 2).</summary>
    private static string Text(ReadOnlySpan<byte> v)
    {
        var s = Encoding.ASCII.GetString(v).TrimEnd('\0');
        return new string(s.Select(c => c is >= ' ' and <= '~' ? c : '?').ToArray());
    }

    /// <summary>RFC 3397: the domain search list is a run of DNS names, compressed against the option's own data.</summary>
    private static string[] ReadSearchList(byte[] data)
    {
        var list = new List<string>();
        Span<byte> wire = stackalloc byte[Dns.DnsName.MaxWireLength];
        var offset = 0;
        while (offset < data.Length && list.Count < 32)
        {
            if (!Dns.DnsName.TryRead(data, offset, wire, out var length, out var next)) break;
            var name = Dns.DnsName.ToText(wire[..length]);
            if (name.Length > 0) list.Add(name);
            offset = next;
        }
        return list.ToArray();
    }

    // ---------------- writing ----------------

    /// <summary>Writes the message into <paramref name="b"/> (at least <see cref="MaxWrittenLength"/> bytes); returns its length.</summary>
    public int Write(Span<byte> b)
    {
        b[..FixedLength].Clear();
        b[0] = Op;
        b[1] = 1; // Ethernet
        b[2] = 6;
        BinaryPrimitives.WriteUInt32BigEndian(b[4..], TransactionId);
        BinaryPrimitives.WriteUInt16BigEndian(b[8..], Seconds);
        BinaryPrimitives.WriteUInt16BigEndian(b[10..], Flags);
        ClientAddress.Write(b[12..]);
        YourAddress.Write(b[16..]);
        NextServer.Write(b[20..]);
        RelayAgent.Write(b[24..]);
        ClientMac.Write(b[28..]);
        BinaryPrimitives.WriteUInt32BigEndian(b[FixedLength..], MagicCookie);
        var i = FixedLength + 4;
        Put(b, ref i, OptMessageType, [(byte)Type]);
        if (ServerId is { } sid) PutAddress(b, ref i, OptServerId, sid);
        if (RequestedAddress is { } ra) PutAddress(b, ref i, OptRequestedAddress, ra);
        if (LeaseSeconds is { } lt) PutUInt32(b, ref i, OptLeaseTime, lt);
        if (RenewalSeconds is { } t1) PutUInt32(b, ref i, OptRenewalTime, t1);
        if (RebindingSeconds is { } t2) PutUInt32(b, ref i, OptRebindingTime, t2);
        if (SubnetMask is { } mask) PutAddress(b, ref i, OptSubnetMask, mask);
        if (Routers.Length > 0) PutAddresses(b, ref i, OptRouter, Routers);
        if (DnsServers.Length > 0) PutAddresses(b, ref i, OptDns, DnsServers);
        if (DomainName is { Length: > 0 } dn) PutText(b, ref i, OptDomainName, dn);
        if (InterfaceMtu is { } mtu) { Span<byte> v = stackalloc byte[2]; BinaryPrimitives.WriteUInt16BigEndian(v, mtu); Put(b, ref i, OptInterfaceMtu, v); }
        if (MaxMessageSize is { } max) { Span<byte> v = stackalloc byte[2]; BinaryPrimitives.WriteUInt16BigEndian(v, max); Put(b, ref i, OptMaxSize, v); }
        if (ClientId is { } cid) Put(b, ref i, OptClientId, cid);
        if (HostName is { Length: > 0 } hn) PutText(b, ref i, OptHostName, hn);
        if (ParameterList.Length > 0) Put(b, ref i, OptParameterList, ParameterList);
        if (Message is { Length: > 0 } msg) PutText(b, ref i, OptMessage, msg);
        b[i++] = OptEnd;
        // RFC 1542 2.1: BOOTP relays may drop messages shorter than 300 bytes; pad as everybody does.
        while (i < 300) b[i++] = OptPad;
        return i;
    }

    private static void Put(Span<byte> b, ref int i, byte code, ReadOnlySpan<byte> value)
    {
        var len = Math.Min(value.Length, 255);
        if (i + 2 + len + 1 > MaxWrittenLength) return; // never past the size everyone accepts; the end option keeps its byte
        b[i++] = code;
        b[i++] = (byte)len;
        value[..len].CopyTo(b[i..]);
        i += len;
    }

    private static void PutAddress(Span<byte> b, ref int i, byte code, Ipv4Address a)
    {
        Span<byte> v = stackalloc byte[4];
        a.Write(v);
        Put(b, ref i, code, v);
    }

    private static void PutAddresses(Span<byte> b, ref int i, byte code, Ipv4Address[] list)
    {
        Span<byte> v = stackalloc byte[4 * Math.Min(list.Length, 63)];
        for (int k = 0; k < v.Length / 4; k++) list[k].Write(v[(4 * k)..]);
        Put(b, ref i, code, v);
    }

    private static void PutUInt32(Span<byte> b, ref int i, byte code, uint value)
    {
        Span<byte> v = stackalloc byte[4];
        BinaryPrimitives.WriteUInt32BigEndian(v, value);
        Put(b, ref i, code, v);
    }

    private static void PutText(Span<byte> b, ref int i, byte code, string text) => Put(b, ref i, code, Encoding.ASCII.GetBytes(text));

    public override string ToString() => $"DHCP{Type.ToString().ToUpperInvariant()} xid 0x{TransactionId:x8}";
}
