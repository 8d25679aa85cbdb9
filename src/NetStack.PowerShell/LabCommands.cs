using System.Collections;
using System.Management.Automation;
using NetStack.Link;

namespace NetStack.PowerShell;

/// <summary>
/// Start-StackServiceHost: starts the lab's service host (echo, discard, daytime, chargen, HTTP, DNS, DHCP) as a stack of its
/// own on a virtual network. The embedded network "lab" gets one by itself with its first stack; this starts one on any
/// network. It stops when the last other stack on its network stops, or with Stop-Stack.
/// </summary>
[Cmdlet(VerbsLifecycle.Start, "StackServiceHost", SupportsShouldProcess = true, ConfirmImpact = ConfirmImpact.Low)]
[OutputType(typeof(StackInstance))]
public sealed class StartStackServiceHostCommand : NetStackCmdlet
{
    /// <summary>The virtual network to serve (default: the embedded lab's, "lab"); created on first use.</summary>
    [Parameter(Position = 0)]
    [ValidateNotNullOrEmpty]
    [ArgumentCompleter(typeof(VirtualNetworkCompleter))]
    public string VirtualNetwork { get; set; } = EmbeddedLab.NetworkName;

    /// <summary>The host's address (default 192.0.2.1/24).</summary>
    [Parameter]
    [Ipv4PrefixTransformation]
    public Ipv4Prefix IPAddress { get; set; } = EmbeddedLab.HostAddress;

    /// <summary>The host's stack name (default: "&lt;network&gt;-services").</summary>
    [Parameter]
    [ValidateNotNullOrEmpty]
    public string? Name { get; set; }

    /// <summary>The DNS domain the host answers for (default lab.test).</summary>
    [Parameter]
    [ValidateNotNullOrEmpty]
    public string Domain { get; set; } = "lab.test";

    /// <summary>How long the host's DHCP leases last, in seconds (default 120: renewal is seen after a minute).</summary>
    [Parameter]
    [ValidateRange(10, 31_536_000)]
    public int DhcpLeaseSec { get; set; } = 120;

    protected override void ProcessRecord()
    {
        var name = Name ?? EmbeddedLab.ServiceHostName(VirtualNetwork);
        try { Dns.DnsName.Normalize(Domain); }
        catch (ArgumentException e)
        {
            ThrowTerminatingError(new ErrorRecord(new ArgumentException($"-Domain: {e.Message}", nameof(Domain), e), "InvalidArgument", ErrorCategory.InvalidArgument, Domain));
        }
        if (!ShouldProcess($"{name}: {IPAddress} on virtual network '{VirtualNetwork}'", "Start service host")) return;
        StackInstance host;
        try { host = EmbeddedLab.StartServiceHost(this, VirtualNetwork, IPAddress, name, Domain, TimeSpan.FromSeconds(DhcpLeaseSec)); }
        catch (InvalidOperationException e)
        {
            ThrowTerminatingError(new ErrorRecord(e, "ServiceHostFailed", ErrorCategory.ResourceUnavailable, VirtualNetwork));
            return;
        }
        WriteVerbose($"Service host '{name}' at {IPAddress} on '{VirtualNetwork}': echo 7, discard 9, daytime 13, chargen 19, http 80, dns 53 ({Domain}), dhcp 67 ({EmbeddedLab.ServiceOf(host)?.DhcpPool}, {DhcpLeaseSec} s leases).");
        WriteObject(host);
    }
}

/// <summary>Get-StackNetwork: the virtual networks of this process, with their stacks, service host, faults and wire counters.</summary>
[Cmdlet(VerbsCommon.Get, "StackNetwork")]
[OutputType(typeof(StackNetworkInfo))]
public sealed class GetStackNetworkCommand : PSCmdlet
{
    [Parameter(Position = 0, ValueFromPipelineByPropertyName = true)]
    [SupportsWildcards]
    [ArgumentCompleter(typeof(VirtualNetworkCompleter))]
    public string[]? Name { get; set; }

    protected override void ProcessRecord()
    {
        var all = ModuleState.AllNetworks().OrderBy(n => n.Name, StringComparer.OrdinalIgnoreCase).ToArray();
        foreach (var net in LabNetworks.Select(this, all, Name)) WriteObject(LabNetworks.Info(net));
    }
}

