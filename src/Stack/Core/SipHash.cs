namespace NetStack;

/// <summary>
/// SipHash-2-4 (Aumasson and Bernstein) over whole 64-bit words, keyed by two words: the keyed hash behind TCP's ISNs
/// (RFC 6528) and SYN cookies (RFC 4987). Allocates nothing.
/// </summary>
internal static class SipHash
{
    private static ulong Rotl(ulong x, int b) => (x << b) | (x >> (64 - b));

    public static ulong Hash(ulong k0, ulong k1, ulong m0, ulong m1) => Hash(k0, k1, [m0, m1]);

    public static ulong Hash(ulong k0, ulong k1, ulong m0, ulong m1, ulong m2) => Hash(k0, k1, [m0, m1, m2]);

    /// <summary>The hash of <paramref name="words"/> (8 bytes each; the length goes into the last block).</summary>
    public static ulong Hash(ulong k0, ulong k1, ReadOnlySpan<ulong> words)
    {
        ulong v0 = 0x736f6d6570736575UL ^ k0, v1 = 0x646f72616e646f6dUL ^ k1, v2 = 0x6c7967656e657261UL ^ k0, v3 = 0x7465646279746573UL ^ k1;
        void Round()
        {
            v0 += v1; v1 = Rotl(v1, 13); v1 ^= v0; v0 = Rotl(v0, 32);
            v2 += v3; v3 = Rotl(v3, 16); v3 ^= v2;
            v0 += v3; v3 = Rotl(v3, 21); v3 ^= v0;
            v2 += v1; v1 = Rotl(v1, 17); v1 ^= v2; v2 = Rotl(v2, 32);
        }
        void Compress(ulong m)
        {
            v3 ^= m; Round(); Round(); v0 ^= m;
        }
        foreach (var m in words) Compress(m);
        Compress((ulong)(words.Length * 8 & 0xff) << 56);
        v2 ^= 0xff;
        Round(); Round(); Round(); Round();
        return v0 ^ v1 ^ v2 ^ v3;
    }
}
