namespace NetStack.Tcp;

/// <summary>
/// The receiving half of a connection: the receive sequence space (RFC 9293 3.3.1), the acceptability test and
/// trimming of arriving segments (3.10.7.4), in-order and out-of-order data in the receive ring, the window we
/// advertise (computed here only), and the ACK policy: at once, at the end of the receive batch, or on the
/// delayed-ACK timer. A struct held in place by the connection (no object of its own per connection: issue 18's
/// memory per idle connection), so it is only ever used through the connection's field, never copied. Loop only.
/// </summary>
internal struct TcpReceiver
{
    private readonly TcpConnection _c;
    private OutOfOrderRanges? _outOfOrder; // made at the first out-of-order segment (or D-SACK): none on an idle connection
    private bool _ackPending;           // an ACK is owed, on the delayed-ACK timer
    private bool _ackAtBatchEnd;        // an ACK is owed, sent once when the receive batch ends (TcpLayer.FlushPendingAcks)
    private int _unackedSegments;
    private bool _finPending;           // a FIN came out of order, at _finSeq
    private uint _finSeq;
    private SackBlock? _dsack;          // a duplicate to report in the next ACK's first SACK block (RFC 2883)


    public TcpReceiver(TcpConnection connection, TcpSettings settings)
    {
        _c = connection;
        _buffer = null;
        _bufferLimit = settings.ReceiveBufferSize;
    }

    /// <summary>The user set the buffer's size (as SO_RCVBUF does on Linux, that turns auto-tuning off for this socket).</summary>
    public bool BufferFixed;
    /// <summary>Receive-buffer auto-tuning: the receiver's RTT and what the application reads per RTT (BufferTuning.cs); made when data first arrives.</summary>
    private ReceiveBufferTuning? _tuning;
    /// <summary>The largest buffer auto-tuning may grow to, set when the options are negotiated; 0 when it is off.</summary>
    private int _tuningMax;
    public ReceiveBufferTuning Tuning => _tuning ??= new ReceiveBufferTuning { Enabled = TuningEnabled, Max = _tuningMax };
    private bool TuningEnabled => _tuningMax > 0;
    /// <summary>The receiver's RTT estimate for auto-tuning; zero until the first sample.</summary>
    public TimeSpan TuningRtt => _tuning?.Rtt ?? TimeSpan.Zero;

    private OutOfOrderRanges OutOfOrder => _outOfOrder ??= new OutOfOrderRanges();
    private int OutOfOrderCount => _outOfOrder?.Count ?? 0;

    /// <summary>The most the buffer may become: its size when fixed, else up to Tcp.ReceiveBufferMax (our window scale must allow it).</summary>
    public int BufferCeiling => BufferFixed ? BufferLimit : Math.Max(BufferLimit, _c.Layer.Settings.ReceiveBufferMax);

    /// <summary>The most the buffer of a new connection with <paramref name="settings"/> may become (a SYN cookie's window scale).</summary>
    public static int DefaultBufferCeiling(TcpSettings settings) => Math.Max(settings.ReceiveBufferSize, settings.ReceiveBufferMax);

    /// <summary>RCV.NXT less what the application has not read yet (nor the FIN): the next byte it will read.</summary>
    private uint CopiedSeq => Nxt - (uint)BufferCount - (PeerFin ? 1u : 0u);

    /// <summary>Data in order and unread at [0, Count); out-of-order data beyond, at its offset from RCV.NXT.</summary>
    public ByteRing Buffer => _buffer ??= new ByteRing(_bufferLimit);
    private ByteRing? _buffer; // made when data first arrives (its limit is kept here until then): none on an idle connection
    private int _bufferLimit;
    /// <summary>Bytes in the receive ring (in order, unread), without making it.</summary>
    public int BufferCount => _buffer?.Count ?? 0;
    /// <summary>The receive ring's limit (the socket's receive buffer size), without making the ring.</summary>
    public int BufferLimit
    {
        get => _buffer?.Limit ?? _bufferLimit;
        set { if (_buffer is null) _bufferLimit = value; else _buffer.Limit = value; }
    }
    private int BufferFree => _buffer?.Free ?? _bufferLimit;
    /// <summary>Gives the ring's array back (the ring, if made, stays).</summary>
    public void ReleaseBuffer() => _buffer?.Release();
    /// <summary>RCV.NXT.</summary>
    public uint Nxt { get; private set; }
    /// <summary>RCV.NXT + RCV.WND as last advertised; never moved left (RFC 9293 3.8.6: do not shrink the window).</summary>
    public uint AdvertisedEdge { get; private set; }
    /// <summary>The ACK number of the last segment we sent (RFC 7323 4.3 takes TS.Recent from segments covering it).</summary>
    public uint LastAckSent { get; private set; }
    /// <summary>The peer's FIN has arrived, in order.</summary>
    public bool PeerFin { get; private set; }
    /// <summary>An ACK must go at once (set by the receive rules; cleared by any segment carrying an ACK).</summary>
    public bool AckNow;
    public long BytesReceived { get; private set; }

