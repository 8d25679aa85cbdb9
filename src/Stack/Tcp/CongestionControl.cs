namespace NetStack.Tcp;

/// <summary>Makes a connection's congestion control from the <see cref="CongestionAlgorithm"/> its settings choose.</summary>
public static class CongestionControls
{
    /// <summary>A new instance (one per connection) of <paramref name="algorithm"/>.</summary>
    /// <param name="seed">Per-connection randomness (BBR's first gain phase), e.g. the ISS.</param>
    public static ICongestionControl Create(CongestionAlgorithm algorithm, uint seed = 0, int initialWindowSegments = 10) => algorithm switch
    {
        CongestionAlgorithm.NewReno => new NewRenoCongestionControl(),
        CongestionAlgorithm.Bbr => new BbrCongestionControl(seed, initialWindowSegments),
        _ => new CubicCongestionControl(),
    };
}

/// <summary>
/// A congestion-control algorithm: how the congestion window grows on ACKs and how far it falls on loss.
/// Loss detection and recovery (fast retransmit, NewReno partial ACKs, SACK, RTO) are the sender's and its
/// <see cref="ILossRecovery"/>'s; the algorithm only decides window sizes. One instance per connection, made by
/// <see cref="CongestionControls.Create"/> from the settings. Windows are in bytes.
/// </summary>
public interface ICongestionControl
{
    string Name { get; }

    /// <summary>An ACK advanced SND.UNA by <paramref name="acked"/> bytes outside recovery; returns the new cwnd.</summary>
    uint OnAck(uint cwnd, uint ssthresh, uint acked, uint mss, TimeSpan now, TimeSpan srtt);

    /// <summary>
    /// An ACK arrived while the sender was not using its window (RFC 7661: cwnd not validated); the window does not
    /// grow and <see cref="OnAck"/> is not called for it.
    /// </summary>
    void OnNotCwndLimited(TimeSpan now);

    /// <summary>Loss detected by duplicate ACKs or SACK; returns the new ssthresh (the caller sets cwnd from it).</summary>
    uint OnLoss(uint cwnd, uint flightSize, uint mss, TimeSpan now);

    /// <summary>The retransmission timer expired; returns the new ssthresh (cwnd falls to one segment).</summary>
    uint OnTimeout(uint cwnd, uint flightSize, uint mss, TimeSpan now);

    /// <summary>
    /// The delivery-rate sample of an ACK that delivered (or found lost) data, after loss detection and before the
    /// window's growth (<see cref="OnAck"/>): what a model-based algorithm (BBR) estimates bandwidth and round trips
    /// from. Every ACK's, in order; window-based algorithms ignore it.
    /// </summary>
    void OnRateSample(in RateSample sample, TimeSpan now) { }

    /// <summary>
    /// The rate the sender may send at, bytes per second; 0 (window-based algorithms) sends unpaced, as fast as the
    /// window allows. The sender sends bursts of about 1 ms of data and waits the time they take at this rate.
    /// </summary>
    double PacingRate => 0;

    /// <summary>A model-based algorithm (BBR) sets cwnd itself on every ACK through <see cref="WindowAfterAck"/>, in place of PRR.</summary>
    bool SetsWindow => false;

    /// <summary>
    /// When <see cref="SetsWindow"/>: the cwnd after an ACK's loss recovery and rate sample, given the flight now, what
    /// the ACK delivered and found lost, and the loss recovery's phase (as Linux's cong_control).
    /// </summary>
    uint WindowAfterAck(uint cwnd, long inFlight, long acked, long lost, LossPhase phase, uint mss, TimeSpan now) => cwnd;
}

/// <summary>Slow start's growth, shared by the algorithms.</summary>
internal static class SlowStart
{
    /// <summary>
    /// RFC 5681 3.1 with RFC 3465 byte counting: cwnd grows by every byte newly acknowledged, as Linux counts.
    /// RFC 3465's limit of L = 2 segments per ACK assumes an ACK for every one or two segments; a receiver that
    /// acknowledges once per receive batch (ours, Linux with GRO) sends stretch ACKs that each stand for many of
    /// those, and capping them at 2 segments turns slow start linear. The burst an ACK releases stays within a cwnd
    /// that RFC 7661 validation holds near the flight.
    /// </summary>
    public static uint Grow(uint cwnd, uint acked) => (uint)Math.Min((ulong)cwnd + acked, uint.MaxValue);
}

/// <summary>NewReno window arithmetic (RFC 5681 3.1, with appropriate byte counting in congestion avoidance, RFC 3465).</summary>
public sealed class NewRenoCongestionControl : ICongestionControl
{
    private uint _bytesAcked;

    public string Name => TcpSettings.NameOf(CongestionAlgorithm.NewReno);

