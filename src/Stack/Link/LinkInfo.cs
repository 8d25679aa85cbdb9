namespace NetStack.Link;

/// <summary>
/// How a packet arrived on the link, passed up with it through IPv4 to the transports: the facts a layer above
/// needs and cannot read from its own header. RFC 1122 3.2.2 is the reason it exists: no ICMP error may be sent
/// about a datagram that came in a link-layer broadcast or multicast frame, and that decision is taken several
/// layers up (and, for a reassembly timeout, long after the frame has gone).
/// </summary>
public readonly struct LinkInfo
{
    public LinkInfo(MacAddress source, bool isBroadcast, string interfaceName, bool tcpChecksumPending = false)
    {
        Source = source;
        IsBroadcast = isBroadcast;
        Interface = interfaceName;
        TcpChecksumPending = tcpChecksumPending;
    }

    /// <summary>The frame's source MAC (what ARP confirms a neighbour by).</summary>
    public MacAddress Source { get; }

    /// <summary>The frame went to the link's broadcast address or a multicast group, not to our MAC alone.</summary>
    public bool IsBroadcast { get; }

    /// <summary>The adapter or port it arrived on (the stack has one; named so replies and traces can say which).</summary>
    public string Interface { get; }

    /// <summary>
    /// The frame came from a device that vouches for it with its TCP checksum pending (<see cref="IFrameSink.OnFrameChecksumPending"/>:
    /// the in-memory wire between two stacks of this process, nothing on the way could have altered it): the checksum
    /// field holds only the pseudo-header sum, and TCP takes the segment without verifying it. Never set for a
    /// reassembled datagram.
    /// </summary>
    public bool TcpChecksumPending { get; }
}
