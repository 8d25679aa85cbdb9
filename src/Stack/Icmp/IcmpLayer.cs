using System.Buffers.Binary;
using NetStack.IPv4;

namespace NetStack.Icmp;

public sealed class IcmpCounters : LayerCounters
{
    public override string Layer => "Icmp";
    public long MessagesReceived;
    public long MessagesSent;
    public long EchoRequestsReceived;
    public long EchoRepliesSent;
    public long EchoRequestsSent;
    public long EchoRepliesReceived;
    public long DestinationUnreachableReceived;
    public long DestinationUnreachableSent;
    public long TimeExceededReceived;
    public long TimeExceededSent;
    /// <summary>Echo requests to a broadcast or multicast address, not answered (RFC 1122 3.2.2.6).</summary>
    public long EchoRequestsIgnoredBroadcast;
    public long ErrorsRateLimited;
    public long DroppedTruncated;
    public long DroppedBadChecksum;
    public long DroppedUnknownType;
    public long DroppedUnmatchedReply;
}

/// <summary>
/// ICMP (RFC 792, RFC 1122 3.2.2): answers echo requests, sends echo requests with RTT measured,
/// sends rate-limited destination-unreachable errors, and hands received errors to the transport that
/// sent the datagram they concern (through IPv4's <see cref="IIpErrorDelivery"/>). It is also the sink of the errors
/// IPv4 owes (<see cref="IIcmpErrorSink"/>). Loop-thread only.
/// </summary>
internal sealed class IcmpLayer : IIpProtocolHandler, IIcmpErrorSink
{
    private sealed class PendingPing
    {
        public required TaskCompletionSource<PingReply> Completion;
        public required Ipv4Address Destination;
        public required TimeSpan SentAt;
        public required TimeSpan Deadline;
        public required int Bytes;
    }

    private readonly LayerContext _context;
    private readonly IIpOutput _ip;
    private readonly IIpErrorDelivery _errors;
    private readonly Dictionary<ushort, PendingPing> _pings = new();
    private readonly ushort _identifier;
    private ushort _nextSequence;
    private double _tokens;
    private TimeSpan _tokensAt;
    private TimeSpan _nextDeadline = TimeSpan.MaxValue;

    public IcmpLayer(LayerContext context, IIpOutput ip, IIpErrorDelivery errors)
    {
        _context = context;
        _ip = ip;
        _errors = errors;
        _identifier = (ushort)(context.Unpredictable.Next(65535) + 1); // RFC 792 leaves it to us: unguessable, so a forged reply off path does not match
        _tokens = context.Config.Icmp.ErrorBurst;
    }

    public IcmpCounters Counters { get; } = new();

    public TransportDisposition OnDatagram(in IpDatagramInfo info, ReadOnlySpan<byte> msg, TimeSpan now)
    {
        OnMessage(in info, msg, now);
        return TransportDisposition.Delivered; // ICMP answers what it can itself; nothing is unreachable
    }

    private void OnMessage(in IpDatagramInfo info, ReadOnlySpan<byte> msg, TimeSpan now)
    {
        Counters.MessagesReceived++;
        if (msg.Length < 8) { Counters.DroppedTruncated++; return; }
        if (!Checksum.Verify(0, msg)) { Counters.DroppedBadChecksum++; return; }
        var type = msg[0];
        switch (type)
        {
            case IcmpCodes.TypeEchoRequest:
                Counters.EchoRequestsReceived++;
                // RFC 1122 3.2.2.6: an echo request to a broadcast address may be silently discarded.
                if (!info.IsUnicast) { Counters.EchoRequestsIgnoredBroadcast++; return; }
                if (!_context.Config.Icmp.AnswerEcho) return;
                var reply = _ip.PayloadBuffer;
                msg.CopyTo(reply);
                reply[0] = IcmpCodes.TypeEchoReply;
                reply[1] = 0;
                reply[2] = 0;
                reply[3] = 0;
                BinaryPrimitives.WriteUInt16BigEndian(reply[2..], Checksum.Compute(reply[..msg.Length]));
                if (_ip.Send(info.Source, IpProtocol.Icmp, msg.Length, now, tos: info.Tos) == StackError.None)
                {
                    Counters.EchoRepliesSent++;
                    Counters.MessagesSent++;
                }
                return;
            case IcmpCodes.TypeEchoReply:
                OnEchoReply(in info, msg, now);
                return;
            case IcmpCodes.TypeDestinationUnreachable:
                Counters.DestinationUnreachableReceived++;
                OnError(in info, msg, now);
                return;
            case IcmpCodes.TypeTimeExceeded:
                Counters.TimeExceededReceived++;
                OnError(in info, msg, now);
                return;
            case IcmpCodes.TypeParameterProblem:
            case IcmpCodes.TypeSourceQuench:
                OnError(in info, msg, now);
                return;
            default:
                Counters.DroppedUnknownType++;
                return;
        }
    }