    public uint OnAck(uint cwnd, uint ssthresh, uint acked, uint mss, TimeSpan now, TimeSpan srtt)
    {
        if (cwnd < ssthresh) return SlowStart.Grow(cwnd, acked);
        _bytesAcked += acked;
        if (_bytesAcked >= cwnd)
        {
            _bytesAcked -= cwnd;
            return cwnd + mss; // one segment per window's worth of ACKed bytes
        }
        return cwnd;
    }

    public void OnNotCwndLimited(TimeSpan now) { }

    public uint OnLoss(uint cwnd, uint flightSize, uint mss, TimeSpan now)
    {
        _bytesAcked = 0;
        return Math.Max(flightSize / 2, 2 * mss); // RFC 5681 equation (4)
    }

    public uint OnTimeout(uint cwnd, uint flightSize, uint mss, TimeSpan now) => OnLoss(cwnd, flightSize, mss, now);
}

/// <summary>
/// CUBIC (RFC 9438): the window follows a cubic function of the time since the last reduction, centred on the
/// window where loss last happened (W_max), with the Reno-friendly estimate as a floor (4.3) and fast
/// convergence (4.7). Multiplicative decrease beta = 0.7, C = 0.4.
/// </summary>
public sealed class CubicCongestionControl : ICongestionControl
{
    private const double C = 0.4;
    private const double Beta = 0.7;
    private const double AlphaCubic = 3 * (1 - Beta) / (1 + Beta); // RFC 9438 4.3
    private double _wMax;      // segments
    private double _wLastMax;  // segments, for fast convergence
    private double _k;         // seconds
    private double _wEst;      // segments
    private TimeSpan _epochStart = TimeSpan.MinValue;
    private double _cwndAcc;   // fractional growth carried between ACKs, in bytes
    private TimeSpan _appLimitedSince = TimeSpan.MinValue;

    public string Name => TcpSettings.NameOf(CongestionAlgorithm.Cubic);

    public uint OnAck(uint cwnd, uint ssthresh, uint acked, uint mss, TimeSpan now, TimeSpan srtt)
    {
        if (_appLimitedSince != TimeSpan.MinValue)
        {
            // RFC 9438 5.8: the time the flow was application-limited does not count in t.
            if (_epochStart != TimeSpan.MinValue) _epochStart += now - _appLimitedSince;
            _appLimitedSince = TimeSpan.MinValue;
        }
        if (cwnd < ssthresh) return SlowStart.Grow(cwnd, acked); // RFC 9438 4.10 keeps standard slow start
        double seg = (double)cwnd / mss;
        if (_epochStart == TimeSpan.MinValue)
        {
            _epochStart = now;
            if (seg < _wMax) _k = Math.Cbrt((_wMax - seg) / C); // RFC 9438 equation (2)
            else { _k = 0; _wMax = seg; }
            _wEst = seg;
        }
        var t = (now - _epochStart + srtt).TotalSeconds; // target for one RTT ahead (4.2)
        var wCubic = C * Math.Pow(t - _k, 3) + _wMax;     // equation (1)
        _wEst += AlphaCubic * acked / cwnd;               // equation (4), per ACKed bytes
        double target;
        if (wCubic < _wEst) target = _wEst;               // Reno-friendly region (4.3)
        else target = Math.Min(wCubic, 1.5 * seg);        // concave/convex regions, growth capped (4.4, 4.5)
        if (target <= seg) return cwnd;
        _cwndAcc += (target - seg) * mss * acked / cwnd;  // approach the target over one window of ACKs
        if (_cwndAcc < 1) return cwnd;
        var grow = (uint)_cwndAcc;
        _cwndAcc -= grow;
        return cwnd + grow;
    }

    public void OnNotCwndLimited(TimeSpan now)
    {
        if (_appLimitedSince == TimeSpan.MinValue) _appLimitedSince = now;
    }

    public uint OnLoss(uint cwnd, uint flightSize, uint mss, TimeSpan now)
    {
        double seg = (double)cwnd / mss;
        // Fast convergence (4.7): a flow whose W_max keeps falling releases bandwidth sooner.
        _wMax = seg < _wLastMax ? seg * (1 + Beta) / 2 : seg;
        _wLastMax = seg;
        _epochStart = TimeSpan.MinValue;
        _cwndAcc = 0;
        return Math.Max((uint)(cwnd * Beta), 2 * mss); // equation (5) uses cwnd, not flight size
    }

    public uint OnTimeout(uint cwnd, uint flightSize, uint mss, TimeSpan now)
    {
        var ss = OnLoss(cwnd, flightSize, mss, now);
        return Math.Max(Math.Min(ss, (uint)(flightSize * Beta)), 2 * mss);
    }
}