    /// <summary>RCV.WND: what the window we last advertised still offers beyond RCV.NXT.</summary>
    public uint Window => Seq.Gt(AdvertisedEdge, Nxt) ? AdvertisedEdge - Nxt : 0;

    public bool HasOutOfOrder => OutOfOrderCount > 0;
    /// <summary>The next ACK has SACK blocks to carry: out-of-order data, or a duplicate to report (D-SACK).</summary>
    public bool HasSackBlocks => OutOfOrderCount > 0 || _dsack.HasValue;
    /// <summary>The SACK blocks the next ACK would report were there room for all: every out-of-order range and a D-SACK.</summary>
    public int SackBlocksOwed => OutOfOrderCount + (_dsack.HasValue ? 1 : 0);

    private TcpCounters Counters => _c.Layer.Counters;

    /// <summary>The peer's SYN: RCV.NXT follows its sequence number.</summary>
    public void OnSyn(uint irs) => Nxt = irs + 1;

    /// <summary>After the options are negotiated: the window in our SYN was unscaled; the right edge we promised starts from it.</summary>
    public void OnNegotiated()
    {
        AdvertisedEdge = Nxt + (uint)Math.Min(BufferFree, 65535);
        LastAckSent = Nxt;
        // Without window scaling no window beyond 64 KiB can be offered: a larger buffer would be of no use.
        var max = BufferCeiling;
        _tuningMax = !BufferFixed && _c.WsEnabled && max > BufferLimit ? max : 0;
        _tuning = null;
    }

    // ---------------- acceptability (RFC 9293 3.10.7.4, first check) ----------------

    /// <summary>The four cases of the acceptability test.</summary>
    public bool IsAcceptable(ref TcpSegment seg)
    {
        var wnd = Window;
        var len = seg.Len;
        if (len == 0) return wnd == 0 ? seg.Seq == Nxt : Seq.Le(Nxt, seg.Seq) && Seq.Lt(seg.Seq, Nxt + wnd);
        if (wnd == 0) return seg.Seq == Nxt && !seg.Has(TcpFlags.Syn); // let ACK/RST through a closed window; text is trimmed below
        return (Seq.Le(Nxt, seg.Seq) && Seq.Lt(seg.Seq, Nxt + wnd))
               || (Seq.Le(Nxt, seg.Seq + len - 1) && Seq.Lt(seg.Seq + len - 1, Nxt + wnd));
    }

    /// <summary>Trims an acceptable segment to the window: drops what was already received (a SYN included) and what lies beyond the edge.</summary>
    public void Trim(ref TcpSegment seg)
    {
        if (Seq.Lt(seg.Seq, Nxt))
        {
            var skip = Nxt - seg.Seq;
            if (seg.Has(TcpFlags.Syn)) { seg.Flags &= ~TcpFlags.Syn; seg.Seq++; skip--; }
            var data = (int)Math.Min(skip, (uint)seg.Payload.Length);
            if (data > 0) ReportDuplicate(seg.Seq, seg.Seq + (uint)data);
            seg.Payload = seg.Payload[data..];
            seg.Seq += (uint)data;
            if (data > 0) Counters.DuplicateSegments++;
        }
        var edge = Nxt + Window;
        if (Seq.Gt(seg.Seq + (uint)seg.Payload.Length, edge))
        {
            var keep = Seq.Gt(edge, seg.Seq) ? (int)(edge - seg.Seq) : 0;
            seg.Payload = seg.Payload[..keep];
            seg.Flags &= ~TcpFlags.Fin;
            AckNow = true; // tell the sender where the window ends (a zero-window probe carrying data gets its answer)
        }
    }

    // ---------------- segment text (seventh step) ----------------