    private void OnError(in IpDatagramInfo info, ReadOnlySpan<byte> msg, TimeSpan now)
    {
        var type = msg[0];
        var code = msg[1];
        var original = msg[8..];
        var error = type switch
        {
            IcmpCodes.TypeDestinationUnreachable => code switch
            {
                IcmpCodes.NetworkUnreachable => StackError.NetworkUnreachable,
                IcmpCodes.ProtocolUnreachable => StackError.ProtocolUnreachable,
                IcmpCodes.PortUnreachable => StackError.PortUnreachable,
                IcmpCodes.FragmentationNeeded => StackError.MessageTooLong,
                _ => StackError.HostUnreachable,
            },
            IcmpCodes.TypeTimeExceeded => StackError.HostUnreachable,
            _ => StackError.HostUnreachable,
        };
        var mtu = type == IcmpCodes.TypeDestinationUnreachable && code == IcmpCodes.FragmentationNeeded
            ? BinaryPrimitives.ReadUInt16BigEndian(msg[6..]) : 0;
        var e = new IpErrorInfo(error, type, code, info.Source, mtu, isLocal: false);
        _context.Trace("Icmp", $"{DescribeError(type, code)} from {info.Source}");
        _errors.DeliverError(in e, original, now);
    }

    private static string DescribeError(byte type, byte code) => (type, code) switch
    {
        (3, 0) => "network unreachable",
        (3, 1) => "host unreachable",
        (3, 2) => "protocol unreachable",
        (3, 3) => "port unreachable",
        (3, 4) => "fragmentation needed",
        (3, _) => $"destination unreachable (code {code})",
        (11, _) => "time exceeded",
        (12, _) => "parameter problem",
        _ => $"ICMP type {type} code {code}",
    };

    /// <summary>
    /// Errors about our own echo requests end the ping they concern (RFC 792, RFC 1122 3.2.2): the quote must be an
    /// echo request with our identifier, a sequence number in flight, and the destination that ping was sent to.
    /// Time exceeded is a hop's answer to traceroute; fragmentation needed carries the next-hop MTU (RFC 1191).
    /// </summary>
    public void OnError(in IpErrorInfo error, ReadOnlySpan<byte> original, TimeSpan now)
    {
        var ihl = Ipv4Header.HeaderLength(original);
        var icmp = original[ihl..];
        if (icmp.Length < 8 || icmp[0] != IcmpCodes.TypeEchoRequest) return;
        if (BinaryPrimitives.ReadUInt16BigEndian(icmp[4..]) != _identifier) return;
        var seq = BinaryPrimitives.ReadUInt16BigEndian(icmp[6..]);
        if (!_pings.TryGetValue(seq, out var p) || Ipv4Header.Destination(original) != p.Destination) return;
        _pings.Remove(seq);
        var status = error.IcmpType == IcmpCodes.TypeTimeExceeded ? PingStatus.TtlExpired : error.Error switch
        {
            StackError.HostUnreachable => PingStatus.HostUnreachable,
            StackError.NetworkUnreachable => PingStatus.NetworkUnreachable,
            StackError.MessageTooLong => PingStatus.PacketTooBig,
            _ => PingStatus.DestinationUnreachable,
        };
        _context.Trace("Icmp", $"echo {seq} to {p.Destination}: {status} from {error.Reporter}");
        p.Completion.TrySetResult(new PingReply(p.Destination, status, now - p.SentAt, 0, p.Bytes, seq,
            error.IsLocal ? (Ipv4Address?)null : error.Reporter, error.NextHopMtu));
    }

