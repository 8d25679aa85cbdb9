using NetStack.Link;
using Xunit.Abstractions;
namespace Stack.Tests.Tcp;
public class TcpDebugTests
{
    private readonly ITestOutputHelper _out;
    public TcpDebugTests(ITestOutputHelper o) => _out = o;
    [Fact]
    public void Dbg()
    {
        var seed = 12;
        var (sim, a, b) = TcpSim.Pair(seed, new WireFaults { Delay = TimeSpan.FromMilliseconds(5), LossRate = 0.2, ReorderRate = 0.05, ReorderDelay = TimeSpan.FromMilliseconds(3), DuplicateRate = 0.02, CorruptRate = 0.01 }, t => t with { SynRetries = 10, MaxRetries = 30 });
        using var _ = sim;
        var log = new List<string>();
        a.Event += e => log.Add($"A {e.Time} {e.Message}");
        b.Event += e => log.Add($"B {e.Time} {e.Message}");
        var (c, s) = TcpSim.Connect(sim, a, b);
        var up = new Flow(c, s, TcpSim.Data(1 << 20, seed));
        var down = new Flow(s, c, TcpSim.Data(1 << 20, seed + 100));
        var ok = TcpSim.Drive(sim, () => up.Pump() | down.Pump(), () => up.Done && down.Done, TimeSpan.FromMinutes(30));
        _out.WriteLine($"seed {seed}: ok={ok} {sim.Now} up {up.Received} down {down.Received}");
        foreach (var l in log.Skip(Math.Max(0, log.Count - 60))) _out.WriteLine(l);
        _out.WriteLine(TcpSim.Dump(sim));
    }
}