    /// <summary>Takes the segment's data: in order into the ring (waking a waiting receive), out of order at its place.</summary>
    public void OnText(ref TcpSegment seg, ref PendingOperations pending, TimeSpan now)
    {
        if (TuningEnabled && _c.TsEnabled && seg.Options.HasTimestamp) Tuning.OnTimestampEcho(seg.Options.TsEcr, _c.TsNow(now));
        var data = seg.Payload;
        var offset = seg.Seq - Nxt;
        if (_c.UserClosed)
        {
            // Nobody will read it: acknowledge in-order data and drop it, so the peer can finish its close.
            Counters.DroppedAfterClose++;
            if (offset == 0) Nxt += (uint)data.Length;
            AckNow = true;
            return;
        }
        if (offset == 0)
        {
            Buffer.WriteAt(Buffer.Count, data);
            Buffer.Commit(data.Length);
            Nxt += (uint)data.Length;
            BytesReceived += data.Length;
            if (OutOfOrderCount > 0)
            {
                var nxt = _outOfOrder!.TakeInOrder(Nxt);
                var n = (int)(nxt - Nxt);
                Buffer.Commit(n);
                BytesReceived += n;
                Nxt = nxt;
                AckNow = true; // RFC 5681 4.2: ACK at once when a segment fills a hole
            }
            else if (++_unackedSegments >= 2)
            {
                // RFC 1122 4.2.3.2 (an ACK for at least every second full segment) is owed, and sent when this receive
                // batch ends: one cumulative ACK for all the batch's segments (what Linux's GRO does in effect), so
                // a busy receiver does not send an ACK per two frames. The stretch is bounded so the sender's window
                // keeps moving within a long batch.
                if (Nxt - LastAckSent >= (uint)Math.Min(TcpLayer.MaxAckStretchBytes, Buffer.Limit / 4)) AckNow = true;
                else _ackAtBatchEnd = true;
            }
            else _ackPending = true;
            if (TuningEnabled && !_c.TsEnabled) Tuning.OnInOrderData(Nxt, Window, now);
            if (pending.HasReceive)
            {
                pending.CompleteReceive(Buffer);
                OnUserRead(now);
            }
            return;
        }
        // Out of order: keep it at its place in the window; ACK at once so the sender sees the hole (RFC 5681 4.2).
        Counters.OutOfOrderSegments++;
        AckNow = true;
        if (OutOfOrderCount > 0 && _outOfOrder!.Contains(seg.Seq, seg.Seq + (uint)data.Length)) ReportDuplicate(seg.Seq, seg.Seq + (uint)data.Length);
        var limit = OutOfOrderRanges.LimitFor(BufferLimit, _c.PathMss, _c.Layer.Settings.MaxOutOfOrderRanges);
        if (!OutOfOrder.Add(seg.Seq, seg.Seq + (uint)data.Length, limit)) { Counters.DroppedOutOfOrderFull++; return; }
        Buffer.WriteAt(Buffer.Count + (int)offset, data);
    }

    // ---------------- FIN (eighth step) ----------------

    /// <summary>
    /// Whether the peer's FIN is now in order: in this segment right after its data, or remembered from an earlier
    /// segment that came out of order and reached now that the hole before it has filled.
    /// </summary>
    public bool FinReached(ref TcpSegment seg)
    {
        if (seg.Has(TcpFlags.Fin))
        {
            var finSeq = seg.Seq + (uint)seg.Payload.Length;
            if (finSeq == Nxt) return true;
            if (seg.Payload.Length > 0 && OutOfOrderCount > 0 && _outOfOrder!.Holds(finSeq)) { _finPending = true; _finSeq = finSeq; }
        }
        return _finPending && Nxt == _finSeq;
    }

    /// <summary>The FIN takes its sequence number; it is acknowledged at once.</summary>
    public void TakeFin()
    {
        Nxt++;
        PeerFin = true;
        AckNow = true;
    }

    // ---------------- the window we advertise ----------------

    /// <summary>Our window scale: the smallest shift that lets <paramref name="bytes"/> of buffer be advertised (RFC 7323 2.2).</summary>
    public static byte WindowShiftFor(int bytes)
    {
        byte shift = 0;
        while (shift < 14 && (bytes >> shift) > 65535) shift++;
        return shift;
    }

    /// <summary>The least worthwhile step of the right edge (receiver SWS avoidance, RFC 9293 3.8.6.2.2): min(buffer/2, MSS).</summary>
    private uint WindowStep => (uint)Math.Min(BufferLimit / 2, _c.PathMss);

    /// <summary>
    /// The window field for the next segment: the free receive buffer, advanced only in steps worth a segment,
    /// never shrinking the right edge already offered. Moves the advertised edge.
    /// </summary>
    public ushort WindowField(bool syn)
    {
        var free = (uint)BufferFree;
        if (syn) return (ushort)Math.Min(free, 65535);
        var cur = Window;
        var adv = cur;
        if (free > cur && free - cur >= WindowStep) adv = free;
        var field = Math.Min(adv >> _c.RcvWndShift, 65535u);
        var edge = Nxt + (field << _c.RcvWndShift);
        if (Seq.Gt(edge, AdvertisedEdge)) AdvertisedEdge = edge;
        return (ushort)field;
    }

