namespace NetStack;

/// <summary>
/// How a stack is set up. Immutable; <see cref="Validate"/> refuses what cannot work, naming the field. A stack's current
/// configuration is one of these: a DHCP lease replaces it on the loop with one carrying the lease's address, prefix,
/// gateway, DNS servers and MTU (<c>LayerContext.Reconfigure</c>), and every layer reads it per packet.
/// </summary>
public sealed record StackConfig
{
    /// <summary>Our IPv4 address (required; 0.0.0.0 with <see cref="DhcpSettings.Enabled"/>, until a lease brings one).</summary>
    public Ipv4Address Address { get; init; }
    public int PrefixLength { get; init; } = 24;
    /// <summary>Next hop for destinations off our subnet; none means only on-link destinations are reachable.</summary>
    public Ipv4Address? Gateway { get; init; }
    /// <summary>Our MAC; null takes the adapter's own.</summary>
    public MacAddress? MacAddress { get; init; }
    /// <summary>IP MTU; null takes the adapter's. Must not exceed the adapter's.</summary>
    public int? Mtu { get; init; }
    public IReadOnlyList<Ipv4Address> DnsServers { get; init; } = Array.Empty<Ipv4Address>();
    /// <summary>Search domains for names without a trailing dot, tried in order (RFC 1123 6.1.4.3; see Dns.DnsSearchList).</summary>
    public IReadOnlyList<string> DnsSearch { get; init; } = Array.Empty<string>();
    /// <summary>Ephemeral port range for active opens and unbound UDP sends (RFC 6056); IANA's by default.</summary>
    public int EphemeralPortFirst { get; init; } = 49152;
    public int EphemeralPortLast { get; init; } = 65535;
    public byte DefaultTtl { get; init; } = 64;
    /// <summary>Frames kept in the packet log (Get-StackPacket); 0 turns it off.</summary>
    public int PacketLogCapacity { get; init; } = 1024;
    /// <summary>
    /// Low-latency mode (busy polling, as Linux's busy_poll and DPDK): after a loop turn that had frames or API work, the
    /// loop keeps polling the device without sleeping for this many microseconds, so a frame that comes within them is
    /// taken without a wake-up; and an API call that has to wait spins on its caller's thread up to this long, taking
    /// the frames itself, so a reply within it completes the call with no wake-up and no thread hand-off
    /// (NetworkStack.BusyPoll.cs). It costs CPU: the loop's thread stays busy that long after every burst, a whole core
    /// while packets come closer together than this, and a waiting call holds its thread up to this long. 0 (the
    /// default) sleeps at once. docs/module.md says how to choose it; docs/benchmarks.md has the figures.
    /// </summary>
    public int BusyPollMicroseconds { get; init; }
    /// <summary>
    /// The caller's wait on the device: an API call that has to wait (a server's receive before its request comes) sleeps
    /// on its caller's thread in the device itself (after the busy poll's spin, if any) for up to this many microseconds,
    /// and runs the stack's turn when a frame comes, so a reply within it completes the call there and its continuation
    /// runs on at once: one thread woken per frame (the caller), not the loop thread and then a thread-pool thread for the
    /// continuation (NetworkStack.BusyPoll.cs). One caller at a time waits so; others park as usual. It costs no CPU while
    /// waiting, but holds the caller's thread up to this long, and once a call so completed the link is watched again by
    /// the loop only when it next wakes (at the latest at the end of the window, or the next timer): choose it above the
    /// gap between the packets you wait for, as the busy poll. 0 (the default) parks at once. docs/benchmarks.md has the figures.
    /// </summary>
    public int CallerWaitMicroseconds { get; init; }
    /// <summary>
    /// The processor the loop's thread runs on (Linux: its affinity, sched_setaffinity), or null (the default) for any.
    /// Put it where the adapter's frames arrive (the processor that takes the adapter's interrupts, /proc/interrupts; for
    /// a veth, the sending program's): the wake-up of a sleeping loop for a frame then stays on that processor, instead of
    /// waking another, idle one (an interprocessor interrupt, and in a virtual machine the wake of a halted vCPU). It costs
    /// no CPU; the loop shares that processor with whatever else runs there. docs/module.md says how to choose it;
    /// docs/benchmarks.md has the figures.
    /// </summary>
    public int? LoopProcessor { get; init; }
    /// <summary>
    /// API calls (send, receive, connect, ping...) made while the real-time loop is idle run their loop turn on the
    /// calling thread instead of waking the loop (one owner at a time: docs/design.md). On by default; false posts every
    /// call to the loop thread, which then alone touches the stack's state. Stacks driven by Poll always post.
    /// </summary>
    public bool InlineCalls { get; init; } = true;
    public ArpSettings Arp { get; init; } = new();
    public Ipv4Settings Ip { get; init; } = new();
    public IcmpSettings Icmp { get; init; } = new();
    public UdpSettings Udp { get; init; } = new();
    public DnsSettings Dns { get; init; } = new();
    public TcpSettings Tcp { get; init; } = new();
    public DhcpSettings Dhcp { get; init; } = new();

