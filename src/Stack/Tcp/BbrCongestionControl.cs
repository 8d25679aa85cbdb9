namespace NetStack.Tcp;

/// <summary>BBR's states (draft-ietf-ccwg-bbr 4.3).</summary>
public enum BbrState
{
    /// <summary>Exponential growth at a gain of 2/ln 2 until the bandwidth stops growing by 25% for three rounds.</summary>
    Startup,
    /// <summary>Drains the queue Startup built: paced below the estimate until the flight is one BDP.</summary>
    Drain,
    /// <summary>Cruising at the estimate, with a gain cycle of eight phases (1.25, 0.75, then 1 for six) of one min RTT each.</summary>
    ProbeBw,
    /// <summary>Every 10 s without a lower RTT: the flight falls to 4 segments for 200 ms and a round to measure the min RTT afresh.</summary>
    ProbeRtt,
}

/// <summary>
/// BBR (Bottleneck Bandwidth and Round-trip propagation time; draft-ietf-ccwg-bbr, the version Linux ships as tcp_bbr):
/// a model-based congestion control. It estimates the bottleneck bandwidth and the minimum RTT from delivery-rate
/// samples (<see cref="BbrModel"/>), paces at gain × bandwidth and caps the flight at gain × the bandwidth-delay product;
/// the state machine sets the gains: STARTUP, DRAIN, PROBE_BW's gain cycle, PROBE_RTT. Random loss is not read as
/// congestion: a loss episode holds the flight to what is delivered for a round (packet conservation), then the
/// model rules again. It sets cwnd itself on every ACK (<see cref="WindowAfterAck"/>), in place of PRR. One instance
/// per connection; loop only.
/// </summary>
public sealed class BbrCongestionControl : ICongestionControl
{
    /// <summary>BBR.StartupPacingGain 2/ln 2: doubles the delivery rate each round.</summary>
    public const double HighGain = 2.885;
    public const double DrainGain = 1 / HighGain;
    /// <summary>PROBE_BW's cwnd gain: room for the delayed and aggregated ACKs of a round trip.</summary>
    public const double CwndGain = 2;
    /// <summary>The pacing gain cycle of PROBE_BW (Linux's bbr_pacing_gain).</summary>
    public static readonly double[] GainCycle = [1.25, 0.75, 1, 1, 1, 1, 1, 1];
    /// <summary>Paced 1% below the estimate, so the bottleneck's queue drains (Linux's bbr_pacing_margin_percent).</summary>
    private const double PacingMargin = 0.99;
    /// <summary>Startup ends when three rounds in a row grew the bandwidth less than 25%.</summary>
    private const double FullBandwidthGrowth = 1.25;
    private const int FullBandwidthRounds = 3;
    /// <summary>The least cwnd, in segments; PROBE_RTT's flight.</summary>
    private const int MinCwndSegments = 4;
    public static readonly TimeSpan ProbeRttDuration = TimeSpan.FromMilliseconds(200);

    private readonly BbrModel _model = new();
    private readonly uint _initialCwndSegments;
    private int _cycleIndex;
    private TimeSpan _cycleStamp;
    private double _fullBw;
    private int _fullBwCount;
    private TimeSpan _probeRttDone = TimeSpan.MinValue;
    private bool _probeRttRoundDone;
    private uint _priorCwnd;
    private bool _packetConservation;
    private LossPhase _priorPhase;
    private uint _ssthresh = uint.MaxValue;
    private long _totalDelivered;
    private long _probeRttSentUntil;
    private readonly uint _cycleSeed;

    /// <param name="cycleSeed">Chooses PROBE_BW's first phase (Linux picks it at random so flows desynchronise); any value.</param>
    public BbrCongestionControl(uint cycleSeed = 0, int initialCwndSegments = 10)
    {
        _cycleSeed = cycleSeed;
        _initialCwndSegments = (uint)Math.Max(initialCwndSegments, MinCwndSegments);
    }

    public string Name => TcpSettings.NameOf(CongestionAlgorithm.Bbr);

