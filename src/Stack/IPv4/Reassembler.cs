using System.Buffers;
using System.Buffers.Binary;
using System.Numerics;
using NetStack.Icmp;
using NetStack.Link;

namespace NetStack.IPv4;

/// <summary>
/// Fragment reassembly (RFC 791 section 3.2, RFC 815, RFC 5722's rule against overlaps). Datagrams are keyed
/// by (source, destination, protocol, identification). Each incomplete datagram owns a pooled buffer that
/// grows as fragments arrive (never beyond Ip.MaxDatagramSize) and a bitmap of the 8-byte blocks received,
/// which is the hole list: the datagram is complete when its last fragment has fixed the length and every
/// block below it is present.
/// <para>
/// A fragment that repeats bytes already held is harmless (duplicates happen on real links); one that
/// overlaps them with DIFFERENT bytes, lies about the length, or runs past 65535 discards the whole
/// datagram (counted), so a forged fragment can never splice data into someone's datagram.
/// </para>
/// <para>
/// Every datagram times out ReassemblyTimeout after its first fragment (as Linux does; the timer is not
/// restarted by later fragments). Since that interval is the same for all, datagrams expire in the order they
/// were created: they sit on a list in that order, and <see cref="Poll"/> only looks at its head.
/// </para>
/// <para>
/// Under pressure (the table or the memory budget full) the oldest incomplete datagram is evicted to make room
/// (<see cref="EvictOldest"/>): newcomers are never refused, so junk fragments cannot lock legitimate datagrams out.
/// </para>
/// <para>
/// It calls nothing outside itself: <see cref="OnFragment"/> returns the datagram a fragment completed, and
/// <see cref="TryExpire"/> returns what an ICMP error about an expired one would quote; IPv4 does the rest.
/// </para>
/// Loop-thread only; no allocation at steady state (datagram records and their bitmaps are reused).
/// </summary>
internal sealed class Reassembler
{
    /// <summary>Room kept in front of the payload for the first fragment's header (up to 60 bytes with options).</summary>
    private const int HeaderRoom = 60;
    /// <summary>The largest IP datagram (RFC 791: the total length is 16 bits).</summary>
    private const int MaxIpLength = 65535;
    private const int MaxBlocks = (MaxIpLength + 7) / 8;

    private readonly record struct Key(uint Source, uint Destination, byte Protocol, ushort Id);

    private sealed class Datagram
    {
        public Key Key;
        public TimeSpan Deadline;
        public byte[]? Buffer;
        /// <summary>Payload bytes the buffer has room for (what we charge against the memory limits).</summary>
        public int Capacity;
        /// <summary>Payload length, known once the last fragment (MF clear) has arrived; -1 before.</summary>
        public int TotalLength;
        /// <summary>One past the highest payload byte received so far.</summary>
        public int HighestEnd;
        public int BlocksFilled;
        /// <summary>Bit i set: payload bytes [8i, 8i+8) are present (the last block may be shorter).</summary>
        public readonly ulong[] Blocks = new ulong[(MaxBlocks + 63) / 64];
        /// <summary>Header of the fragment with offset 0 (the one the reassembled datagram takes), once it arrived.</summary>
        public readonly byte[] FirstHeader = new byte[HeaderRoom];
        public int FirstHeaderLength;
        public int FirstDataLength;
        /// <summary>How the latest fragment arrived (its source MAC is what the whole datagram reports).</summary>
        public LinkInfo Link;
        /// <summary>Some fragment came as a link-layer broadcast: no ICMP error about this datagram, ever (RFC 1122 3.2.2).</summary>
        public bool AnyLinkBroadcast;
        public Datagram? Older;
        public Datagram? Newer;
    }

    private readonly LayerContext _context;
    private readonly Ipv4Counters _counters;
    private readonly Dictionary<Key, Datagram> _datagrams = new();
    private readonly Stack<Datagram> _free = new();
    // Creation order is expiry order (one fixed timeout): oldest at _oldest.
    private Datagram? _oldest;
    private Datagram? _newest;
    private long _memory;

    public Reassembler(LayerContext context, Ipv4Counters counters)
    {
        _context = context;
        _counters = counters;
    }

    private Ipv4Settings Settings => _context.Config.Ip;

    /// <summary>Datagrams under reassembly now.</summary>
    public int Count => _datagrams.Count;

