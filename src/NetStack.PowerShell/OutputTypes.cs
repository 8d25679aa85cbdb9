using System.Net.Sockets;
using NetStack.Arp;
using NetStack.Diagnostics;
using NetStack.Icmp;
using NetStack.Sockets;
using SharpPcap.LibPcap;

namespace NetStack.PowerShell;

/// <summary>A capture adapter libpcap can open (Get-StackAdapter).</summary>
public sealed class AdapterInfo
{
    // pcap_if flags (pcap/pcap.h).
    private const uint PcapIfLoopback = 0x1;
    private const uint PcapIfUp = 0x2;
    private const uint PcapIfRunning = 0x4;

    public string Name { get; init; } = "";
    public string? Description { get; init; }
    public string? MacAddress { get; init; }
    public string[] Addresses { get; init; } = Array.Empty<string>();
    public bool IsUp { get; init; }
    public bool IsRunning { get; init; }
    public bool IsLoopback { get; init; }

    /// <summary>Lists adapters through libpcap (pcap_findalldevs), which needs no special rights.</summary>
    /// <exception cref="DllNotFoundException">libpcap is not installed.</exception>
    internal static IReadOnlyList<AdapterInfo> List()
    {
        var list = new List<AdapterInfo>();
        foreach (var i in PcapInterface.GetAllPcapInterfaces())
        {
            var flags = (uint)i.Flags;
            var mac = i.MacAddress?.GetAddressBytes();
            list.Add(new AdapterInfo
            {
                Name = i.Name,
                Description = i.Description ?? i.FriendlyName,
                MacAddress = mac is { Length: 6 } ? NetStack.MacAddress.Read(mac).ToString() : null,
                Addresses = i.Addresses
                    .Select(a => a.Addr?.ipAddress)
                    .Where(a => a is { AddressFamily: AddressFamily.InterNetwork or AddressFamily.InterNetworkV6 })
                    .Select(a => a!.ToString()).ToArray(),
                IsUp = (flags & PcapIfUp) != 0,
                IsRunning = (flags & PcapIfRunning) != 0,
                IsLoopback = (flags & PcapIfLoopback) != 0,
            });
        }
        return list;
    }
}

/// <summary>A neighbour cache entry (Get-StackArpCache), shaped like Get-NetNeighbor's.</summary>
public sealed class StackArpEntry
{
    internal StackArpEntry(ArpEntryInfo e, string stack)
    {
        IPAddress = e.IPAddress.ToString();
        LinkLayerAddress = e.State == ArpState.Incomplete ? "" : e.LinkLayerAddress.ToString();
        State = e.State;
        Age = e.Age;
        PendingDatagrams = e.PendingDatagrams;
        Stack = stack;
    }

    public string IPAddress { get; }
    /// <summary>00-15-5D-25-05-1D style; empty while the entry is Incomplete.</summary>
    public string LinkLayerAddress { get; }
    public ArpState State { get; }
    public TimeSpan Age { get; }
    public int PendingDatagrams { get; }
    /// <summary>The stack's name (binds -Stack by property name down the pipeline).</summary>
    public string Stack { get; }
}

/// <summary>One echo reply (Test-StackConnection), shaped like Test-Connection's PingStatus.</summary>
public sealed class StackPingReply
{
    public int Ping { get; init; }
    public string Source { get; init; } = "";
    public string Destination { get; init; } = "";
    public string Address { get; init; } = "";
    /// <summary>Round-trip time in milliseconds.</summary>
    public double Latency { get; init; }
    public int Ttl { get; init; }
    public int BufferSize { get; init; }
    public PingStatus Status { get; init; }
    public string Stack { get; init; } = "";
}

/// <summary>One counter (Get-StackStatistics).</summary>
public sealed class StackStatistic
{
    public string Layer { get; init; } = "";
    public string Name { get; init; } = "";
    public long Value { get; init; }
    public string Stack { get; init; } = "";
}

/// <summary>A frame from the packet log, decoded (Get-StackPacket).</summary>
public sealed class StackPacket
{
    internal StackPacket(FrameSummary s, string stack)
    {
        Number = s.Number;
        Time = s.Time.TotalSeconds;
        Direction = s.Direction;
        Source = s.Source;
        Destination = s.Destination;
        Protocol = s.Protocol;
        Length = s.Length;
        Info = s.Info;
        SourcePort = s.SourcePort;
        DestinationPort = s.DestinationPort;
        Stack = stack;
        Summary = s;
    }

    public long Number { get; }
    /// <summary>Seconds on the stack's clock.</summary>
    public double Time { get; }
    public FrameDirection Direction { get; }
    public string Source { get; }
    public string Destination { get; }
    public string Protocol { get; }
    public int Length { get; }
    public string Info { get; }
    public int SourcePort { get; }
    public int DestinationPort { get; }
    public string Stack { get; }
    /// <summary>The TCP header decoded (raw and relative numbers, flags, scaled window, options); null for other protocols.</summary>
    public TcpSegmentInfo? Tcp => Summary.Tcp;
    /// <summary>The decoded frame with its addresses (ladders and graphs are drawn from it).</summary>
    internal FrameSummary Summary { get; }
}

