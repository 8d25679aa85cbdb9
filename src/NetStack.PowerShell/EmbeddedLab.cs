using System.Collections;
using System.Management.Automation;
using NetStack.Link;
using NetStack.Services;

namespace NetStack.PowerShell;

/// <summary>What Start-Stack on a virtual network will do: where it joins, its address, and what the network gives it.</summary>
internal sealed record LabPlan(string Network, Ipv4Prefix Address, Ipv4Address? Gateway, Ipv4Address[]? DnsServers, bool StartServiceHost, WireFaults? Faults,
    string[]? DnsSearch = null);

/// <summary>
/// The embedded lab: the virtual network "lab" (192.0.2.0/24) that Start-Stack joins when given no adapter and no
/// network, with its service host at 192.0.2.1 — a NetStack stack of its own running <see cref="ServiceHost"/> —
/// started with the first stack that joins and stopped when the last other stack on its network stops. A stack that
/// joins a network with a service host gets it as gateway and DNS server unless it names its own, and the host's domain
/// (lab.test) as DNS search list, so short names resolve (Test-StackConnection www). Service hosts are
/// ordinary stacks in the module's registry (Get-Stack, Get-StackConnection -Stack lab-services...), owned by no
/// runspace.
/// </summary>
internal static class EmbeddedLab
{
    public const string NetworkName = "lab";
    public static readonly Ipv4Prefix HostAddress = new(new Ipv4Address(192, 0, 2, 1), 24);
    private static readonly object Gate = new();
    private static readonly Dictionary<StackInstance, ServiceHost> Hosts = new();
    // Every stack that was started as a service host, with its DNS domain (kept after it stopped).
    private static readonly System.Runtime.CompilerServices.ConditionalWeakTable<StackInstance, string> Domains = new();

    /// <summary>The DNS domain of a service host stack, or null for any other stack.</summary>
    public static string? DomainOf(StackInstance s) => Domains.TryGetValue(s, out var d) ? d : null;

    public static string ServiceHostName(string network) => network + "-services";

    public static bool IsServiceHost(StackInstance s)
    {
        lock (Gate) return Hosts.ContainsKey(s);
    }

    public static StackInstance? ServiceHostOf(string network)
    {
        lock (Gate) return Hosts.Keys.FirstOrDefault(s => string.Equals(s.VirtualNetwork, network, StringComparison.OrdinalIgnoreCase));
    }

    public static ServiceHost? ServiceOf(StackInstance s)
    {
        lock (Gate) return Hosts.GetValueOrDefault(s);
    }

    private static StackInstance[] StacksOn(string network) =>
        ModuleState.All().Where(s => string.Equals(s.VirtualNetwork, network, StringComparison.OrdinalIgnoreCase)).ToArray();

