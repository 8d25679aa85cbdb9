namespace NetStack.Tcp;

/// <summary>
/// Detection of spurious retransmissions and the undo of the window reduction they caused, as Linux does by default:
/// D-SACK (RFC 2883, detection as in RFC 3708: when every retransmission of a loss episode comes back D-SACKed, the
/// peer had the originals all along) and timestamps (the Eifel detection, RFC 3522: the ACK that first covers the
/// earliest retransmission echoes a timestamp older than that retransmission, so it was triggered by the original).
/// An episode is one fast recovery or one retransmission timeout; what it undoes is the cwnd and ssthresh it began
/// with. Valid until the next episode begins or an undo happens. A struct held in place by the recovery; loop only.
/// </summary>
internal struct SpuriousRetransmissionUndo
{
    private uint _priorCwnd, _priorSsthresh;
    private uint _marker;          // SND.UNA when the episode began: D-SACKs below it are of older retransmissions
    private uint _high;            // SND.MAX when the episode began
    private int _retransmits;      // segments retransmitted in the episode and not yet D-SACKed
    private bool _anyRetransmit;
    private uint _firstRetransmitSeq;
    private uint _firstRetransmitTs; // our TSval on the episode's first retransmission
    private bool _eifelPending;

    /// <summary>An episode is open to undo.</summary>
    public readonly bool Valid { get; private init; }

    /// <summary>A loss episode begins: remember the window it reduces.</summary>
    public static SpuriousRetransmissionUndo Start(uint priorCwnd, uint priorSsthresh, uint una, uint max) =>
        new() { Valid = true, _priorCwnd = priorCwnd, _priorSsthresh = priorSsthresh, _marker = una, _high = max };

    /// <summary>A retransmission of <paramref name="len"/> bytes at <paramref name="seq"/>, carrying TSval <paramref name="tsVal"/> (when timestamps are on).</summary>
    public void OnRetransmit(uint seq, int len, uint mss, bool timestamps, uint tsVal)
    {
        if (!Valid || len <= 0) return;
        _retransmits += (int)((len + mss - 1) / mss);
        if (!_anyRetransmit || Seq.Lt(seq, _firstRetransmitSeq))
        {
            if (!_anyRetransmit) { _firstRetransmitTs = tsVal; _eifelPending = timestamps; }
            _firstRetransmitSeq = seq;
        }
        _anyRetransmit = true;
    }

    /// <summary>
    /// A D-SACK for [left, right): when it falls in this episode's range it takes back retransmissions (whole
    /// segments); returns true when it was within the episode (a spurious retransmission).
    /// </summary>
    public bool OnDsack(uint left, uint right, uint mss)
    {
        if (!Valid || !_anyRetransmit || !Seq.Ge(left, _marker) || !Seq.Le(right, _high)) return false;
        _retransmits = Math.Max(0, _retransmits - (int)((right - left + mss - 1) / mss));
        return true;
    }

    /// <summary>Every retransmission of the episode has been D-SACKed (RFC 3708 2: all were spurious).</summary>
    public readonly bool AllDsacked => Valid && _anyRetransmit && _retransmits == 0;

    /// <summary>
    /// The Eifel test (RFC 3522 2), once, on the first ACK that covers the earliest retransmission: its echoed
    /// timestamp older than that retransmission's means the original was delivered. True when it was spurious.
    /// </summary>
    public bool EifelSpurious(uint ack, bool hasTimestamp, uint tsEcr)
    {
        if (!Valid || !_eifelPending || !Seq.Gt(ack, _firstRetransmitSeq)) return false;
        _eifelPending = false;
        return hasTimestamp && tsEcr != 0 && (int)(tsEcr - _firstRetransmitTs) < 0;
    }

    /// <summary>The undo: cwnd and ssthresh at least what they were when the episode began. The episode closes.</summary>
    public void Undo(ref uint cwnd, ref uint ssthresh)
    {
        if (cwnd < _priorCwnd) cwnd = _priorCwnd;
        if (ssthresh < _priorSsthresh) ssthresh = _priorSsthresh;
        this = default;
    }
}
