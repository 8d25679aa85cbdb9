namespace NetStack.Arp;

/// <summary>What IPv4 sees of ARP: resolve a next hop, queue a datagram until it resolves, confirm a neighbour.</summary>
internal interface INeighbourResolver
{
    /// <summary>Looks up the MAC of an on-link next hop.</summary>
    /// <returns>None: <paramref name="mac"/> is valid. HostUnreachable: resolution failed lately. Otherwise resolution
    /// is under way (or the cache is full): <see cref="Queue"/> the datagram.</returns>
    StackError Resolve(Ipv4Address nextHop, out MacAddress mac, TimeSpan now);

    /// <summary>
    /// Holds a datagram (IP header and payload) until <paramref name="nextHop"/> resolves; the registered
    /// <see cref="INeighbourClient"/> gets it back then. False (counted) when the queue is full or nothing resolves.
    /// </summary>
    bool Queue(Ipv4Address nextHop, ReadOnlySpan<byte> datagram);

    /// <summary>Traffic from <paramref name="address"/> with a matching MAC confirms the neighbour is still there.</summary>
    void Confirm(Ipv4Address address, MacAddress mac, TimeSpan now);
}

/// <summary>The layer above ARP (IPv4), which gets its queued datagrams back: sent once resolved, or reported as failed.</summary>
internal interface INeighbourClient
{
    /// <summary>A queued datagram's next hop resolved to <paramref name="mac"/>; the datagram is at frame[14..].</summary>
    void SendQueued(Span<byte> frame, MacAddress mac, TimeSpan now);

    /// <summary>A queued datagram cannot go (ARP gave up or the entry was removed): tell its sender.</summary>
    void DropQueued(ReadOnlySpan<byte> datagram, StackError error, TimeSpan now);
}
