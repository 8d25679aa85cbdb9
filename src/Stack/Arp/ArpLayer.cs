using System.Buffers;
using NetStack.Link;

namespace NetStack.Arp;

/// <summary>States of a neighbour entry, named as Get-NetNeighbor names them.</summary>
public enum ArpState
{
    /// <summary>Resolution under way: requests sent, no reply yet; datagrams wait in the entry's queue.</summary>
    Incomplete,
    /// <summary>Confirmed recently (within ReachableTime).</summary>
    Reachable,
    /// <summary>Known but not confirmed lately; used as is, and re-probed when used.</summary>
    Stale,
    /// <summary>Static: never ages, never replaced by what the wire says.</summary>
    Permanent,
    /// <summary>Resolution failed; senders get "host unreachable" until the entry is forgotten.</summary>
    Failed,
}

/// <summary>An ARP cache entry as the loop saw it at snapshot time.</summary>
public sealed record ArpEntryInfo(Ipv4Address IPAddress, MacAddress LinkLayerAddress, ArpState State, TimeSpan Age, int PendingDatagrams);

public sealed class ArpCounters : LayerCounters
{
    public override string Layer => "Arp";
    public long RequestsReceived;
    public long RepliesReceived;
    public long RequestsSent;
    public long RepliesSent;
    public long GratuitousSent;
    public long Resolved;
    public long ResolutionFailures;
    public long DroppedMalformed;
    public long DroppedNotForUs;
    public long DroppedCacheFull;
    public long DroppedPendingOverflow;
    public long PendingFlushed;
    /// <summary>RFC 5227 probes sent for an address being acquired (DHCP), and conflicts they found.</summary>
    public long ProbesSent;
    public long Conflicts;
}

/// <summary>
/// ARP (RFC 826) and the neighbour cache it keeps, with Linux-like states. Below it: the link
/// (<see cref="ILinkOutput"/>). Above it: IPv4, which resolves through <see cref="INeighbourResolver"/> and
/// registers as the <see cref="INeighbourClient"/> that gets queued datagrams back. Loop-thread only.
/// </summary>
internal sealed partial class ArpLayer : ILinkProtocolHandler, INeighbourResolver
{
    private sealed class Entry
    {
        public Ipv4Address Address;
        public MacAddress Mac;
        public ArpState State;
        /// <summary>Last time the entry was confirmed or changed state (Age is measured from here).</summary>
        public TimeSpan Updated;
        public TimeSpan LastUsed;
        /// <summary>Requests sent in the current resolution or probe; 0 when none is running.</summary>
        public int RequestsSent;
        public TimeSpan NextRequestAt;
        /// <summary>Datagrams waiting for resolution, each in a pooled buffer with 14 bytes of room in front for the Ethernet header.</summary>
        public List<(byte[] Buffer, int Length)>? Pending;
        public List<TaskCompletionSource<ArpEntryInfo>>? Waiters;
        public bool Probing => RequestsSent > 0;
    }

    private readonly LayerContext _context;
    private readonly ILinkOutput _link;
    private INeighbourClient? _client;
    private readonly Dictionary<Ipv4Address, Entry> _entries = new();
    private readonly byte[] _frame = new byte[Ethernet.HeaderLength + ArpPacket.Length];
    private TimeSpan _nextDeadline = TimeSpan.MaxValue;

    public ArpLayer(LayerContext context, ILinkOutput link)
    {
        _context = context;
        _link = link;
    }

    /// <summary>The layer whose datagrams wait in the cache's queues (IPv4).</summary>
    public void Register(INeighbourClient client) => _client = client;

    public ArpCounters Counters { get; } = new();
    private ArpSettings Settings => _context.Config.Arp;

