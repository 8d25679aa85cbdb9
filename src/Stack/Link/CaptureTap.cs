namespace NetStack.Link;

/// <summary>
/// Wraps any <see cref="ILinkDevice"/> and records every frame received and transmitted through it to a
/// <see cref="PcapFileWriter"/> (the idea of smoltcp's PcapWriter and gVisor's sniffer). Frames the inner device
/// itself filters out (own echoes, BPF) are not recorded: the file shows what the stack saw and sent. Frames are stamped
/// with the stack's clock mapped onto the wall clock (<see cref="PcapFileWriter.ClockEpoch"/>): a real-time stack's
/// capture has the usual absolute times, and a simulation's keeps the virtual times of the stack's own packet log.
/// </summary>
public sealed class CaptureTap : ILinkDevice
{
    private readonly ILinkDevice _inner;
    private readonly PcapFileWriter _writer;
    private readonly bool _ownsWriter;
    private readonly bool _ownsInner;
    private readonly RecordingSink _sink;
    private TimeSpan _nextFlushAt;
    private bool _disposed;

    /// <summary>Records <paramref name="inner"/> to a new file at <paramref name="path"/>.</summary>
    public CaptureTap(ILinkDevice inner, string path, bool ownsInner = true)
        : this(inner, new PcapFileWriter(path), ownsWriter: true, ownsInner) { }

    /// <summary>Records <paramref name="inner"/> to <paramref name="writer"/> (which may be shared by several taps).</summary>
    public CaptureTap(ILinkDevice inner, PcapFileWriter writer, bool ownsWriter = false, bool ownsInner = true)
    {
        ArgumentNullException.ThrowIfNull(inner);
        ArgumentNullException.ThrowIfNull(writer);
        _inner = inner;
        _writer = writer;
        _ownsWriter = ownsWriter;
        _ownsInner = ownsInner;
        _sink = new RecordingSink(writer);
    }

    /// <summary>The wrapped device.</summary>
    public ILinkDevice Inner => _inner;

    public PcapFileWriter Writer => _writer;

    /// <summary>How often <see cref="Flush"/> pushes the file buffer to the OS (so a reader can follow along live).</summary>
    public TimeSpan FileFlushInterval { get; set; } = TimeSpan.FromMilliseconds(500);

    public string Name => _inner.Name;
    public void SetStackAddress(MacAddress mac) => _inner.SetStackAddress(mac);
    public MacAddress HardwareAddress => _inner.HardwareAddress;
    public int Mtu => _inner.Mtu;
    public TimeSpan? NextArrival => _inner.NextArrival;
    public LinkStatistics Statistics => _inner.Statistics;

    public int Receive(IFrameSink sink, TimeSpan now, int max)
    {
        _sink.Target = sink;
        try { return _inner.Receive(_sink, now, max); }
        finally { _sink.Target = null; }
    }

    public void Transmit(ReadOnlySpan<byte> frame, TimeSpan now)
    {
        if (!_disposed) _writer.Write(frame, now);
        _inner.Transmit(frame, now);
    }

    public void Flush(TimeSpan now)
    {
        _inner.Flush(now);
        if (now >= _nextFlushAt && !_disposed)
        {
            _writer.Flush();
            _nextFlushAt = now + FileFlushInterval;
        }
    }

    public void WaitForFrames(TimeSpan timeout) => _inner.WaitForFrames(timeout);
    public void Wake() => _inner.Wake();
    public void HoldArrivalWake() => _inner.HoldArrivalWake();
    public void ReleaseArrivalWake() => _inner.ReleaseArrivalWake();

    public void Dispose()
    {
        if (_disposed) return;
        _disposed = true;
        if (_ownsWriter) _writer.Dispose(); else _writer.Flush();
        if (_ownsInner) _inner.Dispose();
    }

    public override string ToString() => $"tap({_inner}) -> {_writer.Path ?? "stream"}";

    /// <summary>One reusable sink per tap, so a Receive call allocates nothing.</summary>
    private sealed class RecordingSink(PcapFileWriter writer) : IFrameSink
    {
        public IFrameSink? Target;

        public void OnFrame(ReadOnlySpan<byte> frame, TimeSpan now)
        {
            writer.Write(frame, now);
            Target!.OnFrame(frame, now);
        }
    }
}