    /// <summary>Payload bytes held by incomplete datagrams (what Ip.ReassemblyMemoryLimit bounds).</summary>
    public long MemoryInUse => _memory;

    /// <summary>
    /// Takes one validated fragment (<paramref name="packet"/> trimmed to its total length) addressed to us. Returns
    /// true when it completed its datagram, which <paramref name="completed"/> then holds until its Release.
    /// </summary>
    public bool OnFragment(ReadOnlySpan<byte> packet, int ihl, in LinkInfo link, TimeSpan now, out ReassembledDatagram completed)
    {
        completed = default;
        var offset = Ipv4Header.FragmentOffset(packet);
        var more = Ipv4Header.MoreFragments(packet);
        var data = packet[ihl..];
        var end = offset + data.Length;
        var key = new Key(Ipv4Header.Source(packet).Value, Ipv4Header.Destination(packet).Value, Ipv4Header.Protocol(packet), Ipv4Header.Identification(packet));
        _datagrams.TryGetValue(key, out var d);

        // RFC 791 3.2: every fragment but the last carries a multiple of 8 bytes; none may reach past 65535.
        // An empty fragment says nothing useful and Linux discards its datagram too.
        if (data.Length == 0 || (more && (data.Length & 7) != 0) || ihl + end > MaxIpLength)
        {
            Discard(d, ref _counters.ReassemblyMalformed);
            return false;
        }
        if (ihl + end > Settings.MaxDatagramSize)
        {
            Discard(d, ref _counters.ReassemblyMemoryExceeded);
            return false;
        }

        if (d is null)
        {
            // Under pressure the oldest incomplete datagram makes room (see EvictOldest): a flood cannot lock newcomers out.
            if (_datagrams.Count >= Settings.MaxReassemblies) EvictOldest(except: null);
            d = Create(key, now);
        }

        if (!more)
        {
            // The last fragment fixes the length; a second opinion, or data already past it, is a lie.
            if ((d.TotalLength >= 0 && d.TotalLength != end) || d.HighestEnd > end)
            {
                Discard(d, ref _counters.ReassemblyMalformed);
                return false;
            }
            d.TotalLength = end;
        }
        else if (d.TotalLength >= 0 && end > d.TotalLength)
        {
            Discard(d, ref _counters.ReassemblyMalformed);
            return false;
        }

        if (end > d.Capacity && !Grow(d, end))
        {
            Discard(d, ref _counters.ReassemblyMemoryExceeded);
            return false;
        }

        var buffer = d.Buffer!;
        var firstBlock = offset >> 3;
        var lastBlock = (end - 1) >> 3;
        // RFC 5722 spirit: bytes we already hold must be repeated exactly, or the datagram is forged or broken.
        for (int b = firstBlock; b <= lastBlock; b++)
        {
            if ((d.Blocks[b >> 6] & (1UL << b)) == 0) continue;
            var from = Math.Max(b << 3, offset);
            var to = Math.Min((b << 3) + 8, end);
            if (!data.Slice(from - offset, to - from).SequenceEqual(buffer.AsSpan(HeaderRoom + from, to - from)))
            {
                Discard(d, ref _counters.ReassemblyOverlaps);
                return false;
            }
        }

        data.CopyTo(buffer.AsSpan(HeaderRoom + offset));
        d.BlocksFilled += SetBlocks(d.Blocks, firstBlock, lastBlock);
        if (end > d.HighestEnd) d.HighestEnd = end;
        d.Link = link;
        d.AnyLinkBroadcast |= link.IsBroadcast;
        if (offset == 0)
        {
            packet[..ihl].CopyTo(d.FirstHeader);
            d.FirstHeaderLength = ihl;
            d.FirstDataLength = data.Length;
        }

        if (d.TotalLength < 0 || d.BlocksFilled != (d.TotalLength + 7) >> 3) return false;
        return Complete(d, out completed);
    }

    /// <summary>Sets bits first..last; returns how many were newly set.</summary>
    private static int SetBlocks(ulong[] blocks, int first, int last)
    {
        int added = 0;
        for (int w = first >> 6; w <= last >> 6; w++)
        {
            var lo = w == first >> 6 ? first & 63 : 0;
            var hi = w == last >> 6 ? last & 63 : 63;
            var mask = (hi == 63 ? ulong.MaxValue : (1UL << (hi + 1)) - 1) & ~((1UL << lo) - 1);
            added += BitOperations.PopCount(mask & ~blocks[w]);
            blocks[w] |= mask;
        }
        return added;
    }

