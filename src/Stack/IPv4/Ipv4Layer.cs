using System.Buffers.Binary;
using NetStack.Arp;
using NetStack.Icmp;
using NetStack.Link;

namespace NetStack.IPv4;

public sealed class Ipv4Counters : LayerCounters
{
    public override string Layer => "IPv4";
    public long PacketsReceived;
    public long PacketsDelivered;
    public long PacketsSent;
    public long BytesReceived;
    public long BytesSent;
    public long DroppedTruncated;
    public long DroppedBadVersion;
    public long DroppedBadHeaderLength;
    public long DroppedBadTotalLength;
    public long DroppedBadChecksum;
    public long DroppedBadSource;
    public long DroppedNotForUs;
    public long DroppedUnknownProtocol;
    public long DroppedNoRoute;
    /// <summary>Sends refused while the stack has no address yet (only DHCP's broadcasts may leave: RFC 1122 3.2.1.3).</summary>
    public long DroppedNoAddress;
    public long DroppedHostUnreachable;
    public long DroppedTooBig;
    public long DroppedArpQueueFull;
    public long FragmentsReceived;
    public long DatagramsReassembled;
    public long ReassemblyTimeouts;
    public long ReassemblyOverlaps;
    public long ReassemblyMalformed;
    public long ReassemblyMemoryExceeded;
    /// <summary>Incomplete datagrams forgotten to make room for a newer one when the table or its memory budget was full.</summary>
    public long ReassemblyEvictions;
    public long FragmentsSent;
    public long DatagramsFragmented;
}

/// <summary>
/// IPv4 (RFC 791, RFC 1122 section 3): validates and delivers arriving datagrams to the transport
/// registered for their protocol, reassembles fragments, and routes, resolves and fragments
/// outgoing ones. Host only: nothing is forwarded. Below it: the link (<see cref="ILinkOutput"/>) and the
/// neighbour cache (<see cref="INeighbourResolver"/>), given at construction. Above it: the transports and the
/// ICMP error sink, which register. Loop-thread only.
/// </summary>
internal sealed class Ipv4Layer : ILinkProtocolHandler, IIpOutput, IIpErrorDelivery, INeighbourClient
{
    private readonly LayerContext _context;
    private readonly ILinkOutput _link;
    private readonly INeighbourResolver _neighbours;
    private readonly IIpProtocolHandler?[] _handlers = new IIpProtocolHandler?[256];
    private readonly HashSet<Ipv4Address> _groups = new();
    private IIcmpErrorSink? _errors;
    // Outgoing datagrams are built in place: [Ethernet header][IP header][payload up to 65515 bytes].
    private readonly byte[] _tx = new byte[Ethernet.HeaderLength + 65535];
    // The device's buffer the next datagram is built in instead of _tx (PayloadBufferFor), until Send; empty: _tx.
    private Memory<byte> _lent;
    private readonly byte[] _fragment;
    private readonly Reassembler _reassembler;
    private readonly IpIdentification _ids;

    public Ipv4Layer(LayerContext context, ILinkOutput link, INeighbourResolver neighbours)
    {
        _context = context;
        _link = link;
        _neighbours = neighbours;
        _fragment = new byte[Ethernet.HeaderLength + link.Mtu];
        _ids = new IpIdentification(context.Unpredictable);
        _reassembler = new Reassembler(context, Counters);
        JoinGroup(new Ipv4Address(224, 0, 0, 1)); // all-hosts (RFC 1112 6.4): every host is a member
    }

    public Ipv4Counters Counters { get; } = new();

    /// <summary>The reassembly table (for tests and diagnostics: datagrams and memory held).</summary>
    internal Reassembler Reassembly => _reassembler;

    /// <summary>Most payload one datagram can carry (65535 minus a 20-byte header).</summary>
    public const int MaxPayload = 65535 - Ipv4Header.MinLength;

    /// <summary>Largest payload that leaves in a single unfragmented datagram.</summary>
    public int MaxUnfragmentedPayload => Mtu - Ipv4Header.MinLength;

    /// <summary>The link's MTU, or a smaller one the configuration sets at run time (DHCP's interface MTU option).</summary>
    public int Mtu => Math.Min(_link.Mtu, _context.Config.Mtu ?? int.MaxValue);

    public void Register(IpProtocol protocol, IIpProtocolHandler handler) => _handlers[(byte)protocol] = handler;

    /// <summary>Where the errors IPv4 owes go (ICMP, which sits above and registers like a transport).</summary>
    public void RegisterErrorSink(IIcmpErrorSink sink) => _errors = sink;

