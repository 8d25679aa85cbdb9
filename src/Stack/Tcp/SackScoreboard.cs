namespace NetStack.Tcp;

/// <summary>
/// The sender's SACK scoreboard (RFC 6675 3 and 4): the ranges above SND.UNA the peer has SACKed, sorted and
/// merged, in a fixed array (no allocation per ACK), plus HighRxt and RescueRxt of the current recovery.
/// Sequence numbers here are exclusive ends in our usual style: a range [Left, Right) and HighRxt = one past
/// the highest retransmitted byte (the RFC's inclusive "HighRxt" + 1). Every operation is O(ranges).
/// IsLost works per range rather than per segment: an unSACKed byte is lost when DupThresh discontiguous
/// SACKed ranges, or more than (DupThresh - 1) * SMSS SACKed bytes, lie above it. Because what lies above a
/// byte in a hole is the same for the whole hole, every hole below one boundary (<see cref="LostEnd"/>) is lost
/// and none above it is; the boundary is recomputed when the ranges change.
/// </summary>
internal sealed class SackScoreboard
{
    /// <summary>RFC 6675 2: DupThresh (the loss recoveries' constant).</summary>
    public const int DupThresh = LossRecovery.DupThresh;
    public const int DefaultCapacity = 32;

    private readonly SackBlock[] _ranges;
    private readonly TcpCounters? _counters;
    private int _count;
    private uint _sacked;   // sum of the ranges' lengths
    private uint _lostEnd;  // unSACKed bytes below this are lost (IsLost), when _hasLost
    private bool _hasLost;
    private uint _mss;

    public SackScoreboard(int capacity = DefaultCapacity, TcpCounters? counters = null)
    {
        _ranges = new SackBlock[capacity];
        _counters = counters;
    }

    /// <summary>Number of SACKed ranges held.</summary>
    public int Count => _count;
    /// <summary>SACKed bytes above SND.UNA.</summary>
    public uint SackedBytes => _sacked;
    /// <summary>One past the highest SACKed byte (SND.UNA's value when nothing is SACKed is the caller's business).</summary>
    public uint HighSacked => _count > 0 ? _ranges[_count - 1].Right : 0;
    /// <summary>Unsacked bytes below this are lost (RFC 6675 IsLost); meaningless unless <see cref="HasLost"/>.</summary>
    public uint LostEnd => _lostEnd;
    public bool HasLost => _hasLost;
    public SackBlock this[int i] => _ranges[i];

    /// <summary>One past the highest byte retransmitted in this recovery (RFC 6675 HighRxt + 1).</summary>
    public uint HighRxt;
    /// <summary>RFC 6675 RescueRxt (exclusive end style); a rescue is allowed once SND.UNA passes it.</summary>
    public uint RescueRxt;

    /// <summary>
    /// RFC 6675 Update(): records the blocks of one ACK. Blocks that are empty, reversed, at or below SND.UNA
    /// (old or D-SACK) or beyond SND.MAX are invalid (RFC 2018) and ignored; one straddling SND.UNA is clipped.
    /// Returns true when a block SACKed bytes not SACKed before. <paramref name="mss"/> is SMSS for IsLost.
    /// </summary>
    public bool Update(ReadOnlySpan<SackBlock> blocks, uint sndUna, uint sndMax, uint mss)
    {
        _mss = mss;
        bool changed = false, newlySacked = false;
        for (int b = 0; b < blocks.Length; b++)
        {
            var blk = blocks[b];
            if (!Seq.Lt(blk.Left, blk.Right) || Seq.Le(blk.Right, sndUna) || Seq.Gt(blk.Right, sndMax))
            {
                if (_counters != null) _counters.SackBlocksIgnored++;
                continue;
            }
            if (Seq.Lt(blk.Left, sndUna)) blk.Left = sndUna;
            var before = _sacked;
            var count = _count;
            if (Insert(blk)) newlySacked = true;
            changed |= _sacked != before || _count != count;
        }
        if (changed) ComputeLostEnd();
        return newlySacked;
    }

