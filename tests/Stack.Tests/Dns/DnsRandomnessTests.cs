using NetStack;
using NetStack.Link;

namespace Stack.Tests.Dns;

/// <summary>
/// RFC 5452 9.2: a stack without a seed takes DNS query ids and source ports (and its port and ISN secrets) from the
/// operating system's cryptographic generator; a seeded one from its System.Random, so simulations replay.
/// </summary>
public class DnsRandomnessTests
{
    private static readonly Ipv4Address ServerAddress = Ipv4Address.Parse("192.0.2.1");

    private static NetworkStack NewStack(VirtualWire wire, string name, int last, int? seed = null, Ipv4Address[]? dns = null) =>
        new(wire.CreatePort(name, MacAddress.Parse($"02-00-00-00-00-{last:x2}")),
            new StackConfig { Address = Ipv4Address.Parse($"192.0.2.{last}"), DnsServers = dns ?? [] }, seed: seed);

    [Fact]
    public void An_unseeded_stack_draws_from_the_cryptographic_generator_and_a_seeded_one_replays()
    {
        var wire = new VirtualWire(1);
        using var unseeded = NewStack(wire, "a", 2);
        using var seeded = NewStack(wire, "b", 3, seed: 7);
        Assert.True(unseeded.Context.Unpredictable.IsCryptographic);
        Assert.IsType<CryptoRandomSource>(unseeded.Context.Unpredictable);
        Assert.False(seeded.Context.Unpredictable.IsCryptographic);

        // The seeded source is the stack's System.Random itself: its draws continue that one sequence (replayable).
        var replay = new Random(3);
        var context = new LayerContext("rule", new StackConfig { Address = ServerAddress }, new Random(3));
        Assert.Equal(replay.Next(65536), context.Unpredictable.Next(65536));
        Assert.Equal(replay.Next(100), context.Random.Next(100));
    }

    [Fact]
    public async Task Query_ids_and_source_ports_of_an_unseeded_stack_are_spread_and_distinct()
    {
        const int Queries = 300;
        var wire = new VirtualWire(2);
        using var server = NewStack(wire, "s", 1, seed: 1);
        using var client = NewStack(wire, "c", 2, dns: [ServerAddress]);
        server.Start();
        client.Start();
        var dns = new TestDnsServer(await server.CreateUdpSocketAsync(53), () => TimeSpan.Zero);
        for (int i = 0; i < Queries; i++) dns.A[$"n{i}.test"] = ([ServerAddress], 300);
        using var stop = new CancellationTokenSource();
        var pump = Task.Run(async () =>
        {
            while (!stop.IsCancellationRequested)
            {
                if (dns.HasQuery) dns.Serve();
                await Task.Delay(1);
            }
        });
        try
        {
            for (int i = 0; i < Queries; i++)
                Assert.Equal(ServerAddress, (await client.ResolveAsync($"n{i}.test").WaitAsync(TimeSpan.FromSeconds(30))).Addresses[0]);
        }
        finally
        {
            stop.Cancel();
            await pump;
        }

        var ids = dns.Queries.Select(q => (int)q.Id).ToList();
        var ports = dns.Queries.Select(q => (int)q.FromPort).ToList();
        // At least one query per name; one the loaded machine answered after the resolver's timeout is sent again (seen once
        // in a README test run: 301), and a retry's id or port may repeat the first's, which the margins below cover.
        Assert.InRange(ids.Count, Queries, Queries + 10);
        // 300 draws from 65,536 ids collide about 0.7 times on average, from ~28,000 ports about 1.6 times: 10 is far out.
        Assert.True(ids.Distinct().Count() >= ids.Count - 10, $"{ids.Count - ids.Distinct().Count()} repeated ids");
        Assert.True(ports.Distinct().Count() >= ports.Count - 10, $"{ports.Count - ports.Distinct().Count()} repeated ports");
        // Spread over the whole range: each half of the id space, and of the port range, gets a fair share (binomial, sd ~8.7).
        Assert.InRange(ids.Count(id => id < 32768), 100, 200);
        var cfg = client.Config;
        var middle = (cfg.EphemeralPortFirst + cfg.EphemeralPortLast) / 2;
        Assert.InRange(ports.Count(p => p <= middle), 100, 200);
        Assert.All(ports, p => Assert.InRange(p, cfg.EphemeralPortFirst, cfg.EphemeralPortLast));
        // Not a counter: successive differences vary.
        Assert.True(ids.Zip(ids.Skip(1), (a, b) => (b - a) & 0xFFFF).Distinct().Count() > Queries / 2);
    }
}