    // ---------------- multicast membership ----------------

    /// <summary>Joins an IPv4 multicast group: datagrams to it are accepted, and so are frames to its MAC (RFC 1112 6.4). No IGMP is sent.</summary>
    public void JoinGroup(Ipv4Address group)
    {
        if (_groups.Add(group)) _link.AcceptMulticast(MacAddress.ForIpv4Multicast(group));
    }

    private bool IsMember(Ipv4Address group) => group.IsMulticast && _groups.Contains(group);

    /// <summary>Where a transport writes the payload of its next datagram; valid until <see cref="Send"/>.</summary>
    public Span<byte> PayloadBuffer
    {
        get
        {
            _lent = default;
            return _tx.AsSpan(Ethernet.HeaderLength + Ipv4Header.MinLength, MaxPayload);
        }
    }

    public Span<byte> PayloadBufferFor(int maxPayloadLength)
    {
        const int headers = Ethernet.HeaderLength + Ipv4Header.MinLength;
        var lent = (uint)maxPayloadLength <= MaxPayload ? _link.LendFrame(headers + maxPayloadLength) : default;
        if (lent.Length < headers + maxPayloadLength) return PayloadBuffer[..Math.Min(maxPayloadLength, MaxPayload)];
        _lent = lent;
        return lent.Span.Slice(headers, maxPayloadLength);
    }

    // ---------------- receive ----------------

    public void OnPacket(ReadOnlySpan<byte> packet, in LinkInfo link, TimeSpan now)
    {
        var c = Counters;
        c.PacketsReceived++;
        c.BytesReceived += packet.Length;
        if (packet.Length < Ipv4Header.MinLength) { c.DroppedTruncated++; return; }
        if (Ipv4Header.Version(packet) != 4) { c.DroppedBadVersion++; return; }
        var ihl = Ipv4Header.HeaderLength(packet);
        if (ihl < Ipv4Header.MinLength || ihl > packet.Length) { c.DroppedBadHeaderLength++; return; }
        var total = Ipv4Header.TotalLength(packet);
        if (total < ihl || total > packet.Length) { c.DroppedBadTotalLength++; return; }
        if (!Checksum.Verify(0, packet[..ihl])) { c.DroppedBadChecksum++; return; }
        packet = packet[..total]; // Ethernet pads short frames; the IP total length is the truth.

        var src = Ipv4Header.Source(packet);
        var dst = Ipv4Header.Destination(packet);
        var cfg = _context.Config;
        // RFC 1122 3.2.1.3: no datagram comes from a broadcast, multicast, loopback or our own address; 0.0.0.0
        // only from a host still learning its address, which can only broadcast.
        if (src.IsUnspecified ? dst == cfg.Address : src == cfg.Address || !cfg.IsUnicastHost(src))
        {
            c.DroppedBadSource++;
            return;
        }
        if (dst != cfg.Address && !dst.IsBroadcast && dst != cfg.SubnetBroadcast && !IsMember(dst)
            && !AddressAcquisition.TakesUnicastWhileUnconfigured(cfg, packet, ihl))
        {
            c.DroppedNotForUs++;
            return;
        }

        if (dst == cfg.Address && src.IsInSubnet(cfg.Address, cfg.PrefixLength))
            _neighbours.Confirm(src, link.Source, now);

        var flags = Ipv4Header.FlagsAndOffset(packet);
        if ((flags & (Ipv4Header.FlagMoreFragments | Ipv4Header.OffsetMask)) != 0)
        {
            c.FragmentsReceived++;
            if (_reassembler.OnFragment(packet, ihl, in link, now, out var whole))
            {
                // The reassembled datagram lives in a pooled buffer that goes back once the transport is done with it.
                try { Deliver(whole.Datagram, whole.HeaderLength, whole.Link, now); }
                finally { whole.Release(); }
            }
            return;
        }
        Deliver(packet, ihl, in link, now);
    }

