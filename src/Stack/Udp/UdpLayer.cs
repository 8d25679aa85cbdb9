using NetStack.IPv4;

namespace NetStack.Udp;

public sealed class UdpCounters : LayerCounters
{
    public override string Layer => "Udp";
    public long DatagramsReceived;
    public long DatagramsDelivered;
    public long DatagramsSent;
    public long BytesReceived;
    public long BytesSent;
    public long DroppedTruncated;
    public long DroppedBadLength;
    public long DroppedBadChecksum;
    public long DroppedNoSocket;
    public long DroppedReceiveBufferFull;
    /// <summary>Sends the IP layer refused (no route, host unreachable, ARP queue full).</summary>
    public long SendErrors;
    /// <summary>ICMP errors (or local ARP failures) about datagrams we sent.</summary>
    public long ErrorsReceived;
    /// <summary>Of those, the ones handed to a connected socket as its pending error.</summary>
    public long ErrorsDelivered;
}

/// <summary>
/// UDP (RFC 768, RFC 1122 4.1): validates arriving datagrams, demultiplexes them to sockets by local port,
/// reports unclaimed ones to IPv4 (which answers with ICMP port unreachable), and sends datagrams built in place
/// in the IP layer's payload buffer. One endpoint per local port. Loop-thread only.
/// </summary>
internal sealed class UdpLayer : IIpProtocolHandler
{
    private readonly LayerContext _context;
    private readonly IIpOutput _ip;
    private readonly EphemeralPorts _ports;
    private readonly Dictionary<ushort, IUdpEndpoint> _byPort = new();
    // Cached so that allocating a port allocates no delegate.
    private readonly Func<ushort, bool> _portInUse;

    public UdpLayer(LayerContext context, IIpOutput ip, EphemeralPorts ports)
    {
        _context = context;
        _ip = ip;
        _ports = ports;
        _portInUse = p => _byPort.ContainsKey(p);
    }

    public UdpCounters Counters { get; } = new();

    // ---------------- ports ----------------

    public bool IsPortInUse(ushort port) => _byPort.ContainsKey(port);

    /// <summary>An unused ephemeral port chosen per RFC 6056 (hash-based), or null when the range is exhausted.</summary>
    public ushort? AllocateEphemeralPort(Ipv4Address remote, ushort remotePort) =>
        _ports.Allocate((byte)IpProtocol.Udp, remote, remotePort, _portInUse);

    /// <summary>
    /// An unused ephemeral port picked uniformly at random (RFC 6056 algorithm 1), as a DNS query's source
    /// port should be (RFC 5452 9.2): an off-path attacker then has to guess port and id together.
    /// </summary>
    public ushort? AllocateRandomPort() => _ports.AllocateRandom(_portInUse);

    public void Add(IUdpEndpoint endpoint) => _byPort.Add(endpoint.LocalPort, endpoint);

    public void Remove(IUdpEndpoint endpoint)
    {
        if (_byPort.TryGetValue(endpoint.LocalPort, out var s) && s == endpoint) _byPort.Remove(endpoint.LocalPort);
    }

    // ---------------- receive ----------------

    public TransportDisposition OnDatagram(in IpDatagramInfo info, ReadOnlySpan<byte> payload, TimeSpan now)
    {
        var c = Counters;
        c.DatagramsReceived++;
        if (payload.Length < UdpHeader.Length) { c.DroppedTruncated++; return TransportDisposition.Delivered; }
        // RFC 768: the length field covers header and data. Longer than what IP carried means it was cut
        // short; shorter means trailing bytes that are not ours (Linux trims them too).
        var length = UdpHeader.DatagramLength(payload);
        if (length < UdpHeader.Length || length > payload.Length) { c.DroppedBadLength++; return TransportDisposition.Delivered; }
        var datagram = payload[..length];
        if (!UdpHeader.ChecksumValid(datagram, info.Source, info.Destination)) { c.DroppedBadChecksum++; return TransportDisposition.Delivered; }

        var sourcePort = UdpHeader.SourcePort(datagram);
        if (!_byPort.TryGetValue(UdpHeader.DestinationPort(datagram), out var socket) || !socket.Accepts(info.Source, sourcePort, info.Destination))
        {
            c.DroppedNoSocket++;
            // RFC 1122 4.1.3.1: port unreachable (IPv4 sends it, never about broadcasts or multicasts: 3.2.2).
            return TransportDisposition.PortUnreachable;
        }
        if (socket.Deliver(info.Source, sourcePort, datagram[UdpHeader.Length..], now))
        {
            c.DatagramsDelivered++;
            c.BytesReceived += length - UdpHeader.Length;
        }
        else c.DroppedReceiveBufferFull++;
        return TransportDisposition.Delivered;
    }

    /// <summary>
    /// An ICMP error (or local ARP failure) about a datagram we sent reaches the socket that sent it, found by
    /// the quoted UDP header's ports; only a connected socket takes it as its pending error (as Linux does
    /// without IP_RECVERR), so a server is not disturbed by one client's unreachable port.
    /// </summary>
    public void OnError(in IpErrorInfo error, ReadOnlySpan<byte> original, TimeSpan now)
    {
        Counters.ErrorsReceived++;
        var udp = original[Ipv4Header.HeaderLength(original)..];
        if (udp.Length < 4) return;
        if (!_byPort.TryGetValue(UdpHeader.SourcePort(udp), out var socket)) return;
        if (socket.OnError(error.Error, Ipv4Header.Destination(original), UdpHeader.DestinationPort(udp), error.Reporter, now))
            Counters.ErrorsDelivered++;
    }

    // ---------------- send ----------------

    /// <summary>Sends <paramref name="data"/> from <paramref name="sourcePort"/>; returns None or why the IP layer refused it.</summary>
    public StackError Send(ushort sourcePort, Ipv4Address destination, ushort destinationPort, ReadOnlySpan<byte> data, TimeSpan now)
    {
        if (data.Length > UdpHeader.MaxPayload) return StackError.MessageTooLong;
        var length = UdpHeader.Length + data.Length;
        var datagram = _ip.PayloadBuffer[..length];
        data.CopyTo(datagram[UdpHeader.Length..]);
        UdpHeader.Write(datagram, sourcePort, destinationPort, _context.Config.Address, destination);
        var r = _ip.Send(destination, IpProtocol.Udp, length, now);
        if (r == StackError.None)
        {
            Counters.DatagramsSent++;
            Counters.BytesSent += data.Length;
        }
        else Counters.SendErrors++;
        return r;
    }

    public TimeSpan? Poll(TimeSpan now) => null;

    /// <summary>The stack stopped: every waiting receive fails with StackStopped.</summary>
    public void Dispose()
    {
        foreach (var s in _byPort.Values.ToArray()) s.OnStackStopped();
        _byPort.Clear();
    }
}
