using NetStack.Diagnostics;

namespace NetStack.Link;

public sealed class EthernetCounters : LayerCounters
{
    public override string Layer => "Ethernet";
    public long FramesReceived;
    public long FramesSent;
    public long BytesReceived;
    public long BytesSent;
    public long DroppedTruncated;
    public long DroppedNotForUs;
    public long DroppedOwnSource;
    public long DroppedUnknownEtherType;
}

/// <summary>A protocol carried in Ethernet frames (IPv4, ARP), registered with the layer for its EtherType.</summary>
internal interface ILinkProtocolHandler
{
    /// <summary>A frame's payload for this protocol, valid only during the call, and how it arrived.</summary>
    void OnPacket(ReadOnlySpan<byte> packet, in LinkInfo link, TimeSpan now);
}

/// <summary>What the protocols above Ethernet send through: framing, and the link's address and MTU.</summary>
internal interface ILinkOutput
{
    /// <summary>The MAC we send from and answer to.</summary>
    MacAddress Address { get; }

    /// <summary>Largest payload one frame carries (the IP MTU).</summary>
    int Mtu { get; }

    /// <summary>
    /// Puts <paramref name="frame"/> on the link to <paramref name="destination"/>: the payload is at
    /// frame[<see cref="Ethernet.HeaderLength"/>..]; the room in front of it receives the Ethernet header.
    /// </summary>
    void Send(Span<byte> frame, MacAddress destination, ushort etherType, TimeSpan now, bool tcpChecksumPending = false);

    /// <summary>
    /// Whether a TCP frame of <paramref name="frameLength"/> bytes may leave with its checksum for the device to complete
    /// (<see cref="ILinkDevice.CompletesTcpChecksum"/>): not when the packet log would keep the whole frame, so what
    /// the log holds whole always carries its final checksum.
    /// </summary>
    bool MayLeaveTcpChecksumPending(int frameLength);

    /// <summary>Accepts frames sent to the multicast MAC <paramref name="group"/> from now on.</summary>
    void AcceptMulticast(MacAddress group);

    /// <summary>
    /// A buffer of the device's to build the next frame in (<see cref="ILinkDevice.LendTransmitBuffer"/>): a frame built
    /// there from its first byte and passed to <see cref="Send"/> leaves without a copy. Empty when the device lends none.
    /// </summary>
    Memory<byte> LendFrame(int frameLength);
}

/// <summary>
/// Ethernet II (IEEE 802.3 framing, RFC 894 for IPv4): the one owner of the link for the stack. On receive it
/// counts and logs each frame, keeps what is addressed to us (our MAC, broadcast, a multicast group we joined),
/// drops what claims our own source address, and hands the payload to the protocol registered for its EtherType
/// together with a <see cref="LinkInfo"/>. On send it writes the header and transmits. Loop-thread only.
/// </summary>
internal sealed class EthernetLayer : IFrameSink, ILinkOutput
{
    private readonly ILinkDevice _device;
    private readonly PacketLog _packetLog;
    private readonly bool _completesTcpChecksum;
    private readonly HashSet<MacAddress> _multicast = new();
    private ILinkProtocolHandler? _ipv4;
    private ILinkProtocolHandler? _arp;

    public EthernetLayer(ILinkDevice device, MacAddress address, int mtu, PacketLog packetLog)
    {
        _device = device;
        _packetLog = packetLog;
        _completesTcpChecksum = device.CompletesTcpChecksum;
        Address = address;
        Mtu = mtu;
    }

    public EthernetCounters Counters { get; } = new();
    public MacAddress Address { get; }
    public int Mtu { get; }

    /// <summary>Registers the protocol that takes frames of <paramref name="etherType"/> (IPv4 or ARP).</summary>
    public void Register(ushort etherType, ILinkProtocolHandler handler)
    {
        switch (etherType)
        {
            case Ethernet.TypeIpv4: _ipv4 = handler; break;
            case Ethernet.TypeArp: _arp = handler; break;
            default: throw new ArgumentOutOfRangeException(nameof(etherType), etherType, "Only IPv4 and ARP are carried.");
        }
    }

    public void AcceptMulticast(MacAddress group) => _multicast.Add(group);

    public void OnFrame(ReadOnlySpan<byte> frame, TimeSpan now) => Receive(frame, now, tcpChecksumPending: false);

    /// <summary>
    /// A frame the device vouches for with its TCP checksum pending (the in-memory wire): passed up unverified, marked in
    /// its <see cref="LinkInfo"/>; completed first when the packet log keeps it whole, so what the log holds whole
    /// always carries its final checksum (as on send: <see cref="MayLeaveTcpChecksumPending"/>).
    /// </summary>
    public void OnFrameChecksumPending(Span<byte> frame, TimeSpan now)
    {
        var pending = true;
        if (_packetLog.Capacity > 0 && frame.Length <= PacketLog.SnapLength) pending = !Ethernet.CompleteTcpChecksum(frame);
        Receive(frame, now, pending);
    }

    private void Receive(ReadOnlySpan<byte> frame, TimeSpan now, bool tcpChecksumPending)
    {
        var c = Counters;
        c.FramesReceived++;
        c.BytesReceived += frame.Length;
        if (_packetLog.Capacity > 0) _packetLog.Record(frame, outbound: false, now);
        if (frame.Length < Ethernet.HeaderLength) { c.DroppedTruncated++; return; }
        if (Ethernet.IsFrom(frame, Address)) { c.DroppedOwnSource++; return; }
        var dst = Ethernet.Destination(frame);
        if (dst != Address && !dst.IsBroadcast && !(dst.IsMulticast && _multicast.Contains(dst))) { c.DroppedNotForUs++; return; }
        var handler = Ethernet.EtherType(frame) switch
        {
            Ethernet.TypeIpv4 => _ipv4,
            Ethernet.TypeArp => _arp,
            _ => null,
        };
        if (handler is null) { c.DroppedUnknownEtherType++; return; }
        var link = new LinkInfo(Ethernet.Source(frame), dst.IsMulticast, _device.Name, tcpChecksumPending);
        handler.OnPacket(frame[Ethernet.HeaderLength..], in link, now);
    }

    public void Send(Span<byte> frame, MacAddress destination, ushort etherType, TimeSpan now, bool tcpChecksumPending = false)
    {
        Ethernet.WriteHeader(frame, destination, Address, etherType);
        Counters.FramesSent++;
        Counters.BytesSent += frame.Length;
        if (_packetLog.Capacity > 0) _packetLog.Record(frame, outbound: true, now);
        if (tcpChecksumPending) _device.TransmitChecksumPending(frame, now);
        else _device.Transmit(frame, now);
    }

    public Memory<byte> LendFrame(int frameLength) => _device.LendTransmitBuffer(frameLength);

    public bool MayLeaveTcpChecksumPending(int frameLength) =>
        _completesTcpChecksum && (_packetLog.Capacity == 0 || frameLength > PacketLog.SnapLength);
}
