namespace NetStack.Sockets;

/// <summary>
/// Bytes of a TCP socket's stream that a receive took from the connection and did not return: read past a
/// delimiter or count, left by a receive that was cancelled, timed out or failed, or given back with
/// <see cref="TcpSocket.Unread"/>. They come before everything the connection still holds, so every receive path
/// reads them first, and Recv-Q counts them. Slices are kept as they were given (no copy); the next to read is on
/// top. Loop only.
/// </summary>
internal sealed class PushbackBuffer
{
    private readonly Stack<ArraySegment<byte>> _slices = new();

    /// <summary>Bytes held.</summary>
    public long Count { get; private set; }

    /// <summary>Puts <paramref name="slices"/> (in stream order) in front of what is held.</summary>
    public void PushFront(IReadOnlyList<ArraySegment<byte>> slices)
    {
        for (int i = slices.Count - 1; i >= 0; i--)
        {
            if (slices[i].Count == 0) continue;
            _slices.Push(slices[i]);
            Count += slices[i].Count;
        }
    }

    /// <summary>Takes up to destination.Length bytes from the front.</summary>
    public int Read(Span<byte> destination)
    {
        var done = 0;
        while (done < destination.Length && _slices.TryPop(out var top))
        {
            var n = Math.Min(top.Count, destination.Length - done);
            top.AsSpan(0, n).CopyTo(destination[done..]);
            done += n;
            if (n < top.Count) _slices.Push(top[n..]);
        }
        Count -= done;
        return done;
    }

    /// <summary>
    /// Where <paramref name="pattern"/> ends (the count of bytes through it) within the first <paramref name="limit"/>
    /// bytes held, or -1. The slices are short-lived leftovers, so a plain scan does.
    /// </summary>
    public long EndOf(ReadOnlySpan<byte> pattern, long limit)
    {
        if (pattern.Length == 0) return 0;
        var window = new byte[pattern.Length];
        var filled = 0;
        long position = 0;
        foreach (var slice in _slices) // top first: stream order
        {
            foreach (var b in slice.AsSpan())
            {
                if (position >= limit) return -1;
                position++;
                // A rolling window of the last pattern.Length bytes, compared whole at each step.
                if (filled < window.Length) window[filled++] = b;
                else
                {
                    Array.Copy(window, 1, window, 0, window.Length - 1);
                    window[^1] = b;
                }
                if (filled == window.Length && window.AsSpan().SequenceEqual(pattern)) return position;
            }
        }
        return -1;
    }

    public void Clear()
    {
        _slices.Clear();
        Count = 0;
    }
}
