namespace NetStack;

/// <summary>
/// When the next frame will come, from the gaps between the last ones: the predictive poll's rule
/// (<see cref="StackConfig.PredictivePollMicroseconds"/>, NetworkStack.PredictivePoll.cs). A periodic sender (an admin's
/// ping, a request every few ms) leaves gaps of nearly one length; the poll spins only in a short window around the
/// next such gap's end instead of the whole gap (Linux's busy_poll spins for a fixed budget after every read), so the
/// frame finds a thread awake without a core spent. All times in microseconds of one monotonic clock. Loop state:
/// touched only by whoever holds the turn.
/// </summary>
/// <remarks>
/// <list type="bullet">
/// <item>A prediction needs <see cref="History"/> gaps, at least <see cref="Agreeing"/> of them within a tolerance of
/// their median (the rest may be odd frames: a late ACK, a retransmission). Frames closer together than
/// <see cref="MinGapMicroseconds"/> are one burst (the request and an ACK): the loop is awake for them anyway.</item>
/// <item>The window is the median gap after the last burst, plus or minus the spread of the agreeing gaps and a margin,
/// at most <c>budget</c> (the setting) wide.</item>
/// <item>A window that saw no frame (a miss), or a spin the scheduler took the CPU from (a loaded machine, where
/// spinning is worse than sleeping), backs off: no prediction for 2, 4, 8 ... up to 64 gaps; a hit clears it.</item>
/// </list>
/// </remarks>
internal sealed class ArrivalPredictor(int budgetMicroseconds)
{
    public const int History = 8;
    public const int Agreeing = 6;
    public const long MinGapMicroseconds = 200;
    public const long MaxGapMicroseconds = 1_000_000;
    /// <summary>Added to the agreeing gaps' spread on each side of the window (the clock, the spinner's start).</summary>
    public const long MarginMicroseconds = 20;
    public const int MaxBackoffGaps = 64;

    private readonly long[] _gaps = new long[History];
    private readonly long[] _sorted = new long[History];
    private long _median;
    private int _count;
    private int _next;
    private long _last = long.MinValue;  // the last burst's first frame
    private long _lastFrame = long.MinValue;
    private long _backoffUntil = long.MinValue;
    private int _backoff;                // gaps to skip after the next miss (0: none yet)

    /// <summary>The most one window may span (the setting).</summary>
    public long Budget { get; } = budgetMicroseconds;

    /// <summary>Windows that saw their frame, that did not, and spins the scheduler interrupted.</summary>
    public long Hits { get; private set; }
    public long Misses { get; private set; }
    public long Preempted { get; private set; }

    /// <summary>When the last burst's first frame reached the device (long.MinValue before any).</summary>
    public long LastArrival => _last;

    /// <summary>A turn took frames that reached the device at <paramref name="at"/>.</summary>
    public void OnFrames(long at)
    {
        if (_lastFrame != long.MinValue && at - _lastFrame < MinGapMicroseconds)
        {
            _lastFrame = Math.Max(_lastFrame, at);
            return; // the same burst
        }
        if (_last != long.MinValue)
        {
            var gap = at - _last;
            if (gap is >= MinGapMicroseconds and <= MaxGapMicroseconds)
            {
                _gaps[_next] = gap;
                _next = (_next + 1) % History;
                if (_count < History) _count++;
            }
            else _count = 0; // a pause: start over
        }
        _last = at;
        _lastFrame = at;
    }

    /// <summary>
    /// The window in which the next frame is expected, if the recent gaps say so and no back-off holds; else false.
    /// </summary>
    public bool TryPredict(long now, out long from, out long until)
    {
        from = until = 0;
        if (Budget <= 0 || _count < History || now < _backoffUntil || _last == long.MinValue) return false;
        Array.Copy(_gaps, _sorted, History);
        Array.Sort(_sorted);
        var median = _median = _sorted[History / 2];
        var tolerance = Math.Max(MarginMicroseconds * 2, median / 8);
        long spread = 0;
        var agreeing = 0;
        foreach (var g in _gaps)
        {
            var d = Math.Abs(g - median);
            if (d > tolerance) continue;
            agreeing++;
            spread = Math.Max(spread, d);
        }
        if (agreeing < Agreeing) return false;
        var half = Math.Min(Budget / 2, spread + MarginMicroseconds);
        var expected = _last + median;
        from = expected - half;
        until = expected + half;
        return until > now;
    }

    /// <summary>A window ended with its frame taken.</summary>
    public void Hit()
    {
        Hits++;
        _backoff = 0;
        _backoffUntil = long.MinValue;
    }

    /// <summary>A window ended without its frame, at <paramref name="now"/>.</summary>
    public void Miss(long now)
    {
        Misses++;
        BackOff(now);
    }

    /// <summary>The spinner lost the CPU during its window (a loaded machine), at <paramref name="now"/>.</summary>
    public void Interrupted(long now)
    {
        Preempted++;
        BackOff(now);
    }

    private void BackOff(long now)
    {
        _backoff = _backoff == 0 ? 2 : Math.Min(MaxBackoffGaps, _backoff * 2);
        var gap = Math.Max(_median, MinGapMicroseconds);
        _backoffUntil = now + _backoff * gap;
    }
}