    public BbrState State { get; private set; } = BbrState.Startup;
    /// <summary>The bandwidth estimate, bytes per second (0 before the first sample).</summary>
    public double Bandwidth => _model.MaxBandwidth;
    /// <summary>The min RTT of the model (zero before the first sample).</summary>
    public TimeSpan MinRtt => _model.HasMinRtt ? _model.MinRtt : TimeSpan.Zero;
    public double PacingGain { get; private set; } = HighGain;
    public double CurrentCwndGain { get; private set; } = HighGain;
    /// <summary>The PROBE_BW phase (an index into <see cref="GainCycle"/>).</summary>
    public int CycleIndex => _cycleIndex;
    /// <summary>Startup found the bandwidth's plateau.</summary>
    public bool FullBandwidthReached { get; private set; }
    public long RoundCount => _model.RoundCount;
    /// <summary>The pacing rate, bytes per second; 0 until the first ACK (the sender then sends unpaced, within cwnd).</summary>
    public double PacingRate { get; private set; }

    // ---------------- the window-based hooks: BBR's window comes from its model instead ----------------

    /// <summary>BBR sets the window itself (<see cref="WindowAfterAck"/>).</summary>
    public bool SetsWindow => true;

    public uint OnAck(uint cwnd, uint ssthresh, uint acked, uint mss, TimeSpan now, TimeSpan srtt) => cwnd;

    public void OnNotCwndLimited(TimeSpan now) { }

    /// <summary>A loss episode begins: the window before it is kept for its end (Linux's bbr_save_cwnd); ssthresh is BBR's own.</summary>
    public uint OnLoss(uint cwnd, uint flightSize, uint mss, TimeSpan now)
    {
        SaveCwnd(cwnd);
        return _ssthresh;
    }

    /// <summary>A timeout: the flight restarts from one segment; the model keeps its estimates, startup's plateau test restarts.</summary>
    public uint OnTimeout(uint cwnd, uint flightSize, uint mss, TimeSpan now)
    {
        SaveCwnd(cwnd);
        _priorPhase = LossPhase.Loss;
        _fullBw = 0;
        _fullBwCount = 0;
        return _ssthresh;
    }

    private void SaveCwnd(uint cwnd)
    {
        if (_priorPhase == LossPhase.Open && State != BbrState.ProbeRtt) _priorCwnd = cwnd;
        else _priorCwnd = Math.Max(_priorCwnd, cwnd);
    }

    // ---------------- the model (every ACK that delivered or lost data) ----------------

    public void OnRateSample(in RateSample rs, TimeSpan now)
    {
        _totalDelivered = Math.Max(_totalDelivered, rs.PriorDelivered + rs.Delivered); // C.delivered, when the ACK delivered data
        _model.UpdateRound(in rs, _totalDelivered);
        // PROBE_RTT's small flight measures the RTT, not the bandwidth: its samples, and those of what it sent, count as
        // application-limited (Linux marks the connection so), lest a long PROBE_RTT of short rounds empty the filter.
        _model.UpdateBandwidth(in rs, rs.IsAppLimited || State == BbrState.ProbeRtt || rs.PriorDelivered < _probeRttSentUntil);
        UpdateCyclePhase(in rs, now);
        CheckFullBandwidth(in rs);
        CheckDrain(rs.PriorInFlight, now);
        UpdateMinRttAndProbeRtt(in rs, now);
        UpdateGains();
        UpdatePacingRate();
    }

    /// <summary>PROBE_BW's gain cycle (4.3.3): each phase lasts a min RTT; probing up ends early on loss or a full pipe, draining down when the queue is gone.</summary>
    private void UpdateCyclePhase(in RateSample rs, TimeSpan now)
    {
        if (State != BbrState.ProbeBw) return;
        var gain = GainCycle[_cycleIndex];
        var fullLength = now - _cycleStamp > _model.MinRtt;
        bool next;
        if (gain == 1) next = fullLength;
        else if (gain > 1) next = fullLength && (rs.NewlyLost > 0 || rs.PriorInFlight >= _model.Bdp(gain));
        else next = fullLength || rs.PriorInFlight <= _model.Bdp(1);
        if (next) AdvanceCycle(now);
    }