    /// <summary>
    /// The cumulative ACK moved to <paramref name="sndUna"/>: forgets what it covers. Returns false when the ACK
    /// stopped exactly at the left edge of a range we hold as SACKed: the receiver has discarded SACKed data
    /// (reneging, RFC 2018 8), so the scoreboard is cleared and the data is no longer taken as delivered.
    /// </summary>
    public bool Advance(uint sndUna)
    {
        if (Seq.Lt(HighRxt, sndUna)) HighRxt = sndUna; // keeps comparisons within 2^31 on long connections
        if (_count == 0) return true;
        int drop = 0;
        while (drop < _count && Seq.Le(_ranges[drop].Right, sndUna))
        {
            _sacked -= _ranges[drop].Right - _ranges[drop].Left;
            drop++;
        }
        if (drop > 0)
        {
            Array.Copy(_ranges, drop, _ranges, 0, _count - drop);
            _count -= drop;
        }
        if (_count == 0) { _hasLost = false; return true; }
        ref var first = ref _ranges[0];
        if (first.Left == sndUna)
        {
            Clear();
            if (_counters != null) _counters.SackReneging++;
            return false;
        }
        if (Seq.Lt(first.Left, sndUna))
        {
            _sacked -= sndUna - first.Left;
            first.Left = sndUna;
        }
        // Ranges that went only lower the count of what lies above holes that are gone too: the boundary stands.
        return true;
    }

    public void Clear()
    {
        _count = 0;
        _sacked = 0;
        _hasLost = false;
    }

    /// <summary>True when <paramref name="seq"/> lies in a SACKed range.</summary>
    public bool IsSacked(uint seq)
    {
        for (int i = 0; i < _count; i++)
        {
            if (Seq.Lt(seq, _ranges[i].Left)) return false;
            if (Seq.Lt(seq, _ranges[i].Right)) return true;
        }
        return false;
    }

    /// <summary>RFC 6675 IsLost(seq): unSACKed with DupThresh ranges or more than (DupThresh-1)*SMSS SACKed bytes above it.</summary>
    public bool IsLost(uint seq) => _hasLost && Seq.Lt(seq, _lostEnd) && !IsSacked(seq);

    /// <summary>SACKed bytes in [from, to).</summary>
    public uint SackedIn(uint from, uint to)
    {
        uint n = 0;
        for (int i = 0; i < _count; i++)
        {
            var r = _ranges[i];
            if (!Seq.Lt(r.Left, to)) break;
            if (!Seq.Lt(from, r.Right)) continue;
            n += Seq.Min(r.Right, to) - Seq.Max(r.Left, from);
        }
        return n;
    }

    /// <summary>Unsacked bytes in [from, to); 0 when the interval is empty.</summary>
    private uint UnsackedIn(uint from, uint to) => Seq.Lt(from, to) ? (to - from) - SackedIn(from, to) : 0;

    /// <summary>
    /// RFC 6675 SetPipe(): per octet in [SND.UNA, SND.MAX) not SACKed, one if it is not lost and one more if it
    /// was retransmitted (below HighRxt). Computed per range.
    /// </summary>
    public uint Pipe(uint sndUna, uint sndMax)
    {
        var outstanding = UnsackedIn(sndUna, sndMax);
        var lost = _hasLost ? UnsackedIn(sndUna, Seq.Min(_lostEnd, sndMax)) : 0;
        var rxt = UnsackedIn(sndUna, Seq.Min(HighRxt, sndMax));
        return outstanding - lost + rxt;
    }

    /// <summary>
    /// RFC 6675 NextSeg() rule 1: the first lost, unSACKed byte at or above HighRxt; the segment runs up to
    /// SMSS bytes and stops at the next SACKed range. False when there is none.
    /// </summary>
    public bool NextLost(uint sndUna, uint sndMax, uint mss, out uint seq, out uint len)
    {
        seq = len = 0;
        if (!_hasLost) return false;
        return FirstUnsacked(Seq.Max(HighRxt, sndUna), sndMax, mss, out seq, out len) && Seq.Lt(seq, _lostEnd);
    }