    public Ipv4Address SubnetBroadcast => new(Address.Value | ~Ipv4Address.MaskOf(PrefixLength));

    /// <summary>
    /// RFC 1122 3.2.1.3: whether <paramref name="address"/> names one host as seen from this stack: a unicast address
    /// (<see cref="Ipv4Address.IsUnicast"/>) that is not our subnet's broadcast. The one spelling of the rule: IPv4
    /// applies it to sources, ICMP to the senders it may answer, TCP and DNS to the peers a user names, ARP to its targets.
    /// </summary>
    public bool IsUnicastHost(Ipv4Address address) => address.IsUnicast && address != SubnetBroadcast;

    /// <summary>Throws <see cref="StackConfigurationException"/> naming the first field that cannot work.</summary>
    public void Validate(int deviceMtu)
    {
        Dhcp.Validate();
        if (Dhcp.Enabled)
        {
            if (!Address.IsUnspecified)
                throw new StackConfigurationException(nameof(Address), $"Address {Address} was given with DHCP on; leave the address out (0.0.0.0): the lease brings it.");
        }
        else ValidateAddress();
        if (MacAddress is { } mac && !mac.IsUnicast)
            throw new StackConfigurationException(nameof(MacAddress), $"MacAddress {mac} is a group or zero address; use a unicast MAC (first octet even), e.g. 02-00-5E-10-00-01.");
        if (Mtu is { } mtu && (mtu < 576 || mtu > deviceMtu))
            throw new StackConfigurationException(nameof(Mtu), $"Mtu {mtu} must be between 576 and the adapter's MTU {deviceMtu}.");
        if (EphemeralPortFirst is < 1024 or > 65535 || EphemeralPortLast is < 1024 or > 65535 || EphemeralPortFirst > EphemeralPortLast)
            throw new StackConfigurationException(nameof(EphemeralPortFirst), $"Ephemeral port range {EphemeralPortFirst}-{EphemeralPortLast} is invalid; give 1024 <= first <= last <= 65535.");
        if (DefaultTtl == 0)
            throw new StackConfigurationException(nameof(DefaultTtl), "DefaultTtl must be at least 1.");
        if (PacketLogCapacity is < 0 or > 1_000_000)
            throw new StackConfigurationException(nameof(PacketLogCapacity), "PacketLogCapacity must be between 0 and 1,000,000 frames.");
        if (BusyPollMicroseconds is < 0 or > 1_000_000)
            throw new StackConfigurationException(nameof(BusyPollMicroseconds),
                $"BusyPollMicroseconds {BusyPollMicroseconds} must be between 0 (off: the loop sleeps when idle) and 1,000,000 (one second). "
                + "Choose it above the gap between the packets you wait for, e.g. 2500 for a request every 2 ms; each microsecond of it is CPU spent.");
        if (CallerWaitMicroseconds is < 0 or > 1_000_000)
            throw new StackConfigurationException(nameof(CallerWaitMicroseconds),
                $"CallerWaitMicroseconds {CallerWaitMicroseconds} must be between 0 (off: a waiting call parks at once) and 1,000,000 (one second). "
                + "Choose it above the gap between the packets you wait for, e.g. 2500 for a request every 2 ms; a waiting call holds its thread up to that long.");
        if (LoopProcessor is { } cpu)
        {
            if (!OperatingSystem.IsLinux())
                throw new StackConfigurationException(nameof(LoopProcessor), "LoopProcessor is supported on Linux only; leave it out here.");
            if (cpu is < 0 or >= LoopAffinity.MaxProcessors)
                throw new StackConfigurationException(nameof(LoopProcessor),
                    $"LoopProcessor {cpu} is not a processor number; give one between 0 and {Environment.ProcessorCount - 1} (this machine's), e.g. the one that takes the adapter's interrupts.");
        }
        foreach (var d in DnsServers)
            if (!IsUnicastHost(d))
                throw new StackConfigurationException(nameof(DnsServers), $"DNS server {d} is not a unicast address.");
        Arp.Validate();
        Ip.Validate();
        Udp.Validate();
        Dns.Validate();
        Tcp.Validate();
    }

