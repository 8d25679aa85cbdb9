namespace NetStack.Link;

/// <summary>
/// Wraps any <see cref="ILinkDevice"/> (a pcap adapter, a virtual port) and applies <see cref="WireFaults"/> to the
/// frames passing through it in either direction, with its own seeded random source (the idea of smoltcp's
/// FaultInjector): loss, duplication, single-bit corruption, a fixed one-way delay, a link rate, and reordering
/// (a frame held back by up to <see cref="WireFaults.ReorderDelay"/> lets later frames pass it). Held frames wait
/// in a time-ordered queue per direction and are released by the loop's <c>now</c> (received ones from
/// <see cref="Receive"/>, sent ones from <see cref="Flush"/>); <see cref="NextArrival"/> tells the loop when.
/// Held frames live in pooled buffers: nothing is allocated per frame once the pool has grown to the traffic.
/// Every method but <see cref="Wake"/> and <see cref="WaitForFrames"/> runs on the owning stack's loop.
/// </summary>
public sealed class FaultyLink : ILinkDevice
{
    private readonly ILinkDevice _inner;
    private readonly bool _ownsInner;
    private readonly Random _random;
    private readonly Direction _in;
    private readonly Direction _out;
    private readonly Stack<byte[]> _pool = new();
    private readonly FaultSink _sink;
    private readonly int _bufferSize;
    private long _sequence;
    private bool _disposed;

    /// <param name="inner">The device frames really pass through.</param>
    /// <param name="inbound">Faults for frames the device receives (towards the stack); null: none.</param>
    /// <param name="outbound">Faults for frames the stack transmits (towards the wire); null: none.</param>
    /// <param name="seed">Seed of the random source, so a run's choices replay exactly for the same frame sequence.</param>
    /// <param name="ownsInner">Dispose the inner device with this one.</param>
    public FaultyLink(ILinkDevice inner, WireFaults? inbound = null, WireFaults? outbound = null, int seed = 1, bool ownsInner = true)
    {
        ArgumentNullException.ThrowIfNull(inner);
        _inner = inner;
        _ownsInner = ownsInner;
        _random = new Random(seed);
        Seed = seed;
        _in = new Direction(Checked(inbound ?? WireFaults.None));
        _out = new Direction(Checked(outbound ?? WireFaults.None));
        // Ethernet header, a VLAN tag and the MTU: what a capture hands up (larger frames get a buffer of their own).
        _bufferSize = inner.Mtu + 18;
        _sink = new FaultSink(this);
    }

    private static WireFaults Checked(WireFaults f)
    {
        f.Validate();
        return f;
    }

    public int Seed { get; }

    /// <summary>The wrapped device.</summary>
    public ILinkDevice Inner => _inner;

    /// <summary>Faults on received frames. May be changed between loop turns.</summary>
    public WireFaults Inbound
    {
        get => _in.Faults;
        set { ArgumentNullException.ThrowIfNull(value); _in.Faults = Checked(value); }
    }

    /// <summary>Faults on transmitted frames. May be changed between loop turns.</summary>
    public WireFaults Outbound
    {
        get => _out.Faults;
        set { ArgumentNullException.ThrowIfNull(value); _out.Faults = Checked(value); }
    }

    /// <summary>Frames each direction may hold before further held frames are dropped (counted in <see cref="FaultCounters.Overflowed"/>).</summary>
    public int QueueLimit { get; init; } = 8192;

    /// <summary>What was done to received frames.</summary>
    public FaultCounters InboundCounters => _in.Counters;

    /// <summary>What was done to transmitted frames.</summary>
    public FaultCounters OutboundCounters => _out.Counters;

    /// <summary>Frames held in either direction right now.</summary>
    public int HeldFrames => _in.Queue.Count + _out.Queue.Count;

    public string Name => _inner.Name;
    public void SetStackAddress(MacAddress mac) => _inner.SetStackAddress(mac);
    public MacAddress HardwareAddress => _inner.HardwareAddress;
    public int Mtu => _inner.Mtu;
    public LinkStatistics Statistics => _inner.Statistics;

    public TimeSpan? NextArrival
    {
        get
        {
            TimeSpan? next = _inner.NextArrival;
            if (_in.Queue.TryPeek(out _, out var i) && (next is null || i.Arrival < next)) next = i.Arrival;
            if (_out.Queue.TryPeek(out _, out var o) && (next is null || o.Arrival < next)) next = o.Arrival;
            return next;
        }
    }

    public int Receive(IFrameSink sink, TimeSpan now, int max)
    {
        // Held frames that are due go first: they arrived (on the wire's time) before anything still in the device.
        int handed = 0;
        while (handed < max && _in.Queue.TryPeek(out var held, out var key) && key.Arrival <= now)
        {
            _in.Queue.Dequeue();
            handed++;
            try { sink.OnFrame(held.Buffer.AsSpan(0, held.Length), now); }
            finally { Return(held.Buffer); }
        }
        if (handed >= max || _disposed) return handed;
        _sink.Target = sink;
        try { return handed + _inner.Receive(_sink, now, max - handed); }
        finally { _sink.Target = null; }
    }

    public void Transmit(ReadOnlySpan<byte> frame, TimeSpan now)
    {
        if (_disposed) return;
        Apply(_out, frame, now, null);
    }

    public void Flush(TimeSpan now)
    {
        while (_out.Queue.TryPeek(out var held, out var key) && key.Arrival <= now)
        {
            _out.Queue.Dequeue();
            try { _inner.Transmit(held.Buffer.AsSpan(0, held.Length), now); }
            finally { Return(held.Buffer); }
        }
        _inner.Flush(now);
    }

