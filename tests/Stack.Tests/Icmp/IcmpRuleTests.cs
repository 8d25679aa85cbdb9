using System.Buffers.Binary;
using NetStack;
using NetStack.IPv4;
using NetStack.Icmp;
using NetStack.Link;
using Stack.Tests.Support;
using static Stack.Tests.IPv4.IpTestFrames;
using static Stack.Tests.Support.StackHarness;

namespace Stack.Tests.Icmp;

/// <summary>ICMP rules (RFC 792, RFC 1122 3.2.2): crafted message in, exact message out.</summary>
public class IcmpRuleTests
{
    private const int Ip = Ethernet.HeaderLength;
    private static readonly Ipv4Address Router = Ipv4Address.Parse("192.0.2.254");

    private static byte[] IcmpError(byte type, byte code, ReadOnlySpan<byte> quote)
    {
        var m = new byte[8 + quote.Length];
        m[0] = type;
        m[1] = code;
        quote.CopyTo(m.AsSpan(8));
        BinaryPrimitives.WriteUInt16BigEndian(m.AsSpan(2), Checksum.Compute(m));
        return m;
    }

    [Fact]
    public void Echo_request_gets_exact_echo_reply()
    {
        using var h = HarnessWithPeer();
        var data = Pattern(56, salt: 3);
        var request = Frames.Ipv4(PeerMac, OurMac, PeerIp, OurIp, 1, Frames.IcmpEcho(IcmpCodes.TypeEchoRequest, 0xBEEF, 0x0102, data), id: 0x7777, ttl: 3);
        var reply = Assert.Single(h.Feed(request));
        // Our own TTL (64), our own IP id; type 0, code 0, the same id, sequence and data, a fresh checksum.
        var expected = Frames.Ipv4(OurMac, PeerMac, OurIp, PeerIp, 1, Frames.IcmpEcho(IcmpCodes.TypeEchoReply, 0xBEEF, 0x0102, data), IpId(reply), ttl: 64);
        Assert.Equal(Frames.Hex(expected), Frames.Hex(reply));
        Assert.Equal(1, h.Stack.Icmp.Counters.EchoRepliesSent);
    }

    [Fact]
    public void Echo_reply_keeps_the_requests_tos()
    {
        using var h = HarnessWithPeer();
        var request = EchoRequest(1, 1, Pattern(8));
        request[Ip + 1] = 0xB8; // DSCP EF
        FixIpChecksum(request);
        var reply = Assert.Single(h.Feed(request));
        Assert.Equal(0xB8, reply[Ip + 1]);
    }

    [Fact]
    public void Echo_request_with_bad_checksum_is_dropped()
    {
        using var h = HarnessWithPeer();
        var request = EchoRequest(1, 1, Pattern(8));
        request[Ip + 20 + 2] ^= 0x10;
        Assert.Empty(h.Feed(request));
        Assert.Equal(1, h.Stack.Icmp.Counters.DroppedBadChecksum);
    }

    [Fact]
    public void Echo_is_not_answered_when_turned_off()
    {
        using var h = HarnessWithPeer(c => c with { Icmp = new IcmpSettings { AnswerEcho = false } });
        Assert.Empty(h.Feed(EchoRequest(1, 1, Pattern(8))));
    }

    [Fact]
    public void Unknown_protocol_gets_protocol_unreachable_with_exact_quote()
    {
        using var h = HarnessWithPeer();
        var offending = Frames.Ipv4(PeerMac, OurMac, PeerIp, OurIp, ProtocolUnassigned, Pattern(100), id: 0x5151);
        var sent = Assert.Single(h.Feed(offending));
        // RFC 792: type 3 code 2, unused word zero, then the whole offending datagram (it fits in 548 bytes).
        var icmp = IcmpError(IcmpCodes.TypeDestinationUnreachable, IcmpCodes.ProtocolUnreachable, offending.AsSpan(Ip));
        var expected = Frames.Ipv4(OurMac, PeerMac, OurIp, PeerIp, 1, icmp, IpId(sent));
        Assert.Equal(Frames.Hex(expected), Frames.Hex(sent));
        Assert.Equal(1, h.Stack.Ip.Counters.DroppedUnknownProtocol);
        Assert.Equal(1, h.Stack.Icmp.Counters.DestinationUnreachableSent);
    }