    /// <summary>The address, prefix and gateway: a host address inside its subnet, a gateway on it.</summary>
    private void ValidateAddress()
    {
        if (!Address.IsUnicast)
            throw new StackConfigurationException(nameof(Address), $"Address {Address} cannot be a host's address; give a unicast IPv4 address such as 192.0.2.2.");
        if (PrefixLength is < 1 or > 30)
            throw new StackConfigurationException(nameof(PrefixLength), $"PrefixLength {PrefixLength} is out of range; use 1 to 30 (e.g. 24 for 192.0.2.2/24).");
        if (Address == SubnetBroadcast || (Address.Value & ~Ipv4Address.MaskOf(PrefixLength)) == 0)
            throw new StackConfigurationException(nameof(Address), $"Address {Address}/{PrefixLength} is the subnet's network or broadcast address; pick a host address inside the subnet.");
        if (Gateway is { } gw)
        {
            if (!gw.IsInSubnet(Address, PrefixLength))
                throw new StackConfigurationException(nameof(Gateway), $"Gateway {gw} is not on the subnet {new Ipv4Address(Address.Value & Ipv4Address.MaskOf(PrefixLength))}/{PrefixLength}; a gateway must be reachable on-link.");
            if (gw == Address)
                throw new StackConfigurationException(nameof(Gateway), $"Gateway {gw} is our own address.");
        }
    }
}

/// <summary>Neighbour cache settings (RFC 826, with Linux-like aging).</summary>
public sealed record ArpSettings
{
    /// <summary>How long a confirmed entry stays Reachable before it ages to Stale.</summary>
    public TimeSpan ReachableTime { get; init; } = TimeSpan.FromSeconds(30);
    /// <summary>Interval between requests while resolving.</summary>
    public TimeSpan RetransmitInterval { get; init; } = TimeSpan.FromSeconds(1);
    /// <summary>Requests sent before the address is declared unreachable.</summary>
    public int MaxRequests { get; init; } = 3;
    /// <summary>How long a Failed entry answers "host unreachable" at once before it is forgotten.</summary>
    public TimeSpan FailedHoldTime { get; init; } = TimeSpan.FromSeconds(3);
    /// <summary>Stale entries unused for this long are removed.</summary>
    public TimeSpan StaleTimeout { get; init; } = TimeSpan.FromSeconds(60);
    /// <summary>Most entries the cache holds (static ones included); further learning is dropped and counted.</summary>
    public int MaxEntries { get; init; } = 1024;
    /// <summary>Datagrams held per address while it resolves; one more drops the oldest (counted) and is kept (RFC 1122 2.3.2.2).</summary>
    public int PendingPerAddress { get; init; } = 16;
    public bool GratuitousOnStart { get; init; } = true;

    internal void Validate()
    {
        if (ReachableTime <= TimeSpan.Zero) throw new StackConfigurationException("Arp.ReachableTime", "Arp.ReachableTime must be positive.");
        if (RetransmitInterval <= TimeSpan.Zero) throw new StackConfigurationException("Arp.RetransmitInterval", "Arp.RetransmitInterval must be positive.");
        if (MaxRequests < 1) throw new StackConfigurationException("Arp.MaxRequests", "Arp.MaxRequests must be at least 1.");
        if (MaxEntries < 1) throw new StackConfigurationException("Arp.MaxEntries", "Arp.MaxEntries must be at least 1.");
        if (PendingPerAddress < 1) throw new StackConfigurationException("Arp.PendingPerAddress", "Arp.PendingPerAddress must be at least 1.");
    }
}

