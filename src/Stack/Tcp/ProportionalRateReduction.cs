namespace NetStack.Tcp;

/// <summary>
/// Proportional Rate Reduction (RFC 6937) with the slow-start reduction bound (PRR-SSRB): during fast recovery each
/// ACK lets the sender send in proportion to what the ACK delivered, so the window comes down to ssthresh over one
/// round trip (no burst, no silence) and, when losses have taken the pipe below ssthresh, climbs back to it no faster
/// than slow start. Works in bytes; the caller sets cwnd = pipe + sndcnt, so its transmission loop sends sndcnt.
/// A struct held in place by the recovery; loop only.
/// </summary>
internal struct ProportionalRateReduction
{
    private long _delivered;   // prr_delivered: bytes delivered since recovery began
    private long _out;         // prr_out: bytes sent since recovery began
    private long _recoverFs;   // RecoverFS: the flight when recovery began

    public readonly bool Active { get; private init; }
    public readonly long Delivered => _delivered;
    public readonly long Out => _out;

    /// <summary>Recovery begins with <paramref name="flightSize"/> = SND.NXT - SND.UNA (RFC 6937 3: RecoverFS).</summary>
    public static ProportionalRateReduction Start(long flightSize) => new() { Active = true, _recoverFs = Math.Max(flightSize, 1) };

    /// <summary>Bytes of sequence space sent during recovery (new data or retransmissions).</summary>
    public void OnSent(int bytes)
    {
        if (Active) _out += bytes;
    }

    /// <summary>
    /// RFC 6937 3, on an ACK during recovery that delivered <paramref name="deliveredData"/> bytes, with
    /// <paramref name="pipe"/> in flight after it: returns sndcnt, the bytes the sender may send now. At least one
    /// segment goes before anything else was sent (the fast retransmit).
    /// </summary>
    public long OnAck(long deliveredData, long pipe, uint ssthresh, uint mss)
    {
        _delivered += deliveredData;
        long sndcnt;
        if (pipe > ssthresh)
        {
            // Proportional part: sndcnt = CEIL(prr_delivered * ssthresh / RecoverFS) - prr_out.
            sndcnt = (_delivered * ssthresh + _recoverFs - 1) / _recoverFs - _out;
        }
        else
        {
            // PRR-SSRB: limit = MAX(prr_delivered - prr_out, DeliveredData) + MSS; sndcnt = MIN(ssthresh - pipe, limit).
            var limit = Math.Max(_delivered - _out, deliveredData) + mss;
            sndcnt = Math.Min(ssthresh - pipe, limit);
        }
        if (sndcnt < 0) sndcnt = 0;
        if (_out == 0 && sndcnt < mss) sndcnt = mss; // the fast retransmit is never held back
        return sndcnt;
    }
}
