using NetStack;

namespace Stack.Tests.Core;

/// <summary>SipHash-2-4 (behind ISNs and SYN cookies) against the reference test vectors: key 00..0f, message 00, 01, ...</summary>
public class SipHashTests
{
    private const ulong K0 = 0x0706050403020100UL, K1 = 0x0f0e0d0c0b0a0908UL;

    [Fact]
    public void Whole_word_messages_hash_to_the_reference_vectors()
    {
        Assert.Equal(0x726fdb47dd0e0e31UL, SipHash.Hash(K0, K1, ReadOnlySpan<ulong>.Empty));
        Assert.Equal(0x93f5f5799a932462UL, SipHash.Hash(K0, K1, [0x0706050403020100UL]));
        Assert.Equal(0x3f2acc7f57c29bdbUL, SipHash.Hash(K0, K1, 0x0706050403020100UL, 0x0f0e0d0c0b0a0908UL));
    }
}