public sealed record Ipv4Settings
{
    /// <summary>How long fragments of an incomplete datagram are kept (RFC 791 suggests 15 s; Linux uses 30 s).</summary>
    public TimeSpan ReassemblyTimeout { get; init; } = TimeSpan.FromSeconds(30);
    /// <summary>Largest datagram reassembled.</summary>
    public int MaxDatagramSize { get; init; } = 65535;
    /// <summary>Memory all incomplete datagrams may hold together (Linux ipfrag_high_thresh is 4 MiB).</summary>
    public int ReassemblyMemoryLimit { get; init; } = 4 * 1024 * 1024;
    /// <summary>Datagrams under reassembly at once.</summary>
    public int MaxReassemblies { get; init; } = 64;

    internal void Validate()
    {
        if (ReassemblyTimeout <= TimeSpan.Zero) throw new StackConfigurationException("Ip.ReassemblyTimeout", "Ip.ReassemblyTimeout must be positive.");
        if (MaxDatagramSize is < 576 or > 65535) throw new StackConfigurationException("Ip.MaxDatagramSize", "Ip.MaxDatagramSize must be between 576 and 65535.");
        if (ReassemblyMemoryLimit < MaxDatagramSize) throw new StackConfigurationException("Ip.ReassemblyMemoryLimit", "Ip.ReassemblyMemoryLimit must hold at least one datagram of Ip.MaxDatagramSize.");
        if (MaxReassemblies < 1) throw new StackConfigurationException("Ip.MaxReassemblies", "Ip.MaxReassemblies must be at least 1.");
    }
}

public sealed record IcmpSettings
{
    /// <summary>Error messages (unreachable etc.) we may send per second, token bucket (Linux icmp_msgs_per_sec is 1000).</summary>
    public int ErrorsPerSecond { get; init; } = 100;
    public int ErrorBurst { get; init; } = 50;
    public bool AnswerEcho { get; init; } = true;
}

public sealed record UdpSettings
{
    /// <summary>Bytes a UDP socket may hold unread before arriving datagrams are dropped and counted.</summary>
    public int ReceiveBufferSize { get; init; } = 212992;

    internal void Validate()
    {
        if (ReceiveBufferSize is < 1024 or > 64 * 1024 * 1024)
            throw new StackConfigurationException("Udp.ReceiveBufferSize", "Udp.ReceiveBufferSize must be between 1024 bytes and 64 MiB.");
    }
}

/// <summary>The DNS stub resolver (RFC 1035, RFC 1123 6.1.3): per-attempt timeout, attempts per server, answer cache.</summary>
public sealed record DnsSettings
{
    /// <summary>How long one query waits for its answer before it is sent again (or the next server is tried).</summary>
    public TimeSpan Timeout { get; init; } = TimeSpan.FromSeconds(2);
    /// <summary>Queries sent to each server before moving on to the next.</summary>
    public int Attempts { get; init; } = 2;
    /// <summary>UDP port the servers listen on.</summary>
    public ushort ServerPort { get; init; } = 53;
    /// <summary>Names whose answers are cached; when full, the entry closest to expiry is evicted (counted).</summary>
    public int CacheSize { get; init; } = 512;
    /// <summary>Answers are cached for their TTL but never longer than this.</summary>
    public TimeSpan MaxCacheTtl { get; init; } = TimeSpan.FromDays(1);
    /// <summary>NXDOMAIN and NODATA answers are cached for their SOA's TTL but never longer than this (RFC 2308 5 suggests 1 to 3 hours).</summary>
    public TimeSpan MaxNegativeCacheTtl { get; init; } = TimeSpan.FromHours(1);
    /// <summary>UDP answer size advertised with EDNS (RFC 6891); 0 sends no OPT record. 1232 fits any path unfragmented.</summary>
    public int EdnsPayloadSize { get; init; } = 1232;
    /// <summary>How long a query over TCP (after a truncated UDP answer, RFC 7766) may take, connection included.</summary>
    public TimeSpan TcpTimeout { get; init; } = TimeSpan.FromSeconds(5);
    /// <summary>Resolutions in flight at once; more fail with NoBufferSpace (counted).</summary>
    public int MaxOutstandingQueries { get; init; } = 64;

