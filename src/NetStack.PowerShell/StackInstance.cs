namespace NetStack.PowerShell;

/// <summary>
/// A running stack as the module knows it (Start-Stack, Get-Stack). Live: Uptime and IsRunning are read when
/// asked. Pipe it to any cmdlet's -Stack, or give that parameter the stack's Name.
/// </summary>
public sealed class StackInstance
{
    private readonly NetworkStack? _stack;
    private readonly object _gate = new();
    private bool _stopped;

    internal StackInstance(NetworkStack stack, string? adapter, string? virtualNetwork, string? captureFile, Guid ownerRunspace)
    {
        _stack = stack;
        Name = stack.Name;
        Adapter = adapter;
        VirtualNetwork = virtualNetwork;
        CaptureFile = captureFile;
        OwnerRunspace = ownerRunspace;
        MacAddress = stack.MacAddress.ToString();
        PacketLogSize = stack.Config.PacketLogCapacity;
        StartedAt = stack.StartedAt;
    }

    /// <summary>A name given to -Stack that matches no stack; the cmdlet reports it as ObjectNotFound.</summary>
    private StackInstance(string missingName)
    {
        Name = missingName;
        MacAddress = "";
        IsMissing = true;
        _stopped = true;
    }

    internal static StackInstance Missing(string name) => new(name);

    /// <summary>What is left of a stopped stack once the module let go of it: its name, reported as StackStopped.</summary>
    internal static StackInstance Stopped(string name, long order) => new(name) { IsMissing = false, Order = order };

    public string Name { get; }
    // Read from the configuration in force, which a DHCP lease changes: 0.0.0.0 until it is bound.
    public string IPAddress => _stack?.Config.Address.ToString() ?? "";
    public int PrefixLength => _stack?.Config.PrefixLength ?? 0;
    public string? Gateway => _stack?.Config.Gateway?.ToString();
    public string[] DnsServer => _stack?.Config.DnsServers.Select(d => d.ToString()).ToArray() ?? Array.Empty<string>();
    /// <summary>Search domains tried for short names (Start-Stack -DnsSearch, or a DHCP lease's).</summary>
    public string[] DnsSearch => _stack?.Config.DnsSearch.ToArray() ?? Array.Empty<string>();
    public string MacAddress { get; }
    public int Mtu => _stack?.Mtu ?? 0;
    /// <summary>The DHCP client's state and lease (Start-Stack -Dhcp), or null for a stack with a fixed address.</summary>
    public StackDhcpLease? Dhcp => _stack is { DhcpLease: { } lease } s ? new StackDhcpLease(lease, Name, s.Clock.Now) : null;
    /// <summary>The pcap adapter the stack is bound to (null on a virtual network).</summary>
    public string? Adapter { get; }
    /// <summary>The in-process virtual network the stack is attached to (null on an adapter).</summary>
    public string? VirtualNetwork { get; }
    public string? CaptureFile { get; }
    public int PacketLogSize { get; }
    /// <summary>The low-latency settings it runs with (Start-Stack -BusyPollMicroseconds, -CallerWaitMicroseconds): 0 when off.</summary>
    public int BusyPollMicroseconds => _stack?.Config.BusyPollMicroseconds ?? 0;
    public int CallerWaitMicroseconds => _stack?.Config.CallerWaitMicroseconds ?? 0;
    /// <summary>The processor its loop thread runs on (Start-Stack -LoopProcessor), or null for any.</summary>
    public int? LoopProcessor => _stack?.Config.LoopProcessor;
    public DateTimeOffset StartedAt { get; }
    /// <summary>How long the stack has run (until it stopped, for a stopped one).</summary>
    public TimeSpan Uptime => _stack is null ? TimeSpan.Zero : (StoppedAt ?? DateTimeOffset.Now) - StartedAt;
    public DateTimeOffset? StoppedAt { get; private set; }
    public bool IsRunning { get { lock (_gate) return !_stopped && _stack is { IsRunning: true }; } }
    /// <summary>Where the stack is attached, for tables: the adapter name or "virtual:&lt;network&gt;".</summary>
    public string Link => Adapter ?? (VirtualNetwork is { } v ? "virtual:" + v : "");
    public string Address => _stack is null ? "" : $"{IPAddress}/{PrefixLength}";

    /// <summary>Why the adapter stopped working (it vanished, went down...), or null while it works.</summary>
    /// <summary>The nftables table of the host ingress drop (Start-Stack -HostIngressDrop) while the stack runs; null without one.</summary>
    public string? HostIngressDrop => _stack is null || !IsRunning ? null : LinkFactory.PcapOf(_stack.Device)?.HostIngressDrop?.Table;

    public string? LinkFault => _stack is null ? null : LinkFactory.PcapOf(_stack.Device)?.Fault;

    /// <summary>The stack itself, for scripts that go below the cmdlets.</summary>
    public NetworkStack? NetworkStack => _stack;

    internal bool IsMissing { get; private init; }
    internal Guid OwnerRunspace { get; }
    internal long Order { get; set; }

    internal NetworkStack Core => _stack ?? throw new InvalidOperationException("No such stack.");

    internal bool IsStopped { get { lock (_gate) return _stopped; } }

    /// <summary>Disposes the stack once: the loop stops, pending operations fail with StackStopped, the link is released.</summary>
    internal void Shutdown()
    {
        lock (_gate)
        {
            if (_stopped) return;
            _stopped = true;
            StoppedAt = DateTimeOffset.Now;
        }
        _stack?.Dispose();
    }

    public override string ToString() => Name;
}