    /// <summary>Looks up the MAC for an on-link next hop to send to.</summary>
    /// <returns>Sent: <paramref name="mac"/> is valid. Pending: the datagram was queued. Otherwise the error.</returns>
    public StackError Resolve(Ipv4Address nextHop, out MacAddress mac, TimeSpan now)
    {
        mac = default;
        if (_entries.TryGetValue(nextHop, out var e))
        {
            e.LastUsed = now;
            switch (e.State)
            {
                case ArpState.Permanent:
                    mac = e.Mac;
                    return StackError.None;
                case ArpState.Reachable:
                    if (now - e.Updated < Settings.ReachableTime) { mac = e.Mac; return StackError.None; }
                    SetState(e, ArpState.Stale, now);
                    goto case ArpState.Stale;
                case ArpState.Stale:
                    // A stale entry in use is re-probed with unicast requests; meanwhile it is used as is.
                    if (!e.Probing) StartRequests(e, now, unicast: true);
                    mac = e.Mac;
                    return StackError.None;
                case ArpState.Incomplete:
                    return StackError.NoBufferSpace; // caller queues with Queue
                case ArpState.Failed:
                    return StackError.HostUnreachable;
            }
        }
        if (!MakeRoom()) { Counters.DroppedCacheFull++; return StackError.NoBufferSpace; }
        e = new Entry { Address = nextHop, State = ArpState.Incomplete, Updated = now, LastUsed = now };
        _entries[nextHop] = e;
        _context.Trace("Arp", $"{nextHop} not in cache; resolving");
        StartRequests(e, now, unicast: false);
        return StackError.NoBufferSpace;
    }

    /// <summary>True when the address is being resolved (a Queue will hold the datagram).</summary>
    public bool IsIncomplete(Ipv4Address nextHop) => _entries.TryGetValue(nextHop, out var e) && e.State == ArpState.Incomplete;

    /// <summary>
    /// Holds an IP datagram until the next hop resolves; false when the address is not being resolved. A full queue
    /// drops its oldest datagram (counted) and keeps this one: RFC 1122 2.3.2.2, the link layer SHOULD save at least
    /// the latest packet for an unresolved address (as Linux's arp_queue does), so a burst of other traffic to the
    /// neighbour (the RSTs answering a departed stack's peer) never refuses the sender that comes last.
    /// </summary>
    public bool Queue(Ipv4Address nextHop, ReadOnlySpan<byte> datagram)
    {
        if (!_entries.TryGetValue(nextHop, out var e) || e.State != ArpState.Incomplete) return false;
        e.Pending ??= new List<(byte[], int)>();
        if (e.Pending.Count >= Settings.PendingPerAddress)
        {
            ArrayPool<byte>.Shared.Return(e.Pending[0].Buffer);
            e.Pending.RemoveAt(0);
            Counters.DroppedPendingOverflow++;
        }
        var buffer = ArrayPool<byte>.Shared.Rent(Ethernet.HeaderLength + datagram.Length);
        datagram.CopyTo(buffer.AsSpan(Ethernet.HeaderLength));
        e.Pending.Add((buffer, datagram.Length));
        return true;
    }

    /// <summary>Handles an ARP packet (the Ethernet payload).</summary>
    public void OnPacket(ReadOnlySpan<byte> packet, in LinkInfo link, TimeSpan now)
    {
        if (!ArpPacket.IsValid(packet)) { Counters.DroppedMalformed++; return; }
        var op = ArpPacket.Operation(packet);
        var sha = ArpPacket.SenderHardware(packet);
        var spa = ArpPacket.SenderProtocol(packet);
        var tpa = ArpPacket.TargetProtocol(packet);
        if (op is not (ArpPacket.OpRequest or ArpPacket.OpReply) || !sha.IsUnicast)
        {
            Counters.DroppedMalformed++;
            return;
        }
        if (op == ArpPacket.OpRequest) Counters.RequestsReceived++; else Counters.RepliesReceived++;
        WatchForConflict(op, sha, spa, tpa, now);

        var us = _context.Config.Address;
        if (us.IsUnspecified)
        {
            // No address yet (DHCP at work): nothing is for us, and nothing is learned (RFC 5227 2.1.1 probes only listen).
            Counters.DroppedNotForUs++;
            return;
        }
        if (spa == us)
        {
            // Someone else claims our address (or our own gratuitous ARP came back); never learn it.
            if (sha != _link.Address) _context.Trace("Arp", $"address conflict: {sha} claims {us}");
            Counters.DroppedNotForUs++;
            return;
        }

        // RFC 826 merge: update the sender if known; add it if we are the target.
        var merged = false;
        if (!spa.IsUnspecified && _entries.TryGetValue(spa, out var e))
        {
            Confirm(e, sha, now);
            merged = true;
        }
        if (tpa != us)
        {
            if (!merged) Counters.DroppedNotForUs++;
            return;
        }
        if (!merged && !spa.IsUnspecified && spa.IsInSubnet(us, _context.Config.PrefixLength))
        {
            if (MakeRoom())
            {
                e = new Entry { Address = spa, Mac = sha, State = ArpState.Reachable, Updated = now, LastUsed = now };
                _entries[spa] = e;
                _context.Trace("Arp", $"learned {spa} is-at {sha}");
                Reschedule(now + Settings.ReachableTime);
            }
            else Counters.DroppedCacheFull++;
        }
        if (op == ArpPacket.OpRequest)
        {
            _context.Trace("Arp", $"who-has {us} tell {spa}: replying {_link.Address}");
            Send(ArpPacket.OpReply, sha, sha, spa, now);
            Counters.RepliesSent++;
        }
    }