/// <summary>
/// One row of the netstat view (Get-StackConnection). TCP states carry Get-NetTCPConnection's names; the TCP
/// internals (RFC 9293 names) are properties, shown by Format-List. Pipe rows to socket cmdlets: Id binds -Socket.
/// </summary>
public sealed class StackConnection
{
    internal StackConnection(ConnectionInfo c, string stack)
    {
        Id = c.Id;
        Protocol = c.Protocol;
        LocalAddress = c.LocalAddress.ToString();
        LocalPort = c.LocalPort;
        RemoteAddress = c.RemoteAddress.ToString();
        RemotePort = c.RemotePort;
        State = c.State;
        RecvQ = c.RecvQ;
        SendQ = c.SendQ;
        TimeInState = c.TimeInState;
        Stack = stack;
        if (c.Tcp is { } t)
        {
            Iss = t.Iss; Irs = t.Irs; SndUna = t.SndUna; SndNxt = t.SndNxt; SndWnd = t.SndWnd; RcvNxt = t.RcvNxt; RcvWnd = t.RcvWnd;
            RcvBuf = t.RcvBuf; RcvRtt = t.RcvRtt; SndBuf = t.SndBuf;
            Cwnd = t.Cwnd; Ssthresh = t.Ssthresh; Srtt = t.Srtt; RttVar = t.RttVar; Rto = t.Rto; Mss = t.Mss;
            SndWindowScale = t.SndWindowScale; RcvWindowScale = t.RcvWindowScale; SackPermitted = t.SackPermitted;
            Timestamps = t.Timestamps; Retransmits = t.Retransmits; BytesSent = t.BytesSent; BytesReceived = t.BytesReceived;
            SegmentsSent = t.SegmentsSent; SegmentsReceived = t.SegmentsReceived; CongestionControl = t.CongestionControl;
            LossRecovery = t.LossRecovery; RecoveryState = t.RecoveryState; MinRtt = t.MinRtt; ReorderWindow = t.ReorderWindow;
            TlpProbes = t.TlpProbes; RackLosses = t.RackLosses; SpuriousRetransmits = t.SpuriousRetransmits; Undos = t.Undos; DeliveryRate = t.DeliveryRate;
            PacingRate = t.PacingRate; BbrState = t.BbrState; BbrBandwidth = t.BbrBandwidth; BbrMinRtt = t.BbrMinRtt;
        }
    }

    public int Id { get; }
    public SocketProtocol Protocol { get; }
    public string LocalAddress { get; }
    public int LocalPort { get; }
    public string RemoteAddress { get; }
    public int RemotePort { get; }
    public string State { get; }
    public long RecvQ { get; }
    public long SendQ { get; }
    public TimeSpan TimeInState { get; }
    public string Stack { get; }

    public uint? Iss { get; }
    public uint? Irs { get; }
    public uint? SndUna { get; }
    public uint? SndNxt { get; }
    public uint? SndWnd { get; }
    public uint? RcvNxt { get; }
    public uint? RcvWnd { get; }
    /// <summary>The receive buffer in bytes now: auto-tuning grows it with what the application reads per round trip.</summary>
    public int? RcvBuf { get; }
    /// <summary>The receiver's RTT estimate, which paces receive-buffer auto-tuning.</summary>
    public TimeSpan? RcvRtt { get; }
    /// <summary>The send buffer in bytes now: it grows with the flight unless the socket's SendBufferSize was set.</summary>
    public int? SndBuf { get; }
    public uint? Cwnd { get; }
    public uint? Ssthresh { get; }
    public TimeSpan? Srtt { get; }
    public TimeSpan? RttVar { get; }
    public TimeSpan? Rto { get; }
    public int? Mss { get; }
    public int? SndWindowScale { get; }
    public int? RcvWindowScale { get; }
    public bool? SackPermitted { get; }
    public bool? Timestamps { get; }
    public long? Retransmits { get; }
    public long? BytesSent { get; }
    public long? BytesReceived { get; }
    public long? SegmentsSent { get; }
    public long? SegmentsReceived { get; }
    public string? CongestionControl { get; }
    /// <summary>"rack" (RACK-TLP, RFC 8985), "sack" (RFC 6675) or "newreno" (RFC 6582).</summary>
    public string? LossRecovery { get; }
    /// <summary>Open, Recovery (fast recovery) or Loss (after a retransmission timeout).</summary>
    public string? RecoveryState { get; }
    public TimeSpan? MinRtt { get; }
    /// <summary>RACK's reordering window (RFC 8985 6.2).</summary>
    public TimeSpan? ReorderWindow { get; }
    public long? TlpProbes { get; }
    public long? RackLosses { get; }
    public long? SpuriousRetransmits { get; }
    public long? Undos { get; }
    /// <summary>The last delivery-rate sample in bytes per second.</summary>
    public double? DeliveryRate { get; }
    /// <summary>The pacing rate in bytes per second (0: unpaced; BBR paces).</summary>
    public double? PacingRate { get; }
    /// <summary>BBR's state: Startup, Drain, ProbeBw or ProbeRtt ("" under CUBIC and NewReno).</summary>
    public string? BbrState { get; }
    /// <summary>BBR's bottleneck bandwidth estimate in bytes per second (the windowed maximum delivery rate).</summary>
    public double? BbrBandwidth { get; }
    /// <summary>BBR's minimum RTT (its 10 s filter; PROBE_RTT renews it).</summary>
    public TimeSpan? BbrMinRtt { get; }

