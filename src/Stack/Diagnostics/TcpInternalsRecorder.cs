using NetStack.Tcp;

namespace NetStack.Diagnostics;

/// <summary>What happened at a <see cref="TcpInternalsSample"/> besides its values.</summary>
[Flags]
public enum TcpSampleEvents : byte
{
    None = 0,
    /// <summary>In fast recovery (RFC 5681 3.2, RFC 6582, RFC 6675) when the sample was taken.</summary>
    InRecovery = 1,
    /// <summary>Fast recovery began since the previous sample: a loss event found by duplicate ACKs or SACK.</summary>
    RecoveryStarted = 2,
    /// <summary>The retransmission timer expired since the previous sample (RFC 6298 5.5): a loss event found by timeout.</summary>
    Timeout = 4,
}

/// <summary>
/// The sender's internals at one moment of a connection: the congestion window, the slow-start threshold
/// (<see cref="uint.MaxValue"/> until the first loss sets it), the bytes in flight as loss recovery counts them
/// (RFC 6675's pipe), the smoothed RTT (zero until the first sample) and the retransmission timeout in force (with
/// its backoff). <see cref="Time"/> is on the stack's clock, the clock of its packet log.
/// </summary>
public readonly record struct TcpInternalsSample(
    TimeSpan Time, uint Cwnd, uint Ssthresh, uint BytesInFlight, TimeSpan Srtt, TimeSpan Rto, TcpSampleEvents Events)
{
    public bool SsthreshSet => Ssthresh != uint.MaxValue;
    public bool IsLossEvent => (Events & (TcpSampleEvents.RecoveryStarted | TcpSampleEvents.Timeout)) != 0;
}

/// <summary>
/// Samples one connection's sender internals over time for the second panel of a time-sequence graph, on the loop:
/// TCP makes one call (<see cref="TcpLayer.Schedule"/>, after every segment that arrives, every user operation and
/// every timer) to a connection that has a recorder, and none exists unless tracing was asked for (a socket's
/// <c>TraceInternals</c>). A sample is kept only when a value changed. The ring is allocated whole when tracing
/// starts and then overwrites its oldest samples: bounded memory, no allocation per sample.
/// </summary>
public sealed class TcpInternalsRecorder
{
    /// <summary>About 160 KiB per traced connection: tens of seconds of a busy transfer, minutes of a slow one.</summary>
    public const int DefaultCapacity = 4096;
    private readonly TcpInternalsSample[] _ring;
    private long _count;
    private TcpInternalsSample _last;
    private ushort _lastRecoveries, _lastTimeouts;

    public TcpInternalsRecorder(int capacity = DefaultCapacity)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(capacity, 2);
        _ring = new TcpInternalsSample[capacity];
    }

    public int Capacity => _ring.Length;

    /// <summary>Samples kept since tracing began (older ones have been overwritten beyond <see cref="Capacity"/>).</summary>
    public long Total => _count;

    /// <summary>Takes a sample of <paramref name="c"/>'s sender if anything changed since the last one. Loop only.</summary>
    internal void Sample(TcpConnection c, TimeSpan now)
    {
        var snd = c.Snd;
        var recovery = snd.RecoveryIfMade; // made at its first use; none before (a fresh one is not in recovery)
        var inRecovery = recovery is { InRecovery: true };
        var events = inRecovery ? TcpSampleEvents.InRecovery : TcpSampleEvents.None;
        // From the connection's own episode counts, not from the recovery flag's edges: a recovery that ends and a new
        // one that starts between two samples (one loop turn) is an episode too, and is marked.
        if (snd.FastRecoveries != _lastRecoveries) events |= TcpSampleEvents.RecoveryStarted;
        if (snd.RetransmitTimeouts != _lastTimeouts) events |= TcpSampleEvents.Timeout;
        _lastRecoveries = snd.FastRecoveries;
        _lastTimeouts = snd.RetransmitTimeouts;
        var flight = recovery?.Pipe() ?? (long)(snd.Nxt - snd.Una);
        var sample = new TcpInternalsSample(now, snd.Cwnd, snd.Ssthresh, (uint)Math.Clamp(flight, 0, uint.MaxValue),
            snd.Rtt.HasSample ? snd.Rtt.Srtt : TimeSpan.Zero, snd.Rtt.BackedOff, events);
        if (_count > 0 && sample with { Time = _last.Time } == _last) return;
        _ring[(int)(_count % _ring.Length)] = sample;
        _last = sample;
        _count++;
    }

    /// <summary>The samples still held, oldest first. Loop only (or after the loop stopped).</summary>
    public TcpInternalsSample[] Snapshot() => Ring.Snapshot(_ring, _count);
}