    private Datagram Create(Key key, TimeSpan now)
    {
        var d = _free.Count > 0 ? _free.Pop() : new Datagram();
        d.Key = key;
        d.Deadline = now + Settings.ReassemblyTimeout;
        d.TotalLength = -1;
        d.HighestEnd = 0;
        d.BlocksFilled = 0;
        d.FirstHeaderLength = 0;
        d.FirstDataLength = 0;
        d.Capacity = 0;
        d.AnyLinkBroadcast = false;
        d.Older = _newest;
        d.Newer = null;
        if (_newest != null) _newest.Newer = d; else _oldest = d;
        _newest = d;
        _datagrams.Add(key, d);
        return d;
    }

    /// <summary>Makes room for payload bytes up to <paramref name="end"/> within the per-datagram and total bounds.</summary>
    private bool Grow(Datagram d, int end)
    {
        var limit = Settings.MaxDatagramSize; // payload can never need more than this
        // With the length known, take exactly that; otherwise double, so a train in order copies O(n) in all.
        var capacity = d.TotalLength >= 0 ? d.TotalLength : Math.Min(limit, Math.Max(end, Math.Max(2 * d.Capacity, 2048)));
        if (capacity < end) capacity = end;
        while (_memory - d.Capacity + capacity > Settings.ReassemblyMemoryLimit)
            if (!EvictOldest(except: d)) return false;
        var buffer = ArrayPool<byte>.Shared.Rent(HeaderRoom + capacity);
        if (d.Buffer is { } old)
        {
            old.AsSpan(HeaderRoom, d.HighestEnd).CopyTo(buffer.AsSpan(HeaderRoom));
            ArrayPool<byte>.Shared.Return(old);
        }
        _memory += capacity - d.Capacity;
        d.Buffer = buffer;
        d.Capacity = capacity;
        return true;
    }

    /// <summary>Builds the whole datagram behind the first fragment's header, ready for IPv4 to deliver.</summary>
    private bool Complete(Datagram d, out ReassembledDatagram completed)
    {
        completed = default;
        var ihl = d.FirstHeaderLength;
        var total = ihl + d.TotalLength;
        if (total > MaxIpLength) { Discard(d, ref _counters.ReassemblyMalformed); return false; } // first header had options
        var buffer = d.Buffer!;
        var datagram = buffer.AsSpan(HeaderRoom - ihl, total);
        d.FirstHeader.AsSpan(0, ihl).CopyTo(datagram);
        // The header now describes the whole datagram: its full length, no offset, no more fragments.
        BinaryPrimitives.WriteUInt16BigEndian(datagram[2..], (ushort)total);
        var flags = (ushort)(Ipv4Header.FlagsAndOffset(datagram) & Ipv4Header.FlagDontFragment);
        BinaryPrimitives.WriteUInt16BigEndian(datagram[6..], flags);
        datagram[10] = 0;
        datagram[11] = 0;
        BinaryPrimitives.WriteUInt16BigEndian(datagram[10..], Checksum.Compute(datagram[..ihl]));
        _counters.DatagramsReassembled++;
        completed = new ReassembledDatagram(buffer, HeaderRoom - ihl, total, ihl,
            new LinkInfo(d.Link.Source, d.AnyLinkBroadcast, d.Link.Interface));
        // Unlinked before delivery: the transport may send, and nothing it does may see a half-freed record.
        // The buffer now belongs to the caller, who returns it (ReassembledDatagram.Release) once delivered.
        d.Buffer = null;
        Release(d);
        return true;
    }

