using System.Buffers.Binary;
using System.Text;
using NetStack.Sockets;
using NetStack.Tcp;

namespace NetStack.Diagnostics;

/// <summary>A SACK block (RFC 2018), relative to the initial sequence number of the side whose data it names.</summary>
public readonly record struct SackRange(uint Left, uint Right);

/// <summary>
/// A TCP segment's header decoded: raw and relative numbers, flags, the window as sent and as scaled
/// (RFC 7323: the shift each side announced in its SYN), the data length, and the options.
/// </summary>
public sealed record TcpSegmentInfo
{
    public uint Seq { get; init; }
    public uint Ack { get; init; }
    /// <summary>Seq less the sender's initial sequence number.</summary>
    public uint RelativeSeq { get; init; }
    /// <summary>Ack less the receiver's initial sequence number; null without ACK, raw when that ISN is unknown.</summary>
    public uint? RelativeAck { get; init; }
    public TcpFlags Flags { get; init; }
    /// <summary>The window field as it is on the wire.</summary>
    public ushort WindowField { get; init; }
    /// <summary>The window in bytes (the field shifted by the sender's window scale); the field itself when the scale is unknown.</summary>
    public long Window { get; init; }
    /// <summary>Whether the window scale in force was seen (in the SYNs) or recorded by the stack.</summary>
    public bool WindowScaleKnown { get; init; }
    /// <summary>Data bytes (the real length, even when the copy was truncated).</summary>
    public int Length { get; init; }
    public ushort? Mss { get; init; }
    /// <summary>The window scale shift count offered in a SYN.</summary>
    public int? WindowScale { get; init; }
    public bool SackPermitted { get; init; }
    public uint? TsVal { get; init; }
    public uint? TsEcr { get; init; }
    public IReadOnlyList<SackRange> Sack { get; init; } = Array.Empty<SackRange>();

    public bool Has(TcpFlags f) => (Flags & f) != 0;
    /// <summary>Sequence space used: data, plus one each for SYN and FIN.</summary>
    public uint SequenceLength => (uint)Length + (Has(TcpFlags.Syn) ? 1u : 0u) + (Has(TcpFlags.Fin) ? 1u : 0u);
}

public sealed partial class FrameDecoder
{
    // Per direction of each connection, keyed (src, sport, dst, dport): the ISN, the window shift its sender uses, and
    // the shift offered in its SYN until the other side's SYN settles whether scaling is on (RFC 7323 2.2).
    private readonly Dictionary<(uint, ushort, uint, ushort), uint> _isn = new();
    private readonly Dictionary<(uint, ushort, uint, ushort), int> _shift = new();
    private readonly Dictionary<(uint, ushort, uint, ushort), int> _offered = new();

    /// <summary>
    /// Seeds one connection as the stack recorded it (its ISNs and window shifts), so numbers stay relative and
    /// windows scaled after the handshake has left the packet log. A SYN in the log still starts a new numbering.
    /// </summary>
    public void AddKnownConnection(Ipv4Address local, ushort localPort, Ipv4Address remote, ushort remotePort,
        uint iss, uint? irs, int? localShift = null, int? remoteShift = null)
    {
        var outKey = (local.Value, localPort, remote.Value, remotePort);
        var inKey = (remote.Value, remotePort, local.Value, localPort);
        _isn[outKey] = iss;
        if (irs is { } i) _isn[inKey] = i;
        if (localShift is { } ls) _shift[outKey] = ls;
        if (remoteShift is { } rs) _shift[inKey] = rs;
    }

    private FrameSummary DecodeTcp(LoggedFrame frame, ReadOnlySpan<byte> t, int segmentLength, Ipv4Address s, Ipv4Address d, string more)
    {
        if (t.Length < 20) return Summary(frame, s.ToString(), d.ToString(), "TCP", "Truncated TCP header", s, d);
        var sport = BinaryPrimitives.ReadUInt16BigEndian(t);
        var dport = BinaryPrimitives.ReadUInt16BigEndian(t[2..]);
        var seq = BinaryPrimitives.ReadUInt32BigEndian(t[4..]);
        var ack = BinaryPrimitives.ReadUInt32BigEndian(t[8..]);
        var dataOffset = (t[12] >> 4) * 4;
        var flags = (TcpFlags)t[13];
        var win = BinaryPrimitives.ReadUInt16BigEndian(t[14..]);
        var len = Math.Max(0, segmentLength - dataOffset);
        var syn = (flags & TcpFlags.Syn) != 0;

        var key = (s.Value, sport, d.Value, dport);
        var reverse = (d.Value, dport, s.Value, sport);
        if (syn || !_isn.ContainsKey(key)) _isn[key] = seq; // a SYN starts a new relative numbering
        var opts = dataOffset > 20 ? t[20..Math.Min(dataOffset, t.Length)] : default;
        var info = ReadOptions(opts, _isn.TryGetValue(reverse, out var peerIsn) ? peerIsn : 0);
        if (syn) SettleWindowScale(key, reverse, (flags & TcpFlags.Ack) != 0, info.WindowScale);
        var shiftKnown = _shift.TryGetValue(key, out var shift);
        info = info with
        {
            Seq = seq, Ack = ack, RelativeSeq = seq - _isn[key], Flags = flags, WindowField = win, Length = len,
            RelativeAck = (flags & TcpFlags.Ack) == 0 ? null : _isn.ContainsKey(reverse) ? ack - peerIsn : ack,
            Window = syn ? win : (long)win << (shiftKnown ? shift : 0), // never scaled in a SYN (RFC 7323 2.2)
            WindowScaleKnown = syn || shiftKnown,
        };

        var sb = new StringBuilder();
        sb.Append(sport).Append(" → ").Append(dport).Append(" [").Append(FlagNames(flags)).Append("] Seq=").Append(info.RelativeSeq);
        if (info.RelativeAck is { } relAck) sb.Append(" Ack=").Append(relAck); // raw if we never saw the peer send
        sb.Append(" Win=").Append(win).Append(" Len=").Append(len);
        AppendOptions(sb, info);
        sb.Append(more);
        return Summary(frame, s.ToString(), d.ToString(), "TCP", sb.ToString(), s, d, sport, dport, info);
    }

