using System.Runtime.CompilerServices;

namespace NetStack.Tcp;

/// <summary>
/// The retransmission timer's estimator (RFC 6298): SRTT, RTTVAR and RTO from round-trip samples, the
/// exponential backoff of 5.5, and the timing of one segment at a time when timestamps give no samples (Karn's
/// rule: a retransmitted segment is never timed). A struct held in place by the sender; loop only.
/// </summary>
internal struct RttEstimator
{
    private readonly TimeSpan _min, _max;
    private bool _timing, _hasSample; // (one ushort for the backoff, two bools: 64 bytes in all, a little less per idle connection)
    private ushort _backoff;
    private uint _timedSeq;
    private TimeSpan _timedAt;
    private StrongBox<WindowedFilter>? _minRtt; // made at the first sample from data: none on an idle connection

    /// <summary>How long a minimum RTT sample stands (Linux's tcp_min_rtt_wlen, 300 s).</summary>
    public static readonly TimeSpan MinRttWindow = TimeSpan.FromMinutes(5);

    public RttEstimator(TimeSpan initialRto, TimeSpan minRto, TimeSpan maxRto)
    {
        Rto = initialRto; // RFC 6298 2.1
        _min = minRto;
        _max = maxRto;
    }

    public TimeSpan Srtt { get; private set; }
    public TimeSpan RttVar { get; private set; }
    /// <summary>The RTO before backoff.</summary>
    public TimeSpan Rto { get; private set; }
    public readonly bool HasSample => _hasSample;
    /// <summary>Timeouts (or zero-window probes) since the last ACK of new data: the RTO doubles per step (RFC 6298 5.5).</summary>
    public int Backoff
    {
        readonly get => _backoff;
        set => _backoff = (ushort)Math.Clamp(value, 0, ushort.MaxValue); // never that many: each step waits at least an RTO
    }

    /// <summary>The RTO with the current backoff applied, at most the maximum.</summary>
    public readonly TimeSpan BackedOff
    {
        get
        {
            var t = Rto;
            for (int i = 0; i < Backoff && t < _max; i++) t += t;
            return t > _max ? _max : t;
        }
    }

    /// <summary>The least RTT sampled over the last <see cref="MinRttWindow"/> (RFC 8985 6.1 RACK.min_RTT); zero before any sample.</summary>
    public readonly TimeSpan MinRtt => _minRtt is { } m ? TimeSpan.FromTicks((long)m.Value.Value) : TimeSpan.Zero;

    /// <summary>Feeds the windowed minimum RTT (per ACK, from the transmit records).</summary>
    public void SampleMinRtt(TimeSpan r, TimeSpan now)
    {
        if (r >= TimeSpan.Zero) (_minRtt ??= new StrongBox<WindowedFilter>(WindowedFilter.Min())).Value.Update(r.Ticks, now.Ticks, MinRttWindow.Ticks);
    }

    /// <summary>Updates SRTT, RTTVAR and RTO from one measurement (RFC 6298 2.2, 2.3).</summary>
    public void Sample(TimeSpan r)
    {
        if (r < TimeSpan.Zero) return;
        if (!HasSample)
        {
            Srtt = r;
            RttVar = r / 2;
            _hasSample = true;
        }
        else
        {
            var delta = Srtt - r;
            if (delta < TimeSpan.Zero) delta = -delta;
            RttVar = (3 * RttVar + delta) / 4;
            Srtt = (7 * Srtt + r) / 8;
        }
        var k = 4 * RttVar;
        if (k < TimeSpan.FromMilliseconds(1)) k = TimeSpan.FromMilliseconds(1); // G, the clock granularity
        var rto = Srtt + k;
        Rto = rto < _min ? _min : rto > _max ? _max : rto;
    }

    /// <summary>Times the new segment ending at <paramref name="end"/> unless one is being timed already.</summary>
    public void StartTiming(uint end, TimeSpan now)
    {
        if (_timing) return;
        _timing = true;
        _timedSeq = end;
        _timedAt = now;
    }

    /// <summary>Karn's rule: a retransmission makes the timed segment's sample ambiguous.</summary>
    public void StopTiming() => _timing = false;

    /// <summary>An ACK up to <paramref name="ack"/>: a sample when it covers the timed segment.</summary>
    public void OnAck(uint ack, TimeSpan now)
    {
        if (!_timing || !Seq.Ge(ack, _timedSeq)) return;
        _timing = false;
        Sample(now - _timedAt);
    }
}
