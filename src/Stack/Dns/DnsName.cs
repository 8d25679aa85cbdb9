using System.Text;

namespace NetStack.Dns;

/// <summary>
/// Domain names (RFC 1035 3.1, 4.1.4): validation of names users give, and their uncompressed wire form
/// (length-prefixed labels ending in a zero byte), lower-cased so that names compare byte for byte
/// (DNS names are case-insensitive, RFC 4343).
/// </summary>
public static class DnsName
{
    /// <summary>Longest name in wire form, terminating zero included (RFC 1035 2.3.4).</summary>
    public const int MaxWireLength = 255;
    public const int MaxLabelLength = 63;

    /// <summary>
    /// The name as the resolver uses it: trimmed, lower-case, without a trailing dot. Throws ArgumentException
    /// naming the problem when it cannot be a DNS name.
    /// </summary>
    public static string Normalize(string name)
    {
        ArgumentNullException.ThrowIfNull(name);
        var n = name.Trim();
        if (n.EndsWith('.')) n = n[..^1];
        if (n.Length == 0) throw new ArgumentException("The name is empty; give a host name such as www.example.com.", nameof(name));
        if (n.Length + 2 > MaxWireLength) throw new ArgumentException($"'{name}' is longer than the 253 characters a DNS name may have.", nameof(name));
        var labelStart = 0;
        for (int i = 0; i <= n.Length; i++)
        {
            if (i < n.Length && n[i] != '.')
            {
                var ch = n[i];
                if (ch > 0x7E || ch <= 0x20)
                    throw new ArgumentException($"'{name}' contains '{ch}', which a DNS name cannot carry; give internationalized names in their xn-- (punycode) form.", nameof(name));
                continue;
            }
            var len = i - labelStart;
            if (len == 0) throw new ArgumentException($"'{name}' has an empty label (two dots in a row, or a leading dot).", nameof(name));
            if (len > MaxLabelLength) throw new ArgumentException($"'{name}' has a label of {len} characters; DNS allows at most {MaxLabelLength}.", nameof(name));
            labelStart = i + 1;
        }
        return n.ToLowerInvariant();
    }

    /// <summary>The reverse-lookup name of an address: 1.2.0.192.in-addr.arpa for 192.0.2.1 (RFC 1035 3.5).</summary>
    public static string ReverseName(Ipv4Address a)
    {
        var v = a.Value;
        return $"{v & 0xFF}.{(v >> 8) & 0xFF}.{(v >> 16) & 0xFF}.{v >> 24}.in-addr.arpa";
    }

    /// <summary>The wire form of a name already passed through <see cref="Normalize"/>.</summary>
    public static byte[] Encode(string normalized)
    {
        var wire = new byte[normalized.Length + 2];
        var pos = 0;
        foreach (var label in normalized.Split('.'))
        {
            wire[pos++] = (byte)label.Length;
            pos += Encoding.ASCII.GetBytes(label, wire.AsSpan(pos));
        }
        wire[pos] = 0;
        return wire;
    }

    /// <summary>
    /// Reads the possibly compressed name at <paramref name="offset"/> of <paramref name="message"/> into
    /// <paramref name="wire"/> (at least 255 bytes) in lower-case wire form. <paramref name="next"/> is the offset
    /// just past the name where it appears. False when malformed: out of bounds, a reserved label type, too
    /// long, or a compression pointer that does not point strictly backwards (which also rules out loops), or
    /// more pointers than a name has labels.
    /// </summary>
    public static bool TryRead(ReadOnlySpan<byte> message, int offset, Span<byte> wire, out int length, out int next)
    {
        length = 0;
        next = -1;
        var pos = offset;
        var limit = offset; // pointers must go strictly before the label that holds them
        var jumps = 0;
        while (true)
        {
            if (pos >= message.Length) return false;
            var b = message[pos];
            if (b == 0)
            {
                if (next < 0) next = pos + 1;
                if (length + 1 > MaxWireLength) return false;
                wire[length++] = 0;
                return true;
            }
            switch (b & 0xC0)
            {
                case 0xC0:
                    if (pos + 1 >= message.Length) return false;
                    var target = ((b & 0x3F) << 8) | message[pos + 1];
                    if (next < 0) next = pos + 2;
                    // A real name needs at most one pointer per label; a chain of pointers to pointers is an attack on our time.
                    if (target >= limit || ++jumps > MaxWireLength / 2) return false;
                    pos = limit = target;
                    continue;
                case 0x00:
                    if (pos + 1 + b > message.Length || length + 1 + b + 1 > MaxWireLength) return false;
                    wire[length++] = b;
                    for (int i = 0; i < b; i++)
                    {
                        var c = message[pos + 1 + i];
                        wire[length++] = c is >= (byte)'A' and <= (byte)'Z' ? (byte)(c + 32) : c;
                    }
                    pos += 1 + b;
                    continue;
                default:
                    return false; // 0x40 and 0x80 label types are reserved / obsolete (RFC 6891 dropped them)
            }
        }
    }

    /// <summary>Skips the name at <paramref name="offset"/>; the offset past it, or -1 when malformed.</summary>
    public static int Skip(ReadOnlySpan<byte> message, int offset)
    {
        Span<byte> scratch = stackalloc byte[MaxWireLength];
        return TryRead(message, offset, scratch, out _, out var next) ? next : -1;
    }

    /// <summary>The dotted text form of a wire-form name.</summary>
    public static string ToText(ReadOnlySpan<byte> wire)
    {
        var sb = new StringBuilder(wire.Length);
        var pos = 0;
        while (pos < wire.Length && wire[pos] != 0)
        {
            if (sb.Length > 0) sb.Append('.');
            var len = wire[pos];
            foreach (var c in wire.Slice(pos + 1, len)) sb.Append(c is >= 0x21 and <= 0x7E ? (char)c : '?');
            pos += 1 + len;
        }
        return sb.ToString();
    }
}
