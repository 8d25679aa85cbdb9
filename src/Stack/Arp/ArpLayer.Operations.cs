using System.Buffers;
using NetStack.Link;

namespace NetStack.Arp;

/// <summary>The user's operations on the neighbour cache (static entries, removal, arping, the table) and disposal. Loop only.</summary>
internal sealed partial class ArpLayer
{
    public void AddStatic(Ipv4Address address, MacAddress mac, TimeSpan now)
    {
        if (!mac.IsUnicast) throw new ArgumentException($"{mac} is not a unicast MAC address.", nameof(mac));
        if (address == _context.Config.Address) throw new ArgumentException($"{address} is our own address.", nameof(address));
        if (!_entries.TryGetValue(address, out var e))
        {
            if (_entries.Count >= Settings.MaxEntries && !MakeRoom())
                throw new StackException(StackError.NoBufferSpace, $"The ARP cache is full ({Settings.MaxEntries} entries); remove entries first.");
            e = new Entry { Address = address, LastUsed = now };
            _entries[address] = e;
        }
        e.Mac = mac;
        e.RequestsSent = 0;
        SetState(e, ArpState.Permanent, now);
        FlushPending(e, now);
        CompleteWaiters(e, now);
    }

    public bool Remove(Ipv4Address address, TimeSpan now)
    {
        if (!_entries.Remove(address, out var e)) return false;
        if (e.Pending is { } pending)
            foreach (var (buffer, length) in pending)
            {
                _client?.DropQueued(buffer.AsSpan(Ethernet.HeaderLength, length), StackError.HostUnreachable, now);
                ArrayPool<byte>.Shared.Return(buffer);
            }
        e.Pending = null;
        if (e.Waiters is { } w)
            foreach (var t in w) t.TrySetException(new StackException(StackError.HostUnreachable, $"The ARP entry for {address} was removed while resolving."));
        return true;
    }

    /// <summary>Removes dynamic entries (and static ones too when asked). Returns how many.</summary>
    public int Clear(bool includeStatic, TimeSpan now)
    {
        var victims = _entries.Values.Where(e => includeStatic || e.State != ArpState.Permanent).Select(e => e.Address).ToList();
        foreach (var a in victims) Remove(a, now);
        return victims.Count;
    }

    /// <summary>arping: sends requests now (even for a known address) and completes when the host answers or resolution fails.</summary>
    public Task<ArpEntryInfo> ResolveNow(Ipv4Address address, TimeSpan now)
    {
        var tcs = new TaskCompletionSource<ArpEntryInfo>() /* loop-side: see NetworkStack.InvokeAsync */;
        if (address == _context.Config.Address || !address.IsInSubnet(_context.Config.Address, _context.Config.PrefixLength)
            || !_context.Config.IsUnicastHost(address))
        {
            tcs.SetException(new StackException(StackError.InvalidArgument, $"{address} is not a neighbour on {_context.Config.Address}/{_context.Config.PrefixLength}; ARP resolves on-link host addresses only."));
            return tcs.Task;
        }
        if (_entries.TryGetValue(address, out var e) && e.State == ArpState.Permanent)
        {
            tcs.SetResult(Snapshot(e, now));
            return tcs.Task;
        }
        if (e is null)
        {
            if (!MakeRoom()) { tcs.SetException(new StackException(StackError.NoBufferSpace, "The ARP cache is full.")); return tcs.Task; }
            e = new Entry { Address = address, State = ArpState.Incomplete, Updated = now, LastUsed = now };
            _entries[address] = e;
        }
        else if (e.State == ArpState.Failed) SetState(e, ArpState.Incomplete, now);
        (e.Waiters ??= new()).Add(tcs);
        if (!e.Probing) StartRequests(e, now, unicast: false);
        return tcs.Task;
    }

    public List<ArpEntryInfo> Snapshot(TimeSpan now)
    {
        var list = new List<ArpEntryInfo>(_entries.Count);
        foreach (var e in _entries.Values)
        {
            if (e.State == ArpState.Reachable && now - e.Updated >= Settings.ReachableTime) SetState(e, ArpState.Stale, now);
            list.Add(Snapshot(e, now));
        }
        list.Sort((a, b) => a.IPAddress.CompareTo(b.IPAddress));
        return list;
    }

    private static ArpEntryInfo Snapshot(Entry e, TimeSpan now) =>
        new(e.Address, e.Mac, e.State, now - e.Updated, e.Pending?.Count ?? 0);

    public int Count => _entries.Count;

    public void Dispose()
    {
        foreach (var e in _entries.Values)
        {
            if (e.Pending is { } p) foreach (var (b, _) in p) ArrayPool<byte>.Shared.Return(b);
            e.Pending = null;
            if (e.Waiters is { } w) foreach (var t in w) t.TrySetException(new StackException(StackError.StackStopped, "The stack stopped."));
        }
        _entries.Clear();
    }
}
