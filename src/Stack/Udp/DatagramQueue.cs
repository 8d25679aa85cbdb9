namespace NetStack.Udp;

/// <summary>
/// A UDP socket's receive queue: datagram data lies back to back in one ring buffer, with the sender and
/// place of each in a queue of structs, so storing a datagram makes no garbage. The ring starts small
/// and doubles as needed (rare, logged by its garbage only) up to the bound plus 128 KiB, which is always
/// enough to place a datagram contiguously: the charged bytes never exceed <see cref="Limit"/>, and a wrap
/// wastes less than one maximal datagram. Loop only.
/// </summary>
internal sealed class DatagramQueue
{
    /// <summary>Bytes charged per datagram beyond its data, so that empty datagrams cannot queue without bound.</summary>
    public const int OverheadPerDatagram = 64;
    private const int InitialRing = 4096;

    private struct Entry
    {
        public int Offset;
        public int Length;
        public int Waste; // unused end of the ring skipped just before this datagram (at a wrap)
        public Ipv4Address Address;
        public ushort Port;
    }

    private readonly Queue<Entry> _entries = new();
    private byte[] _ring = Array.Empty<byte>();
    private int _tail; // where the next datagram's data goes
    private int _used; // data plus waste, from the oldest datagram to _tail

    public DatagramQueue(int limit) => Limit = limit;

    /// <summary>Most bytes (data plus <see cref="OverheadPerDatagram"/> each) the queue holds.</summary>
    public int Limit { get; }
    public int Count => _entries.Count;
    /// <summary>Data bytes queued (netstat's Recv-Q).</summary>
    public int Bytes { get; private set; }
    /// <summary>Data plus overhead, measured against <see cref="Limit"/>.</summary>
    public int Charged { get; private set; }
    /// <summary>The ring's current size (grows on demand).</summary>
    public int Capacity => _ring.Length;

    private int MaxRing => Limit + 2 * 65536;

    /// <summary>Copies the datagram in; false (nothing stored) when the queue is full.</summary>
    public bool TryEnqueue(ReadOnlySpan<byte> data, Ipv4Address address, ushort port)
    {
        var len = data.Length;
        if (Charged + len + OverheadPerDatagram > Limit) return false;
        int offset, waste;
        while (!TryPlace(len, out offset, out waste))
            if (!Grow()) return false; // unreachable by the sizing argument above; never throw on wire input
        data.CopyTo(_ring.AsSpan(offset, len));
        _entries.Enqueue(new Entry { Offset = offset, Length = len, Waste = waste, Address = address, Port = port });
        if (len > 0)
        {
            _used += waste + len;
            _tail = offset + len;
            if (_tail == _ring.Length) _tail = 0;
        }
        Bytes += len;
        Charged += len + OverheadPerDatagram;
        return true;
    }

    /// <summary>Removes the oldest datagram, copying its data into a new array for the caller.</summary>
    public UdpDatagram Dequeue()
    {
        var e = _entries.Dequeue();
        var data = _ring.AsSpan(e.Offset, e.Length).ToArray();
        _used -= e.Waste + e.Length;
        Bytes -= e.Length;
        Charged -= e.Length + OverheadPerDatagram;
        return new UdpDatagram(e.Address, e.Port, data);
    }

    /// <summary>Drops everything and releases the ring.</summary>
    public void Clear()
    {
        _entries.Clear();
        _ring = Array.Empty<byte>();
        _tail = _used = Bytes = Charged = 0;
    }

    /// <summary>Finds room for <paramref name="len"/> contiguous bytes at the tail, or after wrapping to the start.</summary>
    private bool TryPlace(int len, out int offset, out int waste)
    {
        offset = waste = 0;
        if (len == 0) return true; // takes no room
        var cap = _ring.Length;
        if (_used == 0)
        {
            _tail = 0; // empty: start over at the beginning
            return len <= cap;
        }
        var head = _tail - _used;
        if (head < 0) head += cap;
        if (_tail > head)
        {
            // Data in [head, tail): room at the end, else at the start (the end is then skipped).
            if (cap - _tail >= len) { offset = _tail; return true; }
            if (head >= len) { waste = cap - _tail; return true; }
            return false;
        }
        if (_tail < head && head - _tail >= len) { offset = _tail; return true; } // wrapped: room in [tail, head)
        return false; // wrapped without room, or full (tail == head)
    }

    /// <summary>Doubles the ring (up to <see cref="MaxRing"/>), laying the queued data out from 0 again.</summary>
    private bool Grow()
    {
        var cap = Math.Min(MaxRing, Math.Max(InitialRing, _ring.Length * 2));
        if (cap <= _ring.Length) return false;
        var ring = new byte[cap];
        var pos = 0;
        for (int n = _entries.Count; n > 0; n--)
        {
            var e = _entries.Dequeue();
            _ring.AsSpan(e.Offset, e.Length).CopyTo(ring.AsSpan(pos));
            e.Offset = pos;
            e.Waste = 0;
            pos += e.Length;
            _entries.Enqueue(e);
        }
        _ring = ring;
        _tail = pos;
        _used = pos;
        return true;
    }
}
