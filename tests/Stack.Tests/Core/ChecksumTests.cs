using System.Buffers.Binary;
using NetStack;

namespace Stack.Tests.Core;

public class ChecksumTests
{
    /// <summary>RFC 1071's definition, word by word: the reference the fast version must match.</summary>
    private static uint Reference(uint sum, ReadOnlySpan<byte> data)
    {
        ulong acc = sum;
        int i = 0;
        for (; i + 1 < data.Length; i += 2) acc += BinaryPrimitives.ReadUInt16BigEndian(data[i..]);
        if (i < data.Length) acc += (uint)data[i] << 8;
        while ((acc >> 16) != 0) acc = (acc & 0xFFFF) + (acc >> 16);
        return (uint)acc;
    }

    [Fact]
    public void Fast_sum_matches_the_rfc1071_reference_for_every_length_and_start_value()
    {
        var rng = new Random(1071);
        var buf = new byte[1600];
        for (int round = 0; round < 3000; round++)
        {
            var len = round < 200 ? round : rng.Next(buf.Length);
            rng.NextBytes(buf);
            if (round % 7 == 0) buf.AsSpan(0, len).Fill(0xFF); // carries everywhere
            var start = (uint)rng.Next(0, 0x3FFFF);
            Assert.Equal(Checksum.Finish(Reference(start, buf.AsSpan(0, len))), Checksum.Finish(Checksum.Add(start, buf.AsSpan(0, len))));
        }
    }

    [Fact]
    public void Fast_sum_matches_the_reference_at_every_alignment_and_for_jumbo_and_reassembled_lengths()
    {
        // The vector steps (from 256 bytes) and the scalar tail meet at every offset and remainder; 0xFF fill makes
        // every lane carry; lengths up to a reassembled 64 KiB datagram.
        var rng = new Random(18);
        var buf = new byte[65536 + 64];
        foreach (var len in new[] { 255, 256, 257, 319, 320, 321, 1480, 1500, 8972, 9000, 65535 })
            for (int offset = 0; offset < 64; offset += len > 10_000 ? 21 : 1)
            {
                if (offset % 5 == 0) buf.AsSpan().Fill(0xFF);
                else rng.NextBytes(buf);
                var data = buf.AsSpan(offset, len);
                var start = (uint)rng.Next(0, 0x3FFFF);
                Assert.Equal(Checksum.Finish(Reference(start, data)), Checksum.Finish(Checksum.Add(start, data)));
            }
    }

    [Fact]
    public void Rfc1071_example_and_verification()
    {
        // RFC 1071 section 3: the words 0001 f203 f4f5 f6f7 sum to 0xddf2.
        byte[] d = { 0x00, 0x01, 0xf2, 0x03, 0xf4, 0xf5, 0xf6, 0xf7 };
        Assert.Equal(0xddf2u, Checksum.Add(0, d) & 0xFFFF);
        Assert.Equal(0x220d, Checksum.Compute(d));
        var withSum = d.Concat(new byte[] { 0x22, 0x0d }).ToArray();
        Assert.True(Checksum.Verify(0, withSum));
    }

    [Fact]
    public void A_partial_checksum_completed_verifies_as_the_segment_checksum()
    {
        // What a device with checksum offload does with a TCP segment whose checksum field holds the pseudo-header sum.
        var rng = new Random(18);
        var src = new Ipv4Address(0xC0000202);
        var dst = new Ipv4Address(0xC0000201);
        foreach (var length in new[] { 20, 21, 95, 1460 + 20, 1480 + 32 })
        {
            var segment = new byte[length];
            rng.NextBytes(segment);
            var pseudo = Checksum.PseudoHeader(src, dst, 6, length);
            segment[16] = segment[17] = 0;
            var full = Checksum.Finish(Checksum.Add(pseudo, segment));
            System.Buffers.Binary.BinaryPrimitives.WriteUInt16BigEndian(segment.AsSpan(16), (ushort)pseudo);
            Checksum.CompletePartial(segment, 16);
            Assert.Equal(full, System.Buffers.Binary.BinaryPrimitives.ReadUInt16BigEndian(segment.AsSpan(16)));
            Assert.True(Checksum.Verify(pseudo, segment));
        }
    }
}