    [Fact]
    public void Quote_is_cut_so_the_error_fits_576_bytes()
    {
        using var h = HarnessWithPeer();
        var offending = Frames.Ipv4(PeerMac, OurMac, PeerIp, OurIp, ProtocolUnassigned, Pattern(1000));
        var sent = Assert.Single(h.Feed(offending));
        Assert.Equal(Ip + 576, sent.Length);
        Assert.Equal(Frames.Hex(offending.AsSpan(Ip, IcmpLayer.MaxQuote)), Frames.Hex(sent.AsSpan(Ip + 28)));
    }

    [Fact]
    public void Errors_are_rate_limited_by_a_token_bucket()
    {
        using var h = HarnessWithPeer(c => c with { Icmp = new IcmpSettings { ErrorBurst = 3, ErrorsPerSecond = 2 } });
        var offending = Frames.Ipv4(PeerMac, OurMac, PeerIp, OurIp, ProtocolUnassigned, Pattern(8));
        var answered = 0;
        for (int i = 0; i < 5; i++) answered += h.Feed(offending).Count;
        Assert.Equal(3, answered); // the burst
        Assert.Equal(2, h.Stack.Icmp.Counters.ErrorsRateLimited);

        h.Advance(TimeSpan.FromSeconds(0.5)); // refills one token at 2 per second
        Assert.Single(h.Feed(offending));
        Assert.Empty(h.Feed(offending));
        Assert.Equal(3, h.Stack.Icmp.Counters.ErrorsRateLimited);
        // Echo replies are not errors: never limited.
        for (int i = 0; i < 10; i++) Assert.Single(h.Feed(EchoRequest(1, (ushort)i, Pattern(8))));
    }

    [Fact]
    public void No_error_about_a_broadcast()
    {
        using var h = HarnessWithPeer();
        var f = Frames.Ipv4(PeerMac, MacAddress.Broadcast, PeerIp, Ipv4Address.Parse("192.0.2.255"), ProtocolUnassigned, Pattern(8));
        Assert.Empty(h.Feed(f));
        Assert.Equal(1, h.Stack.Ip.Counters.DroppedUnknownProtocol);
        Assert.Equal(0, h.Stack.Icmp.Counters.DestinationUnreachableSent);
    }

    [Fact]
    public void No_error_about_an_icmp_error_or_a_non_first_fragment()
    {
        using var h = HarnessWithPeer();
        var icmpError = Frames.Ipv4(PeerMac, OurMac, PeerIp, OurIp, 1, IcmpError(IcmpCodes.TypeDestinationUnreachable, 3, Pattern(28)));
        var laterFragment = Frames.Ipv4(PeerMac, OurMac, PeerIp, OurIp, ProtocolUnassigned, Pattern(8), flagsAndOffset: 100);
        var echo = EchoRequest(1, 1, Pattern(8));
        var sent = h.Run(h.Stack.InvokeAsync(now =>
        {
            h.Stack.Icmp.SendError(IcmpCodes.TypeDestinationUnreachable, IcmpCodes.ProtocolUnreachable, icmpError.AsSpan(Ip), linkBroadcast: false, now);
            h.Stack.Icmp.SendError(IcmpCodes.TypeDestinationUnreachable, IcmpCodes.ProtocolUnreachable, laterFragment.AsSpan(Ip), linkBroadcast: false, now);
            var before = h.Device.Sent.Count;
            h.Stack.Icmp.SendError(IcmpCodes.TypeTimeExceeded, IcmpCodes.FragmentReassemblyTimeExceeded, echo.AsSpan(Ip), linkBroadcast: false, now);
            return h.Device.Sent.Count - before;
        }));
        Assert.Equal(1, sent); // only the one about the echo request went out
        Assert.Single(h.Device.Sent);
        Assert.Equal(1, h.Stack.Icmp.Counters.TimeExceededSent);
    }

