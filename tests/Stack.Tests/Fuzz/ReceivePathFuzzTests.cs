using System.Buffers.Binary;
using System.Diagnostics;
using NetStack;
using NetStack.Arp;
using NetStack.IPv4;
using NetStack.Icmp;
using NetStack.Link;
using Stack.Tests.IPv4;
using Stack.Tests.Support;
using Xunit.Abstractions;
using static Stack.Tests.Support.StackHarness;

namespace Stack.Tests.Fuzz;

/// <summary>
/// Random and mutated frames through the whole receive path (device, Ethernet, ARP, IPv4, reassembly, ICMP):
/// nothing may throw, memory stays bounded, and afterwards the stack still answers exactly.
/// </summary>
public class ReceivePathFuzzTests
{
    private readonly ITestOutputHelper _output;
    public ReceivePathFuzzTests(ITestOutputHelper output) => _output = output;

    private const int Eth = Ethernet.HeaderLength;

    /// <summary>Generates a frame per receive slot from a seeded mutator; counts what the stack sends, keeping its last echo request.</summary>
    private sealed class FuzzDevice : GeneratedFramesDevice
    {
        private readonly Random _random;
        private readonly List<byte[]> _templates;
        private readonly List<byte[]> _fragments;
        private readonly byte[] _scratch = new byte[2048];
        private int _length;
        public readonly byte[] LastEchoRequest = new byte[1514];
        public int LastEchoRequestLength;
        public int Remaining;
        public long Generated;
        public List<byte[]>? Capture;
        public readonly Queue<byte[]> Inject = new();

        public FuzzDevice(int seed, List<byte[]> templates, List<byte[]> fragments)
        {
            _random = new Random(seed);
            _templates = templates;
            _fragments = fragments;
        }

        /// <summary>Frames handed over per loop turn, so virtual time (and reassembly timeouts) moves along.</summary>
        public int PerTurn = 64;

        public override int Receive(IFrameSink sink, TimeSpan now, int max)
        {
            int n = 0;
            while (n < max && Inject.TryDequeue(out var f)) { sink.OnFrame(f, now); n++; }
            max = Math.Min(max, PerTurn);
            while (n < max && Remaining > 0)
            {
                Remaining--;
                Generated++;
                Next();
                sink.OnFrame(_scratch.AsSpan(0, _length), now);
                n++;
            }
            return n;
        }

        public override void Transmit(ReadOnlySpan<byte> frame, TimeSpan now)
        {
            Transmitted++;
            Capture?.Add(frame.ToArray());
            if (frame.Length > Eth + 28 && Ethernet.EtherType(frame) == Ethernet.TypeIpv4 && frame[Eth + 9] == 1 && frame[Eth + 20] == IcmpCodes.TypeEchoRequest)
            {
                frame.CopyTo(LastEchoRequest);
                LastEchoRequestLength = frame.Length;
            }
        }

        /// <summary>Builds the next frame in _scratch: a template (or an ICMP message about our own echo request), mutated.</summary>
        private void Next()
        {
            var r = _random;
            var s = _scratch;
            var pick = r.Next(100);
            if (pick < 8)
            {
                // Pure noise, sometimes dressed as IPv4 to our MAC.
                _length = r.Next(0, 1515);
                r.NextBytes(s.AsSpan(0, _length));
                if (_length >= Eth && r.Next(2) == 0) { OurMac.Write(s); BinaryPrimitives.WriteUInt16BigEndian(s.AsSpan(12), Ethernet.TypeIpv4); }
                return;
            }
            if (pick < 18 && LastEchoRequestLength > 0)
                BuildAboutOurEcho(r);
            else
            {
                var list = pick < 55 ? _templates : _fragments;
                var t = list[r.Next(list.Count)];
                t.CopyTo(s, 0);
                _length = t.Length;
            }

            var mutations = r.Next(100) < 20 ? 0 : 1 + r.Next(4);
            for (int m = 0; m < mutations; m++) Mutate(r);
            // Often repair the checksums so the mutation reaches the layers behind them.
            if (r.Next(100) < 75) FixChecksums();
        }

