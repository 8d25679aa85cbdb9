using NetStack.Udp;

namespace NetStack.Dhcp;

/// <summary>The DHCP client's side of what arrives: OFFER, ACK, NAK, and the outcome of the ARP probe (RFC 2131 4.4).</summary>
internal sealed partial class DhcpClient
{
    public void OnUdpDatagram(IUdpPort port, Ipv4Address source, ushort sourcePort, ReadOnlySpan<byte> data, TimeSpan now)
    {
        if (!DhcpMessage.TryParse(data, out var m, out var error))
        {
            Counters.DroppedMalformed++;
            _context.Trace("Dhcp", $"dropped a malformed message from {source}: {error}");
            return;
        }
        // RFC 2131 4.4.1: replies are matched to the request by xid, and must name our hardware address.
        if (m.Op != DhcpMessage.OpReply || !m.IsEthernet || m.ClientMac != _mac || m.TransactionId != _xid)
        {
            Counters.DroppedUnexpected++;
            return;
        }
        switch (m.Type)
        {
            case DhcpMessageType.Offer when _state == DhcpState.Selecting:
                OnOffer(m, now);
                break;
            case DhcpMessageType.Ack when _state is DhcpState.Requesting or DhcpState.Renewing or DhcpState.Rebinding:
                OnAck(m, now);
                break;
            case DhcpMessageType.Nak when _state is DhcpState.Requesting or DhcpState.Renewing or DhcpState.Rebinding:
                OnNak(m, source, now);
                break;
            default:
                Counters.DroppedUnexpected++;
                break;
        }
    }

    public bool OnUdpError(IUdpPort port, StackError error, Ipv4Address destination, ushort destinationPort, TimeSpan now)
    {
        // An ICMP error about a REQUEST to the server (port unreachable...): the timers carry on, to rebinding if need be.
        _context.Trace("Dhcp", $"{destination}:{destinationPort} reported {error}");
        return true;
    }

    /// <summary>What makes an address one we can take: a unicast host address inside the subnet the mask gives.</summary>
    private static string? WhyNotUsable(DhcpMessage m, int prefix)
    {
        var a = m.YourAddress;
        if (!a.IsUnicast) return $"{a} is not a host address";
        var host = a.Value & ~Ipv4Address.MaskOf(prefix);
        if (prefix is < 1 or > 30 || host == 0 || host == ~Ipv4Address.MaskOf(prefix)) return $"{a}/{prefix} is not a host address on its subnet";
        if (m.ServerId is null) return "it names no server (option 54)";
        return null;
    }

    /// <summary>The prefix from the subnet mask option; without one, the address's class (RFC 2131 leaves it to the client).</summary>
    private static int PrefixOf(DhcpMessage m) =>
        m.PrefixLength ?? (m.YourAddress.Value >> 30 == 0b10 ? 16 : m.YourAddress.Value >> 31 == 0 ? 8 : 24);

    private void OnOffer(DhcpMessage m, TimeSpan now)
    {
        Counters.OffersReceived++;
        if (WhyNotUsable(m, PrefixOf(m)) is { } why)
        {
            Counters.DroppedInvalidLease++;
            _context.Trace("Dhcp", $"DHCPOFFER of {m.YourAddress} refused: {why}");
            return;
        }
        _context.Trace("Dhcp", $"DHCPOFFER of {m.YourAddress}/{PrefixOf(m)} from {m.ServerId} (lease {m.LeaseSeconds?.ToString() ?? "?"} s)");
        _offer = m;
        _sent = 0;
        SetState(DhcpState.Requesting, TimeSpan.MaxValue);
        SendSelectingRequest(now);
    }

    private void OnAck(DhcpMessage m, TimeSpan now)
    {
        // REQUESTING: the server we chose; RENEWING: ours; REBINDING: any (it may take the lease over).
        var expected = _state == DhcpState.Requesting ? _offer!.ServerId : _state == DhcpState.Renewing ? _lease.Server : null;
        if (expected is { } server && m.ServerId is { } from && from != server)
        {
            Counters.DroppedUnexpected++;
            return;
        }
        Counters.AcksReceived++;
        var prefix = PrefixOf(m);
        var why = WhyNotUsable(m, prefix)
            ?? (m.LeaseSeconds is null ? "it has no lease time (option 51)" : null)
            ?? (_state != DhcpState.Requesting && m.YourAddress != _lease.Address ? $"it is for {m.YourAddress}, not our {_lease.Address}" : null);
        if (why != null)
        {
            Counters.DroppedInvalidLease++;
            _context.Trace("Dhcp", $"DHCPACK for {m.YourAddress} refused: {why}");
            return;
        }
        if (_state == DhcpState.Requesting && Settings.ConflictProbes > 0)
        {
            _ack = m;
            SetState(DhcpState.Probing, TimeSpan.MaxValue);
            _context.Trace("Dhcp", $"DHCPACK for {m.YourAddress} from {m.ServerId}: probing it with ARP before use (RFC 5227)");
            _arp.Probe(m.YourAddress, Settings.ConflictProbes, this, now);
            return;
        }
        Bind(m, now);
    }