    /// <summary>Traffic from a neighbour (its MAC matching the entry) confirms it is still there.</summary>
    public void Confirm(Ipv4Address address, MacAddress mac, TimeSpan now)
    {
        if (_entries.TryGetValue(address, out var e) && e.Mac == mac && e.State is ArpState.Reachable or ArpState.Stale)
        {
            if (e.State == ArpState.Stale) SetState(e, ArpState.Reachable, now);
            e.Updated = now;
            e.RequestsSent = 0;
        }
    }

    private void Confirm(Entry e, MacAddress mac, TimeSpan now)
    {
        if (e.State == ArpState.Permanent) return;
        var was = e.State;
        if (e.Mac != mac && was != ArpState.Incomplete) _context.Trace("Arp", $"{e.Address} moved from {e.Mac} to {mac}");
        e.Mac = mac;
        e.RequestsSent = 0;
        SetState(e, ArpState.Reachable, now);
        Reschedule(now + Settings.ReachableTime);
        if (was is ArpState.Incomplete or ArpState.Failed)
        {
            Counters.Resolved++;
            _context.Trace("Arp", $"{e.Address} is-at {mac}");
        }
        FlushPending(e, now);
        CompleteWaiters(e, now);
    }

    private void FlushPending(Entry e, TimeSpan now)
    {
        if (e.Pending is not { Count: > 0 } pending) return;
        e.Pending = null;
        foreach (var (buffer, length) in pending)
        {
            // Through IPv4's emit, so a datagram larger than the MTU leaves fragmented like any other.
            _client?.SendQueued(buffer.AsSpan(0, Ethernet.HeaderLength + length), e.Mac, now);
            ArrayPool<byte>.Shared.Return(buffer);
            Counters.PendingFlushed++;
        }
    }

    private void CompleteWaiters(Entry e, TimeSpan now)
    {
        if (e.Waiters is not { } waiters) return;
        e.Waiters = null;
        var info = Snapshot(e, now);
        foreach (var w in waiters)
        {
            if (e.State == ArpState.Failed)
                w.TrySetException(new StackException(StackError.HostUnreachable, $"No ARP reply from {e.Address} after {Settings.MaxRequests} requests: host unreachable."));
            else w.TrySetResult(info);
        }
    }

    /// <summary>Runs due timers; returns the next deadline.</summary>
    public TimeSpan? Poll(TimeSpan now)
    {
        if (now < _nextDeadline) return _nextDeadline == TimeSpan.MaxValue ? null : _nextDeadline;
        var next = PollConflictDetection(now);
        List<Ipv4Address>? remove = null;
        foreach (var e in _entries.Values)
        {
            TimeSpan due;
            if (e.Probing)
            {
                if (now >= e.NextRequestAt)
                {
                    if (e.RequestsSent >= Settings.MaxRequests) Fail(e, now);
                    else SendRequest(e, now, unicast: e.State != ArpState.Incomplete);
                }
                due = e.Probing ? e.NextRequestAt : TimeSpan.MaxValue;
                if (!e.Probing && e.State == ArpState.Failed) due = e.Updated + Settings.FailedHoldTime;
            }
            else switch (e.State)
            {
                case ArpState.Reachable:
                    due = e.Updated + Settings.ReachableTime;
                    if (now >= due) { SetState(e, ArpState.Stale, now); due = now + Settings.StaleTimeout; }
                    break;
                case ArpState.Stale:
                    due = e.LastUsed > e.Updated ? e.LastUsed + Settings.StaleTimeout : e.Updated + Settings.StaleTimeout;
                    if (now >= due) { (remove ??= new()).Add(e.Address); due = TimeSpan.MaxValue; }
                    break;
                case ArpState.Failed:
                    due = e.Updated + Settings.FailedHoldTime;
                    if (now >= due) { (remove ??= new()).Add(e.Address); due = TimeSpan.MaxValue; }
                    break;
                default:
                    due = TimeSpan.MaxValue;
                    break;
            }
            if (due < next) next = due;
        }
        if (remove != null) foreach (var a in remove) _entries.Remove(a);
        _nextDeadline = next;
        return next == TimeSpan.MaxValue ? null : next;
    }

