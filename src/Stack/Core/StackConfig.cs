namespace NetStack;

/// <summary>How a stack is set up. Immutable; <see cref="Validate"/> refuses what cannot work, naming the field.</summary>
public sealed record StackConfig
{
    /// <summary>Our IPv4 address (required).</summary>
    public Ipv4Address Address { get; init; }
    public int PrefixLength { get; init; } = 24;
    /// <summary>Next hop for destinations off our subnet; none means only on-link destinations are reachable.</summary>
    public Ipv4Address? Gateway { get; init; }
    /// <summary>Our MAC; null takes the adapter's own.</summary>
    public MacAddress? MacAddress { get; init; }
    /// <summary>IP MTU; null takes the adapter's. Must not exceed the adapter's.</summary>
    public int? Mtu { get; init; }
    public IReadOnlyList<Ipv4Address> DnsServers { get; init; } = Array.Empty<Ipv4Address>();
    /// <summary>Ephemeral port range for active opens and unbound UDP sends (RFC 6056); IANA's by default.</summary>
    public int EphemeralPortFirst { get; init; } = 49152;
    public int EphemeralPortLast { get; init; } = 65535;
    public byte DefaultTtl { get; init; } = 64;
    /// <summary>Frames kept in the packet log (Get-StackPacket); 0 turns it off.</summary>
    public int PacketLogCapacity { get; init; } = 1024;
    public ArpSettings Arp { get; init; } = new();
    public Ipv4Settings Ip { get; init; } = new();
    public IcmpSettings Icmp { get; init; } = new();
    public UdpSettings Udp { get; init; } = new();
    public DnsSettings Dns { get; init; } = new();

    public Ipv4Address SubnetBroadcast => new(Address.Value | ~Ipv4Address.MaskOf(PrefixLength));

    /// <summary>Throws <see cref="StackConfigurationException"/> naming the first field that cannot work.</summary>
    public void Validate(int deviceMtu)
    {
        if (Address.IsUnspecified || Address.IsBroadcast || Address.IsMulticast || Address.IsLoopback)
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
        if (MacAddress is { } mac && (mac.IsMulticast || mac.IsZero))
            throw new StackConfigurationException(nameof(MacAddress), $"MacAddress {mac} is a group or zero address; use a unicast MAC (first octet even), e.g. 02-00-5E-10-00-01.");
        if (Mtu is { } mtu && (mtu < 576 || mtu > deviceMtu))
            throw new StackConfigurationException(nameof(Mtu), $"Mtu {mtu} must be between 576 and the adapter's MTU {deviceMtu}.");
        if (EphemeralPortFirst is < 1024 or > 65535 || EphemeralPortLast is < 1024 or > 65535 || EphemeralPortFirst > EphemeralPortLast)
            throw new StackConfigurationException(nameof(EphemeralPortFirst), $"Ephemeral port range {EphemeralPortFirst}-{EphemeralPortLast} is invalid; give 1024 <= first <= last <= 65535.");
        if (DefaultTtl == 0)
            throw new StackConfigurationException(nameof(DefaultTtl), "DefaultTtl must be at least 1.");
        if (PacketLogCapacity is < 0 or > 1_000_000)
            throw new StackConfigurationException(nameof(PacketLogCapacity), "PacketLogCapacity must be between 0 and 1,000,000 frames.");
        foreach (var d in DnsServers)
            if (d.IsUnspecified || d.IsBroadcast || d.IsMulticast)
                throw new StackConfigurationException(nameof(DnsServers), $"DNS server {d} is not a unicast address.");
        Arp.Validate();
        Ip.Validate();
        Udp.Validate();
        Dns.Validate();
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
    /// <summary>Datagrams held per address while it resolves; more are dropped and counted.</summary>
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
    /// <summary>Resolutions in flight at once; more fail with NoBufferSpace (counted).</summary>
    public int MaxOutstandingQueries { get; init; } = 64;

    internal void Validate()
    {
        if (Timeout <= TimeSpan.Zero) throw new StackConfigurationException("Dns.Timeout", "Dns.Timeout must be positive (e.g. 2 seconds).");
        if (Attempts is < 1 or > 10) throw new StackConfigurationException("Dns.Attempts", "Dns.Attempts must be between 1 and 10.");
        if (ServerPort == 0) throw new StackConfigurationException("Dns.ServerPort", "Dns.ServerPort cannot be 0; DNS servers listen on 53.");
        if (CacheSize < 0) throw new StackConfigurationException("Dns.CacheSize", "Dns.CacheSize cannot be negative (0 turns the cache off).");
        if (MaxCacheTtl < TimeSpan.Zero) throw new StackConfigurationException("Dns.MaxCacheTtl", "Dns.MaxCacheTtl cannot be negative.");
        if (MaxOutstandingQueries < 1) throw new StackConfigurationException("Dns.MaxOutstandingQueries", "Dns.MaxOutstandingQueries must be at least 1.");
    }
}
