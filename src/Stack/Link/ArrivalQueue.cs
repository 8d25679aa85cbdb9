namespace NetStack.Link;

/// <summary>
/// A port's frames in flight on the <see cref="VirtualWire"/>, in delivery order: by arrival time, then by send order.
/// Frames nearly always arrive in order (a sender's clock only moves forward), so they go to a FIFO ring; only a frame
/// that sorts before the ring's last (a reorder fault, a second sender's earlier clock) goes to a heap. The head is
/// the smaller of the two heads. Not thread-safe: the wire's gate guards it.
/// </summary>
internal sealed class ArrivalQueue
{
    private VirtualWire.InFlight[] _ring = new VirtualWire.InFlight[64];
    private int _head, _count;
    private readonly PriorityQueue<VirtualWire.InFlight, (TimeSpan, long)> _heap = new();

    public int Count => _count + _heap.Count;

    private static bool Before(in VirtualWire.InFlight a, in VirtualWire.InFlight b) =>
        a.Arrival < b.Arrival || a.Arrival == b.Arrival && a.Sequence < b.Sequence;

    public void Enqueue(in VirtualWire.InFlight f)
    {
        if (_count > 0 && Before(f, _ring[(_head + _count - 1) & (_ring.Length - 1)]))
        {
            _heap.Enqueue(f, (f.Arrival, f.Sequence));
            return;
        }
        if (_count == _ring.Length) Grow();
        _ring[(_head + _count) & (_ring.Length - 1)] = f;
        _count++;
    }

    /// <summary>The next frame in delivery order, without taking it.</summary>
    public bool TryPeek(out VirtualWire.InFlight f)
    {
        var inRing = _count > 0;
        var inHeap = _heap.TryPeek(out var h, out _);
        if (inRing && (!inHeap || !Before(h, _ring[_head]))) { f = _ring[_head]; return true; }
        f = h;
        return inHeap;
    }

    /// <summary>Takes the next frame (call after <see cref="TryPeek"/> returned it).</summary>
    public void Dequeue()
    {
        var inHeap = _heap.TryPeek(out var h, out _);
        if (_count > 0 && (!inHeap || !Before(h, _ring[_head])))
        {
            _ring[_head] = default;
            _head = (_head + 1) & (_ring.Length - 1);
            _count--;
        }
        else if (inHeap) _heap.Dequeue();
    }

    private void Grow()
    {
        var bigger = new VirtualWire.InFlight[_ring.Length * 2];
        for (int k = 0; k < _count; k++) bigger[k] = _ring[(_head + k) & (_ring.Length - 1)];
        _ring = bigger;
        _head = 0;
    }
}
