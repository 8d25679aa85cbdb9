using NetStack;
using NetStack.Link;
using NetStack.Sockets;
using NetStack.Tcp;
using Stack.Tests.Support;
using Xunit.Abstractions;

namespace Stack.Tests.Tcp;

/// <summary>
/// A SYN flood on the virtual wire, in virtual time and seeded (issue 14): 4,000 spoofed SYNs per second from random
/// sources in 198.51.100.0/24 and 203.0.113.0/24 (behind the listener's gateway) at a listener with backlog 128,
/// while a legitimate client connects ten times a second.
/// </summary>
public class SynFloodSimulationTests(ITestOutputHelper output)
{
    private static readonly Ipv4Address Gateway = Ipv4Address.Parse("192.0.2.254");
    private static readonly Ipv4Address Server = Ipv4Address.Parse("192.0.2.2");

    private sealed record Outcome(int Tried, int Connected, int MaxConnections, long CookiesSent, long CookiesAccepted, long SynQueueFull, long MemoryGrowth);

    /// <summary>
    /// Floods for <paramref name="floodSeconds"/>; from the first second a client connects every 100 ms until 5 s before
    /// the end. A connect succeeds if it is established (and accepted by the server) within 5 s, which leaves room for
    /// the SYN retransmissions at 1 and 3 s.
    /// </summary>
    private static Outcome Flood(int seed, SynCookieMode mode, int floodSeconds)
    {
        using var sim = new Simulation(seed, new WireFaults { Delay = TimeSpan.FromMilliseconds(1) });
        var server = sim.AddStack("192.0.2.2/24", c => c with { Gateway = Gateway, Tcp = c.Tcp with { SynCookies = mode } });
        var client = sim.AddStack("192.0.2.1/24");
        // The spoofed sources lie behind the gateway, a stack that takes (and drops) our SYN-ACKs to them; the flood
        // enters the wire through its port, as if routed in from outside.
        sim.AddStack($"{Gateway}/24");
        var attacker = sim.Wire.Ports.Single(p => p.Name == Gateway.ToString());
        var listener = server.Listen(80, backlog: 128);
        var accept = listener.AcceptAsync();
        var accepted = new HashSet<int>();
        var random = new Random(seed);
        var connects = new List<(TimeSpan Start, TcpSocket Socket, Task Task)>();
        int tried = 0, connected = 0, maxConnections = 0;
        GC.Collect();
        var memoryBefore = GC.GetTotalMemory(forceFullCollection: true);
        var step = TimeSpan.FromMilliseconds(1);
        var window = TimeSpan.FromSeconds(5);
        for (int ms = 0; ms < floodSeconds * 1000; ms++)
        {
            for (int i = 0; i < 4; i++) attacker.Transmit(SpoofedSyn(random), sim.Now); // 4,000 per second
            if (ms >= 1000 && ms <= (floodSeconds - 5) * 1000 && ms % 100 == 0)
            {
                var s = client.CreateTcpSocket();
                connects.Add((sim.Now, s, s.ConnectAsync(server.Config.Address, 80)));
                tried++;
            }
            sim.Advance(step);
            while (accept.IsCompleted)
            {
                var socket = accept.GetAwaiter().GetResult();
                accepted.Add(socket.RemoteEndPoint.Port);
                socket.Abort();
                accept = listener.AcceptAsync();
                sim.Advance(TimeSpan.Zero);
            }
            for (int i = connects.Count - 1; i >= 0; i--)
            {
                var (start, socket, task) = connects[i];
                var done = task.IsCompletedSuccessfully && accepted.Contains(socket.LocalEndPoint.Port);
                if (!done && sim.Now - start < window) continue;
                if (done) connected++;
                socket.Abort();
                connects.RemoveAt(i);
            }
            maxConnections = Math.Max(maxConnections, server.Tcp.ConnectionCount);
        }
        GC.Collect();
        var growth = GC.GetTotalMemory(forceFullCollection: true) - memoryBefore;
        var stats = sim.Run(server.GetStatisticsAsync()).Where(c => c.Layer == "Tcp").ToDictionary(c => c.Name, c => c.Value);
        return new Outcome(tried, connected, maxConnections, stats["SynCookiesSent"], stats["SynCookiesAccepted"], stats["ListenSynQueueFull"], growth);
    }

    private static byte[] SpoofedSyn(Random r)
    {
        var source = r.Next(2) == 0 ? new Ipv4Address(198, 51, 100, (byte)r.Next(1, 255)) : new Ipv4Address(203, 0, 113, (byte)r.Next(1, 255));
        var syn = new Seg
        {
            SrcPort = (ushort)r.Next(1024, 65535), DstPort = 80, Seq = (uint)r.NextInt64(0, 1L << 32), Flags = TcpFlags.Syn, Window = 64240,
            Payload = [], Options = SegCodec.MssOption(1460),
        };
        // Simulation.AddStack derives each stack's MAC from its address.
        return Frames.Ipv4(new MacAddress(0x0200_0000_0000UL | Gateway.Value), new MacAddress(0x0200_0000_0000UL | Server.Value), source, Server, 6,
            SegCodec.Build(syn, source, Server));
    }

    [Fact]
    public void With_syn_cookies_nine_in_ten_legitimate_connects_succeed_during_a_flood_of_4000_syns_per_second()
    {
        var o = Flood(seed: 21, SynCookieMode.Auto, floodSeconds: 20);
        output.WriteLine($"cookies (Auto): {o.Connected}/{o.Tried} connects ({100.0 * o.Connected / o.Tried:0.#}%); cookies sent {o.CookiesSent}, " +
                         $"accepted {o.CookiesAccepted}; most connections held {o.MaxConnections}; managed memory {o.MemoryGrowth / 1024} KiB more after the flood");
        Assert.True(o.Connected >= o.Tried * 9 / 10, $"only {o.Connected} of {o.Tried} legitimate connects succeeded during the flood");
        Assert.True(o.CookiesSent > 70_000);                 // every SYN beyond the SYN queue got a cookie
        Assert.Equal(o.Connected, o.CookiesAccepted);         // the client's SYNs came with the queue full: each by cookie
        Assert.True(o.MaxConnections <= 128 + 5, $"{o.MaxConnections} connections held: state grew with the flood"); // the half-open 128, and the client's
    }

    [Fact]
    public void Without_syn_cookies_the_same_flood_locks_legitimate_clients_out()
    {
        var o = Flood(seed: 21, SynCookieMode.Never, floodSeconds: 20);
        output.WriteLine($"no cookies (Never): {o.Connected}/{o.Tried} connects ({100.0 * o.Connected / o.Tried:0.#}%); SYNs dropped {o.SynQueueFull}; " +
                         $"most connections held {o.MaxConnections}");
        Assert.True(o.Connected < o.Tried / 2, $"{o.Connected} of {o.Tried} connects succeeded: the flood did not fill the SYN queue");
        Assert.Equal(0, o.CookiesSent);
        Assert.True(o.MaxConnections <= 128 + 5);
    }
}
