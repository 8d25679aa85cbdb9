using System.Text.RegularExpressions;
using NetStack.Sockets;
using Xunit.Abstractions;
using static NetStack.Tests.Lab.KernelTcpKit;

namespace NetStack.Tests.Lab;

/// <summary>
/// SYN cookies against the Linux kernel (issue 14): the kernel's client completes handshakes with cookie SYN-ACKs (with
/// timestamps on and off; data both ways with the MSS, window scales and SACK the cookie carried), and a SYN flood from
/// a raw socket in the kernel's namespace (spoofed sources in 198.51.100.0/24 and 203.0.113.0/24, routed to us) while
/// the kernel's own client connects.
/// </summary>
[Collection(KernelLabCollection.Name)]
public sealed partial class KernelSynCookieTests(ITestOutputHelper output)
{
    [GeneratedRegex(@"wscale:(\d+),(\d+)")]
    private static partial Regex SsWscale();

    [GeneratedRegex(@"\bmss:(\d+)")]
    private static partial Regex SsMss();

    /// <summary>
    /// With Tcp.SynCookies = Always every SYN gets a cookie: the kernel connects with timestamps on (window scale and
    /// SACK-permitted come back in its TSecr) or off (neither), its SYN's MSS lowered by a route's advmss to 1400 (the
    /// cookie carries 1300), and 1 MiB goes each way with SHA-256 checked at both ends.
    /// </summary>
    [KernelTheory(Programs = ["python3"])]
    [InlineData(true)]
    [InlineData(false)]
    public async Task TheKernel_ConnectsThroughACookie_AndDataFlowsBothWays(bool timestamps)
    {
        using var lab = new KernelLab();
        lab.RunInKernel($"sysctl -q -w net.ipv4.tcp_timestamps={(timestamps ? 1 : 0)}").EnsureSuccess();
        lab.RunInKernel($"ip route change 192.0.2.0/24 dev {KernelLab.KernelInterface} advmss 1400").EnsureSuccess();
        using var stack = lab.StartTcpStack(c => c with { Tcp = c.Tcp with { SynCookies = SynCookieMode.Always } });
        using var listener = await stack.ListenAsync(8610).WaitAsync(Generous);
        var accepted = listener.AcceptAsync();
        const long Size = 1 << 20;
        var peer = lab.StartPeer(PeerScript, "client", "192.0.2.2", "8610", $"send:{Size}", "shut", "recv");
        using var s = await accepted.WaitAsync(Generous);

        var row = Assert.Single(await stack.GetConnectionsAsync(), c => c.Id == s.Id);
        var tcp = row.Tcp!;
        var ss = lab.RunInKernel("ss -tniH dst 192.0.2.2").EnsureSuccess().Output;
        output.WriteLine($"timestamps {timestamps}: ours: mss {tcp.Mss}, snd wscale {tcp.SndWindowScale}, rcv wscale {tcp.RcvWindowScale}, sack {tcp.SackPermitted}, ts {tcp.Timestamps}; kernel: {ss.Trim()}");
        var stats = (await stack.GetStatisticsAsync()).Where(c => c.Layer == "Tcp").ToDictionary(c => c.Name, c => c.Value);
        Assert.Equal(1, stats["SynCookiesSent"]);
        Assert.Equal(1, stats["SynCookiesAccepted"]);
        Assert.Equal(timestamps, tcp.Timestamps);
        Assert.Equal(timestamps ? 1300 - 12 : 1300, tcp.Mss);          // 1400 offered: the table's 1300 came back
        Assert.Equal(timestamps, tcp.SackPermitted);
        if (timestamps)
        {
            // The kernel's shift came back from its TSecr; and it took ours ("wscale:<its send shift>,<its receive shift>").
            var ws = SsWscale().Match(ss);
            Assert.True(ws.Success, ss);
            Assert.Equal(tcp.RcvWindowScale, int.Parse(ws.Groups[1].Value));
            Assert.Equal(tcp.SndWindowScale, int.Parse(ws.Groups[2].Value));
            Assert.True(tcp.SndWindowScale > 0);
        }
        else
        {
            Assert.Equal(-1, tcp.SndWindowScale);
            Assert.Equal(-1, tcp.RcvWindowScale);
            Assert.DoesNotMatch(SsWscale(), ss);
        }

        var received = ReceiveToEndAsync(s);
        var (sentBytes, sentSha) = peer.WaitSummary("sent");
        var (gotBytes, gotSha) = await received.WaitAsync(Generous);
        Assert.Equal(sentBytes, gotBytes);
        Assert.Equal(sentSha, gotSha);
        var ourSha = await SendBlocksAsync(s, Size, Block(7)).WaitAsync(Generous);
        s.ShutdownSend();
        var (kernelGot, kernelSha) = peer.WaitSummary("got");
        Assert.Equal(Size, kernelGot);
        Assert.Equal(ourSha, kernelSha);
        Assert.True(peer.WaitForExit(Generous));
    }

