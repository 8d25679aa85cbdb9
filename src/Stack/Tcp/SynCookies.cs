namespace NetStack.Tcp;

/// <summary>
/// SYN cookies (RFC 4987 3.6): the ISN of a SYN-ACK that keeps no state carries what the connection needs back.
/// The cookie (before a keyed offset per four-tuple hides it) is a 6-bit time counter (64 s periods), a 2-bit index
/// into a table of MSS values (the largest not above the peer's), and 24 bits of a keyed SipHash over the four-tuple,
/// the peer's ISN, the full counter and the index. A returning ACK is valid while the counter is the same or one
/// more (a cookie lives 64 to 128 s, as Linux's). Where the peer sent timestamps, the low 6 bits of our TSval carry
/// its window scale (15: none) and SACK-permitted (bit 4; bit 5, ECN, stays 0: we do not negotiate ECN), as Linux's
/// tcp_syncookies.c lays them out; the ACK echoes them in TSecr. Without timestamps a cookie connection has no
/// window scaling and no SACK. The key is derived from the stack's ISN secret. Loop only.
/// </summary>
internal sealed class SynCookies
{
    /// <summary>The MSS values a cookie can carry (Linux's table): the common 536, PPPoE/tunnels, and Ethernet.</summary>
    internal static ReadOnlySpan<ushort> MssTable => MssValues;
    // An array, not a constant span: a Debug build's unoptimized JIT reads a constant span through reflection
    // (a RuntimeFieldInfoStub per read), and the allocation rule test then failed in Debug (Release, as CI builds, did not).
    private static readonly ushort[] MssValues = [536, 1300, 1440, 1460];
    /// <summary>The time counter's period; a cookie is valid in its period and the next.</summary>
    public static readonly TimeSpan Period = TimeSpan.FromSeconds(64);

    private const int HashBits = 24, IndexBits = 2;
    private const uint HashMask = (1u << HashBits) - 1, IndexMask = (1u << IndexBits) - 1, CounterMask = (1u << (32 - HashBits - IndexBits)) - 1;
    /// <summary>TSval's low bits that carry options: window scale in bits 0-3 (15: none), SACK-permitted in bit 4, ECN in bit 5.</summary>
    private const uint TsOptionMask = 0x3f, TsNoWindowScale = 0xf, TsSack = 0x10;

    private readonly ulong _k0, _k1;
    private readonly uint _us;

    /// <param name="k0">With <paramref name="k1"/>, a secret drawn from the stack's random source.</param>
    /// <param name="us">Our address, part of the four-tuple.</param>
    public SynCookies(ulong k0, ulong k1, Ipv4Address us)
    {
        // A key of its own, derived from the secret, so a cookie says nothing about our ISNs and the other way round.
        _k0 = SipHash.Hash(k0, k1, 0x73796e636f6f6b69UL, 0);
        _k1 = SipHash.Hash(k0, k1, 0x73796e636f6f6b69UL, 1);
        _us = us.Value;
    }

    /// <summary>The time counter at <paramref name="now"/>.</summary>
    public static long Counter(TimeSpan now) => now.Ticks / Period.Ticks;

    /// <summary>The index in <see cref="MssTable"/> of the largest MSS not above <paramref name="peerMss"/> (536 at least).</summary>
    public static int MssIndex(int peerMss)
    {
        var table = MssTable;
        for (int i = table.Length - 1; i > 0; i--)
            if (peerMss >= table[i]) return i;
        return 0;
    }

    /// <summary>The ISN of a cookie SYN-ACK answering a SYN with sequence number <paramref name="peerIsn"/> and MSS <paramref name="peerMss"/>.</summary>
    public uint Make(in ConnKey key, uint peerIsn, int peerMss, TimeSpan now)
    {
        var index = MssIndex(peerMss);
        var t = Counter(now);
        var cookie = ((uint)t & CounterMask) << (HashBits + IndexBits) | (uint)index << HashBits | Mac(key, peerIsn, t, index);
        return cookie + Offset(key);
    }

    /// <summary>
    /// Whether <paramref name="isn"/> (SEG.ACK - 1 of a returning ACK) is a cookie we made for this four-tuple and the
    /// peer's ISN <paramref name="peerIsn"/> (SEG.SEQ - 1) in this period or the one before; if so, the MSS it carries.
    /// </summary>
    public bool TryCheck(in ConnKey key, uint isn, uint peerIsn, TimeSpan now, out ushort mss)
    {
        mss = 0;
        var cookie = isn - Offset(key);
        var t = Counter(now);
        var age = ((uint)t - (cookie >> (HashBits + IndexBits))) & CounterMask;
        if (age > 1) return false; // stale (or forged)
        var index = (int)((cookie >> HashBits) & IndexMask);
        if ((cookie & HashMask) != Mac(key, peerIsn, t - age, index)) return false;
        mss = MssTable[index];
        return true;
    }

    /// <summary>
    /// Our TSval for a cookie SYN-ACK: the clock <paramref name="tsNow"/> with its low 6 bits replaced by the peer's window
    /// scale (-1: none) and SACK-permitted, moved back one step if that would put it ahead of the clock.
    /// </summary>
    public static uint TimestampWithOptions(uint tsNow, int peerWindowScale, bool sackPermitted)
    {
        var options = (peerWindowScale >= 0 ? (uint)peerWindowScale : TsNoWindowScale) | (sackPermitted ? TsSack : 0);
        var ts = (tsNow & ~TsOptionMask) | options;
        if (Seq.Gt(ts, tsNow)) ts -= TsOptionMask + 1;
        return ts;
    }

    /// <summary>The peer's options from the TSecr of a returning ACK: its window scale (-1: none) and SACK-permitted.</summary>
    public static (int WindowScale, bool SackPermitted) OptionsFromTimestamp(uint tsEcr)
    {
        var ws = tsEcr & TsNoWindowScale;
        return (ws == TsNoWindowScale ? -1 : (int)Math.Min(ws, 14u), (tsEcr & TsSack) != 0);
    }

    private uint Offset(in ConnKey key) => (uint)SipHash.Hash(_k0, _k1, Tuple(key), Ports(key));

    private uint Mac(in ConnKey key, uint peerIsn, long counter, int index) =>
        (uint)SipHash.Hash(_k0, _k1, Tuple(key), Ports(key) | (ulong)peerIsn << 32, (ulong)counter << 8 | (uint)index) & HashMask;

    private ulong Tuple(in ConnKey key) => (ulong)_us << 32 | key.RemoteAddress;

    private static ulong Ports(in ConnKey key) => (ulong)key.LocalPort << 16 | key.RemotePort;
}
