using System.Buffers.Binary;
using System.Diagnostics.CodeAnalysis;
using System.Globalization;
using System.Net.NetworkInformation;

namespace NetStack;

/// <summary>A 48-bit Ethernet address as a value. Formats as 00-15-5D-25-05-1D, like Get-NetNeighbor.</summary>
public readonly struct MacAddress : IEquatable<MacAddress>
{
    public MacAddress(ulong value) => Value = value & 0xFFFF_FFFF_FFFFUL;

    public ulong Value { get; }

    public static readonly MacAddress Zero = new(0);
    public static readonly MacAddress Broadcast = new(0xFFFF_FFFF_FFFFUL);

    public bool IsBroadcast => Value == 0xFFFF_FFFF_FFFFUL;
    /// <summary>Group bit set (broadcast is also a group address).</summary>
    public bool IsMulticast => (Value & 0x0100_0000_0000UL) != 0;
    public bool IsZero => Value == 0;
    /// <summary>Can be a station's own address: neither zero nor a group (multicast or broadcast) address.</summary>
    public bool IsUnicast => !IsZero && !IsMulticast;

    public static MacAddress Read(ReadOnlySpan<byte> s) =>
        new((ulong)BinaryPrimitives.ReadUInt16BigEndian(s) << 32 | BinaryPrimitives.ReadUInt32BigEndian(s[2..]));

    public void Write(Span<byte> d)
    {
        BinaryPrimitives.WriteUInt16BigEndian(d, (ushort)(Value >> 32));
        BinaryPrimitives.WriteUInt32BigEndian(d[2..], (uint)Value);
    }

    /// <summary>The Ethernet multicast address for an IPv4 group (RFC 1112 section 6.4).</summary>
    public static MacAddress ForIpv4Multicast(Ipv4Address group) => new(0x0100_5E00_0000UL | (group.Value & 0x7F_FFFF));

    public PhysicalAddress ToPhysicalAddress()
    {
        var b = new byte[6];
        Write(b);
        return new PhysicalAddress(b);
    }

    public static MacAddress FromPhysicalAddress(PhysicalAddress address)
    {
        var b = address.GetAddressBytes();
        if (b.Length != 6) throw new ArgumentException($"'{address}' is not a 48-bit Ethernet address.", nameof(address));
        return Read(b);
    }

    /// <summary>Parses 00-15-5D-25-05-1D, 00:15:5d:25:05:1d or 00155D25051D.</summary>
    public static bool TryParse([NotNullWhen(true)] string? text, out MacAddress mac)
    {
        mac = default;
        if (text is null) return false;
        var hex = text.Trim().Replace("-", "").Replace(":", "").Replace(".", "");
        if (hex.Length != 12 || !ulong.TryParse(hex, NumberStyles.AllowHexSpecifier, CultureInfo.InvariantCulture, out var v)) return false;
        mac = new MacAddress(v);
        return true;
    }

    public static MacAddress Parse(string text) =>
        TryParse(text, out var m) ? m : throw new FormatException($"'{text}' is not a MAC address such as 02-00-5E-10-00-01.");

    public bool Equals(MacAddress other) => Value == other.Value;
    public override bool Equals(object? obj) => obj is MacAddress o && Equals(o);
    public override int GetHashCode() => Value.GetHashCode();
    public static bool operator ==(MacAddress a, MacAddress b) => a.Value == b.Value;
    public static bool operator !=(MacAddress a, MacAddress b) => a.Value != b.Value;

    public override string ToString() => string.Create(17, Value, static (span, v) =>
    {
        for (int i = 0; i < 6; i++)
        {
            var b = (byte)(v >> (40 - 8 * i));
            span[i * 3] = "0123456789ABCDEF"[b >> 4];
            span[i * 3 + 1] = "0123456789ABCDEF"[b & 0xF];
            if (i < 5) span[i * 3 + 2] = '-';
        }
    });
}
