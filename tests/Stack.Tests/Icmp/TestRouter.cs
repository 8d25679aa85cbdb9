using System.Buffers.Binary;
using NetStack;
using NetStack.Arp;
using NetStack.IPv4;
using NetStack.Icmp;
using NetStack.Link;

namespace Stack.Tests.Icmp;

/// <summary>
/// A tiny one-armed IPv4 router for the virtual wire (which has none), written for the traceroute and path-MTU
/// tests: it wraps the port of a stack that owns the near address (192.0.2.1, which answers ARP and pings itself) and
/// forwards what is sent to its MAC for other addresses. It stands for a chain of <see cref="Hops"/> routers: a
/// datagram whose TTL runs out within the chain draws ICMP time exceeded from that hop's address (unless the hop is
/// silent), the others leave with their TTL lowered by the chain's length. Datagrams for the far subnet that exceed
/// <see cref="FarMtu"/> with DF set draw "fragmentation needed" with the next-hop MTU (RFC 1191), or vanish when
/// <see cref="BlackHole"/> is set (a router whose ICMP is filtered). It answers ARP for the far gateway address itself.
/// MACs are the simulation's (02-00 and the address). Loop thread of its stack only.
/// </summary>
public sealed class TestRouter(ILinkDevice inner, Ipv4Address farGateway, int farPrefix = 24) : ForwardingLink(inner), IFrameSink
{
    private IFrameSink? _sink;

    /// <summary>The routers this station stands for, in path order, and whether each answers when a TTL runs out there.</summary>
    public List<(Ipv4Address Address, bool Answers)> Hops { get; } = new();
    public int FarMtu { get; set; } = 1500;
    public bool BlackHole { get; set; }
    public long Forwarded;

    public static MacAddress MacOf(Ipv4Address address) => new(0x0200_0000_0000UL | address.Value);

    public override int Receive(IFrameSink sink, TimeSpan now, int max)
    {
        _sink = sink;
        return Inner.Receive(this, now, max);
    }

    public void OnFrame(ReadOnlySpan<byte> frame, TimeSpan now)
    {
        if (frame.Length >= Ethernet.HeaderLength + ArpPacket.Length && Ethernet.EtherType(frame) == Ethernet.TypeArp)
        {
            var arp = frame[Ethernet.HeaderLength..];
            if (ArpPacket.Operation(arp) == ArpPacket.OpRequest && ArpPacket.TargetProtocol(arp) == farGateway)
            {
                var reply = new byte[Ethernet.HeaderLength + ArpPacket.Length];
                Ethernet.WriteHeader(reply, ArpPacket.SenderHardware(arp), HardwareAddress, Ethernet.TypeArp);
                ArpPacket.Write(reply.AsSpan(Ethernet.HeaderLength), ArpPacket.OpReply, HardwareAddress, farGateway, ArpPacket.SenderHardware(arp), ArpPacket.SenderProtocol(arp));
                Inner.Transmit(reply, now);
                return;
            }
        }
        else if (frame.Length >= Ethernet.HeaderLength + Ipv4Header.MinLength && Ethernet.EtherType(frame) == Ethernet.TypeIpv4
                 && Ethernet.Destination(frame) == HardwareAddress)
        {
            var ip = frame[Ethernet.HeaderLength..];
            var dst = Ipv4Header.Destination(ip);
            if (dst != farGateway && MacOf(dst) != HardwareAddress) // not for the router itself: forward
            {
                Forward(ip[..Ipv4Header.TotalLength(ip)], now);
                return;
            }
        }
        _sink!.OnFrame(frame, now);
    }

    private void Forward(ReadOnlySpan<byte> ip, TimeSpan now)
    {
        var ttl = Ipv4Header.Ttl(ip);
        if (ttl <= Hops.Count)
        {
            var (hop, answers) = Hops[Math.Max(ttl, (byte)1) - 1];
            if (answers) SendError(hop, IcmpCodes.TypeTimeExceeded, IcmpCodes.TtlExceededInTransit, 0, ip, now);
            return;
        }
        var dst = Ipv4Header.Destination(ip);
        if (dst.IsInSubnet(farGateway, farPrefix) && ip.Length > FarMtu && Ipv4Header.DontFragment(ip))
        {
            if (!BlackHole) SendError(Hops[^1].Address, IcmpCodes.TypeDestinationUnreachable, IcmpCodes.FragmentationNeeded, FarMtu, ip, now);
            return;
        }
        var frame = new byte[Ethernet.HeaderLength + ip.Length];
        Ethernet.WriteHeader(frame, MacOf(dst), HardwareAddress, Ethernet.TypeIpv4);
        ip.CopyTo(frame.AsSpan(Ethernet.HeaderLength));
        var h = frame.AsSpan(Ethernet.HeaderLength);
        h[8] = (byte)(ttl - Hops.Count);
        h[10] = h[11] = 0;
        BinaryPrimitives.WriteUInt16BigEndian(h[10..], Checksum.Compute(h[..Ipv4Header.HeaderLength(h)]));
        Inner.Transmit(frame, now);
        Forwarded++;
    }

    /// <summary>An ICMP error from <paramref name="from"/> quoting the header and 8 bytes (RFC 792's minimum), as old routers do.</summary>
    private void SendError(Ipv4Address from, byte type, byte code, int mtu, ReadOnlySpan<byte> offending, TimeSpan now)
    {
        var quote = offending[..Math.Min(offending.Length, Ipv4Header.HeaderLength(offending) + 8)];
        var icmp = new byte[8 + quote.Length];
        icmp[0] = type;
        icmp[1] = code;
        BinaryPrimitives.WriteUInt16BigEndian(icmp.AsSpan(6), (ushort)mtu);
        quote.CopyTo(icmp.AsSpan(8));
        BinaryPrimitives.WriteUInt16BigEndian(icmp.AsSpan(2), Checksum.Compute(icmp));
        var source = Ipv4Header.Source(offending);
        var frame = new byte[Ethernet.HeaderLength + Ipv4Header.MinLength + icmp.Length];
        Ethernet.WriteHeader(frame, MacOf(source), HardwareAddress, Ethernet.TypeIpv4);
        Ipv4Header.Write(frame.AsSpan(Ethernet.HeaderLength), Ipv4Header.MinLength + icmp.Length, 0, 0, 64, (byte)IpProtocol.Icmp, from, source);
        icmp.CopyTo(frame.AsSpan(Ethernet.HeaderLength + Ipv4Header.MinLength));
        Inner.Transmit(frame, now);
    }
}
