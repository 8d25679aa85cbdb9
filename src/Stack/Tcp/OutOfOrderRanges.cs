namespace NetStack.Tcp;

/// <summary>
/// The ranges a receiver holds beyond RCV.NXT (their bytes sit at their place in the receive ring): sorted, merged
/// on insert (found by binary search), in an array allocated at the first out-of-order segment that doubles as it
/// fills, up to a bound the receiver gives with each insert (the receive buffer's worth: <see cref="LimitFor"/>). Also
/// what our SACK blocks report (RFC 2018 4): a range, once held, stays until RCV.NXT reaches it (no reneging). Loop only.
/// </summary>
internal sealed class OutOfOrderRanges
{
    /// <summary>The array's first size, and the least bound.</summary>
    public const int InitialCapacity = 16;
    private SackBlock[]? _ranges;
    private int _count;
    private int _latest = -1;          // the range holding the latest arrival: the first SACK block (RFC 2018 4)
    private SackBlock[]? _sackOut;

    public int Count => _count;

    /// <summary>
    /// The most ranges a receive buffer of <paramref name="bufferBytes"/> needs (Linux bounds its out-of-order queue by
    /// memory, not by a count): one per two full segments of it (a range and a hole), so a sender of full segments never
    /// meets the bound; at least <see cref="InitialCapacity"/>. <paramref name="fixedLimit"/> (Tcp.MaxOutOfOrderRanges) overrides it when positive.
    /// </summary>
    public static int LimitFor(int bufferBytes, int mss, int fixedLimit) =>
        fixedLimit > 0 ? fixedLimit : Math.Max(InitialCapacity, bufferBytes / (2 * Math.Max(mss, 536)) + 1);

    /// <summary>
    /// Records [left, right) as received; false (the caller drops the segment) when it needs a new range and
    /// <paramref name="limit"/> ranges are held. Nothing held is given up for it: a range already SACKed and then dropped
    /// is a reneging (RFC 2018 8) the sender must repair, and our DupAck recovery stalled on it.
    /// </summary>
    public bool Add(uint left, uint right, int limit)
    {
        var r = _ranges ??= new SackBlock[Math.Min(InitialCapacity, Math.Max(limit, 1))];
        // The first range that ends at or after left.
        int i = FirstEndingAtOrAfter(left);
        if (i < _count && Seq.Le(r[i].Left, right))
        {
            // Overlaps or touches range i: widen it and swallow the ranges it now reaches.
            r[i].Left = Seq.Min(r[i].Left, left);
            r[i].Right = Seq.Max(r[i].Right, right);
            int j = i + 1;
            while (j < _count && Seq.Le(r[j].Left, r[i].Right))
            {
                r[i].Right = Seq.Max(r[i].Right, r[j].Right);
                j++;
            }
            if (j > i + 1)
            {
                Array.Copy(r, j, r, i + 1, _count - j);
                _count -= j - i - 1;
            }
            _latest = i;
            return true;
        }
        if (_count >= limit) return false;
        if (_count == r.Length)
        {
            Array.Resize(ref _ranges, Math.Min(r.Length * 2, Math.Max(limit, r.Length + 1)));
            r = _ranges;
        }
        Array.Copy(r, i, r, i + 1, _count - i);
        r[i] = new SackBlock(left, right);
        _count++;
        _latest = i;
        return true;
    }

    /// <summary>The index of the first range whose right edge is at or after <paramref name="seq"/> (binary search; ranges are sorted and disjoint).</summary>
    private int FirstEndingAtOrAfter(uint seq)
    {
        int lo = 0, hi = _count;
        while (lo < hi)
        {
            var mid = (lo + hi) >> 1;
            if (Seq.Lt(_ranges![mid].Right, seq)) lo = mid + 1;
            else hi = mid;
        }
        return lo;
    }

    /// <summary>
    /// RCV.NXT reached <paramref name="rcvNxt"/>: removes the ranges that start at or below it and returns the new
    /// RCV.NXT, the end of the in-order data they extend (their bytes are already in place in the ring).
    /// </summary>
    public uint TakeInOrder(uint rcvNxt)
    {
        int consumed = 0;
        while (consumed < _count && Seq.Le(_ranges![consumed].Left, rcvNxt))
        {
            if (Seq.Gt(_ranges[consumed].Right, rcvNxt)) rcvNxt = _ranges[consumed].Right;
            consumed++;
        }
        if (consumed == 0) return rcvNxt;
        Array.Copy(_ranges!, consumed, _ranges!, 0, _count - consumed);
        _count -= consumed;
        _latest = _latest >= consumed ? _latest - consumed : (_count > 0 ? 0 : -1);
        return rcvNxt;
    }

    /// <summary>True when a range holds the byte just before <paramref name="end"/>.</summary>
    public bool Holds(uint end)
    {
        var i = FirstEndingAtOrAfter(end);
        return i < _count && Seq.Lt(_ranges![i].Left, end);
    }

    /// <summary>True when [left, right) lies within one range held: a duplicate of data already here.</summary>
    public bool Contains(uint left, uint right)
    {
        var i = FirstEndingAtOrAfter(right);
        return i < _count && Seq.Le(_ranges![i].Left, left);
    }

    /// <summary>
    /// RFC 2018 4: the block holding the latest arrival first, then the others from the lowest, at most
    /// <paramref name="max"/>; with <paramref name="dsack"/>, that D-SACK block goes before them all (RFC 2883 4).
    /// </summary>
    public ReadOnlySpan<SackBlock> SackBlocks(int max, SackBlock? dsack = null)
    {
        _sackOut ??= new SackBlock[4];
        int n = 0;
        if (dsack is { } d && max > 0) _sackOut[n++] = d;
        if (_latest >= 0 && _latest < _count && n < max) _sackOut[n++] = _ranges![_latest];
        for (int i = 0; i < _count && n < max; i++)
            if (i != _latest) _sackOut[n++] = _ranges![i];
        return _sackOut.AsSpan(0, Math.Min(n, max));
    }

    /// <summary>Forgets every range and lets the array go.</summary>
    public void Clear()
    {
        _ranges = null;
        _count = 0;
        _latest = -1;
    }
}
