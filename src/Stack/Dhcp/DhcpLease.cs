namespace NetStack.Dhcp;

/// <summary>The DHCP client's states (RFC 2131 4.4, figure 5), plus Probing (RFC 5227) and the ends.</summary>
public enum DhcpState
{
    /// <summary>Not started, or waiting to start over (after a DECLINE, RFC 2131 3.1.5 asks for ten seconds).</summary>
    Init,
    /// <summary>DISCOVER sent, waiting for an OFFER.</summary>
    Selecting,
    /// <summary>REQUEST for an offered address sent, waiting for the ACK.</summary>
    Requesting,
    /// <summary>ACK received; ARP probes check that nobody else uses the address (RFC 5227) before it is taken.</summary>
    Probing,
    /// <summary>The lease is applied; renewal at T1.</summary>
    Bound,
    /// <summary>Past T1: REQUESTs unicast to the leasing server.</summary>
    Renewing,
    /// <summary>Past T2: REQUESTs broadcast to any server.</summary>
    Rebinding,
    /// <summary>The lease was given back (RELEASE) when the stack stopped, or on request.</summary>
    Released,
    /// <summary>The stack stopped.</summary>
    Stopped,
}

public sealed class DhcpCounters : LayerCounters
{
    public override string Layer => "Dhcp";
    public long DiscoversSent;
    public long RequestsSent;
    /// <summary>DISCOVERs and REQUESTs sent again because no answer came (RFC 2131 4.1 backoff).</summary>
    public long Retransmissions;
    public long OffersReceived;
    public long AcksReceived;
    public long NaksReceived;
    public long DeclinesSent;
    public long ReleasesSent;
    public long LeasesObtained;
    /// <summary>Times T1 passed and renewal began (RENEWING), and times T2 passed and rebinding began (REBINDING).</summary>
    public long Renewals;
    public long Rebinds;
    /// <summary>ACKs that extended the lease while renewing or rebinding.</summary>
    public long LeasesExtended;
    public long LeasesExpired;
    /// <summary>Messages that could not be read (too short, no cookie, bad option, no type).</summary>
    public long DroppedMalformed;
    /// <summary>Messages for another transaction or client, or not expected in the state (an OFFER while bound...).</summary>
    public long DroppedUnexpected;
    /// <summary>OFFERs and ACKs refused for what they carry (no server id, no lease time, an address that cannot be ours).</summary>
    public long DroppedInvalidLease;
    /// <summary>Sends the IP layer refused (no route to the server, no buffer).</summary>
    public long SendErrors;
}

/// <summary>
/// The DHCP client's view at one moment: its state and, once bound, the lease. Times are the stack's loop time
/// (<see cref="NetworkStack.Clock"/>); <see cref="Renewal"/>, <see cref="Rebinding"/> and <see cref="Expiry"/> are
/// the T1, T2 and end deadlines (RFC 2131 4.4.5).
/// </summary>
public sealed record DhcpLease
{
    public DhcpState State { get; init; }
    /// <summary>The leased address (null until bound, and after expiry or release).</summary>
    public Ipv4Address? Address { get; init; }
    public int PrefixLength { get; init; }
    /// <summary>The server that granted the lease (option 54).</summary>
    public Ipv4Address? Server { get; init; }
    /// <summary>The first router of option 3.</summary>
    public Ipv4Address? Router { get; init; }
    public IReadOnlyList<Ipv4Address> DnsServers { get; init; } = Array.Empty<Ipv4Address>();
    /// <summary>Option 15.</summary>
    public string? DomainName { get; init; }
    /// <summary>Option 119 (RFC 3397).</summary>
    public IReadOnlyList<string> SearchList { get; init; } = Array.Empty<string>();
    /// <summary>Interface MTU (option 26), as offered.</summary>
    public int? Mtu { get; init; }
    public TimeSpan LeaseTime { get; init; }
    /// <summary>When the lease (or its latest renewal) began: when its REQUEST was sent (RFC 2131 4.4.1).</summary>
    public TimeSpan? Obtained { get; init; }
    public TimeSpan? Renewal { get; init; }
    public TimeSpan? Rebinding { get; init; }
    public TimeSpan? Expiry { get; init; }
    /// <summary>The current exchange's transaction id.</summary>
    public uint TransactionId { get; init; }
}
