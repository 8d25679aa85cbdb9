using System.Buffers.Binary;

namespace NetStack.Link;

/// <summary>
/// Writes Ethernet frames to a classic libpcap capture file (magic a1b2c3d4, version 2.4, LINKTYPE_ETHERNET,
/// microsecond timestamps) that tcpdump, tshark and Wireshark open. Buffered; no allocation per frame.
/// Thread-safe, so one file can record several devices.
/// </summary>
public sealed class PcapFileWriter : IDisposable
{
    public const uint Magic = 0xA1B2C3D4;
    public const uint LinkTypeEthernet = 1;

    private readonly Stream _stream;
    private readonly bool _ownsStream;
    private readonly object _gate = new();
    private bool _disposed;

    /// <summary>Creates (or overwrites) <paramref name="path"/>.</summary>
    public PcapFileWriter(string path, int snaplen = 65535)
        : this(new FileStream(path, FileMode.Create, FileAccess.Write, FileShare.Read, 1 << 16), snaplen, ownsStream: true)
    {
        Path = System.IO.Path.GetFullPath(path);
    }

    /// <summary>Writes to any stream (a MemoryStream in tests, a pipe to tcpdump).</summary>
    public PcapFileWriter(Stream stream, int snaplen = 65535, bool ownsStream = false)
    {
        ArgumentNullException.ThrowIfNull(stream);
        if (snaplen is < 68 or > 262144) throw new ArgumentOutOfRangeException(nameof(snaplen), snaplen, "snaplen must be between 68 and 262144.");
        _stream = stream;
        _ownsStream = ownsStream;
        Snaplen = snaplen;
        Span<byte> h = stackalloc byte[24];
        BinaryPrimitives.WriteUInt32LittleEndian(h, Magic);
        BinaryPrimitives.WriteUInt16LittleEndian(h[4..], 2);   // version 2.4
        BinaryPrimitives.WriteUInt16LittleEndian(h[6..], 4);
        BinaryPrimitives.WriteInt32LittleEndian(h[8..], 0);    // thiszone: timestamps are UTC
        BinaryPrimitives.WriteUInt32LittleEndian(h[12..], 0);  // sigfigs
        BinaryPrimitives.WriteUInt32LittleEndian(h[16..], (uint)snaplen);
        BinaryPrimitives.WriteUInt32LittleEndian(h[20..], LinkTypeEthernet);
        _stream.Write(h);
    }

    /// <summary>The file's full path, if written to a file.</summary>
    public string? Path { get; }

    public int Snaplen { get; }

    /// <summary>Frames written so far.</summary>
    public long FramesWritten { get; private set; }

    /// <summary>
    /// The wall-clock time (UTC) at which the stack's clock read zero, for frames written with a stack time
    /// (<see cref="Write(ReadOnlySpan{byte}, TimeSpan)"/>): set from the first such frame (the wall clock then, less its
    /// stack time) unless given before. One per file, so the taps of several stacks sharing a clock agree.
    /// </summary>
    public DateTime? ClockEpoch
    {
        get { lock (_gate) return _epoch; }
        set { lock (_gate) _epoch = value; }
    }
    private DateTime? _epoch;

    /// <summary>Appends a frame stamped with the current wall clock time.</summary>
    public void Write(ReadOnlySpan<byte> frame) => Write(frame, DateTime.UtcNow);

    /// <summary>
    /// Appends a frame stamped with the stack's clock: <see cref="ClockEpoch"/> plus <paramref name="stackTime"/>. A
    /// stack in real time gets wall-clock stamps as before; a simulation's frames keep their virtual spacing, so a capture
    /// read back shows the times the stack's own log shows.
    /// </summary>
    public void Write(ReadOnlySpan<byte> frame, TimeSpan stackTime)
    {
        DateTime epoch;
        lock (_gate) epoch = _epoch ??= DateTime.UtcNow - stackTime;
        Write(frame, epoch + stackTime);
    }

    /// <summary>Appends a frame with the given UTC timestamp; frames longer than <see cref="Snaplen"/> are truncated, as a capture would.</summary>
    public void Write(ReadOnlySpan<byte> frame, DateTime utc)
    {
        var sinceEpoch = utc.Ticks - DateTime.UnixEpoch.Ticks;
        var seconds = sinceEpoch / TimeSpan.TicksPerSecond;
        var micros = sinceEpoch % TimeSpan.TicksPerSecond / 10;
        var captured = Math.Min(frame.Length, Snaplen);
        Span<byte> h = stackalloc byte[16];
        BinaryPrimitives.WriteUInt32LittleEndian(h, (uint)seconds);
        BinaryPrimitives.WriteUInt32LittleEndian(h[4..], (uint)micros);
        BinaryPrimitives.WriteUInt32LittleEndian(h[8..], (uint)captured);
        BinaryPrimitives.WriteUInt32LittleEndian(h[12..], (uint)frame.Length);
        lock (_gate)
        {
            ObjectDisposedException.ThrowIf(_disposed, this);
            _stream.Write(h);
            _stream.Write(frame[..captured]);
            FramesWritten++;
        }
    }

    /// <summary>Pushes buffered frames to the file, so a reader sees them.</summary>
    public void Flush()
    {
        lock (_gate)
        {
            if (!_disposed) _stream.Flush();
        }
    }

    public void Dispose()
    {
        lock (_gate)
        {
            if (_disposed) return;
            _disposed = true;
            _stream.Flush();
            if (_ownsStream) _stream.Dispose();
        }
    }
}
