namespace NetStack.Tcp;

/// <summary>
/// The ranges a receiver holds beyond RCV.NXT (their bytes sit at their place in the receive ring): sorted, merged
/// on insert, in a fixed array allocated at the first out-of-order segment and bounded by
/// Tcp.MaxOutOfOrderRanges. Also what our SACK blocks report (RFC 2018 4). Loop only.
/// </summary>
internal sealed class OutOfOrderRanges
{
    private readonly int _capacity;
    private SackBlock[]? _ranges;
    private int _count;
    private int _latest = -1;          // the range holding the latest arrival: the first SACK block (RFC 2018 4)
    private SackBlock[]? _sackOut;

    public OutOfOrderRanges(int capacity) => _capacity = capacity;

    public int Count => _count;

    /// <summary>Records [left, right) as received; false when a new range is needed and the table is full.</summary>
    public bool Add(uint left, uint right)
    {
        var r = _ranges ??= new SackBlock[_capacity];
        // Find the first range that ends at or after left.
        int i = 0;
        while (i < _count && Seq.Lt(r[i].Right, left)) i++;
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
        if (_count == r.Length) return false;
        Array.Copy(r, i, r, i + 1, _count - i);
        r[i] = new SackBlock(left, right);
        _count++;
        _latest = i;
        return true;
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
        for (int i = 0; i < _count; i++)
            if (Seq.Lt(_ranges![i].Left, end) && Seq.Le(end, _ranges[i].Right)) return true;
        return false;
    }

    /// <summary>True when [left, right) lies within one range held: a duplicate of data already here.</summary>
    public bool Contains(uint left, uint right)
    {
        for (int i = 0; i < _count; i++)
            if (Seq.Le(_ranges![i].Left, left) && Seq.Le(right, _ranges[i].Right)) return true;
        return false;
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
    }
}