    private void AdvanceCycle(TimeSpan now)
    {
        _cycleIndex = (_cycleIndex + 1) % GainCycle.Length;
        _cycleStamp = now;
    }

    /// <summary>Startup's exit test (4.3.1.2): three rounds, not application-limited, without 25% more bandwidth.</summary>
    private void CheckFullBandwidth(in RateSample rs)
    {
        if (FullBandwidthReached || !_model.RoundStart || rs.IsAppLimited) return;
        if (_model.MaxBandwidth >= _fullBw * FullBandwidthGrowth)
        {
            _fullBw = _model.MaxBandwidth;
            _fullBwCount = 0;
            return;
        }
        if (++_fullBwCount >= FullBandwidthRounds) FullBandwidthReached = true;
    }

    /// <summary>STARTUP → DRAIN once the plateau is found; DRAIN → PROBE_BW once the flight is down to one BDP.</summary>
    private void CheckDrain(long inFlight, TimeSpan now)
    {
        if (State == BbrState.Startup && FullBandwidthReached)
        {
            State = BbrState.Drain;
            _ssthresh = (uint)Math.Min(_model.Bdp(1), uint.MaxValue);
        }
        if (State == BbrState.Drain && inFlight <= _model.Bdp(1)) EnterProbeBw(now);
    }

    private void EnterProbeBw(TimeSpan now)
    {
        State = BbrState.ProbeBw;
        // Start in a random phase other than the drain (Linux: CYCLE_LEN - 1 - random(7), then advance).
        _cycleIndex = GainCycle.Length - 1 - (int)(Mix(_cycleSeed + (uint)_model.RoundCount) % (GainCycle.Length - 1));
        AdvanceCycle(now);
    }

    private static uint Mix(uint x)
    {
        x ^= x >> 16; x *= 0x7feb352d; x ^= x >> 15; x *= 0x846ca68b; x ^= x >> 16;
        return x;
    }

    /// <summary>The min RTT and PROBE_RTT (4.3.4): an expired min RTT sends the flow to 4 segments for 200 ms and a round.</summary>
    private void UpdateMinRttAndProbeRtt(in RateSample rs, TimeSpan now)
    {
        _model.UpdateMinRtt(rs.Rtt, now);
        if (_model.MinRttExpired && State != BbrState.ProbeRtt)
        {
            State = BbrState.ProbeRtt;
            SaveCwnd(_lastCwnd);
            _probeRttDone = TimeSpan.MinValue;
        }
        if (State != BbrState.ProbeRtt) return;
        if (_probeRttDone == TimeSpan.MinValue)
        {
            if (rs.PriorInFlight - rs.NewlyDelivered <= MinCwndSegments * (long)_mss)
            {
                _probeRttDone = now + ProbeRttDuration;
                _probeRttRoundDone = false;
                _model.StartRoundNow(_totalDelivered);
            }
            return;
        }
        if (_model.RoundStart) _probeRttRoundDone = true;
        if (_probeRttRoundDone && now >= _probeRttDone)
        {
            _model.RenewMinRtt(now);
            _restoreCwnd = true;
            _probeRttSentUntil = _totalDelivered + rs.PriorInFlight;
            if (FullBandwidthReached) EnterProbeBw(now);
            else State = BbrState.Startup;
        }
    }

    private void UpdateGains()
    {
        (PacingGain, CurrentCwndGain) = State switch
        {
            BbrState.Startup => (HighGain, HighGain),
            BbrState.Drain => (DrainGain, HighGain),
            BbrState.ProbeBw => (GainCycle[_cycleIndex], CwndGain),
            _ => (1.0, 1.0),
        };
    }

    /// <summary>Pacing rate = gain × bandwidth less the margin; in Startup it only rises.</summary>
    private void UpdatePacingRate()
    {
        var rate = PacingGain * _model.MaxBandwidth * PacingMargin;
        if (rate <= 0) return;
        if (FullBandwidthReached || rate > PacingRate) PacingRate = rate;
    }