    /// <summary>
    /// RFC 6675 NextSeg() rule 4, the rescue retransmission: once per recovery (when SND.UNA has passed
    /// RescueRxt), up to SMSS bytes ending at the highest unSACKed byte if that was not retransmitted in this
    /// recovery already; RescueRxt becomes the recovery point. HighRxt is not moved (C.2).
    /// </summary>
    public bool NextRescue(uint sndUna, uint sndMax, uint mss, uint recoveryPoint, out uint seq, out uint len)
    {
        seq = len = 0;
        if (!Seq.Gt(sndUna, RescueRxt)) return false;
        // The highest unSACKed byte: below the top range if it reaches SND.MAX, else SND.MAX - 1.
        var end = sndMax;
        var floor = sndUna;
        for (int i = _count - 1; i >= 0; i--)
        {
            if (_ranges[i].Right == end) { end = _ranges[i].Left; continue; }
            floor = Seq.Max(floor, _ranges[i].Right);
            break;
        }
        // Not data already resent in this recovery (a deviation: RFC 6675 would resend it; the RTO covers that).
        floor = Seq.Max(floor, HighRxt);
        if (!Seq.Lt(floor, end)) return false;
        seq = end - floor > mss ? end - mss : floor;
        len = end - seq;
        RescueRxt = recoveryPoint;
        return true;
    }

    /// <summary>
    /// For go-back-N after a timeout: the first unSACKed byte at or above <paramref name="seq"/>, and in
    /// <paramref name="limit"/> where the next SACKed range starts (or <paramref name="sndMax"/>).
    /// </summary>
    public uint SkipSacked(uint seq, uint sndMax, out uint limit)
    {
        limit = sndMax;
        for (int i = 0; i < _count; i++)
        {
            var r = _ranges[i];
            if (Seq.Le(r.Right, seq)) continue;
            if (Seq.Le(r.Left, seq)) { seq = r.Right; continue; }
            limit = r.Left;
            break;
        }
        return seq;
    }

    private bool FirstUnsacked(uint from, uint sndMax, uint mss, out uint seq, out uint len)
    {
        seq = SkipSacked(from, sndMax, out var limit);
        len = 0;
        if (!Seq.Lt(seq, sndMax)) return false;
        len = Math.Min(limit - seq, mss);
        return true;
    }

    /// <summary>Inserts a range, merging with those it overlaps or touches; when full, the highest range gives way. True when it added SACKed bytes.</summary>
    private bool Insert(SackBlock blk)
    {
        int i = 0;
        while (i < _count && Seq.Lt(_ranges[i].Right, blk.Left)) i++;
        if (i < _count && Seq.Le(_ranges[i].Left, blk.Right))
        {
            ref var r = ref _ranges[i];
            var oldLen = r.Right - r.Left;
            r.Left = Seq.Min(r.Left, blk.Left);
            r.Right = Seq.Max(r.Right, blk.Right);
            int j = i + 1;
            while (j < _count && Seq.Le(_ranges[j].Left, r.Right))
            {
                oldLen += _ranges[j].Right - _ranges[j].Left;
                r.Right = Seq.Max(r.Right, _ranges[j].Right);
                j++;
            }
            if (j > i + 1)
            {
                Array.Copy(_ranges, j, _ranges, i + 1, _count - j);
                _count -= j - i - 1;
            }
            var added = (r.Right - r.Left) - oldLen;
            _sacked += added;
            return added > 0;
        }
        if (_count == _ranges.Length)
        {
            // Full: the highest range is forgotten (the peer repeats recent blocks; the lowest matter most for recovery).
            if (_counters != null) _counters.SackRangesDropped++;
            if (i == _count) return false;
            _count--;
            _sacked -= _ranges[_count].Right - _ranges[_count].Left;
        }
        Array.Copy(_ranges, i, _ranges, i + 1, _count - i);
        _ranges[i] = blk;
        _count++;
        _sacked += blk.Right - blk.Left;
        return true;
    }

    /// <summary>Walks down from the highest range until DupThresh ranges or more than (DupThresh-1)*SMSS bytes lie above.</summary>
    private void ComputeLostEnd()
    {
        uint bytes = 0;
        var threshold = (uint)(DupThresh - 1) * _mss;
        _hasLost = false;
        for (int i = _count - 1, n = 1; i >= 0; i--, n++)
        {
            bytes += _ranges[i].Right - _ranges[i].Left;
            if (n >= DupThresh || bytes > threshold)
            {
                _lostEnd = _ranges[i].Left;
                _hasLost = true;
                return;
            }
        }
    }
}
