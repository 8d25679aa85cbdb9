using NetStack.IPv4;

namespace NetStack.Tcp;

/// <summary>The options of an outgoing segment as values; the output writes them (RFC 9293 3.2, RFC 7323, RFC 2018).</summary>
internal ref struct SegmentOptions
{
    /// <summary>Non-zero in a SYN: the options then take the SYN form (MSS, SACK-permitted, timestamps, window scale).</summary>
    public ushort Mss;
    public bool SackPermitted;
    /// <summary>-1: no window scale option.</summary>
    public int WindowScale;
    public bool HasTimestamp;
    public uint TsVal, TsEcr;
    /// <summary>SACK blocks (not in a SYN).</summary>
    public ReadOnlySpan<SackBlock> Sack;
}

/// <summary>
/// One segment a connection sends, as header fields, options and data. The data is one or two spans (two when it
/// wraps around the send ring), copied once by the output into whatever carries the segment.
/// </summary>
internal ref struct OutgoingSegment
{
    public ushort LocalPort, RemotePort;
    public uint Seq, Ack;
    public TcpFlags Flags;
    public ushort Window;
    public SegmentOptions Options;
    public ReadOnlySpan<byte> Data, DataWrapped;
    /// <summary>Don't fragment: set on a connection's segments, for path MTU discovery (RFC 1191); not on bare RSTs.</summary>
    public bool DontFragment;

    public readonly int DataLength => Data.Length + DataWrapped.Length;
}

/// <summary>
/// Where TCP's segments leave: the IP layer in a stack (<see cref="IpSegmentOutput"/>), or a test's recorder, so
/// a connection's rules can be driven with no IP layer at all. Loop only.
/// </summary>
internal interface ISegmentOutput
{
    /// <summary>The MSS the path allows: the IP MTU less 20 bytes of IP and 20 of TCP header (RFC 9293 3.7.1).</summary>
    int PathMss { get; }

    /// <summary>Sends <paramref name="segment"/> to <paramref name="remote"/>; None when it was sent or queued.</summary>
    StackError Send(Ipv4Address remote, in OutgoingSegment segment, TimeSpan now);
}

/// <summary>
/// The segment output over IPv4's <see cref="IIpOutput"/>: builds the segment in place in the IP layer's payload
/// buffer, or the device's when it lends one (header, options, data copied once, checksum with the pseudo-header), and
/// sends it.
/// </summary>
internal sealed class IpSegmentOutput : ISegmentOutput
{
    private readonly IIpOutput _ip;
    private readonly LayerContext _context;

    public IpSegmentOutput(LayerContext context, IIpOutput ip)
    {
        _context = context;
        _ip = ip;
    }

    public int PathMss => _ip.Mtu - Ipv4Header.MinLength - TcpHeader.MinLength;

    public StackError Send(Ipv4Address remote, in OutgoingSegment segment, TimeSpan now)
    {
        // In the device's buffer when it lends one (the in-memory wire's slot): the frame then leaves without a copy.
        var buf = _ip.PayloadBufferFor(TcpHeader.MaxLength + segment.DataLength);
        var hlen = TcpHeader.MinLength + TcpHeader.WriteOptions(buf[TcpHeader.MinLength..TcpHeader.MaxLength], in segment.Options);
        TcpHeader.Write(buf, segment.LocalPort, segment.RemotePort, segment.Seq, segment.Ack, segment.Flags, segment.Window, hlen);
        segment.Data.CopyTo(buf[hlen..]);
        segment.DataWrapped.CopyTo(buf[(hlen + segment.Data.Length)..]);
        var total = hlen + segment.DataLength;
        // With checksum offload the device (or the kernel behind it) completes the checksum: not computed twice.
        var pending = _ip.MayLeaveTcpChecksumPending(total);
        if (pending) TcpHeader.SetPartialChecksum(buf[..total], _context.Config.Address, remote);
        else TcpHeader.SetChecksum(buf[..total], _context.Config.Address, remote);
        return _ip.Send(remote, IpProtocol.Tcp, total, now, dontFragment: segment.DontFragment, tcpChecksumPending: pending);
    }
}
