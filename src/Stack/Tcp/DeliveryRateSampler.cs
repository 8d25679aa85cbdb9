namespace NetStack.Tcp;

/// <summary>
/// One delivery-rate sample (draft-cheng-iccrg-delivery-rate-estimation 3.3), taken per ACK that delivered data
/// (cumulatively or by SACK): how much was delivered over which interval, measured from the most recently sent
/// segment this ACK delivered. What a model-based congestion control (BBR) consumes, through
/// <see cref="ICongestionControl.OnRateSample"/>. Times are the loop's clock.
/// </summary>
public readonly struct RateSample
{
    /// <summary>True when the ACK delivered data and the interval is long enough to trust (at least the min RTT).</summary>
    public bool IsValid { get; init; }
    /// <summary>rs.delivered: bytes delivered between the sampled segment's transmission and this ACK.</summary>
    public long Delivered { get; init; }
    /// <summary>rs.interval: max(send_elapsed, ack_elapsed), the interval those bytes were delivered over.</summary>
    public TimeSpan Interval { get; init; }
    /// <summary>rs.send_elapsed and rs.ack_elapsed, the two phases of the interval.</summary>
    public TimeSpan SendElapsed { get; init; }
    public TimeSpan AckElapsed { get; init; }
    /// <summary>rs.prior_delivered: C.delivered when the sampled segment was sent (BBR counts round trips with it).</summary>
    public long PriorDelivered { get; init; }
    /// <summary>rs.is_app_limited: the flow was application-limited when the sampled segment was sent (a lower bound only).</summary>
    public bool IsAppLimited { get; init; }
    /// <summary>The round-trip time of the most recently sent segment this ACK delivered that was sent once (Karn); zero when none.</summary>
    public TimeSpan Rtt { get; init; }
    /// <summary>Bytes this ACK newly delivered (acknowledged or SACKed), and newly deemed lost.</summary>
    public long NewlyDelivered { get; init; }
    public long NewlyLost { get; init; }
    /// <summary>Bytes in flight before this ACK was processed.</summary>
    public long PriorInFlight { get; init; }

    /// <summary>Delivered / Interval in bytes per second; 0 when the sample is not valid.</summary>
    public double DeliveryRate => IsValid && Interval > TimeSpan.Zero ? Delivered / Interval.TotalSeconds : 0;
}

/// <summary>The rate sampler's fields stamped on a segment at each transmission (draft 3.2).</summary>
internal struct RateStamp
{
    public long Delivered;
    public TimeSpan DeliveredTime, FirstSentTime;
    public bool AppLimited;

    public readonly void Apply(ref SentSegment s)
    {
        s.Delivered = Delivered;
        s.DeliveredTime = DeliveredTime;
        s.FirstSentTime = FirstSentTime;
        s.AppLimited = AppLimited;
    }
}

/// <summary>
/// The delivery rate estimator of draft-cheng-iccrg-delivery-rate-estimation: the connection's C.delivered,
/// C.delivered_time, C.first_sent_time and C.app_limited; <see cref="OnSend"/> stamps each transmission,
/// <see cref="OnDelivered"/> takes each delivered segment, <see cref="OnAckDone"/> makes the ACK's
/// <see cref="RateSample"/>. A struct held in place by the sender; nothing allocated. Loop only.
/// </summary>
internal struct DeliveryRateSampler
{
    /// <summary>C.delivered: bytes delivered so far (acknowledged or SACKed), never decreasing.</summary>
    public long TotalDelivered { get; private set; }
    /// <summary>C.lost: bytes deemed lost so far.</summary>
    public long TotalLost { get; private set; }
    /// <summary>C.delivered_time: when C.delivered last grew.</summary>
    public TimeSpan DeliveredTime { get; private set; }
    /// <summary>C.first_sent_time: the send time of the most recently delivered segment (start of the next send interval).</summary>
    public TimeSpan FirstSentTime { get; private set; }
    /// <summary>C.app_limited: 0, or the C.delivered beyond which the application-limited bubble has left the pipe.</summary>
    public long AppLimitedUntil { get; private set; }
    /// <summary>When the ACK being processed arrived (set by the sender as it starts; its delivered segments are reported at this time).</summary>
    public TimeSpan AckTime;
    /// <summary>The delivery rate of the last sample of an ACK that delivered (or lost) data, bytes per second.</summary>
    public double LastDeliveryRate { get; private set; }

