using System.Buffers.Binary;
using NetStack.IPv4;

namespace NetStack.Tcp;

public sealed class TcpCounters : LayerCounters
{
    public override string Layer => "Tcp";
    public long SegmentsReceived;
    public long SegmentsSent;
    public long SegmentsRetransmitted;
    /// <summary>Data bytes sent again (fast retransmit, SACK recovery, timeout); SYN/FIN count no bytes.</summary>
    public long BytesRetransmitted;
    /// <summary>SACK blocks ignored as invalid (empty, at or below SND.UNA such as D-SACK, beyond SND.MAX; RFC 2018).</summary>
    public long SackBlocksIgnored;
    /// <summary>SACKed ranges forgotten because the scoreboard's fixed table was full.</summary>
    public long SackRangesDropped;
    /// <summary>The peer discarded data it had SACKed (a cumulative ACK stopped at a SACKed range): scoreboard cleared.</summary>
    public long SackReneging;
    /// <summary>D-SACK blocks received (RFC 2883: the peer got a segment twice) and sent (we did).</summary>
    public long DsacksReceived;
    public long DsacksSent;
    /// <summary>Retransmissions shown spurious by a D-SACK within their loss episode (RFC 3708).</summary>
    public long SpuriousRetransmits;
    /// <summary>Window reductions undone because their retransmissions proved spurious (D-SACK, or timestamps: RFC 3522).</summary>
    public long Undos;
    /// <summary>Segments RACK deemed lost (RFC 8985 6.2), lost retransmissions included.</summary>
    public long RackLosses;
    /// <summary>Tail loss probes sent (RFC 8985 7.3), and those whose acknowledgement showed they repaired a loss.</summary>
    public long TlpProbes;
    public long TlpRecoveries;
    /// <summary>Fast recoveries whose window followed Proportional Rate Reduction (RFC 6937).</summary>
    public long PrrRecoveries;
    /// <summary>Times a paced sender (BBR) held data back until its next burst's departure time (PaceAt).</summary>
    public long PacingWaits;
    public long ActiveOpens;
    public long PassiveOpens;
    public long AttemptFails;
    public long EstablishedResets;
    public long ResetsSent;
    public long ResetsReceived;
    public long DroppedTruncated;
    public long DroppedBadChecksum;
    public long DroppedBadOffset;
    public long DroppedBadOptions;
    public long DroppedBroadcast;
    public long DroppedNoSocket;
    public long DroppedNotAcceptable;
    public long DroppedOutOfOrderFull;
    public long DroppedAfterClose;
    public long ListenSynQueueFull;
    public long ListenAcceptQueueFull;
    /// <summary>SYN-ACKs sent as SYN cookies (RFC 4987), keeping no state: the SYN queue was full, or Tcp.SynCookies is Always.</summary>
    public long SynCookiesSent;
    /// <summary>Returning ACKs whose cookie was valid: connections made from them.</summary>
    public long SynCookiesAccepted;
    /// <summary>ACKs to a listener checked as cookies and found stale or forged (answered with RST).</summary>
    public long SynCookiesRejected;
    public long DroppedTableFull;
    public long OutOfOrderSegments;
    public long DuplicateSegments;
    public long FastRetransmits;
    public long Timeouts;
    public long ConnectionsTimedOut;
    public long DelayedAcks;
    /// <summary>ACKs sent at the end of a receive batch for the segments of that batch (instead of one per two segments).</summary>
    public long BatchAcks;
    public long ZeroWindowProbes;
    public long KeepalivesSent;
    public long ChallengeAcksSent;
    /// <summary>Challenge ACKs not sent: the connection's limit (Tcp.InvalidAckInterval) or the stack's (Tcp.ChallengeAcksPerSecond).</summary>
    public long ChallengeAcksSuppressed;
    /// <summary>ACKs not sent for refused segments without data (out of the window, old by PAWS): the connection's limit.</summary>
    public long InvalidAcksSuppressed;
    public long PawsRejected;
    public long IcmpErrors;
    public long PathMtuUpdates;
}

/// <summary>A connection's identity here: the peer's address and port and our port (our address is the stack's).</summary>
internal readonly record struct ConnKey(uint RemoteAddress, ushort RemotePort, ushort LocalPort);