    /// <summary>
    /// argv: RATE SECONDS PORT (<see cref="RawFlood"/>): SYNs with MSS 1460, a random ISN and port and a random source in
    /// 198.51.100.0/24 or 203.0.113.0/24, to 192.0.2.2:PORT. The TCP checksum is ours.
    /// </summary>
    private static readonly string SynFloodScript = RawFlood.Script("""
port = int(sys.argv[3])
def csum(b):
    t = sum(struct.unpack('!%dH' % (len(b) // 2), b))
    t = (t >> 16) + (t & 0xffff); t += t >> 16
    return ~t & 0xffff
def packet():
    src = socket.inet_aton(random.choice(('198.51.100.%d', '203.0.113.%d')) % random.randint(1, 254))
    tcp = struct.pack('!HHIIBBHHHBBH', random.randint(1024, 65535), port, random.getrandbits(32), 0, 6 << 4, 0x02, 64240, 0, 0, 2, 4, 1460)
    c = csum(src + dst + struct.pack('!BBH', 0, 6, len(tcp)) + tcp)
    tcp = tcp[:16] + struct.pack('!H', c) + tcp[18:]
    return struct.pack('!BBHHHBBH4s4s', 0x45, 0, 20 + len(tcp), random.randint(0, 65535), 0, 64, 6, 0, src, dst) + tcp
""");

    /// <summary>
    /// argv: PORT COUNT INTERVAL. The kernel's own client: COUNT connects INTERVAL seconds apart (each on a thread of its
    /// own, so a slow one does not delay the next), each sending one byte and waiting for its echo, 3 s at most (room for
    /// one SYN retransmission); prints "ready", then "ok N of COUNT".
    /// </summary>
    private const string ClientScript = """
import socket, sys, time, threading
port, count, interval = int(sys.argv[1]), int(sys.argv[2]), float(sys.argv[3])
ok = [0]; lock = threading.Lock()
def attempt():
    try:
        c = socket.create_connection(('192.0.2.2', port), timeout=3)
        c.sendall(b'x')
        if c.recv(1) == b'x':
            with lock: ok[0] += 1
        c.close()
    except OSError:
        pass
print('ready', flush=True)
start = time.monotonic(); threads = []
for i in range(count):
    d = start + i * interval - time.monotonic()
    if d > 0: time.sleep(d)
    t = threading.Thread(target=attempt); t.start(); threads.append(t)
for t in threads: t.join()
print('ok %d of %d' % (ok[0], count), flush=True)
""";

    [GeneratedRegex(@"ok (\d+) of (\d+)")]
    private static partial Regex ClientSummary();

