using NetStack.Dhcp;

namespace NetStack.Services;

/// <summary>One address of a <see cref="DhcpServer"/>'s pool as it stands: who has it, how, until when (loop time).</summary>
public sealed record DhcpServerLease(Ipv4Address Address, MacAddress ClientMac, string State, TimeSpan Expires);

/// <summary>What the DHCP server is set to hand out.</summary>
internal sealed record DhcpServerSettings(Ipv4Address ServerAddress, int PrefixLength, Ipv4Address PoolFirst, Ipv4Address PoolLast,
    TimeSpan LeaseTime, Ipv4Address? Router, Ipv4Address[] DnsServers, string? Domain, ushort? Mtu);

/// <summary>
/// A small DHCP server (RFC 2131 4.3) for one subnet, no relays: a pool of addresses, leases by client (client
/// identifier, else MAC), offers held briefly, DECLINEd addresses kept out of the pool, RELEASEd ones free again
/// (the client gets the same address next time when it is still free). Pure logic: <see cref="Answer"/> takes a request
/// and the time and returns the reply and where it goes; <see cref="DhcpService"/> carries it over UDP. Thread-safe.
/// </summary>
internal sealed class DhcpServer(DhcpServerSettings settings)
{
    /// <summary>How long an OFFER holds its address for the client (RFC 2131 4.3.1 leaves it to the server).</summary>
    public static readonly TimeSpan OfferHold = TimeSpan.FromSeconds(60);
    /// <summary>How long a DECLINEd address stays out of the pool (RFC 2131 4.3.3: marked not available).</summary>
    public static readonly TimeSpan DeclineHold = TimeSpan.FromMinutes(10);

    private enum State { Offered, Bound, Released, Declined }

    private sealed class Entry
    {
        public required Ipv4Address Address;
        public required string Client;
        public required MacAddress Mac;
        public State State;
        public TimeSpan Expires;
    }

    private readonly object _gate = new();
    private readonly Dictionary<Ipv4Address, Entry> _byAddress = new();

    public DhcpServerSettings Settings => settings;

    /// <summary>The pool's addresses in use or remembered, in address order.</summary>
    public IReadOnlyList<DhcpServerLease> Leases(TimeSpan now)
    {
        lock (_gate)
            return _byAddress.Values.OrderBy(e => e.Address)
                .Select(e => new DhcpServerLease(e.Address, e.Mac, e.Expires <= now && e.State != State.Released ? "Expired" : e.State.ToString(), e.Expires)).ToArray();
    }

    /// <summary>
    /// The reply to <paramref name="m"/> and its IP destination (RFC 2131 4.1: broadcast unless the client has an address
    /// in ciaddr), or null to stay silent: not a request, relayed, for another server, or about a client we do not know.
    /// </summary>
    public (DhcpMessage Reply, Ipv4Address Destination)? Answer(DhcpMessage m, TimeSpan now)
    {
        if (m.Op != DhcpMessage.OpRequest || !m.IsEthernet || !m.RelayAgent.IsUnspecified) return null;
        var client = m.ClientId is { } id ? Convert.ToHexString(id) : m.ClientMac.ToString();
        lock (_gate)
        {
            return m.Type switch
            {
                DhcpMessageType.Discover => Offer(m, client, now),
                DhcpMessageType.Request => Request(m, client, now),
                DhcpMessageType.Decline => Forget(m, client, State.Declined, now + DeclineHold),
                DhcpMessageType.Release => Forget(m, client, State.Released, now),
                _ => null, // INFORM and the rest: not served
            };
        }
    }

    private (DhcpMessage, Ipv4Address)? Offer(DhcpMessage m, string client, TimeSpan now)
    {
        var e = Choose(client, m.RequestedAddress, now);
        if (e is null) return null; // the pool is exhausted: RFC 2131 4.3.1 lets the server stay silent
        if (e.State != State.Bound) { e.State = State.Offered; e.Expires = now + OfferHold; }
        e.Mac = m.ClientMac;
        return (Reply(m, DhcpMessageType.Offer, e.Address), Ipv4Address.Broadcast);
    }

    /// <summary>The client's own address (bound, offered or once held), else the one it asks for if free, else the lowest free one.</summary>
    private Entry? Choose(string client, Ipv4Address? requested, TimeSpan now)
    {
        var own = _byAddress.Values.Where(e => e.Client == client && e.State != State.Declined).OrderByDescending(e => e.State == State.Bound).FirstOrDefault();
        if (own != null) return own;
        if (requested is { } r && InPool(r) && IsFree(r, now)) return Take(r, client);
        for (var v = settings.PoolFirst.Value; v <= settings.PoolLast.Value; v++)
            if (IsFree(new Ipv4Address(v), now)) return Take(new Ipv4Address(v), client);
        return null;
    }