/// <summary>
/// TCP (RFC 9293): demultiplexes segments to connections (a dictionary keyed by a struct four-tuple) and
/// listeners, answers segments that reach no socket with RST (3.10.7.1), and runs every connection's timers
/// from one min-heap of deadlines, so nothing is scanned per packet. Segments leave through an
/// <see cref="ISegmentOutput"/> (IPv4's <see cref="IIpOutput"/> in a stack). Loop only.
/// </summary>
internal sealed class TcpLayer : IIpProtocolHandler
{
    private readonly LayerContext _context;
    private readonly ISegmentOutput _output;
    private readonly EphemeralPorts _ports;
    private readonly Dictionary<ConnKey, TcpConnection> _connections = new();
    private readonly Dictionary<ushort, ListenEndpoint> _listeners = new();
    // Deadline heap with lazy deletion: an entry is live only if it matches the connection's HeapAt.
    private readonly PriorityQueue<TcpConnection, TimeSpan> _timers = new();
    private readonly ulong _isnKey0, _isnKey1;
    private double _challengeTokens;
    private TimeSpan _challengeAt;
    // Connections owing an ACK at the end of the current receive batch, in arrival order: a list reused batch after batch
    // (nothing allocated per batch once it has grown; no link field in every connection, idle ones included).
    private readonly List<TcpConnection> _batchAcks = new(16);

    /// <summary>
    /// The most received data one deferred ACK may cover (also at most a quarter of the receive buffer): 64 KiB, the
    /// size of one Linux GRO packet, keeps the sender's ACK clock going within a batch of up to 256 frames.
    /// </summary>
    internal const int MaxAckStretchBytes = 64 * 1024;

    /// <param name="output">Where segments leave: <see cref="IpSegmentOutput"/> in a stack, a recorder in rule tests.</param>
    public TcpLayer(LayerContext context, ISegmentOutput output, EphemeralPorts ports)
    {
        _context = context;
        _output = output;
        _ports = ports;
        Span<byte> key = stackalloc byte[16];
        context.Unpredictable.NextBytes(key); // RFC 6528: the ISN secret
        _isnKey0 = BinaryPrimitives.ReadUInt64LittleEndian(key);
        _isnKey1 = BinaryPrimitives.ReadUInt64LittleEndian(key[8..]);
        _challengeTokens = context.Config.Tcp.ChallengeAcksPerSecond;
        Cookies = new SynCookies(_isnKey0, _isnKey1, context.Config.Address);
    }

    public TcpCounters Counters { get; } = new();
    /// <summary>SYN cookies, keyed from the ISN secret (so no further draw from the seeded random source).</summary>
    internal SynCookies Cookies { get; }
    /// <summary>Every connection's state transitions with its ISNs (Diagnostics: ladders, relative Seq/Ack).</summary>
    public Diagnostics.TcpStateLog StateLog { get; } = new();
    /// <summary>Configuration, trace and random source, shared with the connections.</summary>
    public LayerContext Context => _context;
    /// <summary>Where every segment leaves.</summary>
    public ISegmentOutput Output => _output;
    public TcpSettings Settings => _context.Config.Tcp;
    public int ConnectionCount => _connections.Count;
    /// <summary>Entries in the timer heap, live or superseded (issue 18: idle connections leave none once their timers ran).</summary>
    internal int TimerEntries => _timers.Count;

    // ---------------- receive ----------------

    public TransportDisposition OnDatagram(in IpDatagramInfo info, ReadOnlySpan<byte> payload, TimeSpan now)
    {
        OnSegment(in info, payload, now);
        return TransportDisposition.Delivered; // a segment for no socket is answered by TCP itself, with RST
    }

    private void OnSegment(in IpDatagramInfo info, ReadOnlySpan<byte> payload, TimeSpan now)
    {
        var c = Counters;
        c.SegmentsReceived++;
        if (payload.Length < TcpHeader.MinLength) { c.DroppedTruncated++; return; }
        // RFC 9293 3.9.1: TCP is unicast only; RFC 1122 4.2.3.10: never answer a broadcast.
        if (!info.IsUnicast) { c.DroppedBroadcast++; return; }
        // RFC 9293 3.1: a segment whose checksum fails is dropped. One the device vouches for with its checksum pending
        // (LinkInfo.TcpChecksumPending: the in-memory wire's checksum offload) was never where it could be damaged.
        if (!info.Link.TcpChecksumPending && !Checksum.Verify(Checksum.PseudoHeader(info.Source, info.Destination, 6, payload.Length), payload))
        { c.DroppedBadChecksum++; return; }
        var offset = TcpHeader.DataOffset(payload);
        if (offset < TcpHeader.MinLength || offset > payload.Length) { c.DroppedBadOffset++; return; }

        var seg = new TcpSegment
        {
            SourcePort = TcpHeader.SourcePort(payload),
            DestinationPort = TcpHeader.DestinationPort(payload),
            Seq = TcpHeader.SequenceNumber(payload),
            Ack = TcpHeader.AcknowledgmentNumber(payload),
            Flags = TcpHeader.Flags(payload),
            Window = TcpHeader.Window(payload),
            Payload = payload[offset..],
        };
        if (offset > TcpHeader.MinLength && !TcpOptions.TryParse(payload[TcpHeader.MinLength..offset], out seg.Options)) { c.DroppedBadOptions++; return; }
        if (offset == TcpHeader.MinLength) seg.Options.WindowScale = -1;
        Deliver(info.Source, ref seg, now);
    }