        private void BuildAboutOurEcho(Random r)
        {
            var s = _scratch;
            var request = LastEchoRequest.AsSpan(Eth, LastEchoRequestLength - Eth);
            var kind = r.Next(3);
            var src = kind == 0 ? PeerIp : new Ipv4Address(0xC0000200u | (uint)r.Next(1, 254));
            int icmpLength;
            var icmp = s.AsSpan(Eth + 20);
            if (kind == 0)
            {
                // Echo reply (maybe right, maybe for another sequence).
                request[20..].CopyTo(icmp);
                icmp[0] = IcmpCodes.TypeEchoReply;
                if (r.Next(3) == 0) icmp[7] ^= 1;
                icmpLength = request.Length - 20;
            }
            else
            {
                icmp[0] = (byte)(r.Next(3) switch { 0 => IcmpCodes.TypeDestinationUnreachable, 1 => IcmpCodes.TypeTimeExceeded, _ => (byte)r.Next(256) });
                icmp[1] = (byte)r.Next(16);
                icmp[2..8].Clear();
                var quote = Math.Min(request.Length, r.Next(0, 80));
                request[..quote].CopyTo(icmp[8..]);
                icmpLength = 8 + quote;
            }
            icmp[2] = icmp[3] = 0;
            BinaryPrimitives.WriteUInt16BigEndian(icmp[2..], Checksum.Compute(icmp[..icmpLength]));
            Ethernet.WriteHeader(s, OurMac, PeerMac, Ethernet.TypeIpv4);
            Ipv4Header.Write(s.AsSpan(Eth), 20 + icmpLength, (ushort)r.Next(65536), 0, 64, 1, src, OurIp);
            _length = Eth + 20 + icmpLength;
        }

        private void Mutate(Random r)
        {
            var s = _scratch;
            switch (r.Next(8))
            {
                case 0: // flip a bit, mostly in the headers
                case 1:
                    if (_length == 0) return;
                    var at = r.Next(3) > 0 ? r.Next(Math.Min(_length, Eth + 60 + 20)) : r.Next(_length);
                    s[at] ^= (byte)(1 << r.Next(8));
                    return;
                case 2: // a random byte
                    if (_length > 0) s[r.Next(_length)] = (byte)r.Next(256);
                    return;
                case 3: // truncate
                    _length = r.Next(_length + 1);
                    return;
                case 4: // extend with junk (padding, or a lie the length fields will not tell)
                    var extra = Math.Min(r.Next(1, 64), s.Length - _length);
                    r.NextBytes(s.AsSpan(_length, extra));
                    _length += extra;
                    return;
                case 5: // lie in the IP total length or header length
                    if (_length < Eth + 4) return;
                    if (r.Next(2) == 0) BinaryPrimitives.WriteUInt16BigEndian(s.AsSpan(Eth + 2), (ushort)r.Next(65536));
                    else s[Eth] = (byte)(0x40 | r.Next(16));
                    return;
                case 6: // lie in the fragment fields
                    if (_length < Eth + 8) return;
                    BinaryPrimitives.WriteUInt16BigEndian(s.AsSpan(Eth + 6), (ushort)(r.Next(4) switch
                    {
                        0 => r.Next(65536),
                        1 => Ipv4Header.FlagMoreFragments | r.Next(16),
                        2 => r.Next(8192),
                        _ => Ipv4Header.FlagMoreFragments | r.Next(8192),
                    }));
                    return;
                default: // lie in a transport length field (UDP length / ICMP / TCP data offset)
                    if (_length < Eth + 28) return;
                    var ihl = (s[Eth] & 0xF) * 4;
                    if (Eth + ihl + 8 > _length) return;
                    BinaryPrimitives.WriteUInt16BigEndian(s.AsSpan(Eth + ihl + 4), (ushort)r.Next(65536));
                    return;
            }
        }

        private void FixChecksums()
        {
            if (_length < Eth + 20) return;
            var ip = _scratch.AsSpan(Eth, _length - Eth);
            var ihl = (ip[0] & 0xF) * 4;
            if (ihl < 20 || ihl > ip.Length) return;
            ip[10] = ip[11] = 0;
            BinaryPrimitives.WriteUInt16BigEndian(ip[10..], Checksum.Compute(ip[..ihl]));
            var total = Math.Min(BinaryPrimitives.ReadUInt16BigEndian(ip[2..]), ip.Length);
            if (ip[9] == 1 && total >= ihl + 8 && (BinaryPrimitives.ReadUInt16BigEndian(ip[6..]) & 0x3FFF) == 0)
            {
                var icmp = ip[ihl..total];
                icmp[2] = icmp[3] = 0;
                BinaryPrimitives.WriteUInt16BigEndian(icmp[2..], Checksum.Compute(icmp));
            }
        }
    }