    /// <summary>
    /// Plans a stack's place on a virtual network (<paramref name="network"/> empty: the embedded lab): the address
    /// given, or the next free one in the network's subnet; the service host as gateway and DNS server; the faults of
    /// -Simulate merged over the network's. Terminates with an ErrorRecord when the address is taken or a setting is bad.
    /// With <paramref name="dhcp"/> no address is chosen and no gateway or DNS server given: the lease brings them (the
    /// service host serves DHCP).
    /// </summary>
    public static LabPlan Plan(PSCmdlet cmdlet, string network, Ipv4Prefix? address, Hashtable? simulate, bool dhcp = false)
    {
        if (string.IsNullOrEmpty(network)) network = NetworkName;
        var existing = ModuleState.AllNetworks().FirstOrDefault(n => string.Equals(n.Name, network, StringComparison.OrdinalIgnoreCase));
        var faults = simulate is null ? null : NetworkFaults.Parse(cmdlet, simulate, existing?.Wire.Faults ?? WireFaults.None);
        var stacks = StacksOn(network);
        var host = ServiceHostOf(network);
        // The embedded lab's service host comes with its first stack, unless that stack takes the host's address.
        var startHost = stacks.Length == 0 && string.Equals(network, NetworkName, StringComparison.OrdinalIgnoreCase)
            && (address is null || address.Value.Address != HostAddress.Address);
        // A DHCP stack still without its lease has no subnet to offer (0.0.0.0).
        var numbered = stacks.FirstOrDefault(s => Parse(s.Address).Address.Value != 0);
        var subnet = host is not null ? Parse(host.Address) : numbered is not null ? Parse(numbered.Address) : HostAddress;
        if (dhcp) return new LabPlan(network, new Ipv4Prefix(Ipv4Address.Any, subnet.PrefixLength), null, null, startHost, faults);

        Ipv4Prefix chosen;
        if (address is { } given)
        {
            if (stacks.FirstOrDefault(s => s.IPAddress == given.Address.ToString()) is { } owner)
                cmdlet.ThrowTerminatingError(new ErrorRecord(
                    new InvalidOperationException($"{given.Address} is already used on virtual network '{network}' by stack '{owner.Name}'. Leave out -IPAddress to get the next free address, or choose another."),
                    "AddressInUse", ErrorCategory.ResourceExists, given.Address.ToString()));
            chosen = given;
        }
        else chosen = NextFree(cmdlet, network, subnet, stacks, reserveHost: startHost || host is not null);

        Ipv4Address? gateway = null;
        Ipv4Address[]? dns = null;
        string[]? search = null;
        var hostAddress = startHost ? HostAddress : host is null ? (Ipv4Prefix?)null : Parse(host.Address);
        if (hostAddress is { } h && h.Address.IsInSubnet(chosen.Address, chosen.PrefixLength) && h.Address != chosen.Address)
        {
            gateway = h.Address;
            dns = new[] { h.Address };
            var domain = host is null ? new ServiceHostOptions().Domain : DomainOf(host);
            if (domain != null) search = new[] { domain };
        }
        return new LabPlan(network, chosen, gateway, dns, startHost, faults, search);
    }

    private static Ipv4Prefix Parse(string address)
    {
        var slash = address.IndexOf('/');
        return new Ipv4Prefix(Ipv4Address.Parse(address[..slash]), int.Parse(address[(slash + 1)..], System.Globalization.CultureInfo.InvariantCulture));
    }

    /// <summary>The lowest host address of the subnet that no stack on the network uses (.1 kept for a service host).</summary>
    private static Ipv4Prefix NextFree(PSCmdlet cmdlet, string network, Ipv4Prefix subnet, StackInstance[] stacks, bool reserveHost)
    {
        var mask = Ipv4Address.MaskOf(subnet.PrefixLength);
        var first = (subnet.Address.Value & mask) + 1;
        var last = (subnet.Address.Value | ~mask) - 1;
        var used = stacks.Select(s => Parse(s.Address).Address.Value).ToHashSet();
        for (var v = first + 1; v <= last; v++) // first (.1) is the service host's or the gateway's by convention
            if (!used.Contains(v)) return new Ipv4Prefix(new Ipv4Address(v), subnet.PrefixLength);
        if (!reserveHost && !used.Contains(first)) return new Ipv4Prefix(new Ipv4Address(first), subnet.PrefixLength);
        cmdlet.ThrowTerminatingError(new ErrorRecord(
            new InvalidOperationException($"Virtual network '{network}' has no free address left in {new Ipv4Address(first - 1)}/{subnet.PrefixLength}. Stop a stack, or start this one on another -VirtualNetwork."),
            "NoFreeAddress", ErrorCategory.LimitsExceeded, network));
        throw new InvalidOperationException(); // not reached
    }

    /// <summary>The network a planned stack joins, created on first use, with the plan's faults applied.</summary>
    public static VirtualNetwork Join(LabPlan plan)
    {
        var net = ModuleState.GetOrCreateNetwork(plan.Network);
        if (plan.Faults is { } f) net.Wire.Faults = f;
        return net;
    }

