namespace NetStack.Tcp;

/// <summary>
/// The best (least, or greatest) of the samples taken over a sliding window, kept as three candidates (the best, and
/// the best of the later quarters and halves of the window) so that when the best ages out the next-best of the
/// window takes its place rather than whatever the current sample is (Kathleen Nichols' windowed filter, as Linux's
/// minmax). Time is counted in whatever unit the user keeps: ticks for RACK's min RTT (RFC 8985 6.1, 5 minutes as
/// Linux), round trips for BBR's max-bandwidth and extra-acked filters (draft-ietf-ccwg-bbr 5.5.5). A struct, nothing
/// allocated.
/// </summary>
internal struct WindowedFilter
{
    private (long At, double Value) _best, _second, _third;
    private bool _has;
    private readonly bool _max;

    private WindowedFilter(bool max) => _max = max;

    /// <summary>A filter that keeps the least sample of its window.</summary>
    public static WindowedFilter Min() => new(max: false);

    /// <summary>A filter that keeps the greatest sample of its window.</summary>
    public static WindowedFilter Max() => new(max: true);

    /// <summary>The windowed best; zero before the first sample.</summary>
    public readonly double Value => _has ? _best.Value : 0;

    /// <summary>Forgets every sample but <paramref name="value"/>, taken at <paramref name="at"/>.</summary>
    public void Reset(double value, long at)
    {
        _best = _second = _third = (at, value);
        _has = true;
    }

    private readonly bool AtLeastAsGood(double value, double than) => _max ? value >= than : value <= than;

    /// <summary>Takes sample <paramref name="value"/> at <paramref name="at"/> for a window of <paramref name="window"/>.</summary>
    public void Update(double value, long at, long window)
    {
        if (!_has || AtLeastAsGood(value, _best.Value) || at - _third.At > window)
        {
            Reset(value, at); // a new best, or the whole window has passed
            return;
        }
        var s = (at, value);
        if (AtLeastAsGood(value, _second.Value)) _second = _third = s;
        else if (AtLeastAsGood(value, _third.Value)) _third = s;
        var age = at - _best.At;
        if (age > window)
        {
            // The best has aged out: the candidates move up; the third may itself be too old.
            _best = _second;
            _second = _third;
            _third = s;
            if (at - _best.At > window)
            {
                _best = _second;
                _second = _third;
            }
        }
        else if (_second.At == _best.At && age > window / 4) _second = _third = s;
        else if (_third.At == _second.At && age > window / 2) _third = s;
    }
}
