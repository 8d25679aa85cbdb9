using System.Buffers;

namespace NetStack.Tcp;

/// <summary>What the sender knows about one sent segment beyond its bytes.</summary>
[Flags]
internal enum SentFlags : byte
{
    None = 0,
    /// <summary>The peer SACKed it (RFC 2018); it counts as delivered.</summary>
    Sacked = 1,
    /// <summary>Deemed lost (RACK, RFC 8985 6.2, or a timeout) and not delivered since.</summary>
    Lost = 2,
    /// <summary>Sent again and the retransmission is in flight (counted in the pipe as RFC 6675 SetPipe does).</summary>
    Retransmitted = 4,
    /// <summary>Sent more than once at some point (Karn: no RTT sample from it).</summary>
    EverRetransmitted = 8,
}

/// <summary>
/// The transmit record of one sent segment, as Linux keeps in each skb's control block: its sequence range, when it
/// was (last) sent, whether it was sent again, its SACK/lost state, and the fields of a delivery-rate sample taken at
/// that transmission (draft-cheng-iccrg-delivery-rate-estimation 3.2: P.delivered, P.delivered_time,
/// P.first_sent_time, P.is_app_limited). A record may stand for several MSS-sized segments when the ring is full.
/// </summary>
internal struct SentSegment
{
    /// <summary>[Start, End) in sequence space (a FIN takes one).</summary>
    public uint Start, End;
    /// <summary>The last transmission (RACK's Segment.xmit_ts); <see cref="FirstSent"/> the first.</summary>
    public TimeSpan Sent, FirstSent;
    /// <summary>The connection's transmission count at its (last) transmission: the order segments left in, exact
    /// where the loop's clock gives several the same time (RACK's "sent after" and the rate sampler's "newest").</summary>
    public long Order;
    public SentFlags Flags;
    /// <summary>C.delivered when it was (last) sent.</summary>
    public long Delivered;
    /// <summary>C.delivered_time when it was sent.</summary>
    public TimeSpan DeliveredTime;
    /// <summary>C.first_sent_time when it was sent: the start of the send interval of its rate sample.</summary>
    public TimeSpan FirstSentTime;
    /// <summary>The flow was application-limited when it was sent (C.app_limited != 0).</summary>
    public bool AppLimited;

    public readonly uint Length => End - Start;
    public readonly bool Has(SentFlags f) => (Flags & f) != 0;
    /// <summary>Lost and not yet sent again: a retransmission is owed.</summary>
    public readonly bool NeedsRetransmit => (Flags & (SentFlags.Lost | SentFlags.Retransmitted | SentFlags.Sacked)) == SentFlags.Lost;
}

/// <summary>Told of each sent segment that the peer newly holds (cumulatively acknowledged or SACKed).</summary>
internal interface ISentSegmentObserver
{
    /// <summary><paramref name="segment"/> (<paramref name="bytes"/> of it) was delivered; its flags still say how it was sent (before it is released or marked SACKed).</summary>
    void OnDelivered(in SentSegment segment, uint bytes);
}

/// <summary>
/// The sender's transmit records for [SND.UNA, SND.MAX), in sequence order, contiguous, in a ring over an array
/// rented from the shared pool while anything is in flight (none held by an idle connection; no allocation per
/// segment). Keeps the byte counts the pipe needs (SACKed, lost, retransmitted in flight), marks SACK blocks
/// (splitting a record a block covers in part), and tells its observer of every delivered segment so the rate sampler
/// and RACK see them. When the ring is full, adjacent records with the same state merge, or new data joins the last
/// record: a record then stands for several segments (as a Linux TSO skb does). Loop only.
/// </summary>
internal sealed class SentSegments
{
    private readonly ISentSegmentObserver _observer;
    private SentSegment[]? _ring;
    private int _head, _count;
    private int _capacity;
    private long _order;

    public SentSegments(ISentSegmentObserver observer) => _observer = observer;