    public void WaitForFrames(TimeSpan timeout) => _inner.WaitForFrames(timeout);
    public void Wake() => _inner.Wake();
    public void HoldArrivalWake() => _inner.HoldArrivalWake();
    public void ReleaseArrivalWake() => _inner.ReleaseArrivalWake();

    /// <summary>
    /// Decides a frame's fate: dropped, passed on at once (no delay, no copy), or copied into a pooled buffer and
    /// held until its arrival time. <paramref name="sink"/> null means outbound (passed to the inner device).
    /// </summary>
    private void Apply(Direction d, ReadOnlySpan<byte> frame, TimeSpan now, IFrameSink? sink)
    {
        var f = d.Faults;
        var c = d.Counters;
        c.Frames++;
        if (f.LossRate > 0 && _random.NextDouble() < f.LossRate) { c.Dropped++; return; }
        var copies = f.DuplicateRate > 0 && _random.NextDouble() < f.DuplicateRate ? 2 : 1;
        if (copies == 2) c.Duplicated++;

        // Serialisation at the link rate: this direction's frames leave one after another.
        var departure = now;
        if (f.RateBitsPerSecond > 0)
        {
            if (d.BusyUntil > departure) departure = d.BusyUntil;
            departure += TimeSpan.FromTicks((long)((frame.Length + 24) * 8.0 * TimeSpan.TicksPerSecond / f.RateBitsPerSecond));
            d.BusyUntil = departure;
        }
        var arrival = departure + f.Delay;

        for (int n = 0; n < copies; n++)
        {
            var at = arrival;
            if (f.ReorderRate > 0 && _random.NextDouble() < f.ReorderRate)
            {
                at += TimeSpan.FromTicks((long)(_random.NextDouble() * f.ReorderDelay.Ticks) + 1);
                c.Reordered++;
            }
            var corrupt = f.CorruptRate > 0 && frame.Length > 0 && _random.NextDouble() < f.CorruptRate;
            if (!corrupt && at <= now && !(d.Queue.TryPeek(out _, out var first) && first.Arrival <= now))
            {
                // Nothing due ahead of it and nothing to change: straight through, no copy.
                Pass(sink, frame, now);
                continue;
            }
            if (d.Queue.Count >= QueueLimit) { c.Overflowed++; continue; }
            var buffer = Rent(frame.Length);
            frame.CopyTo(buffer);
            if (corrupt)
            {
                buffer[_random.Next(frame.Length)] ^= (byte)(1 << _random.Next(8));
                c.Corrupted++;
            }
            if (at > now) c.Delayed++;
            d.Queue.Enqueue(new Held(buffer, frame.Length), (at, _sequence++));
        }
        if (sink is null) ReleaseDueOutbound(now);
    }

    /// <summary>Outbound frames due now (a corrupted copy, or frames behind one) go out in order with this turn's batch.</summary>
    private void ReleaseDueOutbound(TimeSpan now)
    {
        while (_out.Queue.TryPeek(out var held, out var key) && key.Arrival <= now)
        {
            _out.Queue.Dequeue();
            try { _inner.Transmit(held.Buffer.AsSpan(0, held.Length), now); }
            finally { Return(held.Buffer); }
        }
    }

    private void Pass(IFrameSink? sink, ReadOnlySpan<byte> frame, TimeSpan now)
    {
        if (sink is null) _inner.Transmit(frame, now);
        else sink.OnFrame(frame, now);
    }

    private byte[] Rent(int length)
    {
        if (length <= _bufferSize && _pool.TryPop(out var b)) return b;
        return new byte[Math.Max(length, _bufferSize)];
    }

    private void Return(byte[] buffer)
    {
        // Odd-sized buffers (frames above the MTU) are left to the GC; the pool holds no more than both queues can.
        if (buffer.Length == _bufferSize && _pool.Count < 2 * QueueLimit) _pool.Push(buffer);
    }

    public void Dispose()
    {
        if (_disposed) return;
        _disposed = true;
        _in.Queue.Clear();
        _out.Queue.Clear();
        _pool.Clear();
        if (_ownsInner) _inner.Dispose();
    }

    public override string ToString() => $"faulty({_inner})";

    private readonly record struct Held(byte[] Buffer, int Length);

    private sealed class Direction(WireFaults faults)
    {
        public WireFaults Faults = faults;
        public readonly FaultCounters Counters = new();
        // Ordered by arrival, then by the order frames came in, so frames due at the same time keep their order.
        public readonly PriorityQueue<Held, (TimeSpan Arrival, long Sequence)> Queue = new();
        public TimeSpan BusyUntil;
    }

    /// <summary>One reusable sink per link, so a Receive call allocates nothing.</summary>
    private sealed class FaultSink(FaultyLink link) : IFrameSink
    {
        public IFrameSink? Target;

        public void OnFrame(ReadOnlySpan<byte> frame, TimeSpan now) => link.Apply(link._in, frame, now, Target!);
    }
}

/// <summary>What a <see cref="FaultyLink"/> did to the frames of one direction.</summary>
public sealed class FaultCounters
{
    /// <summary>Frames that came through this direction (before any fault).</summary>
    public long Frames;
    public long Dropped;
    public long Duplicated;
    public long Corrupted;
    /// <summary>Copies held back by a random extra delay, so later frames could pass them.</summary>
    public long Reordered;
    /// <summary>Copies held for any later time (delay, rate or reordering).</summary>
    public long Delayed;
    /// <summary>Copies dropped because the direction's queue held <see cref="FaultyLink.QueueLimit"/> frames.</summary>
    public long Overflowed;
}