    /// <summary>netstat's "Local Address" column.</summary>
    public string LocalEndPoint => $"{LocalAddress}:{LocalPort}";
    /// <summary>netstat's "Foreign Address" column ("*:*" when unconnected).</summary>
    public string RemoteEndPoint => RemotePort == 0 && RemoteAddress == "0.0.0.0" ? "*:*" : $"{RemoteAddress}:{RemotePort}";
}

/// <summary>
/// A stack's DHCP lease as Get-Stack shows it (the Dhcp property): the state (Selecting, Requesting, Probing, Bound,
/// Renewing, Rebinding...), the address and the server that leased it, the lease time, and its deadlines as local
/// times: renewal (T1), rebinding (T2) and expiry (RFC 2131 4.4.5).
/// </summary>
public sealed class StackDhcpLease
{
    internal StackDhcpLease(NetStack.Dhcp.DhcpLease lease, string stack, TimeSpan loopNow)
    {
        var wallNow = DateTimeOffset.Now;
        DateTimeOffset? Wall(TimeSpan? t) => t is { } v ? wallNow + (v - loopNow) : null;
        Stack = stack;
        State = lease.State;
        Address = lease.Address?.ToString();
        PrefixLength = lease.Address is null ? null : lease.PrefixLength;
        Server = lease.Server?.ToString();
        Router = lease.Router?.ToString();
        DnsServer = lease.DnsServers.Select(d => d.ToString()).ToArray();
        Domain = lease.DomainName;
        SearchList = lease.SearchList.ToArray();
        Mtu = lease.Mtu;
        LeaseTime = lease.Address is null ? null : lease.LeaseTime;
        Obtained = Wall(lease.Obtained);
        RenewAt = Wall(lease.Renewal);
        RebindAt = Wall(lease.Rebinding);
        ExpiresAt = Wall(lease.Expiry);
        TransactionId = $"0x{lease.TransactionId:x8}";
    }

    public string Stack { get; }
    public NetStack.Dhcp.DhcpState State { get; }
    public string? Address { get; }
    public int? PrefixLength { get; }
    public string? Server { get; }
    public string? Router { get; }
    public string[] DnsServer { get; }
    public string? Domain { get; }
    public string[] SearchList { get; }
    public int? Mtu { get; }
    public TimeSpan? LeaseTime { get; }
    /// <summary>When the lease (or its last renewal) was asked for: the lease runs from here.</summary>
    public DateTimeOffset? Obtained { get; }
    /// <summary>T1: when renewal with the leasing server begins.</summary>
    public DateTimeOffset? RenewAt { get; }
    /// <summary>T2: when rebinding with any server begins, if renewal got no answer.</summary>
    public DateTimeOffset? RebindAt { get; }
    public DateTimeOffset? ExpiresAt { get; }
    /// <summary>The current exchange's transaction id (xid), as in captures.</summary>
    public string TransactionId { get; }

    public override string ToString() => Address is null ? State.ToString()
        : $"{State} {Address}/{PrefixLength} from {Server}, lease {LeaseTime?.TotalSeconds:0} s{(ExpiresAt is { } e ? $", expires {e.LocalDateTime:T}" : "")}";
}

/// <summary>An address of a service host's DHCP pool as its server holds it (Get-StackNetwork's DhcpLeases).</summary>
public sealed class StackDhcpServerLease
{
    internal StackDhcpServerLease(NetStack.Services.DhcpServerLease lease, TimeSpan loopNow)
    {
        Address = lease.Address.ToString();
        ClientMac = lease.ClientMac.ToString();
        State = lease.State;
        ExpiresAt = DateTimeOffset.Now + (lease.Expires - loopNow);
    }

    public string Address { get; }
    public string ClientMac { get; }
    /// <summary>Offered, Bound, Released, Declined or Expired.</summary>
    public string State { get; }
    public DateTimeOffset ExpiresAt { get; }

    public override string ToString() => $"{Address} {State} {ClientMac}";
}
