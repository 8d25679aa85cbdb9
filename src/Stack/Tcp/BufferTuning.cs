namespace NetStack.Tcp;

/// <summary>
/// Receive-buffer auto-tuning, dynamic right-sizing (Fisk and Feng; what Linux's tcp_rcv_space_adjust and gVisor do):
/// once per receiver-side RTT it looks at what the application read in that RTT — the rate the connection actually
/// delivers — and lets the buffer (so the window we advertise) grow to twice that plus 16 segments, more when the
/// rate grew, up to <see cref="TcpSettings.ReceiveBufferMax"/>. It never shrinks; an idle connection still holds no
/// array (the ring is pooled). The receiver's RTT comes from timestamps (now less the TSecr of arriving data, smoothed
/// by 1/8), or without them from the time a window's worth of data takes to arrive (the smallest seen); until the first
/// sample, from the handshake. Owned by the receiver, made when data first arrives (an idle connection holds none); loop only.
/// </summary>
internal sealed class ReceiveBufferTuning
{
    /// <summary>Whether the buffer may grow (not set by the user, window scaling in use, a maximum above the buffer).</summary>
    public bool Enabled;
    /// <summary>The largest buffer it may grow to.</summary>
    public int Max;
    /// <summary>The receiver's RTT estimate; zero until the first sample.</summary>
    public TimeSpan Rtt;

    private uint _lastTsEcr;
    private bool _marking;
    private uint _markSeq;
    private TimeSpan _markAt;
    private bool _started;
    private uint _spaceSeq;
    private TimeSpan _spaceAt;
    private int _space;

    /// <summary>A data segment echoed <paramref name="tsEcr"/> (our timestamp clock, ms) at <paramref name="tsNow"/>: an RTT sample, once per echo.</summary>
    public void OnTimestampEcho(uint tsEcr, uint tsNow)
    {
        if (tsEcr == 0 || tsEcr == _lastTsEcr) return;
        _lastTsEcr = tsEcr;
        var ms = (int)(tsNow - tsEcr);
        if (ms is < 0 or > 60_000) return;
        var sample = TimeSpan.FromMilliseconds(Math.Max(ms, 1)); // the clock ticks in milliseconds
        Rtt = Rtt == TimeSpan.Zero ? sample : Rtt + (sample - Rtt) / 8;
    }

    /// <summary>
    /// Without timestamps: RCV.NXT is <paramref name="rcvNxt"/> and we offer <paramref name="window"/>; the time until the
    /// data reaches the edge offered now is at least an RTT, and the smallest such time is the estimate.
    /// </summary>
    public void OnInOrderData(uint rcvNxt, uint window, TimeSpan now)
    {
        if (_marking)
        {
            if (Seq.Lt(rcvNxt, _markSeq)) return;
            var sample = now - _markAt;
            if (sample > TimeSpan.Zero && (Rtt == TimeSpan.Zero || sample < Rtt)) Rtt = sample;
        }
        _marking = window > 0;
        _markSeq = rcvNxt + window;
        _markAt = now;
    }

    /// <summary>
    /// The application has read up to <paramref name="copiedSeq"/>: once per RTT (<paramref name="fallbackRtt"/> until the
    /// receiver has a sample), the buffer size to use from now on (<paramref name="limit"/> when it stays).
    /// </summary>
    public int OnRead(uint copiedSeq, int limit, int mss, TimeSpan now, TimeSpan fallbackRtt)
    {
        if (!Enabled) return limit;
        if (!_started)
        {
            _started = true;
            _spaceSeq = copiedSeq;
            _spaceAt = now;
            _space = 10 * mss; // what the sender's initial window delivers in the first RTT (as Linux starts)
            return limit;
        }
        var rtt = Rtt > TimeSpan.Zero ? Rtt : fallbackRtt;
        if (rtt <= TimeSpan.Zero || now - _spaceAt < rtt) return limit;
        var copied = Seq.Gt(copiedSeq, _spaceSeq) ? (int)(copiedSeq - _spaceSeq) : 0;
        var size = limit;
        if (copied > _space)
        {
            // Room for two RTTs of what was read (the sender may grow its window while we wait a round trip to see it),
            // 16 segments of slack, and as much again as the rate grew, doubling at most.
            long window = 2L * copied + 16L * mss;
            window += window * Math.Min(copied - _space, _space) / Math.Max(_space, 1);
            size = (int)Math.Clamp(window, limit, Math.Max(Max, limit));
        }
        _space = copied;
        _spaceSeq = copiedSeq;
        _spaceAt = now;
        return size;
    }
}

/// <summary>
/// Send-buffer auto-tuning (as Linux's tcp_sndbuf_expand): the send buffer holds what is in flight and what waits, so
/// it bounds the flight; it grows to twice what the congestion window and the peer's largest window allow in flight,
/// up to <see cref="TcpSettings.SendBufferMax"/>, unless the user set the socket's SendBufferSize.
/// </summary>
internal static class SendBufferTuning
{
    /// <summary>The send buffer for a congestion window <paramref name="cwnd"/> and a peer's largest window <paramref name="peerWindow"/>.</summary>
    public static int Size(int limit, uint cwnd, uint peerWindow, int max)
    {
        var want = 2L * Math.Min(cwnd, Math.Max(peerWindow, 1u));
        return want > limit ? (int)Math.Min(want, Math.Max(max, limit)) : limit;
    }
}
