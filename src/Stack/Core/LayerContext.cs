using System.Runtime.CompilerServices;

namespace NetStack;

/// <summary>
/// What every layer is given besides the interfaces of its neighbours: the stack's name and configuration, the
/// loop's current time, its random source and its trace. One per stack, made by <see cref="NetworkStack"/>, which
/// is the only thing that knows all the layers; a layer never sees the stack itself. Loop-thread only, except
/// that trace subscribers may come and go from any thread.
/// </summary>
internal sealed class LayerContext
{
    private readonly object _gate = new();
    private Action<StackEvent>? _event;

    private volatile StackConfig _config;

    /// <param name="unpredictable">The source of unguessable values; by default <paramref name="random"/> itself (a seeded stack, a rule test).</param>
    public LayerContext(string name, StackConfig config, Random random, IRandomSource? unpredictable = null)
    {
        Name = name;
        _config = config;
        Random = random;
        Unpredictable = unpredictable ?? new SeededRandomSource(random);
    }

    /// <summary>The stack's name (for messages).</summary>
    public string Name { get; }

    /// <summary>
    /// The stack's current configuration, read per packet. Replaced whole, on the loop, when a DHCP lease brings or
    /// takes away the address (<see cref="Reconfigure"/>); readers on other threads see the old or the new one, never a mix.
    /// </summary>
    public StackConfig Config => _config;

    /// <summary>Makes <paramref name="next"/> the configuration every layer reads from the next packet on. Loop only.</summary>
    public void Reconfigure(StackConfig next) => _config = next;

    /// <summary>The stack's one random source: seeded in simulations, so a run (ISNs, ports, ids) replays exactly.</summary>
    public Random Random { get; }

    /// <summary>
    /// For what an attacker must not guess (DNS ids and source ports, port and ISN secrets, the IP id key, DHCP xids,
    /// the echo identifier): the OS's cryptographic
    /// generator when the stack has no seed, else <see cref="Random"/> (same draws, same order: a simulation replays).
    /// </summary>
    public IRandomSource Unpredictable { get; }

    /// <summary>The loop's current time: the 'now' of the turn in progress, which trace events are stamped with.</summary>
    public TimeSpan Now { get; set; }

    public event Action<StackEvent>? Event
    {
        add { lock (_gate) _event += value; }
        remove { lock (_gate) _event -= value; }
    }

    public bool TraceEnabled => _event != null;

    /// <summary>Narrates a protocol event; the message is only formatted when someone listens.</summary>
    public void Trace(string layer, [InterpolatedStringHandlerArgument("")] ref TraceMessageHandler message)
    {
        var handler = _event;
        if (handler is null) return;
        var text = message.ToStringAndClear();
        try { handler(new StackEvent(Now, layer, text)); }
        catch { /* a listener's failure must not break the protocol */ }
    }
}