    internal void Validate()
    {
        if (Timeout <= TimeSpan.Zero) throw new StackConfigurationException("Dns.Timeout", "Dns.Timeout must be positive (e.g. 2 seconds).");
        if (Attempts is < 1 or > 10) throw new StackConfigurationException("Dns.Attempts", "Dns.Attempts must be between 1 and 10.");
        if (ServerPort == 0) throw new StackConfigurationException("Dns.ServerPort", "Dns.ServerPort cannot be 0; DNS servers listen on 53.");
        if (CacheSize < 0) throw new StackConfigurationException("Dns.CacheSize", "Dns.CacheSize cannot be negative (0 turns the cache off).");
        if (MaxCacheTtl < TimeSpan.Zero) throw new StackConfigurationException("Dns.MaxCacheTtl", "Dns.MaxCacheTtl cannot be negative.");
        if (MaxNegativeCacheTtl < TimeSpan.Zero) throw new StackConfigurationException("Dns.MaxNegativeCacheTtl", "Dns.MaxNegativeCacheTtl cannot be negative (0 turns negative caching off).");
        if (EdnsPayloadSize != 0 && EdnsPayloadSize is < 512 or > 65535)
            throw new StackConfigurationException("Dns.EdnsPayloadSize", "Dns.EdnsPayloadSize must be 0 (no EDNS) or between 512 and 65535 (1232 is the usual choice).");
        if (TcpTimeout <= TimeSpan.Zero) throw new StackConfigurationException("Dns.TcpTimeout", "Dns.TcpTimeout must be positive (e.g. 5 seconds).");
        if (MaxOutstandingQueries < 1) throw new StackConfigurationException("Dns.MaxOutstandingQueries", "Dns.MaxOutstandingQueries must be at least 1.");
    }
}

/// <summary>The congestion-control algorithms a TCP connection can use (<see cref="TcpSettings.Congestion"/>).</summary>
public enum CongestionAlgorithm
{
    /// <summary>CUBIC (RFC 9438), the default before BBR.</summary>
    Cubic,
    /// <summary>NewReno window arithmetic (RFC 5681, with RFC 3465 byte counting).</summary>
    NewReno,
    /// <summary>BBR (draft-ietf-ccwg-bbr, as Linux's tcp_bbr): paced at the estimated bottleneck bandwidth, cwnd from the bandwidth-delay product. The default.</summary>
    Bbr,
}

/// <summary>How a TCP sender with SACK finds lost segments (<see cref="TcpSettings.LossDetection"/>).</summary>
public enum LossDetection
{
    /// <summary>RACK-TLP (RFC 8985): time-based detection and tail loss probes, with PRR (RFC 6937) and undo of spurious reductions. The default, as in Linux.</summary>
    Rack,
    /// <summary>Duplicate ACKs and the SACK scoreboard (RFC 6675), cwnd = ssthresh in recovery, no probes or undo: the earlier behaviour, for comparison.</summary>
    DupAck,
}

/// <summary>How a listener uses SYN cookies (<see cref="TcpSettings.SynCookies"/>).</summary>
public enum SynCookieMode
{
    /// <summary>When the SYN queue is full (the default, as Linux's tcp_syncookies = 1).</summary>
    Auto,
    /// <summary>For every SYN: no half-open state at all (Linux's tcp_syncookies = 2).</summary>
    Always,
    /// <summary>Never: SYNs beyond the backlog are dropped.</summary>
    Never,
}