    private static List<byte[]> Templates() => new()
    {
        Frames.Arp(ArpPacket.OpRequest, PeerMac, MacAddress.Broadcast, PeerMac, PeerIp, MacAddress.Zero, OurIp),
        Frames.Arp(ArpPacket.OpReply, PeerMac, OurMac, PeerMac, PeerIp, OurMac, OurIp),
        Frames.Arp(ArpPacket.OpRequest, PeerMac, MacAddress.Broadcast, PeerMac, Ipv4Address.Parse("192.0.2.9"), MacAddress.Zero, Ipv4Address.Parse("192.0.2.10")),
        IpTestFrames.EchoRequest(1, 1, IpTestFrames.Pattern(0)),
        IpTestFrames.EchoRequest(2, 2, IpTestFrames.Pattern(56)),
        IpTestFrames.EchoRequest(3, 3, IpTestFrames.Pattern(1472)),
        IpTestFrames.EchoRequest(4, 4, IpTestFrames.Pattern(16), Ipv4Address.Parse("192.0.2.255")),
        Frames.Ipv4(PeerMac, OurMac, PeerIp, OurIp, 17, Udp(53, 40000, IpTestFrames.Pattern(30))),
        Frames.Ipv4(PeerMac, OurMac, PeerIp, OurIp, 6, TcpSyn()),
        Frames.Ipv4(PeerMac, OurMac, PeerIp, OurIp, IpTestFrames.ProtocolUnassigned, IpTestFrames.Pattern(40)),
    };

    /// <summary>Fragment trains: a 3000-byte echo in 1480s, a 600-byte echo in 8-byte pieces, overlapping pieces, a 65 KiB train's head and tail.</summary>
    private static List<byte[]> Fragments()
    {
        var t = new List<byte[]>();
        var big = Frames.IcmpEcho(IcmpCodes.TypeEchoRequest, 9, 9, IpTestFrames.Pattern(2992));
        for (ushort id = 100; id < 104; id++) t.AddRange(IpTestFrames.Train(big, 1480, id));
        t.AddRange(IpTestFrames.Train(Frames.IcmpEcho(IcmpCodes.TypeEchoRequest, 9, 10, IpTestFrames.Pattern(592)), 8, 200));
        t.Add(IpTestFrames.Fragment(big, 0, 1000, true, 300));
        t.Add(IpTestFrames.Fragment(big, 496, 1000, true, 300));
        t.Add(IpTestFrames.Fragment(big, 992, 2008, false, 300));
        var huge = Frames.IcmpEcho(IcmpCodes.TypeEchoRequest, 9, 11, IpTestFrames.Pattern(65000));
        var hugeTrain = IpTestFrames.Train(huge, 1480, 400);
        t.AddRange(hugeTrain.Take(3));
        t.AddRange(hugeTrain.TakeLast(3));
        return t;
    }

    private static byte[] Udp(ushort src, ushort dst, byte[] data)
    {
        var u = new byte[8 + data.Length];
        BinaryPrimitives.WriteUInt16BigEndian(u, src);
        BinaryPrimitives.WriteUInt16BigEndian(u.AsSpan(2), dst);
        BinaryPrimitives.WriteUInt16BigEndian(u.AsSpan(4), (ushort)u.Length);
        data.CopyTo(u, 8);
        return u;
    }

    private static byte[] TcpSyn()
    {
        var t = new byte[24];
        BinaryPrimitives.WriteUInt16BigEndian(t, 40000);
        BinaryPrimitives.WriteUInt16BigEndian(t.AsSpan(2), 80);
        BinaryPrimitives.WriteUInt32BigEndian(t.AsSpan(4), 12345);
        t[12] = 6 << 4;
        t[13] = 0x02; // SYN
        BinaryPrimitives.WriteUInt16BigEndian(t.AsSpan(14), 65535);
        t[20] = 2; t[21] = 4; BinaryPrimitives.WriteUInt16BigEndian(t.AsSpan(22), 1460); // MSS option
        return t;
    }