    // RFC 7323 2.2: scaling is on only if both SYNs carry the option; each side's windows then use its own shift.
    private void SettleWindowScale((uint, ushort, uint, ushort) key, (uint, ushort, uint, ushort) reverse, bool synAck, int? ws)
    {
        if (!synAck)
        {
            _shift.Remove(key);
            _shift.Remove(reverse);
            if (ws is { } w) _offered[key] = w; else _offered.Remove(key);
            return;
        }
        var both = ws is not null && _offered.TryGetValue(reverse, out _);
        _shift[key] = both ? ws!.Value : 0;
        _shift[reverse] = both ? _offered[reverse] : 0;
    }

    /// <summary>The flag names in tshark's order: "SYN, ACK".</summary>
    public static string FlagNames(TcpFlags flags)
    {
        var names = new List<string>(3);
        if ((flags & TcpFlags.Syn) != 0) names.Add("SYN");
        if ((flags & TcpFlags.Fin) != 0) names.Add("FIN");
        if ((flags & TcpFlags.Rst) != 0) names.Add("RST");
        if ((flags & TcpFlags.Psh) != 0) names.Add("PSH");
        if ((flags & TcpFlags.Ack) != 0) names.Add("ACK");
        if ((flags & TcpFlags.Urg) != 0) names.Add("URG");
        if ((flags & TcpFlags.Ece) != 0) names.Add("ECE");
        if ((flags & TcpFlags.Cwr) != 0) names.Add("CWR");
        return string.Join(", ", names);
    }

    // RFC 9293 section 3.2 (MSS), RFC 7323 (window scale, timestamps), RFC 2018 (SACK). Stops at the first malformed option.
    private static TcpSegmentInfo ReadOptions(ReadOnlySpan<byte> o, uint peerIsn)
    {
        ushort? mss = null;
        int? ws = null;
        uint? tsVal = null, tsEcr = null;
        var sackPerm = false;
        List<SackRange>? sack = null;
        int i = 0;
        while (i < o.Length)
        {
            var kind = o[i];
            if (kind == 0) break;
            if (kind == 1) { i++; continue; }
            if (i + 1 >= o.Length) break;
            var len = o[i + 1];
            if (len < 2 || i + len > o.Length) break;
            var v = o.Slice(i + 2, len - 2);
            switch (kind)
            {
                case 2 when v.Length == 2: mss = BinaryPrimitives.ReadUInt16BigEndian(v); break;
                case 3 when v.Length == 1: ws = Math.Min((int)v[0], 14); break;
                case 4: sackPerm = true; break;
                case 5:
                    sack ??= new List<SackRange>(4);
                    for (int b = 0; b + 8 <= v.Length; b += 8)
                        sack.Add(new SackRange(BinaryPrimitives.ReadUInt32BigEndian(v[b..]) - peerIsn, BinaryPrimitives.ReadUInt32BigEndian(v[(b + 4)..]) - peerIsn));
                    break;
                case 8 when v.Length == 8:
                    tsVal = BinaryPrimitives.ReadUInt32BigEndian(v);
                    tsEcr = BinaryPrimitives.ReadUInt32BigEndian(v[4..]);
                    break;
            }
            i += len;
        }
        return new TcpSegmentInfo
        {
            Mss = mss, WindowScale = ws, SackPermitted = sackPerm, TsVal = tsVal, TsEcr = tsEcr,
            Sack = (IReadOnlyList<SackRange>?)sack ?? Array.Empty<SackRange>(),
        };
    }

    private static void AppendOptions(StringBuilder sb, TcpSegmentInfo t)
    {
        if (t.Mss is { } mss) sb.Append(" MSS=").Append(mss);
        if (t.WindowScale is { } ws) sb.Append(" WS=").Append(1 << ws);
        if (t.SackPermitted) sb.Append(" SACK_PERM");
        foreach (var r in t.Sack) sb.Append(" SLE=").Append(r.Left).Append(" SRE=").Append(r.Right);
        if (t.TsVal is { } tv) sb.Append(" TSval=").Append(tv).Append(" TSecr=").Append(t.TsEcr);
    }
}