    public int Count => _count;
    /// <summary>Bytes of sequence space SACKed, lost (not SACKed since), and retransmitted and in flight.</summary>
    public uint SackedBytes { get; private set; }
    public uint LostBytes { get; private set; }
    public uint RetransmittedBytes { get; private set; }
    /// <summary>The highest sequence number SACKed or acknowledged (RACK.fack's counterpart), for reordering detection.</summary>
    public uint HighestDelivered { get; private set; }

    public ref SentSegment this[int i] => ref _ring![(_head + i) & (_ring.Length - 1)];

    /// <summary>The records' array holds at least this many (a power of two) when first used: the send buffer in minimum-size segments.</summary>
    public void SetCapacity(int records) => _capacity = Math.Max(16, records);

    /// <summary>RFC 6675 SetPipe() over the records: in flight = outstanding - SACKed - lost + retransmitted in flight.</summary>
    public long Pipe(uint una, uint max) => (long)(max - una) - SackedBytes - LostBytes + RetransmittedBytes;

    /// <summary>
    /// [seq, seq+len) left at <paramref name="now"/>: new data gets a record (the caller fills in the rate fields),
    /// data sent before is marked sent again (records split at the range's edges). <paramref name="stamp"/> holds the
    /// rate sampler's fields for this transmission.
    /// </summary>
    public void OnTransmit(uint seq, uint len, uint max, TimeSpan now, ref RateStamp stamp)
    {
        if (len == 0) return;
        if (seq == max || _count == 0 || !Seq.Lt(seq, this[_count - 1].End))
        {
            Append(seq, seq + len, now, ref stamp);
            return;
        }
        var end = seq + len;
        var i = Find(seq);
        if (i < 0) return;
        if (this[i].Start != seq)
        {
            i = SplitAt(i, seq);
            if (this[i].End == seq) i++; // split: the range starts at the right part
        }
        while (i < _count && Seq.Lt(this[i].Start, end))
        {
            i = SplitAt(i, end);
            ref var r = ref this[i];
            if (!r.Has(SentFlags.Sacked))
            {
                if (!r.Has(SentFlags.Retransmitted)) RetransmittedBytes += r.Length;
                r.Flags |= SentFlags.Retransmitted | SentFlags.EverRetransmitted;
            }
            r.Sent = now;
            r.Order = ++_order;
            stamp.Apply(ref r);
            i++;
        }
    }

    private void Append(uint start, uint end, TimeSpan now, ref RateStamp stamp)
    {
        if (_count > 0 && this[_count - 1].End != start) return; // not contiguous: cannot happen, ignore
        if (_count == Capacity && MergeOne() < 0)
        {
            // Full and nothing merges: the last record takes the new data (sent later, so RACK sees it as sent now).
            ref var last = ref this[_count - 1];
            last.End = end;
            last.Sent = now;
            last.Order = ++_order;
            if (last.Has(SentFlags.Lost)) LostBytes += end - start;
            if (last.Has(SentFlags.Retransmitted)) RetransmittedBytes += end - start;
            if (last.Has(SentFlags.Sacked)) SackedBytes += end - start;
            return;
        }
        _ring ??= ArrayPool<SentSegment>.Shared.Rent(RoundUp(_capacity));
        ref var r = ref this[_count++];
        r = new SentSegment { Start = start, End = end, Sent = now, FirstSent = now, Order = ++_order };
        stamp.Apply(ref r);
    }

    private int Capacity => _ring?.Length ?? RoundUp(_capacity);

    private static int RoundUp(int n)
    {
        var c = 16;
        while (c < n) c <<= 1;
        return c;
    }

