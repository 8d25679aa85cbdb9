using System.Buffers;
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;

namespace NetStack.Link;

/// <summary>
/// Faults the <see cref="VirtualWire"/> applies to each frame it delivers, drawn from the wire's seeded
/// random source so a run replays exactly. May be changed between loop turns.
/// </summary>
public sealed record WireFaults
{
    /// <summary>Probability (0..1) that a delivery is lost.</summary>
    public double LossRate { get; init; }
    /// <summary>Probability that a delivery arrives twice.</summary>
    public double DuplicateRate { get; init; }
    /// <summary>Probability that a delivery is held back by up to <see cref="ReorderDelay"/>, letting later frames pass it.</summary>
    public double ReorderRate { get; init; }
    public TimeSpan ReorderDelay { get; init; } = TimeSpan.FromMilliseconds(5);
    /// <summary>Probability that one bit of the frame is flipped.</summary>
    public double CorruptRate { get; init; }
    /// <summary>One-way latency added to every frame.</summary>
    public TimeSpan Delay { get; init; }
    /// <summary>Link rate in bits per second (serialisation delay per sender); 0 means unlimited.</summary>
    public long RateBitsPerSecond { get; init; }

    public static readonly WireFaults None = new();

    internal void Validate()
    {
        foreach (var (name, p) in new[] { (nameof(LossRate), LossRate), (nameof(DuplicateRate), DuplicateRate), (nameof(ReorderRate), ReorderRate), (nameof(CorruptRate), CorruptRate) })
            if (p is < 0 or > 1 || double.IsNaN(p)) throw new ArgumentOutOfRangeException(name, p, $"{name} is a probability from 0 to 1.");
        if (Delay < TimeSpan.Zero) throw new ArgumentOutOfRangeException(nameof(Delay), "Delay cannot be negative.");
        if (ReorderDelay < TimeSpan.Zero) throw new ArgumentOutOfRangeException(nameof(ReorderDelay), "ReorderDelay cannot be negative.");
        if (RateBitsPerSecond < 0) throw new ArgumentOutOfRangeException(nameof(RateBitsPerSecond), "RateBitsPerSecond cannot be negative (0 is unlimited).");
    }
}

/// <summary>
/// An in-memory Ethernet segment joining any number of stacks, behaving like a learning switch:
/// unicast goes to the port that last sent from that MAC, everything else is flooded. Frames are
/// delivered by clock time (latency, rate limit) with seeded faults. Thread-safe, so stacks with
/// their own loop threads can share one wire; a simulation drives it from one thread.
/// </summary>
public sealed class VirtualWire
{
    private readonly object _gate = new();
    private readonly Random _random;
    private readonly List<VirtualPort> _ports = new();
    private readonly Dictionary<MacAddress, VirtualPort> _learned = new();
    private WireFaults _faults;
    private long _sequence;
    // Frame buffers in flight come from the wire's own free list: a frame is copied in on the sender's thread and given
    // back on the receiver's, and the shared ArrayPool's per-thread caches then ran dry in bursts (a window of frames)
    // and allocated. Frames larger than a slot (jumbo MTUs) still use the shared pool.
    internal const int SlotSize = 2048;
    private const int MaxFreeSlots = 4096;
    private readonly Stack<byte[]> _free = new();

    public VirtualWire(int seed = 1, WireFaults? faults = null)
    {
        _random = new Random(seed);
        _faults = faults ?? WireFaults.None;
        _faults.Validate();
        Seed = seed;
    }

    public int Seed { get; }

    public WireFaults Faults
    {
        get { lock (_gate) return _faults; }
        set { ArgumentNullException.ThrowIfNull(value); value.Validate(); lock (_gate) _faults = value; }
    }

    /// <summary>Frames each port may hold undelivered before the wire drops (counted in <see cref="FramesOverflowed"/>).</summary>
    public int PortQueueLimit { get; init; } = 8192;