    [Fact]
    public void Reassembly_timeout_of_a_fragmented_icmp_error_sends_nothing()
    {
        using var h = HarnessWithPeer();
        var error = IcmpError(IcmpCodes.TypeDestinationUnreachable, 3, Pattern(1200));
        h.Feed(Fragment(error, 0, 800, true));
        h.Advance(TimeSpan.FromSeconds(31));
        Assert.Empty(h.Device.Sent);
        Assert.Equal(1, h.Stack.Ip.Counters.ReassemblyTimeouts);
    }

    /// <summary>Sends a ping and returns the echo request datagram (IP header on) it put on the wire.</summary>
    private static (Task<PingReply> Ping, byte[] Datagram) StartPing(StackHarness h)
    {
        var ping = h.Stack.PingAsync(Ipv4Address.Parse("198.51.100.7"), payloadSize: 16, timeout: TimeSpan.FromSeconds(5));
        h.Poll();
        var request = Assert.Single(h.Device.Sent);
        h.Device.Sent.Clear();
        return (ping, request[Ip..]);
    }

    private static StackHarness HarnessWithRouter()
    {
        var h = new StackHarness(c => c with { Gateway = Router });
        h.Run(h.Stack.AddArpEntryAsync(Router, PeerMac));
        h.Device.Sent.Clear();
        return h;
    }

    [Theory]
    [InlineData(IcmpCodes.TypeDestinationUnreachable, IcmpCodes.HostUnreachable, PingStatus.HostUnreachable)]
    [InlineData(IcmpCodes.TypeDestinationUnreachable, IcmpCodes.NetworkUnreachable, PingStatus.NetworkUnreachable)]
    [InlineData(IcmpCodes.TypeDestinationUnreachable, IcmpCodes.AdministrativelyProhibited, PingStatus.HostUnreachable)]
    [InlineData(IcmpCodes.TypeTimeExceeded, IcmpCodes.TtlExceededInTransit, PingStatus.TtlExpired)]
    public void Error_about_our_echo_request_ends_the_ping_with_the_reporter(byte type, byte code, PingStatus status)
    {
        using var h = HarnessWithRouter();
        var (ping, request) = StartPing(h);
        // The router quotes our request's header and its first 8 bytes (the RFC 792 minimum).
        var error = Frames.Ipv4(PeerMac, OurMac, Router, OurIp, 1, IcmpError(type, code, request.AsSpan(0, 28)));
        Assert.Empty(h.Feed(error));
        Assert.True(ping.IsCompleted);
        var reply = h.Run(ping);
        Assert.Equal(status, reply.Status);
        Assert.Equal(Router, reply.ReportedBy);
        Assert.Equal(Ipv4Address.Parse("198.51.100.7"), reply.Address);
    }

    [Fact]
    public void Error_quoting_someone_elses_datagram_is_ignored()
    {
        using var h = HarnessWithRouter();
        var (ping, request) = StartPing(h);
        var forged = (byte[])request.Clone();
        Ipv4Address.Parse("192.0.2.50").Write(forged.AsSpan(12)); // not our source
        Assert.Empty(h.Feed(Frames.Ipv4(PeerMac, OurMac, Router, OurIp, 1, IcmpError(3, 1, forged.AsSpan(0, 28)))));
        var other = (byte[])request.Clone();
        other[20 + 7] ^= 1; // another sequence number
        Assert.Empty(h.Feed(Frames.Ipv4(PeerMac, OurMac, Router, OurIp, 1, IcmpError(3, 1, other.AsSpan(0, 28)))));
        Assert.Empty(h.Feed(Frames.Ipv4(PeerMac, OurMac, Router, OurIp, 1, IcmpError(3, 1, request.AsSpan(0, 12))))); // quote too short
        Assert.False(ping.IsCompleted);
        h.Advance(TimeSpan.FromSeconds(5));
        Assert.Equal(PingStatus.TimedOut, h.Run(ping).Status);
    }