    /// <summary>Before the first sample: high gain × cwnd / SRTT (Linux's bbr_init_pacing_rate_from_rtt), so the first flight is paced.</summary>
    public void InitPacing(uint cwnd, TimeSpan srtt)
    {
        if (PacingRate > 0) return;
        var rtt = srtt > TimeSpan.Zero ? srtt : TimeSpan.FromMilliseconds(1);
        PacingRate = HighGain * cwnd / rtt.TotalSeconds * PacingMargin;
    }

    // ---------------- the window (every ACK) ----------------

    private uint _mss = 1460;
    private uint _lastCwnd;
    private bool _restoreCwnd;

    /// <summary>
    /// BBR sets cwnd on every ACK (Linux's bbr_set_cwnd): gain × BDP plus the ACK aggregation allowance, reached by
    /// growing with what each ACK delivered; a loss episode holds the flight to what is delivered for its first round;
    /// its end restores the window from before; PROBE_RTT holds 4 segments.
    /// </summary>
    public uint WindowAfterAck(uint cwnd, long inFlight, long acked, long lost, LossPhase phase, uint mss, TimeSpan now)
    {
        _mss = mss;
        if (PacingRate == 0) InitPacing(cwnd, TimeSpan.Zero);
        if (acked > 0) _model.UpdateAckAggregation(acked, now, cwnd);
        var minCwnd = MinCwndSegments * mss;
        if (acked > 0)
        {
            long w = cwnd;
            if (lost > 0) w = Math.Max(w - lost, mss);
            var conserving = false;
            // A round that ended with this ACK ends conservation (Linux clears it where it counts rounds), unless recovery begins now.
            if (_model.RoundStart) _packetConservation = false;
            if (phase == LossPhase.Recovery && _priorPhase != LossPhase.Recovery)
            {
                _packetConservation = true;
                _model.StartRoundNow(_totalDelivered);
                w = inFlight + acked; // the first round of recovery: send what was delivered
            }
            else if (_priorPhase != LossPhase.Open && phase == LossPhase.Open)
            {
                w = Math.Max(w, _priorCwnd); // the episode is over: the window it began with
                _packetConservation = false;
            }
            if (_restoreCwnd) { w = Math.Max(w, _priorCwnd); _restoreCwnd = false; }
            _priorPhase = phase;
            if (_packetConservation)
            {
                w = Math.Max(w, inFlight + acked);
                conserving = true;
            }
            if (!conserving)
            {
                var target = Target(mss);
                if (FullBandwidthReached) w = Math.Min(w + acked, target);
                else if (w < target || _totalDelivered < _initialCwndSegments * mss) w += acked;
                w = Math.Max(w, minCwnd);
            }
            cwnd = (uint)Math.Min(w, uint.MaxValue);
        }
        if (State == BbrState.ProbeRtt) cwnd = Math.Min(cwnd, minCwnd);
        _lastCwnd = cwnd;
        return cwnd;
    }

    /// <summary>gain × BDP, plus the aggregation allowance once startup is over, plus room for 3 bursts (Linux's quantization budget).</summary>
    private long Target(uint mss)
    {
        var bdp = _model.Bdp(CurrentCwndGain);
        if (bdp <= 0) return _initialCwndSegments * mss;
        if (FullBandwidthReached) bdp += _model.ExtraAcked;
        var target = (long)bdp + 3 * (long)mss;
        if (State == BbrState.ProbeBw && _cycleIndex == 0) target += 2 * mss;
        return target;
    }
}

/// <summary>Where the sender's loss recovery is, as a model-based congestion control needs to know.</summary>
public enum LossPhase
{
    Open,
    /// <summary>Fast recovery (losses found by SACK, RACK or duplicate ACKs).</summary>
    Recovery,
    /// <summary>After a retransmission timeout, until its recovery point is acknowledged.</summary>
    Loss,
}
