namespace NetStack.Dhcp;

/// <summary>When the DHCP client sends again: the retransmission and lease-retry timings of RFC 2131, in one place.</summary>
internal static class DhcpBackoff
{
    /// <summary>The longest wait between retransmissions (RFC 2131 4.1).</summary>
    public static readonly TimeSpan MaxInterval = TimeSpan.FromSeconds(64);

    /// <summary>RENEWING and REBINDING never retry sooner than this (RFC 2131 4.4.5).</summary>
    public static readonly TimeSpan MinLeaseRetry = TimeSpan.FromSeconds(60);

    /// <summary>
    /// RFC 2131 4.1: after the <paramref name="sent"/>-th transmission of a DISCOVER or REQUEST, wait 4 s, then 8, 16,
    /// 32 and at most 64 s, each randomized by a uniform -1..+1 s.
    /// </summary>
    public static TimeSpan Retransmit(int sent, Random random)
    {
        var seconds = Math.Min(MaxInterval.TotalSeconds, 4 << Math.Clamp(sent - 1, 0, 4));
        return TimeSpan.FromSeconds(seconds + (random.NextDouble() * 2 - 1));
    }

    /// <summary>
    /// RFC 2131 4.4.5: in RENEWING wait half the time left until T2, in REBINDING half the time left until the lease
    /// expires (<paramref name="deadline"/>), but at least 60 s — and never past the deadline, where the next state begins.
    /// </summary>
    public static TimeSpan NextLeaseRetry(TimeSpan now, TimeSpan deadline)
    {
        var wait = (deadline - now) / 2;
        if (wait < MinLeaseRetry) wait = MinLeaseRetry;
        return now + wait < deadline ? now + wait : deadline;
    }

    /// <summary>
    /// RFC 2131 4.4.5: T1 defaults to half the lease and T2 to 7/8 of it; given values are used when they are in order
    /// (T1 &lt; T2 &lt; lease), else the defaults.
    /// </summary>
    public static (TimeSpan T1, TimeSpan T2) Timers(TimeSpan lease, uint? t1Seconds, uint? t2Seconds)
    {
        var t1 = t1Seconds is { } a ? TimeSpan.FromSeconds(a) : lease / 2;
        var t2 = t2Seconds is { } b ? TimeSpan.FromSeconds(b) : lease * 7 / 8;
        if (t2 >= lease || t2 <= TimeSpan.Zero) t2 = lease * 7 / 8;
        if (t1 >= t2 || t1 <= TimeSpan.Zero) t1 = t2 < lease / 2 ? t2 / 2 : lease / 2;
        return (t1, t2);
    }
}
