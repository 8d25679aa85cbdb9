using NetStack.Link;

namespace NetStack;

/// <summary>
/// Runs stacks on one <see cref="VirtualWire"/> in virtual time, deterministically: each step polls every
/// stack at the current instant, then jumps the clock to the earliest deadline or frame arrival.
/// A ten-minute lossy transfer runs in a second, and a failing seed replays exactly.
/// </summary>
public sealed class Simulation : IDisposable
{
    private readonly List<NetworkStack> _stacks = new();

    public Simulation(int seed = 1, WireFaults? faults = null)
    {
        Seed = seed;
        Wire = new VirtualWire(seed, faults);
    }

    public int Seed { get; }
    public VirtualWire Wire { get; }
    public ManualClock Clock { get; } = new();
    public IReadOnlyList<NetworkStack> Stacks => _stacks;
    public TimeSpan Now => Clock.Now;

    /// <summary>
    /// Adds a stack with address <paramref name="address"/> (e.g. "192.0.2.2/24") and a MAC derived from it;
    /// <paramref name="link"/> may wrap its wire port (a fault injector, a capture tap).
    /// </summary>
    public NetworkStack AddStack(string address, Func<StackConfig, StackConfig>? configure = null, string? name = null, Func<ILinkDevice, ILinkDevice>? link = null)
    {
        var slash = address.IndexOf('/');
        var ip = Ipv4Address.Parse(slash < 0 ? address : address[..slash]);
        var prefix = slash < 0 ? 24 : int.Parse(address[(slash + 1)..], System.Globalization.CultureInfo.InvariantCulture);
        var mac = new MacAddress(0x0200_0000_0000UL | ip.Value); // locally administered, unique per address
        var config = new StackConfig { Address = ip, PrefixLength = prefix };
        if (configure != null) config = configure(config);
        return AddStack(config, mac, name ?? ip.ToString(), link);
    }

    /// <summary>Adds a stack with <paramref name="config"/> as it is (e.g. DHCP on, no address) and <paramref name="mac"/>.</summary>
    public NetworkStack AddStack(StackConfig config, MacAddress mac, string name, Func<ILinkDevice, ILinkDevice>? link = null)
    {
        var port = Wire.CreatePort(name, mac);
        var stack = new NetworkStack(link?.Invoke(port) ?? port, config, Clock, seed: unchecked(Seed * 1_000_003 + _stacks.Count) /* not HashCode: it is seeded per process, and a seed must replay */, name: name);
        _stacks.Add(stack);
        return stack;
    }

    /// <summary>Polls every stack at the current instant until none has work due now; returns the next deadline.</summary>
    public TimeSpan? Step()
    {
        for (int rounds = 0; ; rounds++)
        {
            var now = Clock.Now;
            TimeSpan? next = null;
            foreach (var s in _stacks)
            {
                var n = s.Poll(now);
                if (n is { } v && (next is null || v < next)) next = v;
            }
            var arrival = Wire.NextArrival;
            if (arrival is { } a && (next is null || a < next)) next = a;
            if (next is null || next > now) return next;
            if (rounds > 1_000_000) throw new InvalidOperationException("The simulation made no progress in time: a stack keeps asking to run at the same instant.");
        }
    }

    /// <summary>
    /// Advances virtual time until <paramref name="condition"/> holds (checked after every step) or
    /// <paramref name="limit"/> of virtual time passes. Returns whether the condition held.
    /// </summary>
    public bool RunUntil(Func<bool> condition, TimeSpan limit)
    {
        var end = Clock.Now + limit;
        while (true)
        {
            var next = Step();
            if (condition()) return true;
            // Work posted from other threads (task continuations) lands without a deadline: give it a turn.
            var target = next ?? end;
            if (target > end) target = end;
            if (Clock.Now >= end) return condition();
            if (target <= Clock.Now) target = Clock.Now + TimeSpan.FromTicks(1);
            Clock.Now = target;
        }
    }

    /// <summary>Runs until <paramref name="task"/> completes (or the virtual limit passes) and returns its result.</summary>
    public T Run<T>(Task<T> task, TimeSpan? limit = null)
    {
        if (!RunUntil(() => task.IsCompleted, limit ?? TimeSpan.FromMinutes(10)))
            throw new TimeoutException($"The task did not complete within {limit ?? TimeSpan.FromMinutes(10)} of virtual time.");
        return task.GetAwaiter().GetResult();
    }

    public void Run(Task task, TimeSpan? limit = null)
    {
        if (!RunUntil(() => task.IsCompleted, limit ?? TimeSpan.FromMinutes(10)))
            throw new TimeoutException($"The task did not complete within {limit ?? TimeSpan.FromMinutes(10)} of virtual time.");
        task.GetAwaiter().GetResult();
    }

    /// <summary>Lets <paramref name="duration"/> of virtual time pass, running everything due.</summary>
    public void Advance(TimeSpan duration) => RunUntil(() => false, duration);

    public void Dispose()
    {
        foreach (var s in _stacks) s.Dispose();
        _stacks.Clear();
    }
}