    [Fact]
    public void Time_exceeded_quoting_our_echo_reaches_the_ping_with_the_router_and_round_trip()
    {
        using var h = HarnessWithRouter();
        var (ping, request) = StartPing(h);
        h.Clock.Advance(TimeSpan.FromMilliseconds(3));
        // Linux routers quote as much as fits in 576 bytes: the whole 44-byte request here.
        h.Feed(Frames.Ipv4(PeerMac, OurMac, Router, OurIp, 1, IcmpError(IcmpCodes.TypeTimeExceeded, IcmpCodes.TtlExceededInTransit, request)));
        var reply = h.Run(ping);
        Assert.Equal(PingStatus.TtlExpired, reply.Status);
        Assert.Equal(Router, reply.ReportedBy);
        Assert.Equal(TimeSpan.FromMilliseconds(3), reply.RoundTripTime);
        Assert.Equal(1, h.Stack.Icmp.Counters.TimeExceededReceived);
    }

    [Fact]
    public void Time_exceeded_quoting_an_echo_to_another_destination_is_ignored()
    {
        using var h = HarnessWithRouter();
        var (ping, request) = StartPing(h);
        var other = (byte[])request.Clone();
        Ipv4Address.Parse("198.51.100.8").Write(other.AsSpan(16)); // same id and sequence, another destination
        h.Feed(Frames.Ipv4(PeerMac, OurMac, Router, OurIp, 1, IcmpError(IcmpCodes.TypeTimeExceeded, 0, other.AsSpan(0, 28))));
        Assert.False(ping.IsCompleted);
        h.Advance(TimeSpan.FromSeconds(5));
        Assert.Equal(PingStatus.TimedOut, h.Run(ping).Status);
    }

    [Fact]
    public void Fragmentation_needed_about_our_echo_is_packet_too_big_with_the_next_hop_mtu_rfc1191()
    {
        using var h = HarnessWithRouter();
        var ping = h.Stack.PingAsync(Ipv4Address.Parse("198.51.100.7"), payloadSize: 1472, dontFragment: true);
        h.Poll();
        var request = Assert.Single(h.Device.Sent)[Ip..];
        Assert.True(Ipv4Header.DontFragment(request));
        Assert.Equal(1500, Ipv4Header.TotalLength(request));
        var error = IcmpError(IcmpCodes.TypeDestinationUnreachable, IcmpCodes.FragmentationNeeded, request.AsSpan(0, 28));
        BinaryPrimitives.WriteUInt16BigEndian(error.AsSpan(6), 1400); // the next-hop MTU (RFC 1191)
        error[2] = error[3] = 0;
        BinaryPrimitives.WriteUInt16BigEndian(error.AsSpan(2), Checksum.Compute(error));
        h.Feed(Frames.Ipv4(PeerMac, OurMac, Router, OurIp, 1, error));
        var reply = h.Run(ping);
        Assert.Equal(PingStatus.PacketTooBig, reply.Status);
        Assert.Equal(1400, reply.NextHopMtu);
        Assert.Equal(Router, reply.ReportedBy);
    }

    [Fact]
    public void Dont_fragment_echo_too_big_for_our_own_link_is_packet_too_big_at_once()
    {
        using var h = HarnessWithRouter();
        var reply = h.Run(h.Stack.PingAsync(Ipv4Address.Parse("198.51.100.7"), payloadSize: 1473, dontFragment: true));
        Assert.Equal(PingStatus.PacketTooBig, reply.Status);
        Assert.Equal(1500, reply.NextHopMtu);
        Assert.Null(reply.ReportedBy);
        Assert.Empty(h.Device.Sent);
    }

