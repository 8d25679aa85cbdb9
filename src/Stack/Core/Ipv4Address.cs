using System.Buffers.Binary;
using System.Diagnostics.CodeAnalysis;
using System.Net;
using System.Net.Sockets;

namespace NetStack;

/// <summary>An IPv4 address as a value (no allocation), held in host byte order.</summary>
public readonly struct Ipv4Address : IEquatable<Ipv4Address>, IComparable<Ipv4Address>
{
    public Ipv4Address(uint value) => Value = value;
    public Ipv4Address(byte a, byte b, byte c, byte d) => Value = (uint)(a << 24 | b << 16 | c << 8 | d);

    /// <summary>The address as a host-order integer: 192.0.2.1 is 0xC0000201.</summary>
    public uint Value { get; }

    public static readonly Ipv4Address Any = new(0);
    public static readonly Ipv4Address Broadcast = new(0xFFFFFFFF);

    public bool IsUnspecified => Value == 0;
    public bool IsBroadcast => Value == 0xFFFFFFFF;
    public bool IsMulticast => (Value >> 28) == 0xE;
    public bool IsLoopback => (Value >> 24) == 127;

    /// <summary>
    /// Can name one host (RFC 1122 3.2.1.3): not 0.0.0.0, not the limited broadcast, not multicast, not loopback.
    /// On a subnet its broadcast address is excluded too: see <see cref="StackConfig.IsUnicastHost"/>.
    /// </summary>
    public bool IsUnicast => !(IsUnspecified || IsBroadcast || IsMulticast || IsLoopback);

    public static Ipv4Address Read(ReadOnlySpan<byte> source) => new(BinaryPrimitives.ReadUInt32BigEndian(source));
    public void Write(Span<byte> destination) => BinaryPrimitives.WriteUInt32BigEndian(destination, Value);

    /// <summary>The network mask for a prefix length (0..32).</summary>
    public static uint MaskOf(int prefixLength) => prefixLength == 0 ? 0 : uint.MaxValue << (32 - prefixLength);

    public bool IsInSubnet(Ipv4Address network, int prefixLength)
    {
        var mask = MaskOf(prefixLength);
        return (Value & mask) == (network.Value & mask);
    }

    public IPAddress ToIPAddress()
    {
        Span<byte> b = stackalloc byte[4];
        Write(b);
        return new IPAddress(b);
    }

    public static Ipv4Address FromIPAddress(IPAddress address)
    {
        ArgumentNullException.ThrowIfNull(address);
        if (address.IsIPv4MappedToIPv6) address = address.MapToIPv4();
        if (address.AddressFamily != AddressFamily.InterNetwork)
            throw new ArgumentException($"'{address}' is not an IPv4 address; NetStack speaks IPv4 only.", nameof(address));
        Span<byte> b = stackalloc byte[4];
        address.TryWriteBytes(b, out _);
        return Read(b);
    }

    public static implicit operator Ipv4Address(IPAddress address) => FromIPAddress(address);

    public static bool TryParse([NotNullWhen(true)] string? text, out Ipv4Address address)
    {
        address = default;
        if (text is null) return false;
        var parts = text.Trim().Split('.');
        if (parts.Length != 4) return false;
        uint v = 0;
        foreach (var p in parts)
        {
            if (p.Length is 0 or > 3 || !p.All(char.IsAsciiDigit)) return false;
            var n = int.Parse(p, System.Globalization.CultureInfo.InvariantCulture);
            if (n > 255) return false;
            v = v << 8 | (uint)n;
        }
        address = new Ipv4Address(v);
        return true;
    }

    public static Ipv4Address Parse(string text) =>
        TryParse(text, out var a) ? a : throw new FormatException($"'{text}' is not a dotted-quad IPv4 address such as 192.0.2.2.");

    public bool Equals(Ipv4Address other) => Value == other.Value;
    public override bool Equals(object? obj) => obj is Ipv4Address o && Equals(o);
    public override int GetHashCode() => (int)Value;
    public int CompareTo(Ipv4Address other) => Value.CompareTo(other.Value);
    public static bool operator ==(Ipv4Address a, Ipv4Address b) => a.Value == b.Value;
    public static bool operator !=(Ipv4Address a, Ipv4Address b) => a.Value != b.Value;
    public override string ToString() => $"{Value >> 24}.{(Value >> 16) & 0xFF}.{(Value >> 8) & 0xFF}.{Value & 0xFF}";
}
