using NetStack.Link;

namespace NetStack.IPv4;

/// <summary>What a transport needs to know about an arriving datagram, passed by reference (a ref struct: it may carry the datagram's span).</summary>
public readonly ref struct IpDatagramInfo
{
    public IpDatagramInfo(Ipv4Address source, Ipv4Address destination, bool isUnicast, IpProtocol protocol, byte ttl, byte tos, in LinkInfo link,
        ReadOnlySpan<byte> datagram = default)
    {
        IsUnicast = isUnicast;
        Datagram = datagram;
        Source = source;
        Destination = destination;
        Protocol = protocol;
        Ttl = ttl;
        Tos = tos;
        Link = link;
    }

    public Ipv4Address Source { get; }
    public Ipv4Address Destination { get; }
    public IpProtocol Protocol { get; }
    public byte Ttl { get; }
    public byte Tos { get; }
    /// <summary>How it arrived on the link (for a reassembled datagram: the last fragment's source, broadcast if any fragment was).</summary>
    public LinkInfo Link { get; }
    /// <summary>
    /// The whole datagram (IP header and payload) as delivered, valid only during the call: what an ICMP error
    /// about it must quote (e.g. UDP's port unreachable). Empty when the deliverer did not supply it.
    /// </summary>
    public ReadOnlySpan<byte> Datagram { get; }
    /// <summary>
    /// Sent to our own address, not to a broadcast (limited or subnet) or a multicast group: what TCP accepts (RFC 9293
    /// 3.9.1) and what an echo request must be for an answer (RFC 1122 3.2.2.6).
    /// </summary>
    public bool IsUnicast { get; }
}

/// <summary>An error concerning a datagram we sent: an ICMP error received, or a local failure (ARP gave up).</summary>
public readonly struct IpErrorInfo
{
    public IpErrorInfo(StackError error, byte icmpType, byte icmpCode, Ipv4Address reporter, int nextHopMtu, bool isLocal)
    {
        Error = error;
        IcmpType = icmpType;
        IcmpCode = icmpCode;
        Reporter = reporter;
        NextHopMtu = nextHopMtu;
        IsLocal = isLocal;
    }

    public StackError Error { get; }
    public byte IcmpType { get; }
    public byte IcmpCode { get; }
    /// <summary>Who reported it (the ICMP sender; our own address for local errors).</summary>
    public Ipv4Address Reporter { get; }
    /// <summary>For "fragmentation needed" (type 3 code 4): the next-hop MTU (RFC 1191); 0 otherwise.</summary>
    public int NextHopMtu { get; }
    public bool IsLocal { get; }
    /// <summary>Hard errors end a connection attempt; soft ones (e.g. host unreachable during SYN retries) are recorded (RFC 1122 4.2.3.9).</summary>
    public bool IsHard => Error is StackError.PortUnreachable or StackError.ProtocolUnreachable;
}

/// <summary>What a transport did with a datagram: taken (delivered, or dropped and counted), or why not.</summary>
internal enum TransportDisposition
{
    /// <summary>The transport took it: delivered, or dropped and counted by the transport itself.</summary>
    Delivered,
    /// <summary>No socket listens on its port: the network layer answers with ICMP port unreachable (RFC 1122 4.1.3.1).</summary>
    PortUnreachable,
    /// <summary>No transport for its protocol: ICMP protocol unreachable (RFC 1122 3.2.2.1). Set by IPv4 itself.</summary>
    ProtocolUnreachable,
}

/// <summary>A transport protocol registered with the IPv4 layer (ICMP, UDP, TCP): its upcalls.</summary>
internal interface IIpProtocolHandler
{
    /// <summary>
    /// A datagram for us; <paramref name="payload"/> is the IP payload, valid only during the call. Returns what
    /// could not be delivered; the network layer, not the transport, sends the ICMP error that follows.
    /// </summary>
    TransportDisposition OnDatagram(in IpDatagramInfo info, ReadOnlySpan<byte> payload, TimeSpan now);

    /// <summary>An error about a datagram we sent; <paramref name="original"/> is its IP header and at least 8 bytes of payload.</summary>
    void OnError(in IpErrorInfo error, ReadOnlySpan<byte> original, TimeSpan now);
}

/// <summary>What a transport sends through: the IP layer's payload buffer and its send. Loop-thread only.</summary>
internal interface IIpOutput
{
    /// <summary>Where a transport writes the payload of its next datagram; valid until <see cref="Send"/>.</summary>
    Span<byte> PayloadBuffer { get; }

    /// <summary>
    /// As <see cref="PayloadBuffer"/>, for a payload of at most <paramref name="maxPayloadLength"/> bytes (the span's
    /// length): in the device's own buffer when it lends one that large (<see cref="ILinkOutput.LendFrame"/>), so the
    /// datagram leaves without a copy; otherwise in the IP layer's. Valid until <see cref="Send"/>.
    /// </summary>
    Span<byte> PayloadBufferFor(int maxPayloadLength);

    /// <summary>The IP MTU in use (a datagram above it leaves fragmented, or not at all with DF).</summary>
    int Mtu { get; }

    /// <summary>
    /// Sends the <paramref name="payloadLength"/> bytes written at <see cref="PayloadBuffer"/> (or <see cref="PayloadBufferFor"/>) to
    /// <paramref name="destination"/>. Returns None when sent or queued for ARP, otherwise why it could not go.
    /// </summary>
    StackError Send(Ipv4Address destination, IpProtocol protocol, int payloadLength, TimeSpan now,
        byte ttl = 0, bool dontFragment = false, byte tos = 0, bool tcpChecksumPending = false);

    /// <summary>
    /// Whether a TCP segment of <paramref name="segmentLength"/> bytes may be sent with only the pseudo-header sum in its
    /// checksum field (<c>tcpChecksumPending</c>): the device completes it (checksum offload) and the datagram fits
    /// the MTU unfragmented.
    /// </summary>
    bool MayLeaveTcpChecksumPending(int segmentLength);
}

/// <summary>How ICMP hands a received error back to IPv4, which passes it to the transport that sent the quoted datagram.</summary>
internal interface IIpErrorDelivery
{
    /// <summary><paramref name="original"/>: the quoted IP header and at least 8 bytes of its payload.</summary>
    void DeliverError(in IpErrorInfo error, ReadOnlySpan<byte> original, TimeSpan now);
}

/// <summary>Where IPv4 sends the ICMP errors it owes (protocol and port unreachable, reassembly time exceeded).</summary>
internal interface IIcmpErrorSink
{
    /// <summary>
    /// Sends an ICMP error of <paramref name="type"/>/<paramref name="code"/> about <paramref name="offending"/>
    /// (its IP header and payload) unless RFC 1122 3.2.2 forbids it; <paramref name="linkBroadcast"/> says the
    /// datagram came in a link-layer broadcast or multicast frame (then it never does).
    /// </summary>
    void SendError(byte type, byte code, ReadOnlySpan<byte> offending, bool linkBroadcast, TimeSpan now);
}