    private Entry Take(Ipv4Address a, string client)
    {
        var e = new Entry { Address = a, Client = client, Mac = default };
        _byAddress[a] = e;
        return e;
    }

    private bool InPool(Ipv4Address a) => a.Value >= settings.PoolFirst.Value && a.Value <= settings.PoolLast.Value;

    /// <summary>Free: never handed out, released, or its offer, lease or decline hold has run out.</summary>
    private bool IsFree(Ipv4Address a, TimeSpan now) =>
        !_byAddress.TryGetValue(a, out var e) || e.State == State.Released || e.Expires <= now;

    private (DhcpMessage, Ipv4Address)? Request(DhcpMessage m, string client, TimeSpan now)
    {
        // SELECTING (RFC 2131 4.3.2): option 54 names the chosen server; another server's choice frees our offer.
        if (m.ServerId is { } chosen)
        {
            var offered = _byAddress.Values.FirstOrDefault(e => e.Client == client && e.State is State.Offered or State.Bound);
            if (chosen != settings.ServerAddress)
            {
                if (offered is { State: State.Offered }) _byAddress.Remove(offered.Address);
                return null;
            }
            if (offered is null || m.RequestedAddress != offered.Address) return Nak(m, "the address was not offered to you");
            return Bind(m, offered, now);
        }
        // INIT-REBOOT (option 50, ciaddr 0), RENEWING/REBINDING (ciaddr).
        var wanted = m.ClientAddress.IsUnspecified ? m.RequestedAddress : m.ClientAddress;
        if (wanted is not { } w) return null;
        if (!w.IsInSubnet(settings.ServerAddress, settings.PrefixLength)) return Nak(m, $"{w} is not on this network");
        if (_byAddress.TryGetValue(w, out var held) && held.Client == client && held.State != State.Declined
            && (held.State == State.Bound || IsFree(w, now))) return Bind(m, held, now);
        if (_byAddress.TryGetValue(w, out var other) && other.Client != client && !IsFree(w, now)) return Nak(m, $"{w} is leased to another client");
        // No record of this client: RFC 2131 4.3.2 says stay silent (another server may know it).
        return null;
    }

    private (DhcpMessage, Ipv4Address) Bind(DhcpMessage m, Entry e, TimeSpan now)
    {
        e.State = State.Bound;
        e.Mac = m.ClientMac;
        e.Expires = now + settings.LeaseTime;
        var to = m.ClientAddress.IsUnspecified ? Ipv4Address.Broadcast : m.ClientAddress;
        return (Reply(m, DhcpMessageType.Ack, e.Address), to);
    }

    /// <summary>RFC 2131 4.1: a NAK is broadcast (the client may not have the address it thinks it has).</summary>
    private (DhcpMessage, Ipv4Address) Nak(DhcpMessage m, string why)
    {
        var r = new DhcpMessage
        {
            Op = DhcpMessage.OpReply, Type = DhcpMessageType.Nak, TransactionId = m.TransactionId, ClientMac = m.ClientMac,
            Flags = m.Flags, ServerId = settings.ServerAddress, Message = why,
        };
        return (r, Ipv4Address.Broadcast);
    }

    /// <summary>DECLINE (RFC 2131 4.3.3) or RELEASE (4.3.4) of the client's address: no reply.</summary>
    private (DhcpMessage, Ipv4Address)? Forget(DhcpMessage m, string client, State state, TimeSpan until)
    {
        if (m.ServerId is { } sid && sid != settings.ServerAddress) return null;
        var address = state == State.Declined ? m.RequestedAddress : m.ClientAddress;
        if (address is { } a && _byAddress.TryGetValue(a, out var e) && e.Client == client)
        {
            e.State = state;
            e.Expires = until;
            if (state == State.Declined) e.Client = ""; // the address is someone else's now, whoever that is
        }
        return null;
    }

    private DhcpMessage Reply(DhcpMessage m, DhcpMessageType type, Ipv4Address address) => new()
    {
        Op = DhcpMessage.OpReply,
        Type = type,
        TransactionId = m.TransactionId,
        Flags = m.Flags,
        ClientAddress = m.ClientAddress,
        YourAddress = address,
        ClientMac = m.ClientMac,
        ServerId = settings.ServerAddress,
        LeaseSeconds = (uint)settings.LeaseTime.TotalSeconds,
        SubnetMask = new Ipv4Address(Ipv4Address.MaskOf(settings.PrefixLength)),
        Routers = settings.Router is { } r ? [r] : [],
        DnsServers = settings.DnsServers,
        DomainName = settings.Domain,
        InterfaceMtu = settings.Mtu,
    };
}
