using System.Security.Cryptography;

namespace NetStack;

/// <summary>
/// Where the values an off-path attacker must not guess come from: DNS query ids and source ports (RFC 5452 9.2), the
/// ephemeral-port and ISN secrets (RFC 6056, RFC 6528), the IP identification key (RFC 7739), DHCP transaction ids
/// (RFC 2131) and the ICMP echo identifier. A stack without a seed draws them from the operating system's
/// cryptographic generator; a seeded stack (a simulation) from its seeded System.Random, so a run replays exactly.
/// </summary>
internal interface IRandomSource
{
    /// <summary>True when the values come from a cryptographically secure generator, false when they replay from a seed.</summary>
    bool IsCryptographic { get; }

    /// <summary>A value in [0, <paramref name="maxExclusive"/>), uniformly.</summary>
    int Next(int maxExclusive);

    void NextBytes(Span<byte> buffer);
}

/// <summary>The operating system's CSPRNG (<see cref="RandomNumberGenerator"/>): thread-safe, unpredictable.</summary>
internal sealed class CryptoRandomSource : IRandomSource
{
    public static readonly CryptoRandomSource Instance = new();

    private CryptoRandomSource() { }

    public bool IsCryptographic => true;
    public int Next(int maxExclusive) => RandomNumberGenerator.GetInt32(maxExclusive);
    public void NextBytes(Span<byte> buffer) => RandomNumberGenerator.Fill(buffer);
}

/// <summary>A seeded simulation's source: draws from the stack's one System.Random, in the order the layers ask.</summary>
internal sealed class SeededRandomSource(Random random) : IRandomSource
{
    public bool IsCryptographic => false;
    public int Next(int maxExclusive) => random.Next(maxExclusive);
    public void NextBytes(Span<byte> buffer) => random.NextBytes(buffer);
}