    /// <summary>
    /// Checksum offload between the wire's ports, as Linux's veth does between two ends in one host (CHECKSUM_PARTIAL):
    /// the ports complete TCP checksums (<see cref="ILinkDevice.CompletesTcpChecksum"/>), so a stack leaves the larger
    /// TCP frames with only the pseudo-header sum in the checksum field, and the wire hands such a frame to a receiving
    /// stack as vouched for (<see cref="IFrameSink.OnFrameChecksumPending"/>): TCP's checksum is neither computed nor
    /// verified. Whatever else looks at a frame sees its final checksum: a sink that does not take pending frames (a
    /// capture tap, a test) gets it completed, and a frame the wire corrupts (<see cref="WireFaults.CorruptRate"/>) is
    /// completed before its bit is flipped, so the receiver verifies it and drops it. On by default; false makes every
    /// stack compute and verify every checksum.
    /// </summary>
    public bool TcpChecksumOffload { get; init; } = true;

    public long FramesCarried;
    public long FramesLost;
    public long FramesDuplicated;
    public long FramesCorrupted;
    public long FramesReordered;
    public long FramesOverflowed;

    public IReadOnlyList<VirtualPort> Ports { get { lock (_gate) return _ports.ToArray(); } }

    public VirtualPort CreatePort(string name, MacAddress hardwareAddress, int mtu = 1500)
    {
        if (mtu is < 68 or > 9000) throw new ArgumentOutOfRangeException(nameof(mtu), mtu, "MTU must be between 68 and 9000.");
        var port = new VirtualPort(this, name, hardwareAddress, mtu);
        lock (_gate) _ports.Add(port);
        return port;
    }

    internal void Detach(VirtualPort port)
    {
        lock (_gate)
        {
            _ports.Remove(port);
            foreach (var kv in _learned.Where(kv => kv.Value == port).ToList()) _learned.Remove(kv.Key);
        }
    }

    /// <summary>The earliest pending arrival on any port (for simulations that jump time).</summary>
    public TimeSpan? NextArrival
    {
        get
        {
            lock (_gate)
            {
                TimeSpan? min = null;
                foreach (var p in _ports)
                {
                    var t = p.PeekArrivalLocked();
                    if (t is { } v && (min is null || v < min)) min = v;
                }
                return min;
            }
        }
    }

    /// <summary>
    /// Carries <paramref name="frame"/> to the port(s) it is for. With <paramref name="checksumPending"/> its TCP checksum
    /// field holds the pseudo-header sum (<see cref="TcpChecksumOffload"/>).
    /// </summary>
    internal void Send(VirtualPort from, ReadOnlySpan<byte> frame, TimeSpan now, bool checksumPending = false)
    {
        if (frame.Length < 14) return;
        var dst = MacAddress.Read(frame);
        var src = MacAddress.Read(frame[6..]);
        // The copy is made before the gate is taken, into the sending port's spare slot (its sends come from its own
        // loop, one at a time), so the receiving loop does not wait on it; copies for further ports are made inside.
        // A frame the stack built in the port's lent slot (LendTransmitBuffer) is taken as it is, without a copy.
        var lent = from.TakeLent(frame);
        var filled = lent ?? (frame.Length <= SlotSize ? from.TakeSpare() : null);
        if (lent is null && filled != null) frame.CopyTo(filled);
        VirtualPort? wake = null; // a unicast's receiver, woken after the gate is let go (a sleeping loop's wake-up is a syscall)
        lock (_gate)
        {
            var f = _faults;
            if (!src.IsMulticast) _learned[src] = from;

            // Serialisation: a sender's frames leave one after another at the link rate.
            var departure = now;
            if (f.RateBitsPerSecond > 0)
            {
                if (from.BusyUntil > departure) departure = from.BusyUntil;
                departure += TimeSpan.FromTicks((long)((frame.Length + 24) * 8.0 * TimeSpan.TicksPerSecond / f.RateBitsPerSecond));
                from.BusyUntil = departure;
            }
            var arrival = departure + f.Delay;

            if (!dst.IsMulticast && _learned.TryGetValue(dst, out var target))
            {
                if (target != from && DeliverLocked(target, frame, arrival, f, ref filled, checksumPending, signal: false)) wake = target;
            }
            else
            {
                foreach (var p in _ports)
                    if (p != from) DeliverLocked(p, frame, arrival, f, ref filled, checksumPending, signal: true);
            }
            // The next lent slot or spare: this one again when no port took it.
            if (lent != null) from.Lent = filled ?? RentLocked(SlotSize);
            else if (frame.Length <= SlotSize) from.Spare = filled ?? RentLocked(SlotSize);
        }
        wake?.Wake();
    }

