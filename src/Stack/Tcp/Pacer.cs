namespace NetStack.Tcp;

/// <summary>
/// Pacing (as Linux's internal TCP pacing with its pacing quantum): when the congestion control gives a rate, data
/// leaves in bursts of about 1 ms of it (at least 2 segments, at most 64 KiB), and the next burst waits until the
/// previous one's bytes have taken their time at that rate. Each segment's departure time advances
/// <see cref="NextDeparture"/> by its length over the rate; the connection's PaceAt deadline wakes the sender when a
/// burst may go, so the loop waits once per burst, not per segment. Made by the sender at its first paced transmission; loop only.
/// </summary>
internal sealed class Pacer
{
    /// <summary>Bytes of a burst at <paramref name="rate"/> bytes/s: ~1 ms of data, within [2 segments, 64 KiB].</summary>
    public static long Quantum(double rate, int mss) => Math.Clamp((long)(rate / 1000), 2L * mss, Math.Max(65536L, 2L * mss));

    /// <summary>The earliest time the next burst may begin (TimeSpan.MinValue: now).</summary>
    public TimeSpan NextDeparture;
    private TimeSpan _burstAt, _burstUntil;

    /// <summary>
    /// Whether a segment may leave at <paramref name="now"/>: a new burst once <see cref="NextDeparture"/> has come, or more
    /// of the burst begun in this same turn while its departures stay within the quantum.
    /// </summary>
    public bool MaySend(TimeSpan now, double rate, int mss)
    {
        if (_burstAt == now && NextDeparture < _burstUntil) return true;
        if (NextDeparture > now) return false;
        // A new burst. A timer that woke late lends up to half a quantum of credit; an idle sender gets no more than that.
        var quantumTime = Duration(Quantum(rate, mss), rate);
        if (NextDeparture < now - quantumTime / 2) NextDeparture = now - quantumTime / 2;
        _burstAt = now;
        _burstUntil = now + quantumTime;
        return true;
    }

    /// <summary>When a segment may leave, asked without beginning a burst: <paramref name="now"/>, or <see cref="NextDeparture"/> while the last burst's time runs.</summary>
    public TimeSpan EarliestDeparture(TimeSpan now) =>
        (_burstAt == now && NextDeparture < _burstUntil) || NextDeparture <= now ? now : NextDeparture;

    /// <summary><paramref name="bytes"/> left at the pacing rate: the next departure moves by their time.</summary>
    public void OnSent(long bytes, double rate)
    {
        NextDeparture += Duration(bytes, rate);
    }

    private static TimeSpan Duration(long bytes, double rate) => TimeSpan.FromTicks((long)Math.Ceiling(bytes * (double)TimeSpan.TicksPerSecond / rate));
}
