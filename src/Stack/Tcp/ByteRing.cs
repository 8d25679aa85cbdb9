using System.Buffers;

namespace NetStack.Tcp;

/// <summary>
/// A byte ring over an array rented from a pool only while it holds data: an idle connection keeps
/// no buffer at all (10,000 idle connections must fit in 16 KiB each), a busy one reuses pooled arrays, so
/// nothing is allocated per segment. Bytes [0, Count) are committed; a receiver may also write beyond Count
/// (out-of-order data at its place in the window) and commit it later. Loop only.
/// </summary>
internal sealed class ByteRing
{
    /// <summary>
    /// The arrays' pool: one without per-thread caches. Whoever holds the loop's turn rents and returns (the loop thread,
    /// or a caller running a turn inline), so with the shared pool an array returned on one thread sat in that thread's
    /// cache while a rent on the next found none and allocated 256 KiB (about one a second in the api benchmark).
    /// Bounded: at most 32 arrays of each size class are kept (up to 8 MiB, auto-tuning's ceiling rounded up).
    /// </summary>
    private static readonly ArrayPool<byte> Pool = ArrayPool<byte>.Create(maxArrayLength: 8 * 1024 * 1024, maxArraysPerBucket: 32);

    private byte[]? _buffer;
    private int _head;
    private int _count;

    public ByteRing(int limit) => _limit = limit;

    private int _limit;

    /// <summary>
    /// Most bytes held (the socket's buffer size). Raising it while data is held moves the data into a larger pooled
    /// array, keeping every byte at its offset from the head (out-of-order data beyond Count included).
    /// </summary>
    public int Limit
    {
        get => _limit;
        set
        {
            _limit = value;
            if (_buffer != null && value > _buffer.Length) Grow(value);
        }
    }
    public int Count => _count;
    public int Free => Limit - _count;
    public bool HasBuffer => _buffer != null;

    private byte[] Buffer => _buffer ??= Pool.Rent(Limit);

    private void Grow(int size)
    {
        var old = _buffer!;
        var bigger = Pool.Rent(size);
        old.AsSpan(_head).CopyTo(bigger);
        old.AsSpan(0, _head).CopyTo(bigger.AsSpan(old.Length - _head));
        Pool.Return(old);
        _buffer = bigger;
        _head = 0;
    }

    /// <summary>Appends as much of <paramref name="data"/> as fits; returns the bytes taken.</summary>
    public int Write(ReadOnlySpan<byte> data)
    {
        var n = Math.Min(data.Length, Free);
        if (n <= 0) return 0;
        WriteAt(_count, data[..n]);
        _count += n;
        return n;
    }

    /// <summary>Writes at <paramref name="offset"/> from the head without committing (offset + length must be within Limit).</summary>
    public void WriteAt(int offset, ReadOnlySpan<byte> data)
    {
        var buf = Buffer;
        var pos = _head + offset;
        if (pos >= buf.Length) pos -= buf.Length;
        var first = Math.Min(data.Length, buf.Length - pos);
        data[..first].CopyTo(buf.AsSpan(pos));
        if (first < data.Length) data[first..].CopyTo(buf);
    }

    /// <summary>Makes <paramref name="n"/> bytes written beyond Count part of the committed data.</summary>
    public void Commit(int n) => _count += n;

    /// <summary>Copies committed bytes from <paramref name="offset"/> into <paramref name="destination"/> (its whole length).</summary>
    public void CopyTo(int offset, Span<byte> destination)
    {
        if (destination.Length == 0) return;
        var buf = _buffer!;
        var pos = _head + offset;
        if (pos >= buf.Length) pos -= buf.Length;
        var first = Math.Min(destination.Length, buf.Length - pos);
        buf.AsSpan(pos, first).CopyTo(destination);
        if (first < destination.Length) buf.AsSpan(0, destination.Length - first).CopyTo(destination[first..]);
    }

    /// <summary>The committed bytes [offset, offset + length) as one span, or two when they wrap around the array.</summary>
    public void Slice(int offset, int length, out ReadOnlySpan<byte> first, out ReadOnlySpan<byte> second)
    {
        second = default;
        if (length == 0) { first = default; return; }
        var buf = _buffer!;
        var pos = _head + offset;
        if (pos >= buf.Length) pos -= buf.Length;
        var n = Math.Min(length, buf.Length - pos);
        first = buf.AsSpan(pos, n);
        if (n < length) second = buf.AsSpan(0, length - n);
    }

    /// <summary>Takes up to destination.Length committed bytes from the head.</summary>
    public int Read(Span<byte> destination)
    {
        var n = Math.Min(destination.Length, _count);
        CopyTo(0, destination[..n]);
        Discard(n);
        return n;
    }

    /// <summary>Drops <paramref name="n"/> committed bytes from the head.</summary>
    public void Discard(int n)
    {
        if (n <= 0) return;
        _head += n;
        if (_head >= _buffer!.Length) _head -= _buffer.Length;
        _count -= n;
    }

    /// <summary>Gives the array back to the pool when nothing is held (and nothing waits beyond Count).</summary>
    public void ReleaseIfEmpty()
    {
        if (_count != 0 || _buffer is null) return;
        Pool.Return(_buffer);
        _buffer = null;
        _head = 0;
    }

    public void Release()
    {
        if (_buffer != null) Pool.Return(_buffer);
        _buffer = null;
        _head = 0;
        _count = 0;
    }
}
