
namespace NetStack.Udp;

/// <summary>The loop-side end of a bound UDP port, what <see cref="UdpLayer"/> demultiplexes to (a UdpSocket).</summary>
internal interface IUdpEndpoint
{
    ushort LocalPort { get; }

    /// <summary>Whether a datagram from source to destination belongs here (the bound address, the connected peer).</summary>
    bool Accepts(Ipv4Address source, ushort sourcePort, Ipv4Address destination);

    /// <summary>Takes an arriving datagram (valid only during the call); false when there is no room (counted by the layer).</summary>
    bool Deliver(Ipv4Address source, ushort sourcePort, ReadOnlySpan<byte> data, TimeSpan now);

    /// <summary>An ICMP error (or ARP failure) about a datagram sent from here; returns whether it was taken.</summary>
    bool OnError(StackError error, Ipv4Address destination, ushort destinationPort, Ipv4Address reporter, TimeSpan now);

    /// <summary>The stack stopped: fail whatever waits.</summary>
    void OnStackStopped();
}

/// <summary>A bound UDP port a protocol above UDP speaks through, loop-side (the DNS resolver's query ports, DHCP's port 68).</summary>
internal interface IUdpPort
{
    /// <summary>Sends one datagram from this port; returns None or why it could not go.</summary>
    StackError Send(Ipv4Address remote, ushort remotePort, ReadOnlySpan<byte> data, TimeSpan now);

    /// <summary>Gives the port back (loop side).</summary>
    void Release();
}

/// <summary>Where a protocol above UDP gets its ports.</summary>
internal interface IUdpPorts
{
    /// <summary>
    /// Binds a port picked at random from the ephemeral range (RFC 6056 algorithm 1, as RFC 5452 9.2 asks of DNS)
    /// whose datagrams and errors go to <paramref name="receiver"/>; null when every port is taken.
    /// </summary>
    IUdpPort? OpenRandom(IUdpReceiver receiver, TimeSpan now);

    /// <summary>Binds the well-known <paramref name="port"/> (DHCP's 68) for <paramref name="receiver"/>; null when it is taken.</summary>
    IUdpPort? Open(ushort port, IUdpReceiver receiver, TimeSpan now);
}

/// <summary>Loop-side consumer of a port's datagrams, used instead of a socket's receive queue (the DNS resolver, the DHCP client).</summary>
internal interface IUdpReceiver
{
    void OnUdpDatagram(IUdpPort port, Ipv4Address source, ushort sourcePort, ReadOnlySpan<byte> data, TimeSpan now);

    /// <summary>An ICMP error (or ARP failure) about a datagram the port sent; returns whether it was taken.</summary>
    bool OnUdpError(IUdpPort port, StackError error, Ipv4Address destination, ushort destinationPort, TimeSpan now);
}
