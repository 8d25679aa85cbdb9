using NetStack;
using NetStack.Dns;

namespace Stack.Tests.Dns;

/// <summary>Name decompression and response parsing against hostile input (RFC 1035 4.1.4).</summary>
public class DnsMessageTests
{
    private static byte[] Message(params byte[] afterHeader) => [.. new byte[12], .. afterHeader];

    private static string? Read(byte[] msg, int offset)
    {
        var wire = new byte[DnsName.MaxWireLength];
        return DnsName.TryRead(msg, offset, wire, out var len, out _) ? DnsName.ToText(wire.AsSpan(0, len)) : null;
    }

    [Fact]
    public void Compressed_name_is_expanded_and_lower_cased()
    {
        // "Example.COM" at 12, then "www" followed by a pointer to it.
        var msg = Message(7, (byte)'E', (byte)'x', (byte)'a', (byte)'m', (byte)'p', (byte)'l', (byte)'e', 3, (byte)'C', (byte)'O', (byte)'M', 0,
            3, (byte)'w', (byte)'w', (byte)'w', 0xC0, 12);
        Assert.Equal("example.com", Read(msg, 12));
        Assert.Equal("www.example.com", Read(msg, 25));
        var wire = new byte[255];
        DnsName.TryRead(msg, 25, wire, out _, out var next);
        Assert.Equal(31, next); // just past the pointer, not past the name it points to
    }

    [Fact]
    public void Pointer_to_itself_or_forward_is_malformed()
    {
        Assert.Null(Read(Message(0xC0, 12), 12));          // to itself: would loop forever
        Assert.Null(Read(Message(0xC0, 14, 0), 12));       // forward
        Assert.Null(Read(Message(1, (byte)'a', 0xC0, 12), 12)); // back into the same name: also a loop
    }

    [Fact]
    public void Chain_of_pointers_to_pointers_is_malformed()
    {
        // "a" at 12, then 200 pointers each pointing at the one before: backwards every time, yet no label follows.
        var msg = new List<byte>(Message(1, (byte)'a', 0));
        msg.AddRange(new byte[] { 0xC0, 12 });
        for (int i = 1; i < 200; i++)
        {
            var previous = 15 + 2 * (i - 1);
            msg.AddRange(new byte[] { (byte)(0xC0 | previous >> 8), (byte)previous });
        }
        var bytes = msg.ToArray();
        Assert.Equal("a", Read(bytes, 15));          // one pointer: fine
        Assert.Equal("a", Read(bytes, 15 + 2 * 100)); // a hundred: still within what a name could need
        Assert.Null(Read(bytes, bytes.Length - 2));   // two hundred: refused
    }

    [Fact]
    public void Truncated_reserved_and_overlong_names_are_malformed()
    {
        Assert.Null(Read(Message(5, (byte)'a', (byte)'b'), 12)); // label runs off the end
        Assert.Null(Read(Message(3, (byte)'a', (byte)'b', (byte)'c'), 12)); // no terminating zero
        Assert.Null(Read(Message(0x40, 0), 12)); // reserved label type
        Assert.Null(Read(Message(0xC0), 12)); // half a pointer
        var longName = new List<byte>();
        for (int i = 0; i < 5; i++) { longName.Add(63); longName.AddRange(new byte[63].Select(_ => (byte)'a')); }
        longName.Add(0);
        Assert.Null(Read(Message(longName.ToArray()), 12)); // 321 bytes > 255
    }

    [Fact]
    public void Response_whose_counts_lie_is_malformed()
    {
        var qname = DnsName.Encode("a.example");
        // Header: id 7, QR|RD|RA, one question, two answers claimed; one answer present.
        byte[] header = [0, 7, 0x81, 0x80, 0, 1, 0, 2, 0, 0, 0, 0];
        byte[] answer = [0xC0, 12, 0, 1, 0, 1, 0, 0, 0, 60, 0, 4, 192, 0, 2, 1];
        byte[] msg = [.. header, .. qname, 0, 1, 0, 1, .. answer];
        Assert.Null(DnsMessage.Parse(msg));

        msg[7] = 1; // now honest
        var m = DnsMessage.Parse(msg)!;
        Assert.True(m.Answers(7, qname, 1));
        var a = Assert.Single(m.Records);
        Assert.Equal((DnsSection.Answer, "a.example", 60u, Ipv4Address.Parse("192.0.2.1")), (a.Section, a.Name, a.Ttl, a.Address));

        msg[^5] = 5; // an A record with 5 bytes of data, running past the end
        Assert.Null(DnsMessage.Parse(msg));
        Assert.Null(DnsMessage.Parse(msg.AsSpan(0, 11)));
    }

    [Fact]
    public void Query_is_a_recursive_question_of_the_type_asked()
    {
        var buffer = new byte[DnsQuery.MaxLength];
        var n = DnsQuery.Write(buffer, 0xBEEF, DnsName.Encode("www.example.com"), 1);
        byte[] expected = [0xBE, 0xEF, 0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 0,
            3, .. "www"u8, 7, .. "example"u8, 3, .. "com"u8, 0, 0, 1, 0, 1];
        Assert.Equal(expected, buffer.AsSpan(0, n).ToArray());
        n = DnsQuery.Write(buffer, 0xBEEF, DnsName.Encode("example.com"), 15);
        Assert.Equal(new byte[] { 0, 15, 0, 1 }, buffer.AsSpan(n - 4, 4).ToArray()); // MX/IN
    }
}