    private void Fail(Entry e, TimeSpan now)
    {
        e.RequestsSent = 0;
        if (e.State is ArpState.Reachable or ArpState.Stale or ArpState.Incomplete)
        {
            Counters.ResolutionFailures++;
            _context.Trace("Arp", $"no reply from {e.Address} after {Settings.MaxRequests} requests: host unreachable");
            SetState(e, ArpState.Failed, now);
        }
        if (e.Pending is { } pending)
        {
            e.Pending = null;
            foreach (var (buffer, length) in pending)
            {
                _client?.DropQueued(buffer.AsSpan(Ethernet.HeaderLength, length), StackError.HostUnreachable, now);
                ArrayPool<byte>.Shared.Return(buffer);
            }
        }
        CompleteWaiters(e, now);
    }

    private void StartRequests(Entry e, TimeSpan now, bool unicast)
    {
        e.RequestsSent = 0;
        SendRequest(e, now, unicast);
    }

    private void SendRequest(Entry e, TimeSpan now, bool unicast)
    {
        var dst = unicast && !e.Mac.IsZero ? e.Mac : MacAddress.Broadcast;
        _context.Trace("Arp", $"who-has {e.Address} tell {_context.Config.Address}{(unicast ? " (probe)" : "")}");
        Send(ArpPacket.OpRequest, dst, MacAddress.Zero, e.Address, now);
        Counters.RequestsSent++;
        e.RequestsSent++;
        e.NextRequestAt = now + Settings.RetransmitInterval;
        Reschedule(e.NextRequestAt);
    }

    /// <summary>Announces our address (gratuitous ARP: a request for ourselves).</summary>
    public void SendGratuitous(TimeSpan now)
    {
        Send(ArpPacket.OpRequest, MacAddress.Broadcast, MacAddress.Zero, _context.Config.Address, now);
        Counters.GratuitousSent++;
        _context.Trace("Arp", $"gratuitous ARP: {_context.Config.Address} is-at {_link.Address}");
    }

    private void Send(ushort op, MacAddress frameDestination, MacAddress targetMac, Ipv4Address targetIp, TimeSpan now) =>
        Send(op, frameDestination, targetMac, targetIp, now, _context.Config.Address);

    private void Send(ushort op, MacAddress frameDestination, MacAddress targetMac, Ipv4Address targetIp, TimeSpan now, Ipv4Address senderIp)
    {
        var f = _frame.AsSpan();
        ArpPacket.Write(f[Ethernet.HeaderLength..], op, _link.Address, senderIp, targetMac, targetIp);
        _link.Send(f, frameDestination, Ethernet.TypeArp, now);
    }

    private void SetState(Entry e, ArpState state, TimeSpan now)
    {
        e.State = state;
        e.Updated = now;
    }

    private void Reschedule(TimeSpan at)
    {
        if (at < _nextDeadline) _nextDeadline = at;
    }

    /// <summary>Frees a slot when the cache is full by forgetting the least recently used dynamic, settled entry.</summary>
    private bool MakeRoom()
    {
        if (_entries.Count < Settings.MaxEntries) return true;
        Entry? victim = null;
        foreach (var e in _entries.Values)
            if (e.State is ArpState.Stale or ArpState.Failed or ArpState.Reachable && e.Pending is null && e.Waiters is null
                && (victim is null || e.LastUsed < victim.LastUsed))
                victim = e;
        if (victim is null) return false;
        _entries.Remove(victim.Address);
        return true;
    }
}