    /// <summary>
    /// Queues a copy of <paramref name="frame"/> for <paramref name="to"/>: <paramref name="filled"/> (already a copy) the first
    /// time, then new copies. Without <paramref name="signal"/> the caller wakes <paramref name="to"/> when this returns true (queued).
    /// A frame built in the sender's slot is that slot (<paramref name="frame"/> and <paramref name="filled"/> the same bytes):
    /// it is never corrupted itself (a copy is), so further copies are made from the intact frame.
    /// </summary>
    private bool DeliverLocked(VirtualPort to, ReadOnlySpan<byte> frame, TimeSpan arrival, WireFaults f, ref byte[]? filled, bool checksumPending,
        bool signal)
    {
        FramesCarried++;
        if (f.LossRate > 0 && _random.NextDouble() < f.LossRate) { FramesLost++; return false; }
        var queued = false;
        var copies = 1;
        if (f.DuplicateRate > 0 && _random.NextDouble() < f.DuplicateRate) { copies = 2; FramesDuplicated++; }
        for (int c = 0; c < copies; c++)
        {
            var at = arrival;
            if (f.ReorderRate > 0 && _random.NextDouble() < f.ReorderRate)
            {
                at += TimeSpan.FromTicks((long)(_random.NextDouble() * f.ReorderDelay.Ticks) + 1);
                FramesReordered++;
            }
            var buffer = filled;
            filled = null;
            if (buffer is null)
            {
                buffer = RentLocked(frame.Length);
                frame.CopyTo(buffer);
            }
            var pending = checksumPending;
            if (f.CorruptRate > 0 && _random.NextDouble() < f.CorruptRate)
            {
                if (VirtualPort.StartsAt(frame, buffer))
                {
                    // The frame is this buffer (built in the sender's slot): the damage goes to a copy, and the slot stays the
                    // intact frame for further copies (or the sender's next spare).
                    filled = buffer;
                    buffer = RentLocked(frame.Length);
                    frame.CopyTo(buffer);
                }
                // A damaged frame carries its final checksum, damaged with it: the receiver verifies it and drops it.
                if (pending) Ethernet.CompleteTcpChecksum(buffer.AsSpan(0, frame.Length));
                pending = false;
                buffer[_random.Next(frame.Length)] ^= (byte)(1 << _random.Next(8));
                FramesCorrupted++;
            }
            if (to.EnqueueLocked(new InFlight(buffer, frame.Length, at, _sequence++, pending), PortQueueLimit, signal)) queued = true;
            else
            {
                ReturnLocked(buffer);
                FramesOverflowed++;
            }
        }
        return queued;
    }

    private byte[] RentLocked(int length) =>
        length > SlotSize ? ArrayPool<byte>.Shared.Rent(length) : _free.TryPop(out var b) ? b : new byte[SlotSize];

    /// <summary>Gives a frame buffer back (under <see cref="Gate"/>).</summary>
    internal void ReturnLocked(byte[] buffer)
    {
        if (buffer.Length != SlotSize) ArrayPool<byte>.Shared.Return(buffer);
        else if (_free.Count < MaxFreeSlots) _free.Push(buffer);
    }

    /// <summary>A frame slot for a port's spare (<see cref="VirtualPort.TakeSpare"/>).</summary>
    internal byte[] RentSlot()
    {
        lock (_gate) return RentLocked(SlotSize);
    }

    /// <summary>A frame in flight; <paramref name="ChecksumPending"/>: its TCP checksum field holds the pseudo-header sum.</summary>
    internal readonly record struct InFlight(byte[] Buffer, int Length, TimeSpan Arrival, long Sequence, bool ChecksumPending = false);