    /// <summary>Hands a parsed segment from <paramref name="remote"/> to its connection or listener, or answers it with RST.</summary>
    internal void Deliver(Ipv4Address remote, ref TcpSegment seg, TimeSpan now)
    {
        var c = Counters;
        if (seg.SourcePort == 0 || seg.DestinationPort == 0) { c.DroppedNoSocket++; return; }

        var key = new ConnKey(remote.Value, seg.SourcePort, seg.DestinationPort);
        if (_connections.TryGetValue(key, out var conn))
        {
            // RFC 1122 4.2.2.13 / RFC 6191: a new SYN beyond the old connection's sequence space may reopen a
            // pair held in TIME-WAIT by our listener, instead of waiting out the 2 MSL.
            if (conn.State == TcpState.TimeWait && seg.IsBareSyn && Seq.Gt(seg.Seq, conn.Rcv.Nxt)
                && _listeners.TryGetValue(seg.DestinationPort, out var reopen))
            {
                conn.EndTimeWait(now);
                reopen.OnSegment(remote, ref seg, now);
                return;
            }
            conn.OnSegment(ref seg, now);
            return;
        }
        if (_listeners.TryGetValue(seg.DestinationPort, out var listener))
        {
            listener.OnSegment(remote, ref seg, now);
            return;
        }
        c.DroppedNoSocket++;
        ResetFor(remote, ref seg, now);
    }

    /// <summary>RFC 9293 3.10.7.1: a segment for no connection gets a RST that the sender will accept (never a RST for a RST).</summary>
    internal void ResetFor(Ipv4Address remote, ref TcpSegment seg, TimeSpan now)
    {
        if (seg.Has(TcpFlags.Rst)) return;
        if (seg.Has(TcpFlags.Ack)) SendControl(remote, seg.DestinationPort, seg.SourcePort, seg.Ack, 0, TcpFlags.Rst, now);
        else SendControl(remote, seg.DestinationPort, seg.SourcePort, 0, seg.Seq + seg.Len, TcpFlags.Rst | TcpFlags.Ack, now);
    }

    /// <summary>Sends a bare control segment (RST) with no options and a zero window.</summary>
    internal void SendControl(Ipv4Address remote, ushort localPort, ushort remotePort, uint seq, uint ack, TcpFlags flags, TimeSpan now)
    {
        var seg = new OutgoingSegment { LocalPort = localPort, RemotePort = remotePort, Seq = seq, Ack = ack, Flags = flags };
        if (_output.Send(remote, in seg, now) == StackError.None)
        {
            Counters.SegmentsSent++;
            if ((flags & TcpFlags.Rst) != 0) Counters.ResetsSent++;
        }
    }

    public void OnError(in IpErrorInfo error, ReadOnlySpan<byte> original, TimeSpan now)
    {
        var ihl = Ipv4Header.HeaderLength(original);
        var tcp = original[ihl..];
        if (tcp.Length < 8) return;
        Counters.IcmpErrors++;
        var key = new ConnKey(Ipv4Header.Destination(original).Value, TcpHeader.DestinationPort(tcp), TcpHeader.SourcePort(tcp));
        if (_connections.TryGetValue(key, out var conn)) conn.OnIcmpError(in error, TcpHeader.SequenceNumber(tcp), now);
    }

    // ---------------- connections and listeners ----------------

    internal bool TryAdd(TcpConnection conn)
    {
        if (_connections.Count >= Settings.MaxConnections) { Counters.DroppedTableFull++; return false; }
        return _connections.TryAdd(conn.Key, conn);
    }

    internal void Remove(TcpConnection conn)
    {
        if (_connections.TryGetValue(conn.Key, out var c) && c == conn) _connections.Remove(conn.Key);
    }

    internal bool HasConnection(in ConnKey key) => _connections.ContainsKey(key);

    internal bool IsListening(ushort port) => _listeners.ContainsKey(port);

    internal void AddListener(ListenEndpoint listener)
    {
        if (!_listeners.TryAdd(listener.Port, listener))
            throw new StackException(StackError.AddressInUse, $"TCP port {listener.Port} already has a listener on stack '{_context.Name}'.");
    }

    internal void RemoveListener(ListenEndpoint listener)
    {
        if (_listeners.TryGetValue(listener.Port, out var l) && l == listener) _listeners.Remove(listener.Port);
    }

    /// <summary>An ephemeral port for a connection to <paramref name="remote"/> (RFC 6056 algorithm 3).</summary>
    internal ushort? AllocatePort(Ipv4Address remote, ushort remotePort)
    {
        _portProbe = (remote.Value, remotePort); // read by the cached test: no closure per connect (loop only)
        return _ports.Allocate((byte)IpProtocol.Tcp, remote, remotePort, _portInUse ??= PortInUse);
    }