/// <summary>TCP settings (RFC 9293 and friends); defaults follow Linux where the RFCs leave a choice.</summary>
public sealed record TcpSettings
{
    /// <summary>Default per-socket send buffer (bytes not yet acknowledged plus not yet sent).</summary>
    public int SendBufferSize { get; init; } = 256 * 1024;
    /// <summary>Default per-socket receive buffer; it bounds the advertised window and the out-of-order data kept.</summary>
    public int ReceiveBufferSize { get; init; } = 256 * 1024;
    /// <summary>
    /// Receive-buffer auto-tuning (dynamic right-sizing, as Linux's tcp_rmem[2]): a connection's receive buffer grows from
    /// <see cref="ReceiveBufferSize"/> up to this with what the application reads per round trip. A socket whose
    /// ReceiveBufferSize the user set keeps that size; at or below ReceiveBufferSize there is no tuning.
    /// </summary>
    public int ReceiveBufferMax { get; init; } = 6 * 1024 * 1024;
    /// <summary>
    /// Send-buffer auto-tuning (as Linux's tcp_wmem[2]): a connection's send buffer grows from <see cref="SendBufferSize"/>
    /// up to this, to twice what the congestion and peer's windows allow in flight. A socket whose SendBufferSize the
    /// user set keeps that size.
    /// </summary>
    public int SendBufferMax { get; init; } = 4 * 1024 * 1024;
    /// <summary>RTO before any RTT sample (RFC 6298 2.1: 1 s).</summary>
    public TimeSpan InitialRto { get; init; } = TimeSpan.FromSeconds(1);
    /// <summary>Lower bound of the RTO (RFC 6298 says 1 s; Linux uses 200 ms).</summary>
    public TimeSpan MinRto { get; init; } = TimeSpan.FromMilliseconds(200);
    public TimeSpan MaxRto { get; init; } = TimeSpan.FromSeconds(120);
    /// <summary>SYN retransmissions before a connect fails with TimedOut (Linux tcp_syn_retries).</summary>
    public int SynRetries { get; init; } = 6;
    /// <summary>SYN-ACK retransmissions before a half-open connection is dropped (Linux tcp_synack_retries).</summary>
    public int SynAckRetries { get; init; } = 5;
    /// <summary>Retransmissions of data before the connection fails with TimedOut (Linux tcp_retries2).</summary>
    public int MaxRetries { get; init; } = 15;
    /// <summary>Maximum segment lifetime; TIME-WAIT lasts 2 MSL (Linux holds TIME-WAIT 60 s).</summary>
    public TimeSpan Msl { get; init; } = TimeSpan.FromSeconds(30);
    /// <summary>How long an orphaned connection (closed by the user) may wait in FIN-WAIT-2 (Linux tcp_fin_timeout).</summary>
    public TimeSpan FinWait2Timeout { get; init; } = TimeSpan.FromSeconds(60);
    /// <summary>Delayed ACK timer (RFC 1122 4.2.3.2 allows up to 500 ms; Linux uses about 40 ms).</summary>
    public TimeSpan DelayedAckTimeout { get; init; } = TimeSpan.FromMilliseconds(40);
    /// <summary>Initial congestion window in segments (RFC 6928).</summary>
    public int InitialWindowSegments { get; init; } = 10;
    /// <summary>The congestion-control algorithm: BBR (draft-ietf-ccwg-bbr, the default, as this machine's kernel), CUBIC (RFC 9438) or NewReno (RFC 5681).</summary>
    public CongestionAlgorithm Congestion { get; init; } = CongestionAlgorithm.Bbr;
    /// <summary>
    /// <see cref="Congestion"/> by name, "cubic", "newreno" or "bbr" (as Linux's tcp_congestion_control and earlier versions
    /// of these settings spell it). An unknown name is kept so that validation can refuse it, naming this field.
    /// </summary>
    public string CongestionControl
    {
        get => _unknownCongestionControl ?? NameOf(Congestion);
        init
        {
            if (TryParseCongestion(value, out var algorithm)) { Congestion = algorithm; _unknownCongestionControl = null; }
            else _unknownCongestionControl = value;
        }
    }
    private readonly string? _unknownCongestionControl;

    /// <summary>An algorithm's name as Linux's tcp_congestion_control spells it ("cubic", "newreno", "bbr"); also the snapshots' CongestionControl.</summary>
    public static string NameOf(CongestionAlgorithm algorithm) => algorithm switch
    {
        CongestionAlgorithm.NewReno => "newreno",
        CongestionAlgorithm.Bbr => "bbr",
        _ => "cubic",
    };

