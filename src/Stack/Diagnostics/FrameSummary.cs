using System.Buffers.Binary;
using NetStack.Arp;
using NetStack.IPv4;
using NetStack.Link;

namespace NetStack.Diagnostics;

/// <summary>
/// One logged frame decoded for people (Get-StackPacket): who sent it to whom, the top protocol, and a one-line
/// Info in the style of tshark. Ports are 0 when the frame carries none.
/// </summary>
public sealed record FrameSummary(
    long Number, TimeSpan Time, FrameDirection Direction, int Length,
    string Source, string Destination, string Protocol, string Info,
    Ipv4Address? SourceAddress, Ipv4Address? DestinationAddress, ushort SourcePort, ushort DestinationPort,
    TcpSegmentInfo? Tcp = null);

/// <summary>
/// Decodes packet-log frames in order. Stateful like tshark: TCP sequence and acknowledgement numbers are shown
/// relative to each side's initial sequence number — the one the stack recorded (<see cref="AddKnownIsn"/>), else
/// the SYN or the first segment seen — so feed frames oldest first. TCP decoding is in FrameDecoder.Tcp.cs.
/// Works on the log's truncated copies (first 128 bytes): it reads headers only and never throws on bad input.
/// Not on the per-packet path (runs in the PowerShell layer on a snapshot), so it may allocate.
/// </summary>
public sealed partial class FrameDecoder
{
    public FrameSummary Decode(LoggedFrame frame)
    {
        var f = frame.Bytes.AsSpan();
        if (f.Length < Ethernet.HeaderLength)
            return Summary(frame, "?", "?", "Ethernet", $"Truncated frame ({frame.Length} bytes)");
        var src = Ethernet.Source(f).ToString();
        var dst = Ethernet.Destination(f);
        var dstText = dst.IsBroadcast ? "Broadcast" : dst.ToString();
        var payload = f[Ethernet.HeaderLength..];
        return Ethernet.EtherType(f) switch
        {
            Ethernet.TypeArp => DecodeArp(frame, payload, src, dstText),
            Ethernet.TypeIpv4 => DecodeIpv4(frame, payload, src, dstText),
            Ethernet.TypeIpv6 => Summary(frame, src, dstText, "IPv6", "IPv6 (not decoded)"),
            var t => Summary(frame, src, dstText, "Ethernet", $"EtherType 0x{t:X4}"),
        };
    }

    private static FrameSummary Summary(LoggedFrame frame, string src, string dst, string protocol, string info,
        Ipv4Address? srcIp = null, Ipv4Address? dstIp = null, ushort sport = 0, ushort dport = 0, TcpSegmentInfo? tcp = null) =>
        new(frame.Number, frame.Time, frame.Direction, frame.Length, src, dst, protocol, info, srcIp, dstIp, sport, dport, tcp);

    private static FrameSummary DecodeArp(LoggedFrame frame, ReadOnlySpan<byte> p, string src, string dst)
    {
        if (!ArpPacket.IsValid(p)) return Summary(frame, src, dst, "ARP", "Malformed ARP");
        var spa = ArpPacket.SenderProtocol(p);
        var tpa = ArpPacket.TargetProtocol(p);
        var info = ArpPacket.Operation(p) switch
        {
            ArpPacket.OpRequest when spa == tpa => $"Gratuitous ARP for {spa}",
            ArpPacket.OpRequest => $"Who has {tpa}? Tell {spa}",
            ArpPacket.OpReply => $"{spa} is at {ArpPacket.SenderHardware(p)}",
            var op => $"ARP operation {op}",
        };
        return Summary(frame, src, dst, "ARP", info, spa, tpa);
    }

    private FrameSummary DecodeIpv4(LoggedFrame frame, ReadOnlySpan<byte> ip, string macSrc, string macDst)
    {
        if (ip.Length < Ipv4Header.MinLength || Ipv4Header.Version(ip) != 4 || Ipv4Header.HeaderLength(ip) < Ipv4Header.MinLength || ip.Length < Ipv4Header.HeaderLength(ip))
            return Summary(frame, macSrc, macDst, "IPv4", "Malformed IPv4 header");
        var s = Ipv4Header.Source(ip);
        var d = Ipv4Header.Destination(ip);
        var total = Ipv4Header.TotalLength(ip);
        var hl = Ipv4Header.HeaderLength(ip);
        var body = ip[hl..];
        var bodyLength = Math.Max(0, total - hl); // real length; the log may hold less
        var ss = s.ToString();
        var ds = d.ToString();
        if (Ipv4Header.FragmentOffset(ip) != 0)
            return Summary(frame, ss, ds, "IPv4", $"Fragment offset={Ipv4Header.FragmentOffset(ip)} id=0x{Ipv4Header.Identification(ip):x4} len={bodyLength}", s, d);
        var more = Ipv4Header.MoreFragments(ip) ? $" [fragment id=0x{Ipv4Header.Identification(ip):x4}]" : "";
        switch ((IpProtocol)Ipv4Header.Protocol(ip))
        {
            case IpProtocol.Icmp:
                return Summary(frame, ss, ds, "ICMP", DescribeIcmp(body, Ipv4Header.Ttl(ip)) + more, s, d);
            case IpProtocol.Udp:
                if (body.Length < 8) return Summary(frame, ss, ds, "UDP", "Truncated UDP header", s, d);
                var usp = BinaryPrimitives.ReadUInt16BigEndian(body);
                var udp = BinaryPrimitives.ReadUInt16BigEndian(body[2..]);
                var ulen = BinaryPrimitives.ReadUInt16BigEndian(body[4..]);
                var proto = usp == 53 || udp == 53 ? "DNS" : "UDP";
                return Summary(frame, ss, ds, proto, $"{usp} → {udp} Len={Math.Max(0, ulen - 8)}" + more, s, d, usp, udp);
            case IpProtocol.Tcp:
                return DecodeTcp(frame, body, bodyLength, s, d, more);
            default:
                return Summary(frame, ss, ds, "IPv4", $"IP protocol {Ipv4Header.Protocol(ip)} len={bodyLength}" + more, s, d);
        }
    }

    private static string DescribeIcmp(ReadOnlySpan<byte> m, byte ttl)
    {
        if (m.Length < 4) return "Truncated ICMP";
        var type = m[0];
        var code = m[1];
        if (type is 0 or 8 && m.Length >= 8)
        {
            var id = BinaryPrimitives.ReadUInt16BigEndian(m[4..]);
            var seq = BinaryPrimitives.ReadUInt16BigEndian(m[6..]);
            return $"Echo (ping) {(type == 8 ? "request" : "reply")}  id=0x{id:x4}, seq={seq}, ttl={ttl}";
        }
        return type switch
        {
            3 => code switch
            {
                0 => "Destination unreachable (Network unreachable)",
                1 => "Destination unreachable (Host unreachable)",
                2 => "Destination unreachable (Protocol unreachable)",
                3 => "Destination unreachable (Port unreachable)",
                4 => "Destination unreachable (Fragmentation needed)",
                _ => $"Destination unreachable (code {code})",
            },
            11 => "Time-to-live exceeded",
            _ => $"ICMP type {type} code {code}",
        };
    }
}