/// <summary>Set-StackNetwork: changes the faults of a virtual network (loss, delay, jitter, reordering, duplication, corruption, rate).</summary>
[Cmdlet(VerbsCommon.Set, "StackNetwork", SupportsShouldProcess = true, ConfirmImpact = ConfirmImpact.Low)]
[OutputType(typeof(StackNetworkInfo))]
public sealed class SetStackNetworkCommand : PSCmdlet
{
    /// <summary>The network (default: the embedded lab's, or the only network there is).</summary>
    [Parameter(Position = 0, ValueFromPipelineByPropertyName = true)]
    [ArgumentCompleter(typeof(VirtualNetworkCompleter))]
    public string[]? Name { get; set; }

    /// <summary>Settings to change, e.g. @{ Loss = 0.05; DelayMs = 20 }; the others keep their values.</summary>
    [Parameter(Position = 1)]
    public Hashtable? Simulate { get; set; }

    /// <summary>Return the network to no faults first (then apply -Simulate, if given).</summary>
    [Parameter]
    public SwitchParameter Clear { get; set; }

    [Parameter]
    public SwitchParameter PassThru { get; set; }

    protected override void ProcessRecord()
    {
        if (Simulate is null && !Clear)
            ThrowTerminatingError(new ErrorRecord(
                new ArgumentException($"Say what to change: -Simulate @{{ Loss = 0.05; DelayMs = 20 }} (settings: {NetworkFaults.KeyList}), or -Clear for no faults."),
                "NothingToSet", ErrorCategory.InvalidArgument, null));
        var all = ModuleState.AllNetworks();
        foreach (var net in LabNetworks.Select(this, all, Name, single: Name is null))
        {
            var start = Clear ? WireFaults.None : net.Wire.Faults;
            var faults = Simulate is null ? start : NetworkFaults.Parse(this, Simulate, start);
            if (!ShouldProcess($"virtual network '{net.Name}'", $"Set faults: {NetworkFaults.Describe(faults)}")) continue;
            net.Wire.Faults = faults;
            WriteVerbose($"Virtual network '{net.Name}': {NetworkFaults.Describe(faults)}.");
            if (PassThru) WriteObject(LabNetworks.Info(net));
        }
    }
}

/// <summary>Finding virtual networks by name for the network cmdlets.</summary>
internal static class LabNetworks
{
    public static StackNetworkInfo Info(VirtualNetwork net)
    {
        var stacks = ModuleState.All().Where(s => string.Equals(s.VirtualNetwork, net.Name, StringComparison.OrdinalIgnoreCase)).ToArray();
        return new StackNetworkInfo(net, stacks, EmbeddedLab.ServiceHostOf(net.Name));
    }

    /// <summary>
    /// The networks matching <paramref name="names"/> (wildcards); unmatched plain names are NetworkNotFound errors.
    /// With no names: all of them, or with <paramref name="single"/> the embedded lab's (or the only one).
    /// </summary>
    public static IEnumerable<VirtualNetwork> Select(PSCmdlet cmdlet, VirtualNetwork[] all, string[]? names, bool single = false)
    {
        var known = all.Length == 0 ? "No virtual network exists; Start-Stack creates one." : "Networks: " + string.Join(", ", all.Select(n => n.Name)) + ".";
        if (names is null)
        {
            if (!single) return all;
            var lab = all.FirstOrDefault(n => string.Equals(n.Name, EmbeddedLab.NetworkName, StringComparison.OrdinalIgnoreCase));
            if (lab != null) return new[] { lab };
            if (all.Length == 1) return all;
            cmdlet.ThrowTerminatingError(new ErrorRecord(
                new ItemNotFoundException($"Name the virtual network with -Name. {known}"), "NetworkNotFound", ErrorCategory.ObjectNotFound, null));
        }
        var found = new List<VirtualNetwork>();
        foreach (var n in names!)
        {
            var pattern = new WildcardPattern(n, WildcardOptions.IgnoreCase);
            var matched = all.Where(v => pattern.IsMatch(v.Name)).ToList();
            if (matched.Count == 0 && !WildcardPattern.ContainsWildcardCharacters(n))
                cmdlet.WriteError(new ErrorRecord(new ItemNotFoundException($"No virtual network is named '{n}'. {known}"), "NetworkNotFound", ErrorCategory.ObjectNotFound, n));
            found.AddRange(matched.Where(m => !found.Contains(m)));
        }
        return found;
    }
}