    private static bool TryParseCongestion(string? name, out CongestionAlgorithm algorithm)
    {
        foreach (var a in Enum.GetValues<CongestionAlgorithm>())
        {
            if (NameOf(a) != name) continue;
            algorithm = a;
            return true;
        }
        algorithm = default;
        return false;
    }
    /// <summary>Loss detection when SACK is negotiated: RACK-TLP (default) or duplicate ACKs (RFC 6675). Peers without SACK get NewReno (RFC 6582).</summary>
    public LossDetection LossDetection { get; init; } = LossDetection.Rack;
    public bool WindowScaling { get; init; } = true;
    public bool Sack { get; init; } = true;
    public bool Timestamps { get; init; } = true;
    /// <summary>
    /// SYN cookies (RFC 4987): Auto answers SYNs beyond a full SYN queue with a cookie SYN-ACK that keeps no state (the
    /// default, as Linux), Always answers every SYN so, Never drops SYNs beyond the backlog.
    /// </summary>
    public SynCookieMode SynCookies { get; init; } = SynCookieMode.Auto;
    /// <summary>Listen backlog when none is given.</summary>
    public int DefaultBacklog { get; init; } = 128;
    /// <summary>
    /// Separate out-of-order ranges a connection may hold. 0 (the default): bounded by the receive buffer, one range per two
    /// full segments of it (at least 16), so a sender of full segments never meets the bound (Linux bounds its out-of-order
    /// queue by memory). A positive value is a fixed bound. At the bound a segment that needs a new range is dropped and
    /// counted (DroppedOutOfOrderFull).
    /// </summary>
    public int MaxOutOfOrderRanges { get; init; }
    public TimeSpan KeepaliveIdle { get; init; } = TimeSpan.FromHours(2);
    public TimeSpan KeepaliveInterval { get; init; } = TimeSpan.FromSeconds(75);
    public int KeepaliveProbes { get; init; } = 9;
    /// <summary>RFC 5961 7: challenge ACKs sent per second across the stack (Linux tcp_challenge_ack_limit).</summary>
    public int ChallengeAcksPerSecond { get; init; } = 1000;
    /// <summary>
    /// A connection sends at most one ACK per this interval for segments it refuses without data (out of the window,
    /// old by PAWS) and for challenge ACKs (RFC 5961 7; Linux tcp_invalid_ratelimit, 500 ms). Zero: no limit.
    /// </summary>
    public TimeSpan InvalidAckInterval { get; init; } = TimeSpan.FromMilliseconds(500);
    /// <summary>Most TCP connections (all states) the stack holds; more SYNs are dropped and counted.</summary>
    public int MaxConnections { get; init; } = 65536;

