namespace NetStack.Tcp;

/// <summary>
/// No reflection (RFC 5961 7, RFC 9293 3.10.7.4): the ACKs a connection owes for segments it refuses — out of the
/// window or failing PAWS, without data — and its challenge ACKs go at most once per <see cref="TcpSettings.InvalidAckInterval"/>
/// (Linux's tcp_invalid_ratelimit, 500 ms), so forged segments cannot make us a reflector. Segments carrying data or
/// a FIN are not limited (a sender retransmitting data needs the ACK; data does not start ACK loops). Loop only.
/// </summary>
internal struct AckRateLimit
{
    private TimeSpan _next; // when the next ACK may go: zero (the clock's start) until one has gone

    /// <summary>Whether an ACK may go at <paramref name="now"/>; if so the interval starts again.</summary>
    public bool TryTake(TimeSpan now, TimeSpan interval)
    {
        if (now < _next) return false;
        _next = interval >= TimeSpan.MaxValue - now ? TimeSpan.MaxValue : now + interval;
        return true;
    }

    /// <summary>Whether the ACK for a refused segment falls under the limit: one without data or FIN (SYN and RST are handled before).</summary>
    public static bool Applies(ref TcpSegment seg) => seg.Payload.Length == 0 && !seg.Has(TcpFlags.Fin);
}