    [Fact]
    public void Echo_reply_completes_the_ping_with_ttl_and_size()
    {
        using var h = HarnessWithRouter();
        var (ping, request) = StartPing(h);
        var icmp = request.AsSpan(20).ToArray();
        icmp[0] = IcmpCodes.TypeEchoReply;
        icmp[2] = icmp[3] = 0;
        BinaryPrimitives.WriteUInt16BigEndian(icmp.AsSpan(2), Checksum.Compute(icmp));
        h.Clock.Advance(TimeSpan.FromMilliseconds(7));
        h.Feed(Frames.Ipv4(PeerMac, OurMac, Ipv4Address.Parse("198.51.100.7"), OurIp, 1, icmp, ttl: 55));
        var reply = h.Run(ping);
        Assert.Equal(PingStatus.Success, reply.Status);
        Assert.Equal(55, reply.Ttl);
        Assert.Equal(16, reply.Bytes);
        Assert.Equal(TimeSpan.FromMilliseconds(7), reply.RoundTripTime);
    }

    private sealed class RecordingHandler : IIpProtocolHandler
    {
        public readonly List<(IpErrorInfo Error, byte[] Original)> Errors = new();
        public int Datagrams;
        public TransportDisposition OnDatagram(in IpDatagramInfo info, ReadOnlySpan<byte> payload, TimeSpan now)
        {
            Datagrams++;
            return TransportDisposition.Delivered;
        }
        public void OnError(in IpErrorInfo error, ReadOnlySpan<byte> original, TimeSpan now) => Errors.Add((error, original.ToArray()));
    }

    [Fact]
    public void Received_errors_reach_the_transport_that_sent_the_quoted_datagram()
    {
        using var h = HarnessWithRouter();
        var recorder = new RecordingHandler();
        h.Stack.Ip.Register((IpProtocol)ProtocolUnassigned, recorder);
        var far = Ipv4Address.Parse("198.51.100.7");
        // What we "sent": a datagram of the recorder's protocol, and one of UDP's.
        var ours = Frames.Ipv4(OurMac, PeerMac, OurIp, far, ProtocolUnassigned, Pattern(40)).AsSpan(Ip).ToArray();
        var udp = Frames.Ipv4(OurMac, PeerMac, OurIp, far, 17, Pattern(40)).AsSpan(Ip).ToArray();

        Assert.Empty(h.Feed(Frames.Ipv4(PeerMac, OurMac, far, OurIp, 1, IcmpError(3, IcmpCodes.PortUnreachable, ours.AsSpan(0, 28)))));
        var fragNeeded = IcmpError(3, IcmpCodes.FragmentationNeeded, ours.AsSpan(0, 48));
        BinaryPrimitives.WriteUInt16BigEndian(fragNeeded.AsSpan(6), 1400); // RFC 1191 next-hop MTU
        BinaryPrimitives.WriteUInt16BigEndian(fragNeeded.AsSpan(2), 0);
        BinaryPrimitives.WriteUInt16BigEndian(fragNeeded.AsSpan(2), Checksum.Compute(fragNeeded));
        Assert.Empty(h.Feed(Frames.Ipv4(PeerMac, OurMac, Router, OurIp, 1, fragNeeded)));
        Assert.Empty(h.Feed(Frames.Ipv4(PeerMac, OurMac, far, OurIp, 1, IcmpError(3, IcmpCodes.PortUnreachable, udp.AsSpan(0, 28)))));

        Assert.Equal(2, recorder.Errors.Count);
        var (port, quoted) = recorder.Errors[0];
        Assert.Equal(StackError.PortUnreachable, port.Error);
        Assert.True(port.IsHard);
        Assert.Equal(far, port.Reporter);
        Assert.False(port.IsLocal);
        Assert.Equal(Frames.Hex(ours.AsSpan(0, 28)), Frames.Hex(quoted));
        var (mtu, _) = recorder.Errors[1];
        Assert.Equal(StackError.MessageTooLong, mtu.Error);
        Assert.Equal(1400, mtu.NextHopMtu);
        Assert.Equal(Router, mtu.Reporter);
        Assert.Equal(0, recorder.Datagrams);
    }
}
