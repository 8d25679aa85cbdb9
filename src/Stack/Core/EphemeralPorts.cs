namespace NetStack;

/// <summary>
/// The ephemeral port allocator TCP and UDP share (RFC 6056). Loop-thread only. Which ports are taken is each
/// transport's business: it passes a test that rejects them.
/// </summary>
internal sealed class EphemeralPorts
{
    private readonly StackConfig _config;
    private readonly IRandomSource _random;
    private readonly byte[] _secret = new byte[16];
    private uint _counter;

    public EphemeralPorts(StackConfig config, Random random) : this(config, new SeededRandomSource(random)) { }

    /// <param name="random">The stack's unpredictable source (<see cref="LayerContext.Unpredictable"/>): the secret and random ports come from it.</param>
    public EphemeralPorts(StackConfig config, IRandomSource random)
    {
        _config = config;
        _random = random;
        random.NextBytes(_secret);
    }

    /// <summary>
    /// Picks an ephemeral port per RFC 6056 algorithm 3 (simple hash-based): the search starts at an offset
    /// from a keyed hash of the destination plus a counter, and <paramref name="inUse"/> rejects taken ports.
    /// </summary>
    /// <param name="protocol">The transport's IP protocol number (6, 17): part of the hash, so each transport's search starts elsewhere.</param>
    public ushort? Allocate(byte protocol, Ipv4Address remote, ushort remotePort, Func<ushort, bool> inUse)
    {
        var first = _config.EphemeralPortFirst;
        var count = _config.EphemeralPortLast - first + 1;
        // A keyed FNV-1a rather than HashCode: HashCode is seeded per process, which would make a simulation's
        // ports (and so its ISNs and timing) differ from run to run for the same seed.
        uint offset = 2166136261;
        foreach (var b in _secret) offset = (offset ^ b) * 16777619;
        ReadOnlySpan<uint> values = [(uint)protocol, remote.Value, remotePort]; // on the stack: nothing allocated per connect
        foreach (var v in values)
            for (int k = 0; k < 32; k += 8) offset = (offset ^ ((v >> k) & 0xFF)) * 16777619;
        for (int i = 0; i < count; i++)
        {
            var port = (ushort)(first + (offset + _counter + (uint)i) % (uint)count);
            if (!inUse(port))
            {
                _counter += (uint)i + 1;
                return port;
            }
        }
        return null;
    }

    /// <summary>
    /// An unused ephemeral port picked uniformly at random (RFC 6056 algorithm 1), as a DNS query's source
    /// port should be (RFC 5452 9.2): an off-path attacker then has to guess port and id together.
    /// </summary>
    public ushort? AllocateRandom(Func<ushort, bool> inUse)
    {
        var count = _config.EphemeralPortLast - _config.EphemeralPortFirst + 1;
        var start = _random.Next(count);
        for (int i = 0; i < count; i++)
        {
            var port = (ushort)(_config.EphemeralPortFirst + (start + i) % count);
            if (!inUse(port)) return port;
        }
        return null;
    }
}
