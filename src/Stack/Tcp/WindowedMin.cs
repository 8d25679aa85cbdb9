namespace NetStack.Tcp;

/// <summary>
/// The least of the samples taken over a sliding time window, kept as three candidates (the best, and the best
/// of the later quarters and halves of the window) so that when the best ages out the next-best of the window takes
/// its place rather than whatever the current sample is (Kathleen Nichols' windowed filter, as Linux's minmax).
/// RACK's min_RTT (RFC 8985 6.1) uses it; a struct, nothing allocated.
/// </summary>
internal struct WindowedMin
{
    private (TimeSpan At, TimeSpan Value) _best, _second, _third;
    private bool _has;

    /// <summary>The windowed minimum; zero before the first sample.</summary>
    public readonly TimeSpan Value => _has ? _best.Value : TimeSpan.Zero;

    /// <summary>Takes sample <paramref name="value"/> at <paramref name="now"/> for a window of <paramref name="window"/>.</summary>
    public void Update(TimeSpan value, TimeSpan now, TimeSpan window)
    {
        var s = (now, value);
        if (!_has || value <= _best.Value || now - _third.At > window)
        {
            _best = _second = _third = s; // a new minimum, or the whole window has passed
            _has = true;
            return;
        }
        if (value <= _second.Value) _second = _third = s;
        else if (value <= _third.Value) _third = s;
        var age = now - _best.At;
        if (age > window)
        {
            // The best has aged out: the candidates move up; the third may itself be too old.
            _best = _second;
            _second = _third;
            _third = s;
            if (now - _best.At > window)
            {
                _best = _second;
                _second = _third;
            }
        }
        else if (_second.At == _best.At && age > window / 4) _second = _third = s;
        else if (_third.At == _second.At && age > window / 2) _third = s;
    }
}