    private void OnEchoReply(in IpDatagramInfo info, ReadOnlySpan<byte> msg, TimeSpan now)
    {
        Counters.EchoRepliesReceived++;
        var id = BinaryPrimitives.ReadUInt16BigEndian(msg[4..]);
        var seq = BinaryPrimitives.ReadUInt16BigEndian(msg[6..]);
        if (id != _identifier || !_pings.TryGetValue(seq, out var p) || p.Destination != info.Source && !p.Destination.IsBroadcast)
        {
            Counters.DroppedUnmatchedReply++;
            return;
        }
        _pings.Remove(seq);
        p.Completion.TrySetResult(new PingReply(info.Source, PingStatus.Success, now - p.SentAt, info.Ttl, msg.Length - 8, seq));
    }

    /// <summary>
    /// Sends one echo request (with DF set when <paramref name="dontFragment"/>); the task ends with the reply, an error,
    /// or TimedOut after <paramref name="timeout"/>.
    /// </summary>
    public Task<PingReply> Ping(Ipv4Address destination, int payloadSize, TimeSpan timeout, byte ttl, TimeSpan now, bool dontFragment = false)
    {
        if (payloadSize < 0 || payloadSize > Ipv4Layer.MaxPayload - 8)
            throw new StackException(StackError.InvalidArgument, $"Ping payload size {payloadSize} is out of range; use 0 to {Ipv4Layer.MaxPayload - 8} bytes.");
        var tcs = new TaskCompletionSource<PingReply>() /* loop-side: see NetworkStack.InvokeAsync */;
        var seq = _nextSequence++;
        var msg = _ip.PayloadBuffer[..(8 + payloadSize)];
        msg[0] = IcmpCodes.TypeEchoRequest;
        msg[1] = 0;
        BinaryPrimitives.WriteUInt16BigEndian(msg[2..], 0);
        BinaryPrimitives.WriteUInt16BigEndian(msg[4..], _identifier);
        BinaryPrimitives.WriteUInt16BigEndian(msg[6..], seq);
        for (int i = 0; i < payloadSize; i++) msg[8 + i] = (byte)(0x10 + i); // like ping's pattern
        BinaryPrimitives.WriteUInt16BigEndian(msg[2..], Checksum.Compute(msg));
        var p = new PendingPing { Completion = tcs, Destination = destination, SentAt = now, Deadline = now + timeout, Bytes = payloadSize };
        _pings[seq] = p;
        var r = _ip.Send(destination, IpProtocol.Icmp, msg.Length, now, ttl, dontFragment);
        if (r == StackError.MessageTooLong && dontFragment)
        {
            // Too big for our own link with DF: the answer a first-hop router would give, found here (RFC 1191).
            _pings.Remove(seq);
            tcs.SetResult(new PingReply(destination, PingStatus.PacketTooBig, TimeSpan.Zero, 0, payloadSize, seq, NextHopMtu: _ip.Mtu));
            return tcs.Task;
        }
        if (r != StackError.None)
        {
            _pings.Remove(seq);
            var status = r switch
            {
                StackError.HostUnreachable => PingStatus.HostUnreachable,
                StackError.NetworkUnreachable => PingStatus.NetworkUnreachable,
                _ => PingStatus.DestinationUnreachable,
            };
            if (r is StackError.MessageTooLong or StackError.NoBufferSpace)
                tcs.SetException(new StackException(r, $"The echo request to {destination} could not be sent: {r}."));
            else tcs.SetResult(new PingReply(destination, status, TimeSpan.Zero, 0, payloadSize, seq));
            return tcs.Task;
        }
        Counters.EchoRequestsSent++;
        Counters.MessagesSent++;
        if (p.Deadline < _nextDeadline) _nextDeadline = p.Deadline;
        return tcs.Task;
    }