    public void OnProbeDone(Ipv4Address candidate, MacAddress? owner, TimeSpan now)
    {
        if (_state != DhcpState.Probing || _ack is not { } ack || candidate != ack.YourAddress) return;
        if (owner is null)
        {
            Bind(ack, now);
            return;
        }
        // RFC 2131 3.1.5 and 4.4.1: the address is in use: DECLINE it, and start over after at least ten seconds.
        var m = NewMessage(DhcpMessageType.Decline, now);
        m.RequestedAddress = candidate;
        m.ServerId = ack.ServerId;
        m.ParameterList = [];
        m.Message = $"address in use by {owner}";
        Send(m, Ipv4Address.Broadcast, now);
        Counters.DeclinesSent++;
        _context.Trace("Dhcp", $"DHCPDECLINE {candidate}: {owner} answers for it; starting over in {DeclineWait.TotalSeconds:0} s");
        _ack = null;
        _offer = null;
        SetState(DhcpState.Init, now + DeclineWait);
    }

    private void OnNak(DhcpMessage m, Ipv4Address source, TimeSpan now)
    {
        var expected = _state == DhcpState.Requesting ? _offer!.ServerId : _state == DhcpState.Renewing ? _lease.Server : null;
        if (expected is { } server && (m.ServerId ?? source) != server)
        {
            Counters.DroppedUnexpected++;
            return;
        }
        Counters.NaksReceived++;
        _naksInARow++;
        _context.Trace("Dhcp", $"DHCPNAK from {m.ServerId ?? source}{(m.Message is { } text ? $" ('{text}')" : "")}: starting over (RFC 2131 3.1.4)");
        if (_lease.Address is { } address)
        {
            _iface.Remove($"the DHCP server refused the lease on {address} (NAK)", now);
            _lease = new DhcpLease();
        }
        _previous = null;
        // Straight back to DISCOVER the first time; a server that keeps refusing is asked less and less often.
        var wait = _naksInARow <= 1 ? TimeSpan.Zero : TimeSpan.FromSeconds(Math.Min(DhcpBackoff.MaxInterval.TotalSeconds, 1 << Math.Min(_naksInARow - 2, 6)));
        if (wait == TimeSpan.Zero) BeginDiscover(now);
        else SetState(DhcpState.Init, now + wait);
    }

    /// <summary>Takes the lease: the interface gets its address (announced by ARP when new), the timers start (RFC 2131 4.4.1, 4.4.5).</summary>
    private void Bind(DhcpMessage m, TimeSpan now)
    {
        var renewed = _state is DhcpState.Renewing or DhcpState.Rebinding;
        var prefix = PrefixOf(m);
        var seconds = m.LeaseSeconds!.Value;
        var infinite = seconds == uint.MaxValue;
        var leaseTime = TimeSpan.FromSeconds(seconds);
        var (t1, t2) = DhcpBackoff.Timers(leaseTime, m.RenewalSeconds, m.RebindingSeconds);
        var start = _requestedAt; // RFC 2131 4.4.1: the lease runs from when the request was sent
        Ipv4Address? router = m.Routers.Where(r => r.IsInSubnet(m.YourAddress, prefix) && r != m.YourAddress && r.IsUnicast).Select(r => (Ipv4Address?)r).FirstOrDefault();
        int? mtu = m.InterfaceMtu is { } offered && offered >= 576 ? Math.Min(offered, _iface.LinkMtu) : null;
        var isNew = _lease.Address != m.YourAddress;
        _lease = new DhcpLease
        {
            State = DhcpState.Bound,
            Address = m.YourAddress,
            PrefixLength = prefix,
            Server = m.ServerId,
            Router = router,
            DnsServers = m.DnsServers.Where(d => d.IsUnicast).ToArray(),
            DomainName = m.DomainName,
            SearchList = m.SearchList,
            Mtu = mtu,
            LeaseTime = leaseTime,
            Obtained = start,
            Renewal = infinite ? null : start + t1,
            Rebinding = infinite ? null : start + t2,
            Expiry = infinite ? null : start + leaseTime,
        };
        _iface.Apply(_lease, now);
        if (isNew) _arp.Announce(m.YourAddress, now);
        _ack = null;
        _naksInARow = 0;
        _previous = m.YourAddress;
        if (renewed) Counters.LeasesExtended++;
        else Counters.LeasesObtained++;
        SetState(DhcpState.Bound, TimeSpan.MaxValue);
        _context.Trace("Dhcp", $"{(renewed ? "renewed" : "bound")}: {m.YourAddress}/{prefix} from {m.ServerId}, lease {(infinite ? "infinite" : $"{seconds} s, T1 in {t1.TotalSeconds:0} s, T2 in {t2.TotalSeconds:0} s")}" +
            $"{(router is { } r ? $", router {r}" : "")}{(_lease.DnsServers.Count > 0 ? $", DNS {string.Join(' ', _lease.DnsServers)}" : "")}" +
            $"{(m.DomainName is { } d ? $", domain {d}" : "")}{(mtu is { } u ? $", MTU {u}" : "")}");
        foreach (var w in _waiters) w.TrySetResult(_published);
        _waiters.Clear();
    }
}