    /// <summary>The index of the record holding <paramref name="seq"/>, or -1 (binary search: records are sorted and contiguous).</summary>
    public int Find(uint seq)
    {
        int lo = 0, hi = _count - 1;
        while (lo <= hi)
        {
            var mid = (lo + hi) >> 1;
            ref var r = ref this[mid];
            if (Seq.Lt(seq, r.Start)) hi = mid - 1;
            else if (!Seq.Lt(seq, r.End)) lo = mid + 1;
            else return mid;
        }
        return -1;
    }

    /// <summary>
    /// Splits record <paramref name="i"/> at <paramref name="seq"/> when it lies strictly inside it (both halves keep
    /// its state). Returns the index of record i's left part afterwards (a merge to make room may have moved it down).
    /// </summary>
    private int SplitAt(int i, uint seq)
    {
        if (i >= _count) return i;
        ref var r = ref this[i];
        if (!Seq.Lt(r.Start, seq) || !Seq.Lt(seq, r.End)) return i;
        if (_count == Capacity)
        {
            var k = MergeOne(except: i);
            if (k < 0) return i; // no room: the record stays whole
            if (k < i) i--;
        }
        for (int k = _count; k > i + 1; k--) this[k] = this[k - 1];
        _count++;
        this[i + 1] = this[i];
        this[i].End = seq;
        this[i + 1].Start = seq;
        return i;
    }

    /// <summary>Frees a slot by merging the first pair of adjacent records in the same state (not record <paramref name="except"/>); returns the pair's index, or -1.</summary>
    private int MergeOne(int except = -1)
    {
        for (int k = 0; k + 1 < _count; k++)
        {
            if (k == except || k + 1 == except) continue;
            ref var a = ref this[k];
            ref var b = ref this[k + 1];
            if (a.Flags != b.Flags) continue;
            a.End = b.End;
            if (b.Order > a.Order) { a.Sent = b.Sent; a.Order = b.Order; }
            a.Delivered = b.Delivered; a.DeliveredTime = b.DeliveredTime; a.FirstSentTime = b.FirstSentTime; a.AppLimited = b.AppLimited;
            for (int m = k + 1; m + 1 < _count; m++) this[m] = this[m + 1];
            _count--;
            return k;
        }
        return -1;
    }

    /// <summary>
    /// The cumulative ACK reached <paramref name="una"/>: records below it are delivered (the observer hears of those
    /// not SACKed before) and released; one it ends inside is trimmed.
    /// </summary>
    public uint OnCumulativeAck(uint una)
    {
        uint delivered = 0;
        while (_count > 0)
        {
            ref var r = ref this[0];
            if (Seq.Le(r.End, una))
            {
                if (!r.Has(SentFlags.Sacked)) { delivered += r.Length; _observer.OnDelivered(in r, r.Length); }
                Forget(ref r, r.Length);
                _head = (_head + 1) & (_ring!.Length - 1);
                _count--;
                continue;
            }
            if (Seq.Lt(r.Start, una))
            {
                var n = una - r.Start;
                if (!r.Has(SentFlags.Sacked)) { delivered += n; _observer.OnDelivered(in r, n); }
                Forget(ref r, n);
                r.Start = una;
            }
            break;
        }
        if (Seq.Gt(una, HighestDelivered) || _count == 0) HighestDelivered = una;
        if (_count == 0) Release();
        return delivered;
    }

    private void Forget(ref SentSegment r, uint n)
    {
        if (r.Has(SentFlags.Sacked)) SackedBytes -= n;
        else
        {
            if (r.Has(SentFlags.Lost)) LostBytes -= n;
            if (r.Has(SentFlags.Retransmitted)) RetransmittedBytes -= n;
        }
    }