    internal object Gate => _gate;
}

/// <summary>One stack's attachment to a <see cref="VirtualWire"/>.</summary>
public sealed class VirtualPort : ILinkDevice
{
    private readonly VirtualWire _wire;
    // Ordered by arrival time, then by send order, so equal-time frames keep their order.
    private readonly ArrivalQueue _queue = new();
    // The frames of one Receive batch, taken under one hold of the gate; their slots are given back under the next hold,
    // in the same call or the next one (an empty port keeps up to a batch's slots until frames come again).
    private readonly VirtualWire.InFlight[] _batch = new VirtualWire.InFlight[64];
    private int _handedOut; // _batch[.._handedOut]: handed, slots not yet given back
    private readonly SemaphoreSlim _signal = new(0, int.MaxValue);
    private bool _disposed;
    // The queue's length, written under the gate and read without it: an empty port's Receive and NextArrival (every
    // turn of its loop) skip the gate the senders need. A frame queued after the read wakes the loop (Wake), so a
    // stale 0 costs one turn, not a frame.
    private int _queued;

    internal VirtualPort(VirtualWire wire, string name, MacAddress mac, int mtu)
    {
        _wire = wire;
        Name = name;
        HardwareAddress = mac;
        Mtu = mtu;
    }

    public string Name { get; }
    public MacAddress HardwareAddress { get; }
    public int Mtu { get; }
    public LinkStatistics Statistics { get; } = new();
    internal TimeSpan BusyUntil;
    /// <summary>A free slot this port's next send is copied into before the wire's gate is taken (its sender's own; set under the gate).</summary>
    internal byte[]? Spare;

    // Exchanged, not read then cleared: a port is meant to be sent on from one loop, but two threads sending at once
    // must not both copy into one slot (the second would overwrite the first's frame in flight).
    internal byte[] TakeSpare() => Interlocked.Exchange(ref Spare, null) ?? _wire.RentSlot();

    /// <summary>Whether <paramref name="frame"/> is the start of <paramref name="buffer"/> (a frame built in a lent slot).</summary>
    internal static bool StartsAt(ReadOnlySpan<byte> frame, byte[] buffer) =>
        buffer.Length > 0 && Unsafe.AreSame(ref MemoryMarshal.GetReference(frame), ref MemoryMarshal.GetArrayDataReference(buffer));

    /// <summary>
    /// The slot lent to the stack (<see cref="LendTransmitBuffer"/>): a frame built there and transmitted is carried in it
    /// without a copy. Apart from <see cref="Spare"/>, so a frame sent while the lent one is being built (an ARP request
    /// on the way) cannot overwrite it. Loop only; refilled under the gate by the send that took it.
    /// </summary>
    internal byte[]? Lent;

    /// <summary>The lent slot, taken, when <paramref name="frame"/> was built in it; otherwise null.</summary>
    internal byte[]? TakeLent(ReadOnlySpan<byte> frame)
    {
        var lent = Lent;
        if (lent is null || !StartsAt(frame, lent)) return null;
        Lent = null;
        return lent;
    }

    /// <summary>
    /// A slot of the wire's for the stack to build its next frame in (<see cref="Lent"/>): a frame built there and
    /// transmitted is carried without a copy, and the slot goes with it. Frames longer than a slot (jumbo MTUs) are not
    /// lent one.
    /// </summary>
    public Memory<byte> LendTransmitBuffer(int frameLength)
    {
        if (_disposed || frameLength > VirtualWire.SlotSize) return default;
        return Lent ??= _wire.RentSlot();
    }

    /// <summary><see cref="VirtualWire.TcpChecksumOffload"/>.</summary>
    public bool CompletesTcpChecksum => _wire.TcpChecksumOffload;

    public void TransmitChecksumPending(ReadOnlySpan<byte> frame, TimeSpan now)
    {
        if (_disposed) return;
        Statistics.FramesSent++;
        Statistics.BytesSent += frame.Length;
        _wire.Send(this, frame, now, checksumPending: true);
    }

