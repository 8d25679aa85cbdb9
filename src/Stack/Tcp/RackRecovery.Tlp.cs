namespace NetStack.Tcp;

/// <summary>
/// The Tail Loss Probe (RFC 8985 7): when no ACK has come for a probe timeout (PTO = 2*SRTT, plus the worst-case
/// delayed ACK when one segment is in flight, never beyond the RTO), send one segment — new data if the windows allow,
/// else the last segment again — so that the ACK it draws lets RACK find a lost tail, instead of waiting for the RTO.
/// One probe is outstanding at a time; its ACK tells whether it repaired a loss (RFC 8985 7.4). Beyond the RFC (which
/// leaves a lost probe to the RTO): when a probe draws no ACK within twice the PTO, one more probe goes before the
/// RTO, and probes run in recovery too (see <see cref="AfterOutput"/>). A probe whose ACK let RACK find losses (RFC
/// 8985 7.4: the episode ends, the probe did its work) does not count towards <see cref="MaxProbesInRow"/>, which bounds
/// unanswered probes: when the retransmissions it led to are lost again and nothing sent after them is outstanding,
/// they get probes of their own before the RTO (RackRecovery.DetectLossAndArm; 16 MiB each way at 20% loss, CUBIC,
/// seeds 21/22/23: 95/76/87 timeouts → 43/40/39; resetting on any answered probe was tried: 55/35/62, and BBR's
/// 20% simulation 1.80 → 5.65 s).
/// </summary>
internal sealed partial class RackRecovery
{
    /// <summary>RFC 8985 7.2: WCDelAckT, the worst-case delayed-ACK time a PTO allows when one segment is in flight.</summary>
    public static readonly TimeSpan WorstCaseDelayedAck = TimeSpan.FromMilliseconds(200);
    /// <summary>The least PTO beyond 2*SRTT (as Linux's TCP_TIMEOUT_MIN): room for the ACK's own processing on a fast path.</summary>
    public static readonly TimeSpan MinProbeMargin = TimeSpan.FromMilliseconds(2);

    private TimeSpan _ptoBase;            // the last transmission of new data or ACK of new data
    private bool _tlpOutstanding;         // TLP.end_seq != None
    private int _probesInRow;             // probes since SND.UNA last advanced or a probe's ACK found losses
    /// <summary>Unanswered probes sent before the RTO is left to act when no ACK of new data comes.</summary>
    public const int MaxProbesInRow = 2;
    private uint _tlpEndSeq;
    private bool _tlpIsRetrans;
    private bool _sendingProbe;
    private bool _tlpJustAcked;           // this ACK delivered a new-data probe
    private long _tlpProbes;

    /// <summary>
    /// RFC 8985 7.2: arm the PTO with data in flight, no probe outstanding and no reorder timer. Unlike the RFC (and
    /// Linux), also during fast recovery and after a timeout: a receiver that acknowledges a burst with one ACK
    /// leaves nothing but the RTO when that ACK is lost (in the lossy simulations, a third of all timeouts were such
    /// bursts delivered whole), and a lost last retransmission is a tail loss like any other.
    /// </summary>
    public void AfterOutput(TimeSpan now)
    {
        if (_timer == TimerKind.Reorder) return;
        if (_probesInRow >= MaxProbesInRow || _snd.Max == _snd.Una || !_snd.Rtt.HasSample || _snd.Persisting)
        {
            CancelProbe();
            return;
        }
        var srtt = _snd.Rtt.Srtt;
        var pto = 2 * srtt + (_snd.Max - _snd.Una <= Mss ? WorstCaseDelayedAck : MinProbeMargin);
        if (_probesInRow > 0) pto += pto; // the probe before drew no ACK: back off
        var at = _ptoBase + pto;
        if (at > _c.RtoAt) at = _c.RtoAt; // never later than the RTO
        if (at < now) at = now;
        var paced = _snd.PacedNotBefore(now);
        if (at < paced) at = paced; // a paced sender's probe waits for its turn at the pacing rate
        if (_c.PaceAt != TcpConnection.Never && at <= _c.PaceAt) at = _c.PaceAt + pto; // data waits for its paced turn: the probe counts from it
        SetTimer(TimerKind.Probe, at);
    }

    private void CancelProbe()
    {
        if (_timer == TimerKind.Probe) SetTimer(TimerKind.None, TcpConnection.Never);
    }

    /// <summary>RFC 8985 7.3: the PTO fired: one probe segment, then the RTO restarts.</summary>
    private void SendProbe(TimeSpan now)
    {
        if (_snd.Max == _snd.Una || _probesInRow >= MaxProbesInRow) return;
        var paced = _snd.PacedNotBefore(now);
        if (paced > now) { SetTimer(TimerKind.Probe, paced); return; } // the pacer's next departure, not before
        _sendingProbe = true;
        int sent;
        try
        {
            sent = _snd.SendProbeSegment(now, out _tlpIsRetrans);
        }
        finally
        {
            _sendingProbe = false;
        }
        if (sent <= 0) return;
        _tlpOutstanding = true;
        _tlpEndSeq = _snd.Max;
        _probesInRow++;
        _ptoBase = now;
        _tlpProbes++;
        Counters.TlpProbes++;
        _c.RtoAt = now + _snd.Rtt.BackedOff;
        _c.Layer.Context.Trace("Tcp", $"{_c.Describe()} tail loss probe ({(_tlpIsRetrans ? "last segment again" : "new data")}), end {_tlpEndSeq}");
    }

    /// <summary>A D-SACK for the probe: it and the original both arrived, nothing was lost (RFC 8985 7.4.1).</summary>
    private void OnTlpDsack(ref AckEvent ack)
    {
        if (_tlpOutstanding && _tlpIsRetrans && ack.DsackRight == _tlpEndSeq) _tlpOutstanding = false;
    }

    /// <summary>
    /// RFC 8985 7.4: the ACK covers the probe. New data: done (if its delivery shows a hole below it, RACK starts a
    /// recovery on this ACK, which counts as the probe's). The last segment again: an ACK beyond it means the probe
    /// repaired a loss, and the window comes down as for a fast recovery; a pure duplicate means both arrived.
    /// </summary>
    private void OnTlpAck(ref AckEvent ack, TimeSpan now)
    {
        _tlpJustAcked = false;
        if (!_tlpOutstanding) return;
        if (Seq.Lt(ack.Ack, _tlpEndSeq))
        {
            // SACKed: the probe arrived and a hole remains below it, which RACK now judges (and a recovery it starts
            // on this ACK is the probe's).
            if (Seq.Ge(Sent.HighestDelivered, _tlpEndSeq))
            {
                _tlpOutstanding = false;
                _tlpJustAcked = true;
            }
            return;
        }
        if (!_tlpIsRetrans)
        {
            _tlpOutstanding = false;
            _tlpJustAcked = true;
            return;
        }
        if (Seq.Gt(ack.Ack, _tlpEndSeq) && _phase == Phase.Open)
        {
            var flight = _snd.Max - _snd.Una;
            _snd.Ssthresh = _snd.Cc.OnLoss(_snd.Cwnd, Math.Max(flight, ack.Ack - ack.PriorUna), Mss, now);
            if (!_snd.Cc.SetsWindow) _snd.Cwnd = _snd.Ssthresh; // a model-based control keeps its own window (Linux: tcp_end_cwnd_reduction)
            CountTlpRecovery();
        }
        else if (ack.Delivered == 0 && !ack.Dsack && ack.Sack.Length == 0) _tlpOutstanding = false;
    }

    private void CountTlpRecovery()
    {
        _tlpOutstanding = false;
        Counters.TlpRecoveries++;
    }
}