    internal void Validate()
    {
        if (SendBufferSize is < 2048 or > 64 * 1024 * 1024) throw new StackConfigurationException("Tcp.SendBufferSize", "Tcp.SendBufferSize must be between 2048 and 64 MiB.");
        if (ReceiveBufferSize is < 2048 or > 64 * 1024 * 1024) throw new StackConfigurationException("Tcp.ReceiveBufferSize", "Tcp.ReceiveBufferSize must be between 2048 and 64 MiB.");
        if (ReceiveBufferMax is < 2048 or > 64 * 1024 * 1024) throw new StackConfigurationException("Tcp.ReceiveBufferMax", "Tcp.ReceiveBufferMax must be between 2048 and 64 MiB.");
        if (SendBufferMax is < 2048 or > 64 * 1024 * 1024) throw new StackConfigurationException("Tcp.SendBufferMax", "Tcp.SendBufferMax must be between 2048 and 64 MiB.");
        if (MinRto <= TimeSpan.Zero || MinRto > MaxRto) throw new StackConfigurationException("Tcp.MinRto", "Tcp.MinRto must be positive and not above Tcp.MaxRto.");
        if (InitialRto < MinRto || InitialRto > MaxRto) throw new StackConfigurationException("Tcp.InitialRto", "Tcp.InitialRto must lie between Tcp.MinRto and Tcp.MaxRto.");
        if (SynRetries is < 0 or > 20) throw new StackConfigurationException("Tcp.SynRetries", "Tcp.SynRetries must be between 0 and 20.");
        if (SynAckRetries is < 0 or > 20) throw new StackConfigurationException("Tcp.SynAckRetries", "Tcp.SynAckRetries must be between 0 and 20.");
        if (MaxRetries is < 1 or > 30) throw new StackConfigurationException("Tcp.MaxRetries", "Tcp.MaxRetries must be between 1 and 30.");
        if (Msl < TimeSpan.Zero) throw new StackConfigurationException("Tcp.Msl", "Tcp.Msl cannot be negative.");
        if (DelayedAckTimeout < TimeSpan.Zero || DelayedAckTimeout > TimeSpan.FromMilliseconds(500)) throw new StackConfigurationException("Tcp.DelayedAckTimeout", "Tcp.DelayedAckTimeout must be between 0 and 500 ms (RFC 1122 4.2.3.2).");
        if (InitialWindowSegments is < 1 or > 100) throw new StackConfigurationException("Tcp.InitialWindowSegments", "Tcp.InitialWindowSegments must be between 1 and 100.");
        if (_unknownCongestionControl != null || !Enum.IsDefined(Congestion)) throw new StackConfigurationException("Tcp.CongestionControl", $"Tcp.CongestionControl '{CongestionControl}' is unknown; use 'cubic', 'newreno' or 'bbr'.");
        if (!Enum.IsDefined(LossDetection)) throw new StackConfigurationException("Tcp.LossDetection", $"Tcp.LossDetection '{LossDetection}' is unknown; use Rack or DupAck.");
        if (DefaultBacklog is < 1 or > 65535) throw new StackConfigurationException("Tcp.DefaultBacklog", "Tcp.DefaultBacklog must be between 1 and 65535.");
        if (MaxOutOfOrderRanges is < 0 or > 65536) throw new StackConfigurationException("Tcp.MaxOutOfOrderRanges", "Tcp.MaxOutOfOrderRanges must be 0 (bounded by the receive buffer, the default) or between 1 and 65536.");
        if (KeepaliveIdle <= TimeSpan.Zero || KeepaliveInterval <= TimeSpan.Zero || KeepaliveProbes < 1) throw new StackConfigurationException("Tcp.KeepaliveIdle", "Keepalive idle time and interval must be positive and probes at least 1.");
        if (ChallengeAcksPerSecond < 1) throw new StackConfigurationException("Tcp.ChallengeAcksPerSecond", "Tcp.ChallengeAcksPerSecond must be at least 1.");
        if (InvalidAckInterval < TimeSpan.Zero || InvalidAckInterval > TimeSpan.FromSeconds(10)) throw new StackConfigurationException("Tcp.InvalidAckInterval", "Tcp.InvalidAckInterval must be between 0 and 10 s.");
        if (!Enum.IsDefined(SynCookies)) throw new StackConfigurationException("Tcp.SynCookies", "Tcp.SynCookies must be Auto, Always or Never.");
        if (MaxConnections < 1) throw new StackConfigurationException("Tcp.MaxConnections", "Tcp.MaxConnections must be at least 1.");
    }
}

/// <summary>The DHCP client (RFC 2131; see NetStack.Dhcp.DhcpClient and docs/dhcp.md).</summary>
public sealed record DhcpSettings
{
    /// <summary>Acquire the address, prefix, gateway, DNS servers and MTU by DHCP (StackConfig.Address must then be 0.0.0.0).</summary>
    public bool Enabled { get; init; }
    /// <summary>Host name sent to the server (option 12), which many servers register in their DNS; none by default.</summary>
    public string? HostName { get; init; }
    /// <summary>
    /// ARP probes for the offered address before it is used (RFC 5227 PROBE_NUM is 3; RFC 2131 2.2 asks a client to
    /// check); an answer means the address is taken and is declined. 0 skips the check.
    /// </summary>
    public int ConflictProbes { get; init; } = 3;
    /// <summary>Ask the server to broadcast its replies (RFC 2131 4.1 BROADCAST flag). Not needed: the stack takes unicast replies before it has an address.</summary>
    public bool BroadcastFlag { get; init; }
    /// <summary>Give the lease back (DHCPRELEASE) when the stack stops.</summary>
    public bool ReleaseOnStop { get; init; } = true;

    internal void Validate()
    {
        if (ConflictProbes is < 0 or > 10) throw new StackConfigurationException("Dhcp.ConflictProbes", "Dhcp.ConflictProbes must be between 0 and 10 (RFC 5227 sends 3).");
        if (HostName is { } h && (h.Length is 0 or > 63 || !h.All(c => char.IsAsciiLetterOrDigit(c) || c == '-')))
            throw new StackConfigurationException("Dhcp.HostName", $"Dhcp.HostName '{h}' must be 1 to 63 letters, digits or hyphens (one DNS label).");
    }
}
