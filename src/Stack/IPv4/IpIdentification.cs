namespace NetStack.IPv4;

/// <summary>
/// The Identification of each outgoing datagram (RFC 7739 5.3, RFC 6274 3.5): a counter per bucket of a keyed hash of
/// (source, destination, protocol), started at a keyed offset. Fragments of one datagram still share an id, ids to one
/// destination and protocol still differ for reassembly's sake (RFC 791, RFC 6864 4.2), but an off-path host can
/// neither predict the ids we send to another host nor count our traffic through one global counter. Loop-thread only.
/// </summary>
internal sealed class IpIdentification
{
    private const int Buckets = 2048; // as Linux's ip_idents: a collision shares a counter, nothing more
    private readonly ulong _k0, _k1;
    private readonly ushort[] _counters = new ushort[Buckets];

    /// <param name="random">The stack's unpredictable source (<see cref="LayerContext.Unpredictable"/>): the hash key comes from it.</param>
    public IpIdentification(IRandomSource random)
    {
        Span<byte> key = stackalloc byte[16];
        random.NextBytes(key);
        _k0 = BitConverter.ToUInt64(key);
        _k1 = BitConverter.ToUInt64(key[8..]);
    }

    // The last flow's hash: a bulk transfer sends datagram after datagram to one destination, and the hash of the same
    // (source, destination, protocol) is the same, so it is computed once per change of flow (SipHash was 0.7% of a
    // bulk send's process CPU, docs/benchmarks.md).
    private ulong _lastFlow, _lastProtocol = ulong.MaxValue, _lastHash;

    /// <summary>The id of the next datagram from <paramref name="source"/> to <paramref name="destination"/>.</summary>
    public ushort Next(Ipv4Address source, Ipv4Address destination, IpProtocol protocol)
    {
        var flow = ((ulong)source.Value << 32) | destination.Value;
        if (flow != _lastFlow || (ulong)protocol != _lastProtocol)
        {
            _lastHash = SipHash.Hash(_k0, _k1, flow, (ulong)protocol);
            _lastFlow = flow;
            _lastProtocol = (ulong)protocol;
        }
        var h = _lastHash;
        var bucket = (int)(h & (Buckets - 1));
        return (ushort)((h >> 48) + _counters[bucket]++); // the offset (high bits) differs per destination within a bucket
    }
}
