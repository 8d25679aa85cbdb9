using System.Security.Cryptography;
using System.Text.RegularExpressions;
using NetStack.Link;
using NetStack.Sockets;
using NetStack.Tcp;

namespace NetStack.Tests.Lab;

/// <summary>
/// Helpers for TCP against the kernel (KernelTcpTests): our stack on u0, Python and socat peers in K, seeded data
/// whose SHA-256 both ends compute, and random loss on the kernel's side with nftables.
/// </summary>
internal static partial class KernelTcpKit
{
    public static readonly TimeSpan Generous = TimeSpan.FromSeconds(30);

    /// <summary>The system's Python (a pyenv shim on PATH costs a shell and a lookup per start).</summary>
    public static string Python => File.Exists("/usr/bin/python3") ? "/usr/bin/python3" : "python3";

    /// <summary>Starts our stack (192.0.2.2) on u0, optionally through a wrapper such as <see cref="FaultyLink"/>.</summary>
    public static NetworkStack StartTcpStack(this KernelLab lab, Func<StackConfig, StackConfig>? configure = null, Func<ILinkDevice, ILinkDevice>? wrap = null)
    {
        var config = new StackConfig { Address = KernelLab.StackAddress, PrefixLength = KernelLab.PrefixLength };
        if (configure is not null) config = configure(config);
        ILinkDevice device = lab.OpenStackDevice();
        if (wrap is not null) device = wrap(device);
        var stack = new NetworkStack(device, config, name: "lab");
        stack.Start();
        return stack;
    }

    /// <summary>
    /// Runs one of the Python peers below in K (python3 -u -c script args...) and waits until it says "ready"
    /// (it listens, or is about to connect). Killed with the lab.
    /// </summary>
    public static LabProcess StartPeer(this KernelLab lab, string script, params string[] args)
    {
        var p = lab.StartProgramInKernel(Python, ["-u", "-c", script, .. args]);
        if (!p.WaitForOutput(o => o.Contains("ready\n"), Generous))
            throw new InvalidOperationException($"The peer in K did not get ready: {p.Output} {p.Error}");
        return p;
    }

    [GeneratedRegex(@"(got|sent) (\d+) ([0-9a-f]{64})")]
    private static partial Regex Summary();

    /// <summary>Waits for the peer's "got|sent N sha256" line and returns it.</summary>
    public static (long Bytes, string Sha) WaitSummary(this LabProcess p, string verb, TimeSpan? timeout = null)
    {
        if (!p.WaitForOutput(o => Summary().Matches(o).Any(m => m.Groups[1].Value == verb), timeout ?? Generous))
            throw new TimeoutException($"The peer did not report '{verb}': out: {p.Output} err: {p.Error}");
        var m = Summary().Matches(p.Output).First(m => m.Groups[1].Value == verb);
        return (long.Parse(m.Groups[2].Value), m.Groups[3].Value);
    }

    /// <summary>
    /// One connection's worth of Python peer in K, as a server (argv: server PORT) or a client (argv: client HOST PORT).
    /// Then the actions, in order: "recv" reads to EOF and prints "got N sha"; "send:N" sends N seeded bytes and
    /// prints "sent N sha"; "shut" shuts down its write side (FIN, half-close); "close" closes; "hold" waits for
    /// a line on stdin. Data is a random 1 MiB + 13 byte block sent round and round.
    /// </summary>
    public const string PeerScript = """
import socket, sys, hashlib, os
role = sys.argv[1]
if role == 'server':
    ls = socket.socket()
    ls.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    ls.bind(('192.0.2.1', int(sys.argv[2])))
    ls.listen(16)
    print('ready')
    c, _ = ls.accept()
    ls.close()
    actions = sys.argv[3:]
else:
    print('ready')
    c = socket.create_connection((sys.argv[2], int(sys.argv[3])), timeout=60)
    c.settimeout(60)
    print('connected', c.getsockname()[1])
    actions = sys.argv[4:]
block = os.urandom((1 << 20) + 13)
for a in actions:
    if a == 'recv':
        h = hashlib.sha256(); n = 0; buf = bytearray(1 << 20); mv = memoryview(buf)
        while True:
            k = c.recv_into(buf)
            if not k: break
            h.update(mv[:k]); n += k
        print('got', n, h.hexdigest())
    elif a.startswith('send:'):
        total = int(a[5:]); h = hashlib.sha256(); n = 0; mv = memoryview(block); at = 0
        while n < total:
            k = min(total - n, len(block) - at, 1 << 18)
            c.sendall(mv[at:at + k]); h.update(mv[at:at + k]); n += k; at = (at + k) % len(block)
        print('sent', n, h.hexdigest())
    elif a == 'shut':
        c.shutdown(socket.SHUT_WR)
    elif a == 'close':
        c.close()
    elif a == 'hold':
        sys.stdin.readline()
print('done')
""";

    /// <summary>A seeded random block, sent round and round so any misplaced chunk changes the hash.</summary>
    public static byte[] Block(int seed)
    {
        var b = new byte[(1 << 20) + 7];
        new Random(seed).NextBytes(b);
        return b;
    }