    private (uint Remote, ushort RemotePort) _portProbe;
    private Func<ushort, bool>? _portInUse;

    private bool PortInUse(ushort p) => _listeners.ContainsKey(p) || _connections.ContainsKey(new ConnKey(_portProbe.Remote, _portProbe.RemotePort, p));

    /// <summary>
    /// RFC 6528: ISN = M + F(localip, localport, remoteip, remoteport, secretkey), with M a 4-microsecond clock
    /// taken from the loop's time and F a keyed SipHash, so ISNs are unpredictable yet replay in simulation.
    /// </summary>
    internal uint InitialSequenceNumber(in ConnKey key, TimeSpan now)
    {
        var m = (uint)(now.Ticks / 40); // 40 ticks of 100 ns = 4 us
        var f = NetStack.SipHash.Hash(_isnKey0, _isnKey1, ((ulong)_context.Config.Address.Value << 32) | key.RemoteAddress, ((ulong)key.LocalPort << 16) | key.RemotePort);
        return m + (uint)f;
    }

    /// <summary>The offset of a connection's timestamp clock (RFC 7323 5.4): a keyed hash of its four-tuple, the same for every incarnation.</summary>
    internal uint TimestampOffset(in ConnKey key) => InitialSequenceNumber(new ConnKey(key.RemoteAddress, key.LocalPort, key.RemotePort), TimeSpan.Zero);

    /// <summary>RFC 5961 7: one stack-wide budget of challenge ACKs per second.</summary>
    internal bool TakeChallengeAck(TimeSpan now)
    {
        var limit = Settings.ChallengeAcksPerSecond;
        _challengeTokens = Math.Min(limit, _challengeTokens + (now - _challengeAt).TotalSeconds * limit);
        _challengeAt = now;
        if (_challengeTokens < 1) { Counters.ChallengeAcksSuppressed++; return false; }
        _challengeTokens -= 1;
        Counters.ChallengeAcksSent++;
        return true;
    }

    // ---------------- ACKs at the end of a receive batch ----------------

    /// <summary>Queues <paramref name="conn"/> for one ACK when the receive batch ends (once per batch).</summary>
    internal void AckAtBatchEnd(TcpConnection conn)
    {
        if (conn.InBatchAckList) return;
        conn.InBatchAckList = true;
        _batchAcks.Add(conn);
    }

    /// <summary>The receive batch is over: every connection that owes an ACK sends one covering all it received.</summary>
    public void FlushPendingAcks(TimeSpan now)
    {
        for (int i = 0; i < _batchAcks.Count; i++) // by index: one queued while flushing is flushed too
        {
            var conn = _batchAcks[i];
            conn.InBatchAckList = false;
            conn.SendBatchAck(now);
        }
        _batchAcks.Clear();
    }

    // ---------------- timers ----------------

    /// <summary>Makes sure the heap holds an entry no later than the connection's earliest deadline.</summary>
    internal void Schedule(TcpConnection conn)
    {
        conn.Recorder?.Sample(conn, Context.Now); // after every arrival, user operation and timer: the graph's second panel (opt-in)
        var due = conn.NextDeadline;
        if (due < conn.HeapAt)
        {
            conn.HeapAt = due;
            _timers.Enqueue(conn, due);
        }
    }

    public TimeSpan? Poll(TimeSpan now)
    {
        while (_timers.TryPeek(out var conn, out var due) && due <= now)
        {
            _timers.Dequeue();
            if (due != conn.HeapAt) continue; // superseded by an earlier entry that already ran
            conn.HeapAt = TimeSpan.MaxValue;
            if (conn.State == TcpState.Closed) continue;
            conn.OnTimers(now);
            Schedule(conn);
        }
        return _timers.TryPeek(out _, out var next) ? next : null;
    }

    /// <summary>
    /// The stack is stopping: every connection its peer still holds open gets the RST of an abort, as the kernel
    /// resets an exiting process's connections, so no peer is left half-open. Pending operations fail in Dispose.
    /// </summary>
    internal void ResetOpenConnections(TimeSpan now)
    {
        foreach (var c in _connections.Values) c.SendAbortReset(now);
    }

    /// <summary>The local address went away (a DHCP lease ended): every connection fails with <paramref name="error"/>, sending nothing.</summary>
    internal void FailAll(StackError error, string message, TimeSpan now)
    {
        foreach (var c in _connections.Values.ToArray()) c.Fail(error, message, now);
    }

    public void Dispose()
    {
        foreach (var c in _connections.Values.ToArray()) c.Shutdown(new StackException(StackError.StackStopped, "The stack stopped."));
        foreach (var l in _listeners.Values.ToArray()) l.Close(default);
        _connections.Clear();
        _listeners.Clear();
    }
}
