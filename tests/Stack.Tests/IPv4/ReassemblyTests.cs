using NetStack;
using NetStack.IPv4;
using NetStack.Icmp;
using NetStack.Link;
using Stack.Tests.Support;
using static Stack.Tests.IPv4.IpTestFrames;
using static Stack.Tests.Support.StackHarness;

namespace Stack.Tests.IPv4;

/// <summary>Fragment reassembly rules (RFC 791 3.2, RFC 815, RFC 5722): crafted fragments in, exact result out.</summary>
public class ReassemblyTests
{
    private static readonly byte[] Data = Pattern(2992); // ICMP message of 3000 bytes
    private static readonly byte[] Request = Frames.IcmpEcho(IcmpCodes.TypeEchoRequest, 0x4242, 9, Data);
    private static readonly byte[] ExpectedReply = Frames.IcmpEcho(IcmpCodes.TypeEchoReply, 0x4242, 9, Data);

    private static void AssertEchoReplied(List<byte[]> sent)
    {
        Assert.Equal(3, sent.Count); // 3000 bytes of ICMP leave again as 3 fragments
        Assert.Equal(Frames.Hex(ExpectedReply), Frames.Hex(Reassemble(sent)));
    }

    private static List<byte[]> FeedAll(StackHarness h, IEnumerable<byte[]> frames)
    {
        var sent = new List<byte[]>();
        foreach (var f in frames) sent.AddRange(h.Feed(f));
        return sent;
    }

    private static void AssertNothingHeld(StackHarness h)
    {
        Assert.Equal(0, h.Stack.Ip.Reassembly.Count);
        Assert.Equal(0, h.Stack.Ip.Reassembly.MemoryInUse);
    }

    [Fact]
    public void Fragments_in_order_are_reassembled_and_the_echo_answered()
    {
        using var h = HarnessWithPeer();
        var sent = FeedAll(h, Train(Request, 1480));
        AssertEchoReplied(sent);
        var c = h.Stack.Ip.Counters;
        Assert.Equal(3, c.FragmentsReceived);
        Assert.Equal(1, c.DatagramsReassembled);
        AssertNothingHeld(h);
    }

    [Fact]
    public void Fragments_reversed_and_duplicated_are_reassembled_once()
    {
        using var h = HarnessWithPeer();
        var train = Train(Request, 1000);
        var sent = FeedAll(h, new[] { train[2], train[1], train[2], train[1], train[0] });
        AssertEchoReplied(sent);
        Assert.Equal(1, h.Stack.Ip.Counters.DatagramsReassembled);
        Assert.Equal(0, h.Stack.Ip.Counters.ReassemblyOverlaps);
        AssertNothingHeld(h);
    }

    [Fact]
    public void Overlap_with_identical_bytes_is_harmless()
    {
        using var h = HarnessWithPeer();
        // [0,1600) [800,2400) [1600,3000): each overlaps its neighbour with the same bytes.
        var sent = FeedAll(h, new[] { Fragment(Request, 0, 1600, true), Fragment(Request, 800, 1600, true), Fragment(Request, 1600, 1400, false) });
        AssertEchoReplied(sent);
    }

    [Fact]
    public void Overlap_with_different_bytes_drops_the_whole_datagram()
    {
        using var h = HarnessWithPeer();
        var forged = (byte[])Request.Clone();
        forged[1000] ^= 0xFF;
        Assert.Empty(h.Feed(Fragment(Request, 0, 1480, true)));
        Assert.Empty(h.Feed(Fragment(forged, 960, 1040, true))); // overlaps [960,1480) with one byte changed
        Assert.Equal(1, h.Stack.Ip.Counters.ReassemblyOverlaps);
        AssertNothingHeld(h); // fragment 0 was thrown away with it
        // The remaining genuine fragments cannot complete anything: [0,960) is gone.
        Assert.Empty(h.Feed(Fragment(Request, 1480, 1480, true)));
        Assert.Empty(h.Feed(Fragment(Request, 2960, 40, false)));
        Assert.Equal(0, h.Stack.Ip.Counters.DatagramsReassembled);
        // A clean retransmission under a new id still works.
        AssertEchoReplied(FeedAll(h, Train(Request, 1480, id: 8)));
    }

    [Fact]
    public void Non_final_fragment_not_a_multiple_of_8_drops_the_datagram()
    {
        using var h = HarnessWithPeer();
        h.Feed(Fragment(Request, 0, 1480, true));
        h.Feed(Fragment(Request, 1480, 1001, true));
        Assert.Equal(1, h.Stack.Ip.Counters.ReassemblyMalformed);
        AssertNothingHeld(h);
    }