    /// <summary>
    /// Makes room under pressure (the table or the memory budget is full) by forgetting the oldest incomplete datagram
    /// other than <paramref name="except"/>, without an ICMP error (it did not time out, and a flood must not draw
    /// errors). Oldest first, as Linux's LRU evictor did between ipfrag_high_thresh and ipfrag_low_thresh before 4.17
    /// (since then Linux refuses newcomers, which is how a flood locks legitimate datagrams out for a whole timeout):
    /// a datagram survives a flood if its fragments arrive within the time the flood takes to turn the table over
    /// (64 entries at 5,000 junk fragments/s: 13 ms; a LAN's fragment train takes microseconds). It is the head of the
    /// expiry list, so O(1), and unlike "least progress" it cannot be gamed by junk that sends two fragments per datagram.
    /// Returns false when nothing but <paramref name="except"/> is held.
    /// </summary>
    private bool EvictOldest(Datagram? except)
    {
        var victim = _oldest;
        if (victim == except) victim = victim?.Newer;
        if (victim is null) return false;
        _counters.ReassemblyEvictions++;
        _context.Trace("IPv4", $"reassembly of datagram {victim.Key.Id} from {new Ipv4Address(victim.Key.Source)} evicted to make room");
        Release(victim);
        return true;
    }

    private void Discard(Datagram? d, ref long counter)
    {
        counter++;
        if (d != null) Release(d);
    }

    /// <summary>Forgets a datagram: off the table and the expiry list, memory returned, record kept for reuse.</summary>
    private void Release(Datagram d)
    {
        _datagrams.Remove(d.Key);
        if (d.Older != null) d.Older.Newer = d.Newer; else _oldest = d.Newer;
        if (d.Newer != null) d.Newer.Older = d.Older; else _newest = d.Older;
        d.Older = d.Newer = null;
        if (d.Buffer is { } b) ArrayPool<byte>.Shared.Return(b);
        d.Buffer = null;
        _memory -= d.Capacity;
        d.Capacity = 0;
        Array.Clear(d.Blocks, 0, (((d.HighestEnd + 7) >> 3) + 63) >> 6); // only the words this datagram touched
        d.HighestEnd = 0;
        _free.Push(d);
    }

    /// <summary>When the oldest incomplete datagram expires (null: none is held).</summary>
    public TimeSpan? NextExpiry => _oldest?.Deadline;

    /// <summary>
    /// Forgets the oldest datagram if its time is up (false when none is due). <paramref name="quoteLength"/> bytes of
    /// <paramref name="quote"/> then hold what an ICMP time-exceeded error about it quotes (RFC 792: the header and at
    /// least 8 bytes of data): 0 when fragment zero never came, so there is nothing to quote and no error to send.
    /// <paramref name="linkBroadcast"/>: some fragment came as a link-layer broadcast.
    /// </summary>
    public bool TryExpire(TimeSpan now, Span<byte> quote, out int quoteLength, out bool linkBroadcast)
    {
        quoteLength = 0;
        linkBroadcast = false;
        if (_oldest is not { } d || d.Deadline > now) return false;
        _counters.ReassemblyTimeouts++;
        _context.Trace("IPv4", $"reassembly of datagram {d.Key.Id} from {new Ipv4Address(d.Key.Source)} timed out");
        var ihl = d.FirstHeaderLength;
        if (ihl != 0)
        {
            var data = Math.Min(d.FirstDataLength, quote.Length - ihl);
            d.FirstHeader.AsSpan(0, ihl).CopyTo(quote);
            d.Buffer.AsSpan(HeaderRoom, data).CopyTo(quote[ihl..]);
            quoteLength = ihl + data;
        }
        linkBroadcast = d.AnyLinkBroadcast;
        Release(d);
        return true;
    }

    public void Dispose()
    {
        while (_oldest is { } d) Release(d);
    }
}

/// <summary>A datagram the reassembler completed, in a pooled buffer that is the caller's until <see cref="Release"/>.</summary>
internal readonly struct ReassembledDatagram
{
    private readonly byte[] _buffer;
    private readonly int _offset;
    private readonly int _length;

    public ReassembledDatagram(byte[] buffer, int offset, int length, int headerLength, LinkInfo link)
    {
        _buffer = buffer;
        _offset = offset;
        _length = length;
        HeaderLength = headerLength;
        Link = link;
    }

    /// <summary>The whole datagram: its first fragment's header (rewritten for the whole) and the payload.</summary>
    public ReadOnlySpan<byte> Datagram => _buffer.AsSpan(_offset, _length);
    public int HeaderLength { get; }
    /// <summary>The last fragment's link source; broadcast if any fragment came as one.</summary>
    public LinkInfo Link { get; }

    /// <summary>Returns the buffer to the pool; the datagram's span is invalid afterwards.</summary>
    public void Release() => ArrayPool<byte>.Shared.Return(_buffer);
}