    /// <summary>
    /// After the planned stack started: starts the embedded lab's service host if the plan says so, and keeps the
    /// user's stack the most recently started one (the default of -Stack). A host that fails to start is a warning.
    /// </summary>
    public static void Complete(PSCmdlet cmdlet, LabPlan plan, StackInstance stack)
    {
        if (!plan.StartServiceHost) return;
        try
        {
            var host = StartServiceHost(cmdlet, plan.Network, HostAddress, ServiceHostName(plan.Network), null);
            (host.Order, stack.Order) = (stack.Order, host.Order);
            cmdlet.WriteVerbose($"Service host '{host.Name}' started at {host.Address}: echo 7, discard 9, daytime 13, chargen 19, http 80, dns 53 ({DomainOf(host)}), dhcp 67 ({ServiceOf(host)?.DhcpPool}).");
        }
        catch (Exception e) when (e is StackException or InvalidOperationException or ArgumentException)
        {
            cmdlet.WriteWarning($"The lab's service host did not start: {e.Message}");
        }
    }

    /// <summary>Starts a service host stack on <paramref name="network"/>; throws InvalidOperationException with a readable message on failure.</summary>
    public static StackInstance StartServiceHost(PSCmdlet cmdlet, string network, Ipv4Prefix address, string name, string? domain, TimeSpan? dhcpLease = null)
    {
        if (ServiceHostOf(network) is { } running)
            throw new InvalidOperationException($"Virtual network '{network}' already has a service host: '{running.Name}' at {running.Address}.");
        if (ModuleState.IsNameTaken(name))
            throw new InvalidOperationException($"A stack named '{name}' is already running. Give the service host another -Name.");
        if (StacksOn(network).FirstOrDefault(s => s.IPAddress == address.Address.ToString()) is { } owner)
            throw new InvalidOperationException($"{address.Address} is already used on virtual network '{network}' by stack '{owner.Name}'; give the service host another -IPAddress.");
        var net = ModuleState.GetOrCreateNetwork(network);
        var config = new StackConfig { Address = address.Address, PrefixLength = address.PrefixLength };
        var port = net.Wire.CreatePort(name, new MacAddress(0x0200_0000_0000UL | address.Address.Value));
        var stack = new NetworkStack(port, config, net.Clock, name: name);
        var instance = new StackInstance(stack, null, network, null, Guid.Empty);
        if (!ModuleState.TryRegister(instance))
        {
            stack.Dispose();
            throw new InvalidOperationException($"A stack named '{name}' is already running. Give the service host another -Name.");
        }
        stack.Start();
        try
        {
            var options = new ServiceHostOptions();
            if (domain != null) options = options with { Domain = domain };
            if (dhcpLease is { } lease) options = options with { DhcpLeaseTime = lease };
            var host = ServiceHost.StartAsync(stack, options).WaitAsync(TimeSpan.FromSeconds(30)).GetAwaiter().GetResult();
            lock (Gate) Hosts[instance] = host;
            Domains.AddOrUpdate(instance, options.Domain);
        }
        catch (Exception e) when (e is StackException or TimeoutException or ArgumentException)
        {
            ModuleState.Stop(instance);
            throw new InvalidOperationException($"The service host could not open its ports: {e.Message}", e);
        }
        return instance;
    }

    /// <summary>Before a stack stops: a service host's services stop first (listeners close, open connections reset).</summary>
    public static void BeforeStop(StackInstance instance)
    {
        ServiceHost? host;
        lock (Gate) Hosts.Remove(instance, out host);
        host?.Dispose();
    }

    /// <summary>After a stack stopped: a service host left alone on its network (no other stack) stops too.</summary>
    public static void AfterStop(StackInstance instance)
    {
        if (instance.VirtualNetwork is not { } network || DomainOf(instance) is not null) return;
        var remaining = StacksOn(network);
        if (remaining.Length == 0 || !remaining.All(IsServiceHost)) return;
        foreach (var host in remaining) ModuleState.Stop(host);
    }
}