    [Fact]
    public void Fragment_reaching_past_65535_drops_the_datagram()
    {
        using var h = HarnessWithPeer();
        h.Feed(Fragment(Request, 0, 1480, true));
        // Offset 8189*8 = 65512, plus 20 header bytes plus 16 of data = 65548 > 65535.
        var f = Frames.Ipv4(PeerMac, OurMac, PeerIp, OurIp, 1, new byte[16], 7, 8189);
        Assert.Empty(h.Feed(f));
        Assert.Equal(1, h.Stack.Ip.Counters.ReassemblyMalformed);
        AssertNothingHeld(h);
    }

    [Fact]
    public void Conflicting_last_fragment_lengths_drop_the_datagram()
    {
        using var h = HarnessWithPeer();
        h.Feed(Fragment(Request, 1480, 1520, false)); // says: 3000 bytes
        h.Feed(Fragment(Request, 1480, 1000, false)); // says: 2480 bytes
        Assert.Equal(1, h.Stack.Ip.Counters.ReassemblyMalformed);
        AssertNothingHeld(h);
    }

    [Fact]
    public void Data_beyond_the_last_fragment_drops_the_datagram()
    {
        using var h = HarnessWithPeer();
        h.Feed(Fragment(Request, 0, 2000, true));
        h.Feed(Fragment(Request, 1000, 8, false)); // claims the datagram ends at 1008, but we hold up to 2000
        Assert.Equal(1, h.Stack.Ip.Counters.ReassemblyMalformed);
        AssertNothingHeld(h);
    }

    [Fact]
    public void Reassembled_header_describes_the_whole_datagram()
    {
        // An unknown protocol arrives in fragments: the protocol-unreachable error quotes the header that was
        // delivered, which must carry the full length, no MF and no offset.
        using var h = HarnessWithPeer();
        var payload = Pattern(2000);
        var sent = FeedAll(h, Train(payload, 1480, id: 0x0BAD, protocol: ProtocolUnassigned));
        var error = Assert.Single(sent).AsSpan(Ethernet.HeaderLength);
        var quoted = error[(20 + 8)..];
        Assert.Equal(2020, Ipv4Header.TotalLength(quoted));
        Assert.Equal(0, Ipv4Header.FlagsAndOffset(quoted));
        Assert.Equal(0x0BAD, Ipv4Header.Identification(quoted));
        Assert.True(Checksum.Verify(0, quoted[..20]));
        Assert.Equal(Frames.Hex(payload.AsSpan(0, IcmpLayer.MaxQuote - 20)), Frames.Hex(quoted[20..]));
    }

    [Fact]
    public void Timeout_after_first_fragment_sends_time_exceeded_code_1_and_frees_memory()
    {
        using var h = HarnessWithPeer();
        var first = Fragment(Request, 0, 1480, true);
        h.Feed(first);
        Assert.Equal(TimeSpan.FromSeconds(30), h.Poll()); // the deadline is reported, not scanned for
        Assert.True(h.Stack.Ip.Reassembly.MemoryInUse > 0);
        h.Device.Sent.Clear();
        h.Advance(TimeSpan.FromSeconds(29.9));
        Assert.Empty(h.Device.Sent);
        h.Advance(TimeSpan.FromSeconds(0.1));

        var sent = Assert.Single(h.Device.Sent);
        // RFC 792: type 11 code 1, quoting fragment zero's header and (here) 548 - 20 bytes of its data.
        var quote = first.AsSpan(Ethernet.HeaderLength, IcmpLayer.MaxQuote).ToArray();
        var icmp = new byte[8 + quote.Length];
        icmp[0] = IcmpCodes.TypeTimeExceeded;
        icmp[1] = IcmpCodes.FragmentReassemblyTimeExceeded;
        quote.CopyTo(icmp, 8);
        System.Buffers.Binary.BinaryPrimitives.WriteUInt16BigEndian(icmp.AsSpan(2), Checksum.Compute(icmp));
        var expected = Frames.Ipv4(OurMac, PeerMac, OurIp, PeerIp, 1, icmp, IpId(sent));
        Assert.Equal(Frames.Hex(expected), Frames.Hex(sent));
        Assert.Equal(1, h.Stack.Ip.Counters.ReassemblyTimeouts);
        Assert.Equal(1, h.Stack.Icmp.Counters.TimeExceededSent);
        AssertNothingHeld(h);
        Assert.Null(h.Poll());
    }

