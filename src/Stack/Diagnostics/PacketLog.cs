namespace NetStack.Diagnostics;

/// <summary>Direction of a logged frame: received or sent by the stack; Unknown for a frame read from a capture file.</summary>
public enum FrameDirection { In, Out, Unknown }

/// <summary>A frame from the packet log: its first bytes (headers) and its real length.</summary>
public sealed record LoggedFrame(long Number, TimeSpan Time, FrameDirection Direction, byte[] Bytes, int Length);

/// <summary>
/// A bounded ring of the most recent frames in and out (Get-StackPacket). Slots are preallocated and
/// hold the first <see cref="SnapLength"/> bytes of each frame, so recording never allocates.
/// </summary>
internal sealed class PacketLog
{
    public const int SnapLength = 128;
    private readonly byte[] _data;
    private readonly int[] _captured;
    private readonly int[] _length;
    private readonly long[] _time;
    private readonly bool[] _outbound;
    private long _count;

    public PacketLog(int capacity)
    {
        Capacity = capacity;
        _data = new byte[capacity * SnapLength];
        _captured = new int[capacity];
        _length = new int[capacity];
        _time = new long[capacity];
        _outbound = new bool[capacity];
    }

    public int Capacity { get; }
    public long Total => _count;

    public void Record(ReadOnlySpan<byte> frame, bool outbound, TimeSpan now)
    {
        if (Capacity == 0) return;
        var slot = (int)(_count % Capacity);
        var n = Math.Min(frame.Length, SnapLength);
        frame[..n].CopyTo(_data.AsSpan(slot * SnapLength, n));
        _captured[slot] = n;
        _length[slot] = frame.Length;
        _time[slot] = now.Ticks;
        _outbound[slot] = outbound;
        _count++;
    }

    /// <summary>The frames still in the ring, oldest first.</summary>
    public List<LoggedFrame> Snapshot()
    {
        var n = (int)Math.Min(_count, Capacity);
        var list = new List<LoggedFrame>(n);
        for (long i = _count - n; i < _count; i++)
        {
            var slot = (int)(i % Capacity);
            list.Add(new LoggedFrame(i + 1, TimeSpan.FromTicks(_time[slot]), _outbound[slot] ? FrameDirection.Out : FrameDirection.In,
                _data.AsSpan(slot * SnapLength, _captured[slot]).ToArray(), _length[slot]));
        }
        return list;
    }
}