    /// <summary>Sends <paramref name="total"/> bytes of <paramref name="block"/> (cycled) and returns their SHA-256.</summary>
    public static async Task<string> SendBlocksAsync(TcpSocket s, long total, byte[] block, int chunk = 64 * 1024)
    {
        using var h = IncrementalHash.CreateHash(HashAlgorithmName.SHA256);
        long sent = 0;
        int at = 0;
        while (sent < total)
        {
            var k = (int)Math.Min(Math.Min(total - sent, block.Length - at), chunk);
            var m = block.AsMemory(at, k);
            await s.SendAsync(m).ConfigureAwait(false);
            h.AppendData(m.Span);
            sent += k;
            at = (at + k) % block.Length;
        }
        return Convert.ToHexStringLower(h.GetHashAndReset());
    }

    /// <summary>Reads until the peer's FIN; returns the byte count and SHA-256.</summary>
    public static async Task<(long Bytes, string Sha)> ReceiveToEndAsync(TcpSocket s, int bufferSize = 256 * 1024)
    {
        using var h = IncrementalHash.CreateHash(HashAlgorithmName.SHA256);
        var buf = new byte[bufferSize];
        long n = 0;
        while (true)
        {
            var k = await s.ReceiveAsync(buf).ConfigureAwait(false);
            if (k == 0) break;
            h.AppendData(buf, 0, k);
            n += k;
        }
        return (n, Convert.ToHexStringLower(h.GetHashAndReset()));
    }

    /// <summary>
    /// Random loss on the kernel's side with nftables (sch_netem is missing here): <paramref name="percent"/>% of the
    /// TCP segments arriving for the kernel (ours: real loss on the wire as our sender and our ACKs see it). With
    /// <paramref name="output"/>, also of what the kernel's TCP sends; but the kernel sees those drops as failed
    /// transmits, not as loss on a wire: it sends data again at once and re-arms a dropped ACK on its delayed-ACK
    /// timer (TCP_DELACK_MAX, 200 ms, measured: every such drop stalled the flow until our RTO). Real loss of the
    /// kernel's segments comes from <see cref="FaultyLink"/> on our side instead.
    /// </summary>
    public static void AddKernelLoss(this KernelLab lab, int percent, bool output = false)
    {
        lab.RunInKernel("nft add table inet lab").EnsureSuccess();
        lab.RunInKernel("nft add chain inet lab in '{ type filter hook input priority 0; }'").EnsureSuccess();
        lab.RunInKernel($"nft add rule inet lab in ip protocol tcp numgen random mod 100 '<' {percent} counter drop").EnsureSuccess();
        if (!output) return;
        lab.RunInKernel("nft add chain inet lab out '{ type filter hook output priority 0; }'").EnsureSuccess();
        lab.RunInKernel($"nft add rule inet lab out ip protocol tcp numgen random mod 100 '<' {percent} counter drop").EnsureSuccess();
    }

    [GeneratedRegex(@"counter packets (\d+)")]
    private static partial Regex NftCounter();

    /// <summary>Packets the loss rules dropped: input, then output (0 without the output rule).</summary>
    public static (long In, long Out) KernelLossDrops(this KernelLab lab)
    {
        var text = lab.RunInKernel("nft list table inet lab").EnsureSuccess().Output;
        var m = NftCounter().Matches(text);
        return (long.Parse(m[0].Groups[1].Value), m.Count > 1 ? long.Parse(m[1].Groups[1].Value) : 0);
    }

    public static double Gbps(long bytes, TimeSpan t) => bytes * 8 / t.TotalSeconds / 1e9;
}

/// <summary>
/// Watches our segments as they reach the kernel (a pcap device on k0 in K, direction in) for one that matches,
/// on a thread of its own; waits are event-driven (ppoll on the capture), never sleeps.
/// </summary>
internal sealed class OurSegmentWatch : IFrameSink
{
    /// <summary>Looks at one IPv4 TCP segment of ours: (when the watch saw it, sequence number, flags, window field, payload length).</summary>
    public delegate bool Match(TimeSpan now, uint seq, byte flags, ushort window, int length);

    private readonly PcapDevice _device;
    private readonly Match _match;
    private volatile bool _seen;

    public OurSegmentWatch(KernelLab lab, Match match)
    {
        _device = lab.OpenKernelSideDevice();
        _match = match;
    }

    /// <summary>Pumps the capture until a matching segment arrives; false after <paramref name="timeout"/>.</summary>
    public Task<bool> WaitAsync(TimeSpan timeout) => Task.Run(() =>
        NetStack.Tests.Link.LinkTestKit.PumpUntil(_device, this, () => _seen, timeout));

    public void OnFrame(ReadOnlySpan<byte> f, TimeSpan now)
    {
        if (_seen || f.Length < 54 || f[12] != 0x08 || f[13] != 0x00 || f[23] != 6) return;
        if (Ipv4Address.Read(f[26..]) != KernelLab.StackAddress) return;
        var ipLen = (f[14] & 0xF) * 4;
        var total = System.Buffers.Binary.BinaryPrimitives.ReadUInt16BigEndian(f[16..]);
        var t = f[(14 + ipLen)..];
        var h = (t[12] >> 4) * 4;
        if (_match(now, System.Buffers.Binary.BinaryPrimitives.ReadUInt32BigEndian(t[4..]), t[13],
                   System.Buffers.Binary.BinaryPrimitives.ReadUInt16BigEndian(t[14..]), total - ipLen - h))
            _seen = true;
    }
}