    [Fact]
    public void Timeout_of_a_datagram_whose_fragments_came_as_link_broadcasts_sends_no_error()
    {
        // RFC 1122 3.2.2: no ICMP error about a datagram that came in a link-layer broadcast. The timeout fires long
        // after the frames have gone, so the reassembly entry keeps that fact (a frame to our IP, but to ff:ff:...).
        using var h = HarnessWithPeer();
        var first = Fragment(Request, 0, 1480, true);
        MacAddress.Broadcast.Write(first);
        var second = Fragment(Request, 1480, 1480, true); // the last one never comes
        h.Feed(first);
        h.Feed(second);
        h.Device.Sent.Clear();
        h.Advance(TimeSpan.FromSeconds(31));
        Assert.Empty(h.Device.Sent);
        Assert.Equal(1, h.Stack.Ip.Counters.ReassemblyTimeouts);
        Assert.Equal(0, h.Stack.Icmp.Counters.TimeExceededSent);
        AssertNothingHeld(h);
    }

    [Fact]
    public void A_reassembled_datagram_with_a_link_broadcast_fragment_draws_no_protocol_unreachable()
    {
        const byte Unassigned = 253; // RFC 3692 experimental: no transport takes it
        var payload = Pattern(2000);
        var fragments = Train(payload, 1480, protocol: Unassigned);
        MacAddress.Broadcast.Write(fragments[0]);
        using var h = HarnessWithPeer();
        Assert.Empty(FeedAll(h, fragments));
        Assert.Equal(1, h.Stack.Ip.Counters.DatagramsReassembled);
        Assert.Equal(1, h.Stack.Ip.Counters.DroppedUnknownProtocol);
        Assert.Equal(0, h.Stack.Icmp.Counters.DestinationUnreachableSent);

        // The same datagram in unicast frames does draw it: the silence above is the broadcast's.
        using var u = HarnessWithPeer();
        var replies = FeedAll(u, Train(payload, 1480, protocol: Unassigned));
        Assert.Single(replies);
        Assert.Equal(1, u.Stack.Icmp.Counters.DestinationUnreachableSent);
    }

    [Fact]
    public void The_reassembler_alone_returns_what_it_completed_and_what_expired()
    {
        // No stack: the reassembler calls nothing, it returns the completed datagram (and, at a timeout, the quote).
        var context = new LayerContext("alone", new StackConfig { Address = OurIp }, new Random(1));
        var counters = new Ipv4Counters();
        var reassembler = new Reassembler(context, counters);
        var unicast = new LinkInfo(PeerMac, isBroadcast: false, "test0");
        var broadcast = new LinkInfo(PeerMac, isBroadcast: true, "test0");
        var fragments = Train(Request, 1480);
        Assert.Equal(3, fragments.Count);
        ReassembledDatagram whole = default;
        for (int i = 0; i < fragments.Count; i++)
        {
            var ip = fragments[i].AsSpan(Ethernet.HeaderLength);
            ip = ip[..Ipv4Header.TotalLength(ip)];
            var done = reassembler.OnFragment(ip, Ipv4Header.MinLength, i == 1 ? broadcast : unicast, TimeSpan.Zero, out whole);
            Assert.Equal(i == fragments.Count - 1, done);
        }
        Assert.Equal(Frames.Hex(Request), Frames.Hex(whole.Datagram[whole.HeaderLength..]));
        Assert.Equal(Ipv4Header.MinLength + Request.Length, Ipv4Header.TotalLength(whole.Datagram));
        Assert.True(whole.Link.IsBroadcast); // one fragment came as a link broadcast: the whole datagram did
        whole.Release();
        Assert.Equal(0, reassembler.Count);

        var first = fragments[0].AsSpan(Ethernet.HeaderLength, 1500);
        Assert.False(reassembler.OnFragment(first, Ipv4Header.MinLength, unicast, TimeSpan.Zero, out _));
        Span<byte> quote = stackalloc byte[IcmpLayer.MaxQuote];
        Assert.False(reassembler.TryExpire(TimeSpan.FromSeconds(29), quote, out _, out _));
        Assert.True(reassembler.TryExpire(TimeSpan.FromSeconds(30), quote, out var quoted, out var linkBroadcast));
        Assert.Equal(IcmpLayer.MaxQuote, quoted);
        Assert.Equal(Frames.Hex(first[..quoted]), Frames.Hex(quote[..quoted]));
        Assert.False(linkBroadcast);
        Assert.Equal(1, counters.ReassemblyTimeouts);
        Assert.Null(reassembler.NextExpiry);
    }

