using NetStack.Link;

namespace NetStack.Arp;

/// <summary>Hears how probing an address ended (the DHCP client).</summary>
internal interface IAddressProbeClient
{
    /// <summary>
    /// Probing <paramref name="candidate"/> ended: <paramref name="owner"/> is the MAC of a host that has it or probes
    /// for it too (a conflict: do not use it), or null when nobody objected and the address may be used (announced).
    /// </summary>
    void OnProbeDone(Ipv4Address candidate, MacAddress? owner, TimeSpan now);
}

/// <summary>What a host taking an address at run time (DHCP) needs from ARP: RFC 5227 conflict detection and announcement.</summary>
internal interface IAddressProbe
{
    /// <summary>Probes <paramref name="candidate"/> (RFC 5227 2.1.1) with <paramref name="probes"/> probes; the outcome goes to <paramref name="client"/>.</summary>
    void Probe(Ipv4Address candidate, int probes, IAddressProbeClient client, TimeSpan now);

    /// <summary>Stops a probe in progress (its client hears nothing more).</summary>
    void CancelProbe();

    /// <summary>Announces that <paramref name="address"/> is now ours (RFC 5227 2.3), twice, two seconds apart.</summary>
    void Announce(Ipv4Address address, TimeSpan now);

    /// <summary>ARPs for <paramref name="address"/> now; completes with its entry or fails with HostUnreachable.</summary>
    Task<ArpEntryInfo> ResolveNow(Ipv4Address address, TimeSpan now);
}

/// <summary>
/// RFC 5227 IPv4 address conflict detection: probes (ARP requests from 0.0.0.0 for the candidate) PROBE_WAIT then
/// PROBE_MIN..PROBE_MAX apart, a conflict being any ARP packet from the candidate address or another host's probe for
/// it until ANNOUNCE_WAIT after the last probe (2.1.1); then announcements (2.3). One probe at a time. Loop only.
/// </summary>
internal sealed partial class ArpLayer : IAddressProbe
{
    // RFC 5227 1.1 constants.
    private static readonly TimeSpan ProbeWait = TimeSpan.FromSeconds(1), ProbeMin = TimeSpan.FromSeconds(1), ProbeMax = TimeSpan.FromSeconds(2),
        AnnounceWait = TimeSpan.FromSeconds(2), AnnounceInterval = TimeSpan.FromSeconds(2);
    private const int AnnounceNum = 2;

    private sealed class ProbeRun
    {
        public required Ipv4Address Candidate;
        public required int Probes;
        public required IAddressProbeClient Client;
        public int Sent;
        public TimeSpan Due;
    }

    private ProbeRun? _probe;
    private Ipv4Address _announcing;
    private int _announcementsLeft;
    private TimeSpan _announceDue = TimeSpan.MaxValue;

    public void Probe(Ipv4Address candidate, int probes, IAddressProbeClient client, TimeSpan now)
    {
        // A zero probe count still waits ANNOUNCE_WAIT-free: the candidate is claimed at once.
        _probe = new ProbeRun { Candidate = candidate, Probes = probes, Client = client, Due = now + Uniform(TimeSpan.Zero, ProbeWait) };
        if (probes == 0) _probe.Due = now;
        Reschedule(_probe.Due);
    }

    public void CancelProbe() => _probe = null;

    public void Announce(Ipv4Address address, TimeSpan now)
    {
        _announcing = address;
        _announcementsLeft = AnnounceNum;
        _announceDue = now;
        Reschedule(now);
    }

    private TimeSpan Uniform(TimeSpan min, TimeSpan max) => min + (max - min) * _context.Random.NextDouble();

    /// <summary>Sends the probes and announcements due; returns the next deadline (MaxValue: none).</summary>
    private TimeSpan PollConflictDetection(TimeSpan now)
    {
        if (_probe is { } p && now >= p.Due)
        {
            if (p.Sent < p.Probes)
            {
                _context.Trace("Arp", $"probe {p.Sent + 1}/{p.Probes}: who-has {p.Candidate} tell 0.0.0.0 (RFC 5227)");
                Send(ArpPacket.OpRequest, MacAddress.Broadcast, MacAddress.Zero, p.Candidate, now, Ipv4Address.Any);
                Counters.ProbesSent++;
                p.Sent++;
                p.Due = now + (p.Sent < p.Probes ? Uniform(ProbeMin, ProbeMax) : AnnounceWait);
            }
            else
            {
                _probe = null;
                _context.Trace("Arp", $"no answer to {p.Probes} probes for {p.Candidate}: the address is free");
                p.Client.OnProbeDone(p.Candidate, null, now);
            }
        }
        if (_announcementsLeft > 0 && now >= _announceDue)
        {
            Send(ArpPacket.OpRequest, MacAddress.Broadcast, MacAddress.Zero, _announcing, now, _announcing);
            Counters.GratuitousSent++;
            _context.Trace("Arp", $"announcement: {_announcing} is-at {_link.Address} (RFC 5227 2.3)");
            _announceDue = --_announcementsLeft > 0 ? now + AnnounceInterval : TimeSpan.MaxValue;
        }
        var next = _probe?.Due ?? TimeSpan.MaxValue;
        return _announceDue < next ? _announceDue : next;
    }

    /// <summary>
    /// RFC 5227 2.1.1: while probing, an ARP packet whose sender is the candidate (it is in use), or another host's
    /// probe for it (someone else wants it), is a conflict.
    /// </summary>
    private void WatchForConflict(ushort op, MacAddress sha, Ipv4Address spa, Ipv4Address tpa, TimeSpan now)
    {
        if (_probe is not { } p || sha == _link.Address) return;
        var inUse = spa == p.Candidate;
        var rivalProbe = op == ArpPacket.OpRequest && spa.IsUnspecified && tpa == p.Candidate;
        if (!inUse && !rivalProbe) return;
        _probe = null;
        Counters.Conflicts++;
        _context.Trace("Arp", $"conflict: {sha} {(inUse ? "has" : "is probing for")} {p.Candidate} (RFC 5227 2.1.1)");
        p.Client.OnProbeDone(p.Candidate, sha, now);
    }
}
