using System.Buffers.Binary;
using System.Runtime.InteropServices;

namespace NetStack;

/// <summary>The Internet checksum (RFC 1071), computed over spans without allocation.</summary>
public static class Checksum
{
    /// <summary>Adds the bytes of <paramref name="data"/> to a running 32-bit one's-complement sum.</summary>
    public static uint Add(uint sum, ReadOnlySpan<byte> data)
    {
        ulong acc = sum;
        // 8 bytes at a time as big-endian 16-bit words folded into a 64-bit accumulator.
        while (data.Length >= 8)
        {
            var v = BinaryPrimitives.ReadUInt64BigEndian(data);
            acc += (v >> 48) + ((v >> 32) & 0xFFFF) + ((v >> 16) & 0xFFFF) + (v & 0xFFFF);
            data = data[8..];
        }
        while (data.Length >= 2)
        {
            acc += BinaryPrimitives.ReadUInt16BigEndian(data);
            data = data[2..];
        }
        if (data.Length == 1) acc += (uint)data[0] << 8;
        while ((acc >> 32) != 0) acc = (acc & 0xFFFFFFFF) + (acc >> 32);
        return (uint)acc;
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
}
