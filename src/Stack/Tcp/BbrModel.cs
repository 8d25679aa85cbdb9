namespace NetStack.Tcp;

/// <summary>
/// BBR's model of the path (draft-ietf-ccwg-bbr 4.5, 5.5; Linux's tcp_bbr.c): round trips counted by delivered data,
/// the bottleneck bandwidth as the maximum delivery rate over the last <see cref="BandwidthWindowRounds"/> rounds
/// (application-limited samples only when they raise it), the minimum RTT with its <see cref="MinRttWindow"/> expiry,
/// and the data ACKed beyond what the bandwidth explains (ACK aggregation, 5.5.9). Bytes and bytes per second.
/// </summary>
internal sealed class BbrModel
{
    /// <summary>The bandwidth filter's length: a gain cycle and two rounds more (Linux's bbr_bw_rtts).</summary>
    public const int BandwidthWindowRounds = 10;
    /// <summary>How long a min RTT stands before PROBE_RTT measures it again (BBR.MinRTTFilterLen).</summary>
    public static readonly TimeSpan MinRttWindow = TimeSpan.FromSeconds(10);
    /// <summary>The extra-acked filter's length in rounds, and the most it may add (100 ms of the bandwidth).</summary>
    private const int ExtraAckedWindowRounds = 5;
    private static readonly TimeSpan MaxExtraAckedInterval = TimeSpan.FromMilliseconds(100);

    private WindowedFilter _maxBw = WindowedFilter.Max();
    private WindowedFilter _extraAcked = WindowedFilter.Max();
    private long _nextRoundDelivered;
    private TimeSpan _ackEpochStart = TimeSpan.MinValue;
    private long _ackEpochAcked;

    /// <summary>Round trips counted so far; <see cref="RoundStart"/> is true on the ACK that began one.</summary>
    public long RoundCount { get; private set; }
    public bool RoundStart { get; private set; }
    /// <summary>BBR.max_bw: the windowed maximum delivery rate, bytes per second (0 before the first sample).</summary>
    public double MaxBandwidth => _maxBw.Value;
    /// <summary>BBR.min_rtt (TimeSpan.MaxValue before the first sample) and when it was taken.</summary>
    public TimeSpan MinRtt { get; private set; } = TimeSpan.MaxValue;
    public TimeSpan MinRttStamp { get; private set; }
    public bool HasMinRtt => MinRtt != TimeSpan.MaxValue;
    /// <summary>The min RTT is older than <see cref="MinRttWindow"/> (set by <see cref="UpdateMinRtt"/>).</summary>
    public bool MinRttExpired { get; private set; }
    /// <summary>The recent excess of ACKed data over what the bandwidth explains, bytes.</summary>
    public double ExtraAcked => _extraAcked.Value;

    /// <summary>Round counting (5.5.1): a round ends when data sent after the previous round's end is delivered.</summary>
    public void UpdateRound(in RateSample rs, long totalDelivered)
    {
        RoundStart = false;
        if (rs.NewlyDelivered == 0 || rs.PriorDelivered < _nextRoundDelivered) return;
        _nextRoundDelivered = totalDelivered;
        RoundCount++;
        RoundStart = true;
    }

    /// <summary>Starts a round now (the one a loss episode or PROBE_RTT measures from).</summary>
    public void StartRoundNow(long totalDelivered) => _nextRoundDelivered = totalDelivered;

    /// <summary>BBRUpdateMaxBw: the sample's rate enters the filter unless it is application-limited (or held back by PROBE_RTT) and below the estimate.</summary>
    public void UpdateBandwidth(in RateSample rs, bool appLimited)
    {
        var bw = rs.DeliveryRate;
        if (bw <= 0) return;
        if (!appLimited || bw >= MaxBandwidth) _maxBw.Update(bw, RoundCount, BandwidthWindowRounds);
    }

    /// <summary>
    /// The min RTT filter (5.5.6, as Linux's v1): a lower sample replaces it, and so does any sample once it has stood
    /// for <see cref="MinRttWindow"/>. <see cref="MinRttExpired"/> says whether it had (PROBE_RTT is then due).
    /// </summary>
    public void UpdateMinRtt(TimeSpan rtt, TimeSpan now)
    {
        MinRttExpired = HasMinRtt && now - MinRttStamp > MinRttWindow;
        if (rtt > TimeSpan.Zero && (rtt < MinRtt || MinRttExpired))
        {
            MinRtt = rtt;
            MinRttStamp = now;
        }
    }

    /// <summary>PROBE_RTT is over: the min RTT it measured stands from now.</summary>
    public void RenewMinRtt(TimeSpan now) => MinRttStamp = now;

    /// <summary>
    /// BBRUpdateACKAggregation (5.5.9): data ACKed in the current epoch beyond bandwidth × its length; a new epoch when
    /// the ACKs fall behind the bandwidth or the epoch grows too long. Keeps cwnd from starving a path that ACKs in bursts.
    /// </summary>
    public void UpdateAckAggregation(long newlyAcked, TimeSpan now, uint cwnd)
    {
        var bw = MaxBandwidth;
        if (newlyAcked <= 0 || bw <= 0) return;
        if (_ackEpochStart == TimeSpan.MinValue) { _ackEpochStart = now; _ackEpochAcked = 0; }
        var expected = bw * (now - _ackEpochStart).TotalSeconds;
        if (_ackEpochAcked <= expected || _ackEpochAcked + newlyAcked >= 1L << 20)
        {
            _ackEpochAcked = 0;
            _ackEpochStart = now;
            expected = 0;
        }
        _ackEpochAcked += newlyAcked;
        var extra = Math.Min(_ackEpochAcked - expected, cwnd);
        extra = Math.Min(extra, bw * MaxExtraAckedInterval.TotalSeconds);
        _extraAcked.Update(extra, RoundCount, ExtraAckedWindowRounds);
    }

    /// <summary>The bandwidth-delay product at <paramref name="gain"/>: bytes, or 0 before a min RTT is known.</summary>
    public double Bdp(double gain) => HasMinRtt && MaxBandwidth > 0 ? gain * MaxBandwidth * MinRtt.TotalSeconds : 0;
}