    [Theory]
    [InlineData(1, 200_000)]
    [InlineData(2, 200_000)]
    [InlineData(3, 200_000)]
    public async Task Mutated_frames_never_break_the_stack(int seed, int frames)
    {
        var device = new FuzzDevice(seed, Templates(), Fragments());
        var clock = new ManualClock();
        var config = new StackConfig
        {
            Address = OurIp,
            Arp = new ArpSettings { GratuitousOnStart = false },
            Ip = new Ipv4Settings { MaxReassemblies = 16, ReassemblyMemoryLimit = 256 * 1024, ReassemblyTimeout = TimeSpan.FromSeconds(5) },
        };
        using var stack = new NetworkStack(device, config, clock, seed: seed);
        long maxMemory = 0;

        var watch = Stopwatch.StartNew();
        device.Remaining = frames;
        var turns = 0;
        while (device.Remaining > 0)
        {
            // A few pings keep echo requests of ours in flight for the mutator to answer (or lie about).
            if (turns++ % 50 == 0) _ = stack.PingAsync(PeerIp, payloadSize: turns % 3 == 0 ? 2000 : 24, timeout: TimeSpan.FromSeconds(1));
            stack.Poll(clock.Now);
            maxMemory = Math.Max(maxMemory, stack.Ip.Reassembly.MemoryInUse);
            Assert.True(stack.Ip.Reassembly.Count <= 16);
            clock.Advance(TimeSpan.FromMilliseconds(10));
        }
        watch.Stop();
        var rate = frames / watch.Elapsed.TotalSeconds;
        _output.WriteLine($"seed {seed}: {frames:N0} frames in {watch.Elapsed.TotalMilliseconds:F0} ms = {rate:N0} frames/s; stack sent {device.Transmitted:N0}; " +
                          $"IPv4 delivered {stack.Ip.Counters.PacketsDelivered:N0}, reassembled {stack.Ip.Counters.DatagramsReassembled:N0}, " +
                          $"overlaps {stack.Ip.Counters.ReassemblyOverlaps:N0}, malformed {stack.Ip.Counters.ReassemblyMalformed:N0}, " +
                          $"timeouts {stack.Ip.Counters.ReassemblyTimeouts:N0}, memory-exceeded {stack.Ip.Counters.ReassemblyMemoryExceeded:N0}; " +
                          $"ICMP replies {stack.Icmp.Counters.EchoRepliesSent:N0}, errors rate-limited {stack.Icmp.Counters.ErrorsRateLimited:N0}; max reassembly memory {maxMemory:N0}");

        Assert.Equal(frames, device.Generated);
        Assert.Equal(0, stack.LoopFaults);
        Assert.InRange(maxMemory, 1, 256 * 1024);
        // The mutator reached every layer: not everything died at the first check.
        Assert.True(stack.Ip.Counters.DatagramsReassembled > 0);
        Assert.True(stack.Icmp.Counters.EchoRepliesSent > 0);
        Assert.True(stack.Ip.Counters.DroppedBadChecksum > 0 && stack.Ip.Counters.ReassemblyMalformed > 0 && stack.Arp.Counters.DroppedMalformed > 0);

        // Quiet for a while: every incomplete datagram expires and its memory comes back.
        for (int i = 0; i < 70; i++) { clock.Advance(TimeSpan.FromMilliseconds(100)); stack.Poll(clock.Now); }
        Assert.Equal(0, stack.Ip.Reassembly.Count);
        Assert.Equal(0, stack.Ip.Reassembly.MemoryInUse);

        // Still answers exactly: pin the peer's MAC (the fuzz may have taught others), then echo in, exact reply out.
        var pin = stack.AddArpEntryAsync(PeerIp, PeerMac);
        stack.Poll(clock.Now);
        Assert.True(pin.IsCompletedSuccessfully);
        clock.Advance(TimeSpan.FromSeconds(60)); // refill the ICMP token bucket, let old pings end
        stack.Poll(clock.Now);
        device.Capture = new List<byte[]>();
        var data = IpTestFrames.Pattern(40);
        device.Inject.Enqueue(IpTestFrames.EchoRequest(0xABCD, 77, data));
        stack.Poll(clock.Now);
        var reply = Assert.Single(device.Capture);
        var expected = Frames.Ipv4(OurMac, PeerMac, OurIp, PeerIp, 1, Frames.IcmpEcho(IcmpCodes.TypeEchoReply, 0xABCD, 77, data), IpTestFrames.IpId(reply));
        Assert.Equal(Frames.Hex(expected), Frames.Hex(reply));

        // And its own ping still completes.
        device.Capture.Clear();
        var ping = stack.PingAsync(PeerIp, payloadSize: 3000);
        stack.Poll(clock.Now);
        Assert.Equal(3, device.Capture.Count);
        var echo = IpTestFrames.Reassemble(device.Capture);
        echo[0] = IcmpCodes.TypeEchoReply;
        echo[2] = echo[3] = 0;
        BinaryPrimitives.WriteUInt16BigEndian(echo.AsSpan(2), Checksum.Compute(echo));
        foreach (var f in IpTestFrames.Train(echo, 1480, 0x7E57)) device.Inject.Enqueue(f);
        stack.Poll(clock.Now);
        stack.Poll(clock.Now);
        Assert.True(ping.IsCompleted);
        Assert.Equal(PingStatus.Success, (await ping).Status);
        Assert.Equal(0, stack.LoopFaults);
    }
}
