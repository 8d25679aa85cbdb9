using System.Buffers.Binary;
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using System.Runtime.Intrinsics;

namespace NetStack;

/// <summary>The Internet checksum (RFC 1071), computed over spans without allocation.</summary>
public static class Checksum
{
    // Below this the scalar loop is as fast (headers, ACKs): the vector sums cost a fold at the end.
    private const int VectorThreshold = 256;

    /// <summary>Adds the bytes of <paramref name="data"/> (as big-endian 16-bit words) to a running one's-complement sum.</summary>
    /// <remarks>
    /// The one's-complement sum does not depend on byte order (RFC 1071 section 2(B)): the data is summed as
    /// native 32-bit words into 64-bit accumulators, folded, and byte-swapped once at the end. Measured on this
    /// kind of machine (1400 bytes, machine busy): ~100 ns, against ~350 ns for the 16-bit-word loop it replaced.
    /// From 256 bytes on, where the CPU has 256- or 128-bit vectors, 64 or 32 bytes a step go through vector lanes
    /// of the same 64-bit sums first: 1500 bytes ~2x and 9000 bytes ~3x faster (docs/benchmarks.md).
    /// </remarks>
    public static uint Add(uint sum, ReadOnlySpan<byte> data)
    {
        ref byte p = ref MemoryMarshal.GetReference(data);
        nuint n = (nuint)data.Length, i = 0;
        ulong a0 = 0, a1 = 0, a2 = 0, a3 = 0;
        if (n >= VectorThreshold && Vector256.IsHardwareAccelerated) a0 = AddVector256(ref p, n, out i);
        else if (n >= VectorThreshold && Vector128.IsHardwareAccelerated) a0 = AddVector128(ref p, n, out i);
        for (; i + 32 <= n; i += 32)
        {
            ulong v0 = Unsafe.ReadUnaligned<ulong>(ref Unsafe.Add(ref p, i));
            ulong v1 = Unsafe.ReadUnaligned<ulong>(ref Unsafe.Add(ref p, i + 8));
            ulong v2 = Unsafe.ReadUnaligned<ulong>(ref Unsafe.Add(ref p, i + 16));
            ulong v3 = Unsafe.ReadUnaligned<ulong>(ref Unsafe.Add(ref p, i + 24));
            a0 += (uint)v0 + (v0 >> 32);
            a1 += (uint)v1 + (v1 >> 32);
            a2 += (uint)v2 + (v2 >> 32);
            a3 += (uint)v3 + (v3 >> 32);
        }
        for (; i + 8 <= n; i += 8)
        {
            ulong v = Unsafe.ReadUnaligned<ulong>(ref Unsafe.Add(ref p, i));
            a0 += (uint)v + (v >> 32);
        }
        for (; i + 2 <= n; i += 2) a1 += Unsafe.ReadUnaligned<ushort>(ref Unsafe.Add(ref p, i));
        // A trailing odd byte is the high byte of a big-endian word; in memory order that is the word's first byte.
        if (i < n) a2 += BitConverter.IsLittleEndian ? Unsafe.Add(ref p, i) : (ulong)Unsafe.Add(ref p, i) << 8;

        // Fold each accumulator to 32 bits before adding them, so the sum cannot overflow 64 bits.
        ulong acc = Fold32(a0) + Fold32(a1) + Fold32(a2) + Fold32(a3);
        acc = Fold32(acc);
        acc = (acc & 0xFFFF) + (acc >> 16);
        acc = (acc & 0xFFFF) + (acc >> 16);
        var native = (ushort)acc;
        ulong total = (ulong)sum + (BitConverter.IsLittleEndian ? BinaryPrimitives.ReverseEndianness(native) : native);
        return (uint)Fold32(total);
    }