    /// <summary>Echoes one byte on every accepted connection, then resets it (the kernel's client has closed by then).</summary>
    private static async Task ServeAsync(TcpListener listener, CancellationToken stop)
    {
        var buffer = new byte[16];
        while (!stop.IsCancellationRequested)
        {
            TcpSocket s;
            try { s = await listener.AcceptAsync(stop); }
            catch (Exception) when (stop.IsCancellationRequested) { return; }
            _ = Task.Run(async () =>
            {
                try
                {
                    var n = await s.ReceiveAsync(buffer.AsMemory(0, 1)).AsTask().WaitAsync(Generous);
                    if (n == 1) await s.SendAsync(buffer.AsMemory(0, 1)).WaitAsync(Generous);
                    await s.ReceiveAsync(new byte[16]).AsTask().WaitAsync(Generous); // the client's FIN
                }
                catch (Exception) { }
                s.Abort();
            });
        }
    }

    /// <summary>
    /// 4,000 spoofed SYNs per second for 12 s at a listener with backlog 128; from the first second, the kernel's client
    /// connects ten times a second for 8 s. With cookies (the default) at least 9 in 10 connects succeed and the stack
    /// holds no more connections than the backlog's half-open ones and the client's; without them the port is locked.
    /// </summary>
    [KernelTheory(Programs = ["python3"])]
    [InlineData(SynCookieMode.Auto)]
    [InlineData(SynCookieMode.Never)]
    public async Task TheKernelsClient_ConnectsDuringASynFloodFromARawSocket(SynCookieMode mode)
    {
        using var lab = new KernelLab();
        // Our replies to the spoofed sources go to the kernel as our gateway, which does not forward them.
        using var stack = lab.StartTcpStack(c => c with { Gateway = KernelLab.KernelAddress, Tcp = c.Tcp with { SynCookies = mode } });
        using var listener = await stack.ListenAsync(8620, 128).WaitAsync(Generous);
        using var stop = new CancellationTokenSource();
        var serve = ServeAsync(listener, stop.Token);
        lab.RunInKernel($"ping -c 1 -W 5 {KernelLab.StackAddress}", Generous); // ARP both ways before the flood

        var flood = lab.StartPeer(SynFloodScript, "4000", "12", "8620");
        await Task.Delay(1000); // the SYN queue is full within 32 ms
        var client = lab.StartPeer(ClientScript, "8620", "80", "0.1");
        Assert.True(client.WaitForOutput(o => ClientSummary().IsMatch(o), TimeSpan.FromSeconds(60)), $"the client did not finish: {client.Output} {client.Error}");
        var heldDuringFlood = (await stack.GetConnectionsAsync().WaitAsync(Generous)).Count(r => r.Protocol == SocketProtocol.Tcp && r.State != "Listen");
        Assert.True(flood.WaitForOutput(o => RawFlood.Summary().IsMatch(o), Generous), $"the flood did not finish: {flood.Output} {flood.Error}");
        stop.Cancel();
        await serve.WaitAsync(Generous);

        var c = ClientSummary().Match(client.Output);
        int ok = int.Parse(c.Groups[1].Value), tried = int.Parse(c.Groups[2].Value);
        var f = RawFlood.Summary().Match(flood.Output);
        var stats = (await stack.GetStatisticsAsync().WaitAsync(Generous)).Where(x => x.Layer == "Tcp").ToDictionary(x => x.Name, x => x.Value);
        output.WriteLine($"{mode}: flood {f.Groups[1].Value} SYNs in {f.Groups[2].Value} s; the kernel's connects {ok}/{tried} ({100.0 * ok / tried:0}%); " +
                         $"cookies sent {stats["SynCookiesSent"]}, accepted {stats["SynCookiesAccepted"]}, rejected {stats["SynCookiesRejected"]}; " +
                         $"SYNs dropped {stats["ListenSynQueueFull"]}; connections held {heldDuringFlood}");
        Assert.True(heldDuringFlood <= 128 + 40, $"{heldDuringFlood} connections held during the flood");
        if (mode == SynCookieMode.Auto)
        {
            Assert.True(ok >= tried * 9 / 10, $"only {ok} of {tried} of the kernel's connects succeeded during the flood");
            Assert.True(stats["SynCookiesAccepted"] >= ok);
        }
        else Assert.True(ok < tried / 2, $"{ok} of {tried} connects succeeded without cookies: the flood did not fill the SYN queue");
    }
}