    /// <summary>Hands a complete datagram (header + payload) to its transport, and answers for what it could not deliver.</summary>
    private void Deliver(ReadOnlySpan<byte> datagram, int ihl, in LinkInfo link, TimeSpan now)
    {
        var protocol = Ipv4Header.Protocol(datagram);
        var handler = _handlers[protocol];
        TransportDisposition disposition;
        if (handler is null)
        {
            Counters.DroppedUnknownProtocol++;
            disposition = TransportDisposition.ProtocolUnreachable;
        }
        else
        {
            Counters.PacketsDelivered++;
            var dst = Ipv4Header.Destination(datagram);
            var info = new IpDatagramInfo(Ipv4Header.Source(datagram), dst, dst == _context.Config.Address, (IpProtocol)protocol,
                Ipv4Header.Ttl(datagram), Ipv4Header.Tos(datagram), in link, datagram);
            disposition = handler.OnDatagram(in info, datagram[ihl..], now);
        }
        // RFC 1122 3.2.2.1 and 4.1.3.1: protocol or port unreachable; the sink keeps 3.2.2's silences (broadcasts...).
        if (disposition != TransportDisposition.Delivered)
            _errors?.SendError(IcmpCodes.TypeDestinationUnreachable,
                disposition == TransportDisposition.PortUnreachable ? IcmpCodes.PortUnreachable : IcmpCodes.ProtocolUnreachable,
                datagram, link.IsBroadcast, now);
    }

    /// <summary>Passes an ICMP error (or a local one) to the transport that sent the original datagram.</summary>
    public void DeliverError(in IpErrorInfo error, ReadOnlySpan<byte> original, TimeSpan now)
    {
        if (original.Length < Ipv4Header.MinLength || Ipv4Header.Version(original) != 4) return;
        var ihl = Ipv4Header.HeaderLength(original);
        if (ihl < Ipv4Header.MinLength || original.Length < ihl) return;
        if (Ipv4Header.Source(original) != _context.Config.Address) return; // not about something we sent
        _handlers[Ipv4Header.Protocol(original)]?.OnError(in error, original, now);
    }

    /// <summary>A datagram we sent could not leave (ARP failed): tell its sender, as an ICMP error would.</summary>
    public void DropQueued(ReadOnlySpan<byte> datagram, StackError error, TimeSpan now)
    {
        Counters.DroppedHostUnreachable++;
        var info = new IpErrorInfo(error, 3, error == StackError.HostUnreachable ? IcmpCodes.HostUnreachable : IcmpCodes.NetworkUnreachable,
            _context.Config.Address, 0, isLocal: true);
        DeliverError(in info, datagram, now);
    }

    /// <summary>Expires incomplete datagrams; returns the next expiry.</summary>
    public TimeSpan? Poll(TimeSpan now)
    {
        Span<byte> quote = stackalloc byte[IcmpLayer.MaxQuote];
        while (_reassembler.TryExpire(now, quote, out var quoted, out var linkBroadcast))
        {
            // RFC 792, RFC 1122 3.3.2: time exceeded code 1, only when fragment zero arrived (there is something to quote).
            if (quoted > 0)
                _errors?.SendError(IcmpCodes.TypeTimeExceeded, IcmpCodes.FragmentReassemblyTimeExceeded, quote[..quoted], linkBroadcast, now);
        }
        return _reassembler.NextExpiry;
    }

    // ---------------- send ----------------

    /// <summary>
    /// Sends the <paramref name="payloadLength"/> bytes the caller wrote at <see cref="PayloadBuffer"/> to
    /// <paramref name="destination"/>. Returns None when sent or queued for ARP, otherwise why it could not go.
    /// </summary>
    public StackError Send(Ipv4Address destination, IpProtocol protocol, int payloadLength, TimeSpan now,
        byte ttl = 0, bool dontFragment = false, byte tos = 0, bool tcpChecksumPending = false)
    {
        if ((uint)payloadLength > MaxPayload) { Counters.DroppedTooBig++; return StackError.MessageTooLong; }
        var total = Ipv4Header.MinLength + payloadLength;
        var lent = _lent;
        _lent = default;
        if (dontFragment && total > Mtu) { Counters.DroppedTooBig++; return StackError.MessageTooLong; }
        if (!lent.IsEmpty && Ethernet.HeaderLength + total > lent.Length)
            throw new ArgumentOutOfRangeException(nameof(payloadLength), payloadLength, "More payload than PayloadBufferFor was asked for.");
        var frame = lent.IsEmpty ? _tx.AsSpan(0, Ethernet.HeaderLength + total) : lent.Span[..(Ethernet.HeaderLength + total)];
        var cfg = _context.Config;
        if (!AddressAcquisition.MaySend(cfg, destination)) { Counters.DroppedNoAddress++; return StackError.AddressNotAvailable; }
        Ipv4Header.Write(frame[Ethernet.HeaderLength..], total, _ids.Next(cfg.Address, destination, protocol), dontFragment ? Ipv4Header.FlagDontFragment : (ushort)0,
            ttl == 0 ? cfg.DefaultTtl : ttl, (byte)protocol, cfg.Address, destination, tos);
        return Route(destination, frame, now, tcpChecksumPending);
    }