    /// <summary>
    /// The user read data: whether a window update should go now (RFC 1122 4.2.3.3 with Linux's test): the offered
    /// window has fallen to half or less and reading at least doubles it, by a worthwhile step.
    /// </summary>
    public bool WindowUpdateDue()
    {
        var cur = Window;
        var free = (uint)BufferFree;
        return free >= 2 * cur && free - cur >= WindowStep;
    }

    /// <summary>
    /// The application took data: the ring's array goes back once nothing is held (in order or out of order), and once
    /// per RTT auto-tuning may let the buffer grow (an empty ring takes the new size when it next rents an array).
    /// </summary>
    public void OnUserRead(TimeSpan now)
    {
        if (BufferCount == 0 && OutOfOrderCount == 0) _buffer?.ReleaseIfEmpty();
        if (!TuningEnabled) return;
        var size = Tuning.OnRead(CopiedSeq, BufferLimit, _c.PathMss, now, _c.Snd.Rtt.Srtt);
        if (size > BufferLimit) BufferLimit = size;
    }

    /// <summary>The connection closed: out-of-order data goes, and the buffer too when nobody will read it.</summary>
    public void OnClosed(bool releaseBuffer)
    {
        if (releaseBuffer) _buffer?.Release();
        _outOfOrder?.Clear();
    }

    /// <summary>SACK blocks for a segment with room for <paramref name="max"/> of them, a pending D-SACK first (counted as sent).</summary>
    public ReadOnlySpan<SackBlock> SackBlocks(int max)
    {
        if (_dsack.HasValue && max > 0) Counters.DsacksSent++;
        var blocks = OutOfOrder.SackBlocks(max, _dsack);
        _dsack = null;
        return blocks;
    }

    /// <summary>
    /// RFC 2883: data that had arrived before ([left, right), all below RCV.NXT or within a range held out of
    /// order) is reported in the first SACK block of the ACK it draws, so the sender can tell a spurious
    /// retransmission. Only with SACK; the latest duplicate wins.
    /// </summary>
    public void ReportDuplicate(uint left, uint right)
    {
        if (_c.SackEnabled && Seq.Lt(left, right)) _dsack = new SackBlock(left, right);
    }

    /// <summary>An unacceptable segment (3.10.7.4): one with data wholly below RCV.NXT is a duplicate to report.</summary>
    public void OnUnacceptable(ref TcpSegment seg)
    {
        var len = (uint)seg.Payload.Length;
        if (len > 0 && Seq.Le(seg.Seq + len, Nxt) && Seq.Lt(Nxt - (seg.Seq + len), 1u << 30)) ReportDuplicate(seg.Seq, seg.Seq + len);
    }

    // ---------------- ACK policy ----------------

    /// <summary>
    /// After input: the ACK owed goes at once, at the end of the receive batch (one for all its segments), or on
    /// the delayed-ACK timer (RFC 1122 4.2.3.2; RFC 5681 4.2 for what must go at once).
    /// </summary>
    public void ScheduleAck(TimeSpan now)
    {
        if (AckNow) _c.SendAck(now);
        else if (_ackAtBatchEnd) _c.Layer.AckAtBatchEnd(_c);
        else if (_ackPending && _c.DelAckAt == TcpConnection.Never) _c.DelAckAt = now + _c.Layer.Settings.DelayedAckTimeout;
    }

    /// <summary>The delayed-ACK timer fired: the owed ACK goes.</summary>
    public void OnDelayedAckTimer(TimeSpan now)
    {
        if (!_ackPending) return;
        Counters.DelayedAcks++;
        _c.SendAck(now);
    }

    /// <summary>The receive batch ended: one ACK for all its segments, unless one already went (piggybacked on data).</summary>
    public void OnBatchEnd(TimeSpan now)
    {
        if (!_ackAtBatchEnd || _c.State == TcpState.Closed) return;
        Counters.BatchAcks++;
        _c.SendAck(now);
    }

    /// <summary>
    /// A segment carrying ACK = RCV.NXT left: every owed ACK is paid, except an ACK owed at once for out-of-order data
    /// when the segment had no room for the SACK blocks (<paramref name="paysImmediate"/> false, <see cref="SackAckRule"/>).
    /// </summary>
    public void OnAckSent(bool paysImmediate = true)
    {
        LastAckSent = Nxt;
        if (paysImmediate) AckNow = false;
        _ackPending = false;
        _ackAtBatchEnd = false;
        _unackedSegments = 0;
        _c.DelAckAt = TcpConnection.Never;
    }
}