    [Fact]
    public void Timeout_without_first_fragment_is_counted_silently()
    {
        using var h = HarnessWithPeer();
        h.Feed(Fragment(Request, 1480, 1480, true));
        h.Advance(TimeSpan.FromSeconds(31));
        Assert.Empty(h.Device.Sent);
        Assert.Equal(1, h.Stack.Ip.Counters.ReassemblyTimeouts);
        AssertNothingHeld(h);
    }

    [Fact]
    public void Timeouts_expire_in_arrival_order_and_poll_reports_the_next()
    {
        using var h = HarnessWithPeer();
        h.Feed(Fragment(Request, 1480, 8, true, id: 1));
        h.Advance(TimeSpan.FromSeconds(10));
        h.Feed(Fragment(Request, 1480, 8, true, id: 2));
        Assert.Equal(TimeSpan.FromSeconds(30), h.Poll());
        h.Advance(TimeSpan.FromSeconds(20));
        Assert.Equal(1, h.Stack.Ip.Counters.ReassemblyTimeouts);
        Assert.Equal(TimeSpan.FromSeconds(40), h.Poll());
        h.Advance(TimeSpan.FromSeconds(10));
        Assert.Equal(2, h.Stack.Ip.Counters.ReassemblyTimeouts);
        AssertNothingHeld(h);
    }

    [Fact]
    public void A_datagram_beyond_max_reassemblies_evicts_the_oldest()
    {
        using var h = HarnessWithPeer(c => c with { Ip = new Ipv4Settings { MaxReassemblies = 2 } });
        for (ushort id = 1; id <= 3; id++) h.Feed(Fragment(Request, 0, 8, true, id));
        Assert.Equal(2, h.Stack.Ip.Reassembly.Count);
        Assert.Equal(1, h.Stack.Ip.Counters.ReassemblyEvictions);
        Assert.Equal(0, h.Stack.Ip.Counters.ReassemblyMemoryExceeded);
        // The newcomer and the younger of the two others still complete; the evicted one sent no ICMP error.
        AssertEchoReplied(FeedAll(h, Train(Request, 1480, id: 3)));
        AssertEchoReplied(FeedAll(h, Train(Request, 1480, id: 2)));
        Assert.Equal(0, h.Stack.Icmp.Counters.TimeExceededSent);
    }

    [Fact]
    public void Memory_limit_bounds_all_incomplete_datagrams_together()
    {
        using var h = HarnessWithPeer(c => c with { Ip = new Ipv4Settings { MaxDatagramSize = 4000, ReassemblyMemoryLimit = 6000 } });
        // Two last fragments fix 3000 bytes each: 6000 fits; a third makes room by evicting the oldest.
        h.Feed(Fragment(Request, 1480, 1520, false, id: 1));
        h.Feed(Fragment(Request, 1480, 1520, false, id: 2));
        h.Feed(Fragment(Request, 1480, 1520, false, id: 3));
        Assert.Equal(1, h.Stack.Ip.Counters.ReassemblyEvictions);
        Assert.Equal(6000, h.Stack.Ip.Reassembly.MemoryInUse);
        Assert.Equal(2, h.Stack.Ip.Reassembly.Count);
        // Bigger than MaxDatagramSize: refused outright, nothing evicted for it.
        h.Feed(Fragment(Pattern(5000), 4000, 8, false, id: 4));
        Assert.Equal(1, h.Stack.Ip.Counters.ReassemblyMemoryExceeded);
        Assert.Equal(1, h.Stack.Ip.Counters.ReassemblyEvictions);
        // Completing one frees its share.
        AssertEchoReplied(h.Feed(Fragment(Request, 0, 1480, true, id: 2)));
        Assert.Equal(3000, h.Stack.Ip.Reassembly.MemoryInUse);
    }

    [Fact]
    public void Zero_length_fragment_is_malformed()
    {
        using var h = HarnessWithPeer();
        h.Feed(Frames.Ipv4(PeerMac, OurMac, PeerIp, OurIp, 1, ReadOnlySpan<byte>.Empty, 7, Ipv4Header.FlagMoreFragments));
        Assert.Equal(1, h.Stack.Ip.Counters.ReassemblyMalformed);
        AssertNothingHeld(h);
    }
}