    /// <summary>
    /// The native 32-bit words of p[0..] in 64-byte steps while they last (done: how many it took), as two 64-bit sums per
    /// lane: each 64-bit lane splits into its low and high word. A lane gains under 2^32 a step, so a span of any
    /// length (under 2 GiB) cannot overflow it; the result is folded to 32 bits.
    /// </summary>
    private static ulong AddVector256(ref byte p, nuint n, out nuint done)
    {
        nuint i = 0; // a local, not the caller's: a loop counter behind a reference goes through memory every step
        var low = Vector256.Create(0xFFFF_FFFFUL);
        Vector256<ulong> s0 = default, s1 = default, s2 = default, s3 = default;
        for (; i + 64 <= n; i += 64)
        {
            var v0 = Vector256.LoadUnsafe(ref p, i).AsUInt64();
            var v1 = Vector256.LoadUnsafe(ref p, i + 32).AsUInt64();
            s0 += v0 & low;
            s1 += Vector256.ShiftRightLogical(v0, 32);
            s2 += v1 & low;
            s3 += Vector256.ShiftRightLogical(v1, 32);
        }
        done = i;
        return FoldLanes(s0 + s1 + s2 + s3); // each lane under 2^57 (n < 2^31): the four add up without overflow
    }

    /// <summary>As <see cref="AddVector256"/> with 128-bit vectors, 32 bytes a step.</summary>
    private static ulong AddVector128(ref byte p, nuint n, out nuint done)
    {
        nuint i = 0; // a local, not the caller's: a loop counter behind a reference goes through memory every step
        var low = Vector128.Create(0xFFFF_FFFFUL);
        Vector128<ulong> s0 = default, s1 = default, s2 = default, s3 = default;
        for (; i + 32 <= n; i += 32)
        {
            var v0 = Vector128.LoadUnsafe(ref p, i).AsUInt64();
            var v1 = Vector128.LoadUnsafe(ref p, i + 16).AsUInt64();
            s0 += v0 & low;
            s1 += Vector128.ShiftRightLogical(v0, 32);
            s2 += v1 & low;
            s3 += Vector128.ShiftRightLogical(v1, 32);
        }
        done = i;
        var s = s0 + s1 + s2 + s3;
        return Fold32(Fold32(s.GetElement(0)) + Fold32(s.GetElement(1)));
    }

    private static ulong FoldLanes(Vector256<ulong> v) =>
        Fold32(Fold32(v.GetElement(0)) + Fold32(v.GetElement(1)) + Fold32(v.GetElement(2)) + Fold32(v.GetElement(3)));

    private static ulong Fold32(ulong v)
    {
        v = (v & 0xFFFFFFFF) + (v >> 32);
        return (v & 0xFFFFFFFF) + (v >> 32);
    }

    /// <summary>Folds a running sum to 16 bits and complements it: the value to put in a header.</summary>
    public static ushort Finish(uint sum)
    {
        while ((sum >> 16) != 0) sum = (sum & 0xFFFF) + (sum >> 16);
        return (ushort)~sum;
    }

    public static ushort Compute(ReadOnlySpan<byte> data) => Finish(Add(0, data));

    /// <summary>The running sum of the IPv4 pseudo-header used by TCP and UDP (RFC 768, RFC 9293 section 3.1).</summary>
    public static uint PseudoHeader(Ipv4Address source, Ipv4Address destination, byte protocol, int length)
    {
        ulong s = (source.Value >> 16) + (source.Value & 0xFFFF) + (destination.Value >> 16) + (destination.Value & 0xFFFF)
                  + protocol + (uint)length;
        while ((s >> 16) != 0) s = (s & 0xFFFF) + (s >> 16);
        return (uint)s;
    }

    /// <summary>True when a region that carries its own checksum sums to 0xFFFF (i.e. verifies).</summary>
    public static bool Verify(uint initial, ReadOnlySpan<byte> data) => Finish(Add(initial, data)) == 0;

    /// <summary>
    /// Completes a partial checksum: the field at <paramref name="checksumOffset"/> of <paramref name="region"/> holds
    /// the pseudo-header sum (<see cref="PseudoHeader"/>, not complemented; the convention of Linux's CHECKSUM_PARTIAL
    /// and virtio's NEEDS_CSUM), and is replaced by the checksum of the whole region.
    /// </summary>
    public static void CompletePartial(Span<byte> region, int checksumOffset) =>
        BinaryPrimitives.WriteUInt16BigEndian(region[checksumOffset..], Finish(Add(0, region)));
}