    internal bool EnqueueLocked(VirtualWire.InFlight f, int limit, bool signal = true)
    {
        if (_disposed || _queue.Count >= limit) return false;
        _queue.Enqueue(f);
        Volatile.Write(ref _queued, _queue.Count);
        if (signal) Wake();
        return true;
    }

    internal TimeSpan? PeekArrivalLocked() => _queue.TryPeek(out var f) ? f.Arrival : null;

    public TimeSpan? NextArrival
    {
        get
        {
            if (Volatile.Read(ref _queued) == 0) return null;
            lock (_wire.Gate) return PeekArrivalLocked();
        }
    }

    public int Receive(IFrameSink sink, TimeSpan now, int max)
    {
        int n = 0, taken = 0, handed = 0;
        try
        {
            while (n < max)
            {
                if (Volatile.Read(ref _queued) == 0) break;
                // One hold of the gate gives back the slots of the frames handed before and takes the next batch of due frames.
                lock (_wire.Gate)
                {
                    ReturnHandedLocked();
                    taken = handed = 0;
                    while (taken < _batch.Length && n + taken < max && _queue.TryPeek(out var due) && due.Arrival <= now)
                    {
                        _queue.Dequeue();
                        _batch[taken++] = due;
                    }
                    Volatile.Write(ref _queued, _queue.Count);
                }
                if (taken == 0) break;
                while (handed < taken)
                {
                    var f = _batch[handed++];
                    n++;
                    Statistics.FramesReceived++;
                    Statistics.BytesReceived += f.Length;
                    if (f.ChecksumPending) sink.OnFrameChecksumPending(f.Buffer.AsSpan(0, f.Length), now);
                    else sink.OnFrame(f.Buffer.AsSpan(0, f.Length), now);
                }
                // Their slots go back at the next hold (of this call or the next), not in a hold of their own.
                _handedOut = taken;
            }
        }
        finally
        {
            if (handed < taken)
                lock (_wire.Gate)
                {
                    // Frames of the batch not handed (the sink threw) go back in their places; the rest give their slots back.
                    for (int k = handed; k < taken; k++)
                        if (!EnqueueLocked(_batch[k], int.MaxValue)) _wire.ReturnLocked(_batch[k].Buffer);
                    _handedOut = handed;
                    ReturnHandedLocked();
                    Array.Clear(_batch, 0, taken);
                }
        }
        return n;
    }

    /// <summary>Gives back the slots of the frames the last batch handed (under the gate).</summary>
    private void ReturnHandedLocked()
    {
        for (int k = 0; k < _handedOut; k++) _wire.ReturnLocked(_batch[k].Buffer);
        Array.Clear(_batch, 0, _handedOut);
        _handedOut = 0;
    }

    public void Transmit(ReadOnlySpan<byte> frame, TimeSpan now)
    {
        if (_disposed) return;
        Statistics.FramesSent++;
        Statistics.BytesSent += frame.Length;
        _wire.Send(this, frame, now);
    }

    public void Flush(TimeSpan now) { }

    public void WaitForFrames(TimeSpan timeout)
    {
        if (timeout <= TimeSpan.Zero) return;
        // The semaphore counts whole milliseconds and would return at once for less (the loop then spins through a
        // pacing gap of some µs, a clock read and a poll of every layer per turn): a shorter wait sleeps 1 ms, or
        // until Wake (a frame or posted work), whichever comes first.
        _signal.Wait(timeout < TimeSpan.FromMilliseconds(1) ? TimeSpan.FromMilliseconds(1) : timeout);
    }

    public void Wake()
    {
        if (_signal.CurrentCount == 0) _signal.Release();
    }

    public void Dispose()
    {
        if (_disposed) return;
        _wire.Detach(this);
        lock (_wire.Gate)
        {
            _disposed = true;
            ReturnHandedLocked();
            while (_queue.TryPeek(out var f))
            {
                _queue.Dequeue();
                _wire.ReturnLocked(f.Buffer);
            }
            Volatile.Write(ref _queued, 0);
        }
        Wake();
    }
}