    /// <summary>
    /// The current ACK delivered a segment sent once and no segment sent more than once: <see cref="CurrentRtt"/> is
    /// the round-trip time of the latest such (Karn's rule for the whole ACK, as Linux applies it: an ACK that covers a
    /// retransmission may have been sent only when that retransmission arrived, long after the originals).
    /// </summary>
    public readonly bool HasRtt => _hasRtt && !_retransmittedDelivered;
    public readonly TimeSpan CurrentRtt => _rtt;

    // The sample being built for the current ACK (rs.*).
    private bool _has;
    private long _priorDelivered, _newlyDelivered, _newlyLost;
    private TimeSpan _sendElapsed, _ackElapsed, _rtt;
    private long _rttOrder, _latestOrder;
    private bool _appLimited, _hasRtt, _retransmittedDelivered;

    /// <summary>A transmission (new data or a retransmission): the stamp its record keeps. With nothing in flight the intervals restart.</summary>
    public RateStamp OnSend(TimeSpan now, bool nothingInFlight)
    {
        if (nothingInFlight) FirstSentTime = DeliveredTime = now;
        return new RateStamp { Delivered = TotalDelivered, DeliveredTime = DeliveredTime, FirstSentTime = FirstSentTime, AppLimited = AppLimitedUntil != 0 };
    }

    /// <summary>
    /// UpdateRateSample(P): <paramref name="s"/> was newly delivered (<paramref name="bytes"/> of it) at <paramref name="now"/>.
    /// The most recently sent of an ACK's delivered segments (C.delivered at its sending, then its send time and end) makes the sample.
    /// </summary>
    public void OnDelivered(in SentSegment s, uint bytes, TimeSpan now)
    {
        TotalDelivered += bytes;
        _newlyDelivered += bytes;
        DeliveredTime = now;
        if (s.Has(SentFlags.EverRetransmitted)) _retransmittedDelivered = true;
        else if (!_hasRtt || s.Order > _rttOrder)
        {
            _hasRtt = true;
            _rtt = now - s.Sent;
            _rttOrder = s.Order;
        }
        if (_has && !(s.Delivered > _priorDelivered || (s.Delivered == _priorDelivered && s.Order > _latestOrder)))
            return;
        _has = true;
        _priorDelivered = s.Delivered;
        _appLimited = s.AppLimited;
        _sendElapsed = s.Sent - s.FirstSentTime;
        _ackElapsed = DeliveredTime - s.DeliveredTime;
        _latestOrder = s.Order;
        FirstSentTime = s.Sent;
    }

    /// <summary>Bytes newly deemed lost (RACK or a timeout), for the sample and C.lost.</summary>
    public void OnLost(uint bytes)
    {
        TotalLost += bytes;
        _newlyLost += bytes;
    }

    /// <summary>
    /// CheckIfApplicationLimited: the sender has nothing more to send, room in cwnd and no retransmission owed, so the
    /// samples taken until what is in flight now is delivered measure the application, not the path.
    /// </summary>
    public void MarkAppLimited(long inFlight) => AppLimitedUntil = Math.Max(TotalDelivered + inFlight, 1);

    /// <summary>GenerateRateSample: the ACK is processed; returns its sample (not valid when it delivered nothing or the interval is shorter than <paramref name="minRtt"/>).</summary>
    public RateSample OnAckDone(TimeSpan minRtt, long priorInFlight)
    {
        if (AppLimitedUntil != 0 && TotalDelivered > AppLimitedUntil) AppLimitedUntil = 0; // the bubble has been delivered
        var has = _has;
        var interval = _sendElapsed > _ackElapsed ? _sendElapsed : _ackElapsed;
        var sample = new RateSample
        {
            IsValid = has && interval >= minRtt && interval > TimeSpan.Zero,
            Delivered = has ? TotalDelivered - _priorDelivered : 0,
            Interval = has ? interval : TimeSpan.Zero,
            SendElapsed = _sendElapsed,
            AckElapsed = _ackElapsed,
            PriorDelivered = _priorDelivered,
            IsAppLimited = _appLimited,
            Rtt = HasRtt ? _rtt : TimeSpan.Zero,
            NewlyDelivered = _newlyDelivered,
            NewlyLost = _newlyLost,
            PriorInFlight = priorInFlight,
        };
        if (sample.NewlyDelivered != 0 || sample.NewlyLost != 0) LastDeliveryRate = sample.DeliveryRate;
        _has = false;
        _newlyDelivered = _newlyLost = 0;
        _rtt = _sendElapsed = _ackElapsed = TimeSpan.Zero;
        _priorDelivered = 0;
        _appLimited = _hasRtt = _retransmittedDelivered = false;
        return sample;
    }
}