    /// <summary>
    /// Marks the records [left, right) covers as SACKed (a record covered in part is split, or left alone when the
    /// ring is full); the observer hears of each. Returns the bytes newly SACKed.
    /// </summary>
    public uint MarkSacked(uint left, uint right)
    {
        uint added = 0;
        var i = Find(left);
        if (i < 0)
        {
            // The block may start below the first record (clipped by the caller) or in a gap: find the first record after left.
            i = 0;
            while (i < _count && Seq.Le(this[i].End, left)) i++;
        }
        if (i < _count && Seq.Lt(this[i].Start, left))
        {
            i = SplitAt(i, left);
            i++; // split: the block starts at the right part; not split: the record is covered in part and stays unSACKed
        }
        while (i < _count && Seq.Lt(this[i].Start, right))
        {
            i = SplitAt(i, right);
            ref var r = ref this[i];
            if (Seq.Gt(r.End, right)) break; // covered in part and could not split
            if (!r.Has(SentFlags.Sacked))
            {
                _observer.OnDelivered(in r, r.Length);
                if (r.Has(SentFlags.Lost)) LostBytes -= r.Length;
                if (r.Has(SentFlags.Retransmitted)) RetransmittedBytes -= r.Length;
                r.Flags = (r.Flags & SentFlags.EverRetransmitted) | SentFlags.Sacked;
                SackedBytes += r.Length;
                added += r.Length;
                if (Seq.Gt(r.End, HighestDelivered)) HighestDelivered = r.End;
            }
            i++;
        }
        return added;
    }

    /// <summary>Marks record <paramref name="i"/> lost (a retransmission in flight is lost too: it must go again).</summary>
    public void MarkLost(int i)
    {
        ref var r = ref this[i];
        if (r.Has(SentFlags.Sacked)) return;
        if (r.Has(SentFlags.Retransmitted)) { RetransmittedBytes -= r.Length; r.Flags &= ~SentFlags.Retransmitted; }
        if (!r.Has(SentFlags.Lost)) { LostBytes += r.Length; r.Flags |= SentFlags.Lost; }
    }

    /// <summary>Every record not SACKed is lost (a retransmission timeout, RFC 6675 5.1 / Linux's loss state).</summary>
    public void MarkAllLost()
    {
        for (int i = 0; i < _count; i++) MarkLost(i);
    }

    /// <summary>An undo: segments marked lost but not yet sent again are not lost after all (RACK will judge them again).</summary>
    public void ClearUnsentLost()
    {
        for (int i = 0; i < _count; i++)
        {
            ref var r = ref this[i];
            if (!r.NeedsRetransmit) continue;
            r.Flags &= ~SentFlags.Lost;
            LostBytes -= r.Length;
        }
    }

    /// <summary>The peer reneged (RFC 2018 8): SACKed records count as outstanding again.</summary>
    public void ClearSacked()
    {
        for (int i = 0; i < _count; i++) this[i].Flags &= ~SentFlags.Sacked;
        SackedBytes = 0;
    }

    /// <summary>The first record owed a retransmission (lost, not sent again, not SACKed), or -1.</summary>
    public int FirstToRetransmit()
    {
        if (LostBytes == 0) return -1;
        for (int i = 0; i < _count; i++)
            if (this[i].NeedsRetransmit) return i;
        return -1;
    }

    /// <summary>The first byte at or after <paramref name="from"/> not SACKed, and where the next SACKed record starts (or <paramref name="max"/>).</summary>
    public uint SkipSacked(uint from, uint max, out uint limit)
    {
        limit = max;
        if (SackedBytes == 0) return from;
        var i = Find(from);
        if (i < 0) return from;
        while (i < _count && this[i].Has(SentFlags.Sacked)) from = this[i++].End;
        while (i < _count && !this[i].Has(SentFlags.Sacked)) i++;
        if (i < _count) limit = this[i].Start;
        return from;
    }

    /// <summary>Forgets everything and gives the array back (the connection closed, or nothing is in flight).</summary>
    public void Release()
    {
        if (_ring != null && _count == 0)
        {
            ArrayPool<SentSegment>.Shared.Return(_ring);
            _ring = null;
            _head = 0;
        }
    }

    public void Clear()
    {
        _count = 0;
        SackedBytes = LostBytes = RetransmittedBytes = 0;
        Release();
    }
}