    public TimeSpan? Poll(TimeSpan now)
    {
        if (now < _nextDeadline) return _nextDeadline == TimeSpan.MaxValue ? null : _nextDeadline;
        var next = TimeSpan.MaxValue;
        List<ushort>? expired = null;
        foreach (var (seq, p) in _pings)
        {
            if (now >= p.Deadline) (expired ??= new()).Add(seq);
            else if (p.Deadline < next) next = p.Deadline;
        }
        if (expired != null)
            foreach (var seq in expired)
            {
                _pings.Remove(seq, out var p);
                p!.Completion.TrySetResult(new PingReply(p.Destination, PingStatus.TimedOut, now - p.SentAt, 0, p.Bytes, seq));
            }
        _nextDeadline = next;
        return next == TimeSpan.MaxValue ? null : next;
    }

    /// <summary>
    /// Most bytes of the offending datagram an error quotes: RFC 1812 4.3.2.3 lets the whole error fill 576
    /// bytes (IP header 20 + ICMP header 8 + quote); RFC 792's minimum is the header and 8 bytes of data.
    /// </summary>
    public const int MaxQuote = 576 - Ipv4Header.MinLength - 8;

    /// <summary>
    /// Sends an ICMP error of <paramref name="type"/>/<paramref name="code"/> about <paramref name="offending"/>
    /// (its IP header and payload), rate-limited by a token bucket. Never about ICMP errors, broadcasts (IP or
    /// link: <paramref name="linkBroadcast"/>), non-first fragments or datagrams without a unicast source (RFC 1122 3.2.2).
    /// </summary>
    public void SendError(byte type, byte code, ReadOnlySpan<byte> offending, bool linkBroadcast, TimeSpan now)
    {
        if (offending.Length < Ipv4Header.MinLength) return;
        var ihl = Ipv4Header.HeaderLength(offending);
        if (ihl < Ipv4Header.MinLength || ihl > offending.Length) return;
        var dst = Ipv4Header.Destination(offending);
        var src = Ipv4Header.Source(offending);
        if (dst != _context.Config.Address || Ipv4Header.FragmentOffset(offending) != 0) return;
        if (!_context.Config.IsUnicastHost(src)) return;
        // RFC 1122 3.2.2: never about a datagram that came in a link-layer broadcast or multicast frame.
        if (linkBroadcast) return;
        // Only echo (the query we know) may draw an error; every other ICMP message might itself be an error.
        if (Ipv4Header.Protocol(offending) == (byte)IpProtocol.Icmp && (offending.Length <= ihl || offending[ihl] is not (IcmpCodes.TypeEchoRequest or IcmpCodes.TypeEchoReply))) return;
        if (!TakeToken(now)) { Counters.ErrorsRateLimited++; return; }
        var quote = Math.Min(offending.Length, MaxQuote);
        var msg = _ip.PayloadBuffer[..(8 + quote)];
        msg[0] = type;
        msg[1] = code;
        msg[2] = msg[3] = msg[4] = msg[5] = msg[6] = msg[7] = 0;
        offending[..quote].CopyTo(msg[8..]);
        BinaryPrimitives.WriteUInt16BigEndian(msg[2..], Checksum.Compute(msg));
        if (_ip.Send(src, IpProtocol.Icmp, msg.Length, now) == StackError.None)
        {
            if (type == IcmpCodes.TypeTimeExceeded) Counters.TimeExceededSent++;
            else Counters.DestinationUnreachableSent++;
            Counters.MessagesSent++;
        }
    }

    private bool TakeToken(TimeSpan now)
    {
        var s = _context.Config.Icmp;
        _tokens = Math.Min(s.ErrorBurst, _tokens + (now - _tokensAt).TotalSeconds * s.ErrorsPerSecond);
        _tokensAt = now;
        if (_tokens < 1) return false;
        _tokens -= 1;
        return true;
    }

    public void Dispose()
    {
        foreach (var p in _pings.Values) p.Completion.TrySetException(new StackException(StackError.StackStopped, "The stack stopped."));
        _pings.Clear();
    }
}