    public bool MayLeaveTcpChecksumPending(int segmentLength) =>
        Ipv4Header.MinLength + segmentLength <= Mtu && _link.MayLeaveTcpChecksumPending(Ethernet.HeaderLength + Ipv4Header.MinLength + segmentLength);

    /// <summary>Picks the next hop and its MAC for a built frame ([14 bytes room][datagram]) and emits it.</summary>
    private StackError Route(Ipv4Address destination, Span<byte> frame, TimeSpan now, bool tcpChecksumPending)
    {
        var cfg = _context.Config;
        MacAddress mac;
        if (destination.IsBroadcast || destination == cfg.SubnetBroadcast) mac = MacAddress.Broadcast;
        else if (destination.IsMulticast) mac = MacAddress.ForIpv4Multicast(destination);
        else
        {
            Ipv4Address nextHop;
            if (destination.IsInSubnet(cfg.Address, cfg.PrefixLength)) nextHop = destination;
            else if (cfg.Gateway is { } gw) nextHop = gw;
            else { Counters.DroppedNoRoute++; return StackError.NetworkUnreachable; }

            var r = _neighbours.Resolve(nextHop, out mac, now);
            if (r == StackError.HostUnreachable) { Counters.DroppedHostUnreachable++; return r; }
            if (r != StackError.None)
            {
                // The queued copy leaves later without its flag: it gets its final checksum now.
                if (tcpChecksumPending) Checksum.CompletePartial(frame[(Ethernet.HeaderLength + Ipv4Header.MinLength)..], 16);
                if (_neighbours.Queue(nextHop, frame[Ethernet.HeaderLength..])) return StackError.None;
                Counters.DroppedArpQueueFull++;
                return StackError.NoBufferSpace;
            }
        }
        Emit(frame, mac, now, tcpChecksumPending);
        return StackError.None;
    }

    /// <summary>An ARP-queued datagram's next hop resolved: it leaves like any other (fragmented when it must).</summary>
    public void SendQueued(Span<byte> frame, MacAddress mac, TimeSpan now) => Emit(frame, mac, now);

    /// <summary>Sends a datagram held at frame[14..] to <paramref name="mac"/>, fragmenting when it exceeds the MTU (RFC 791 3.2).</summary>
    private void Emit(Span<byte> frame, MacAddress mac, TimeSpan now, bool tcpChecksumPending = false)
    {
        var datagram = frame[Ethernet.HeaderLength..];
        var mtu = Mtu;
        if (datagram.Length <= mtu)
        {
            _link.Send(frame, mac, Ethernet.TypeIpv4, now, tcpChecksumPending);
            Counters.PacketsSent++;
            Counters.BytesSent += datagram.Length;
            return;
        }

        var ihl = Ipv4Header.HeaderLength(datagram);
        if (tcpChecksumPending) Checksum.CompletePartial(datagram[ihl..], 16); // fragments carry it as it is
        var payload = datagram[ihl..];
        var baseFlags = Ipv4Header.FlagsAndOffset(datagram);
        var chunk = (mtu - ihl) & ~7; // every fragment but the last carries a multiple of 8 bytes
        Counters.DatagramsFragmented++;
        for (int offset = 0; offset < payload.Length; offset += chunk)
        {
            var len = Math.Min(chunk, payload.Length - offset);
            var more = offset + len < payload.Length;
            var f = _fragment.AsSpan(0, Ethernet.HeaderLength + ihl + len);
            var h = f[Ethernet.HeaderLength..];
            datagram[..ihl].CopyTo(h);
            payload.Slice(offset, len).CopyTo(h[ihl..]);
            BinaryPrimitives.WriteUInt16BigEndian(h[2..], (ushort)(ihl + len));
            var fo = (ushort)((baseFlags & ~Ipv4Header.OffsetMask & ~Ipv4Header.FlagMoreFragments) | (offset / 8) | (more ? Ipv4Header.FlagMoreFragments : 0));
            BinaryPrimitives.WriteUInt16BigEndian(h[6..], fo);
            h[10] = 0;
            h[11] = 0;
            BinaryPrimitives.WriteUInt16BigEndian(h[10..], Checksum.Compute(h[..ihl]));
            _link.Send(f, mac, Ethernet.TypeIpv4, now);
            Counters.FragmentsSent++;
            Counters.BytesSent += ihl + len;
        }
        Counters.PacketsSent++;
    }

    public void Dispose() => _reassembler.Dispose();
}
