using System.Management.Automation;
using NetStack.Link;

namespace NetStack.PowerShell;

/// <summary>Get-StackAdapter: the adapters libpcap can open, for Start-Stack -Adapter.</summary>
[Cmdlet(VerbsCommon.Get, "StackAdapter")]
[OutputType(typeof(AdapterInfo))]
public sealed class GetStackAdapterCommand : PSCmdlet
{
    [Parameter(Position = 0)]
    [SupportsWildcards]
    [ArgumentCompleter(typeof(AdapterNameCompleter))]
    public string[]? Name { get; set; }

    /// <summary>List the adapters inside this network namespace (a name under /var/run/netns, or a path); needs root.</summary>
    [Parameter]
    [ValidateNotNullOrEmpty]
    [ArgumentCompleter(typeof(NetworkNamespaceCompleter))]
    public string? NetworkNamespace { get; set; }

    protected override void EndProcessing()
    {
        IReadOnlyList<AdapterInfo> adapters;
        try { adapters = LinkFactory.ListAdapters(NetworkNamespace); }
        catch (UnauthorizedAccessException e)
        {
            ThrowTerminatingError(new ErrorRecord(e, "PermissionDenied", ErrorCategory.PermissionDenied, NetworkNamespace));
            return;
        }
        catch (ArgumentException e) when (NetworkNamespace != null)
        {
            ThrowTerminatingError(new ErrorRecord(new ItemNotFoundException(NetStackCmdlet.PlainMessage(e), e), "NetworkNamespaceNotFound", ErrorCategory.ObjectNotFound, NetworkNamespace));
            return;
        }
        catch (Exception e) when (e is DllNotFoundException or PcapUnavailableException or TypeInitializationException { InnerException: DllNotFoundException })
        {
            ThrowTerminatingError(new ErrorRecord(
                new InvalidOperationException("libpcap is not installed, so adapters cannot be listed. Install it (Debian: apt-get install libpcap0.8) and try again.", e),
                "PcapNotInstalled", ErrorCategory.NotInstalled, null));
            return;
        }
        catch (Exception e)
        {
            ThrowTerminatingError(new ErrorRecord(
                new InvalidOperationException($"libpcap could not list the adapters: {e.Message}", e),
                "AdapterListFailed", ErrorCategory.ResourceUnavailable, null));
            return;
        }
        if (Name is null) { WriteObject(adapters, true); return; }
        foreach (var n in Name)
        {
            var pattern = new WildcardPattern(n, WildcardOptions.IgnoreCase);
            var found = adapters.Where(a => pattern.IsMatch(a.Name)).ToList();
            if (found.Count == 0 && !WildcardPattern.ContainsWildcardCharacters(n))
                WriteError(AdapterNotFound(n, adapters));
            WriteObject(found, true);
        }
    }

    internal static ErrorRecord AdapterNotFound(string name, IReadOnlyList<AdapterInfo>? adapters)
    {
        var known = adapters is null ? "" : " Adapters: " + string.Join(", ", adapters.Select(a => a.Name)) + ".";
        return new ErrorRecord(new ItemNotFoundException($"No adapter is named '{name}'.{known} List them with Get-StackAdapter."),
            "AdapterNotFound", ErrorCategory.ObjectNotFound, name);
    }
}

/// <summary>
/// Start-Stack: starts a stack on a pcap adapter, or on a named in-process virtual network (no adapter, no root),
/// with its own loop thread, at the address given, the next free one (virtual networks), or one leased by DHCP
/// (-Dhcp: waits for the lease). Outputs the stack.
/// </summary>
[Cmdlet(VerbsLifecycle.Start, "Stack", SupportsShouldProcess = true, ConfirmImpact = ConfirmImpact.Low, DefaultParameterSetName = VirtualSet)]
[OutputType(typeof(StackInstance))]
public sealed class StartStackCommand : NetStackCmdlet
{
    private const string AdapterSet = "Adapter";
    private const string VirtualSet = "VirtualNetwork";

    [Parameter(Mandatory = true, ParameterSetName = AdapterSet, Position = 0)]
    [ValidateNotNullOrEmpty]
    [ArgumentCompleter(typeof(AdapterNameCompleter))]
    public string Adapter { get; set; } = "";

    /// <summary>Open the adapter inside this network namespace (the stack's thread stays where it is; the capture socket lives there).</summary>
    [Parameter(ParameterSetName = AdapterSet)]
    [ValidateNotNullOrEmpty]
    [ArgumentCompleter(typeof(NetworkNamespaceCompleter))]
    public string? NetworkNamespace { get; set; }

    /// <summary>The in-process network to attach to; created on first use. Omitted: the embedded lab ("lab", see EmbeddedLab).</summary>
    [Parameter(ParameterSetName = VirtualSet)]
    [ValidateNotNullOrEmpty]
    [ArgumentCompleter(typeof(VirtualNetworkCompleter))]
    public string VirtualNetwork { get; set; } = "";

    /// <summary>Our address with its prefix, e.g. 192.0.2.2/24. On a virtual network it may be left out: the next free one.</summary>
    [Parameter(ParameterSetName = AdapterSet)]
    [Parameter(ParameterSetName = VirtualSet)]
    [Ipv4PrefixTransformation]
    public Ipv4Prefix IPAddress { get; set; }

    /// <summary>Get the address, prefix, gateway, DNS servers and MTU from a DHCP server (RFC 2131) instead of -IPAddress; waits for the lease.</summary>
    [Parameter]
    public SwitchParameter Dhcp { get; set; }

    /// <summary>With -Dhcp: how long to wait for the lease before giving up (the stack is then stopped).</summary>
    [Parameter]
    [ValidateRange(1, 3600)]
    public int TimeoutSec { get; set; } = 30;

    /// <summary>Faults of the virtual network, e.g. @{ Loss = 0.05; DelayMs = 20 } (see Set-StackNetwork).</summary>
    [Parameter(ParameterSetName = VirtualSet)]
    public System.Collections.Hashtable? Simulate { get; set; }

    [Parameter]
    [Ipv4AddressTransformation]
    public Ipv4Address? Gateway { get; set; }

    [Parameter]
    [MacAddressTransformation]
    public MacAddress? MacAddress { get; set; }

    [Parameter]
    [Ipv4AddressTransformation]
    public Ipv4Address[]? DnsServer { get; set; }

    /// <summary>Search domains for short names, tried in order (e.g. lab.test: "www" is asked as www.lab.test first).</summary>
    [Parameter]
    [ValidateNotNullOrEmpty]
    public string[]? DnsSearch { get; set; }

    [Parameter]
    [ValidateRange(576, 9000)]
    public int? Mtu { get; set; }

    /// <summary>
    /// Keep the host's kernel from also processing the stack's traffic: an nftables rule at the adapter's ingress drops
    /// IPv4 to the stack's address for the host after the capture has copied it (PcapDeviceOptions.HostIngressDrop).
    /// Removed by Stop-Stack and at exit; a crashed session's rule is removed by the next start. Needs nft and root.
    /// </summary>
    [Parameter(ParameterSetName = AdapterSet)]
    public SwitchParameter HostIngressDrop { get; set; }

    /// <summary>Records every frame in and out to this pcap file (read it with tshark or Wireshark).</summary>
    [Parameter]
    [ValidateNotNullOrEmpty]
    public string? CaptureFile { get; set; }

    /// <summary>The stack's name (default: its IP address). Names are unique in the process.</summary>
    [Parameter]
    [ValidateNotNullOrEmpty]
    public string? Name { get; set; }

    /// <summary>Frames kept for Get-StackPacket (0 turns the log off).</summary>
    [Parameter]
    [ValidateRange(0, 1_000_000)]
    public int PacketLogSize { get; set; } = 1024;

    /// <summary>The TCP congestion control of the stack's connections (Tcp.CongestionControl): bbr (the default), cubic or newreno.</summary>
    [Parameter]
    [ValidateSet("bbr", "cubic", "newreno")]
    public string? CongestionControl { get; set; }

    /// <summary>
    /// Low-latency mode: after traffic the loop keeps polling the link for this many microseconds instead of sleeping,
    /// so a packet that comes within them is answered without a wake-up (as Linux's busy_poll). Costs CPU. 0: off.
    /// </summary>
    [Parameter]
    public int BusyPollMicroseconds { get; set; }

    /// <summary>
    /// The caller's wait on the link: a call that has to wait (a server's receive before its request) sleeps on the link
    /// on its caller's thread for up to this many microseconds and takes the packet itself, so one thread is woken per
    /// packet, not two. Costs no CPU while waiting; holds the caller's thread. 0: off.
    /// </summary>
    [Parameter]
    public int CallerWaitMicroseconds { get; set; }

    /// <summary>
    /// The processor the stack's loop thread runs on (Linux; default: any). Choose the one where the adapter's packets
    /// arrive (the processor that takes its interrupts, see /proc/interrupts): a packet then wakes the loop on that
    /// processor instead of another, idle one, which answers a ping 2 ms apart sooner. Costs no CPU.
    /// </summary>
    [Parameter]
    [ValidateRange(0, 1023)]
    public int? LoopProcessor { get; set; }

    protected override void ProcessRecord()
    {
        CheckAddressChoice();
        LabPlan? lab = null;
        if (ParameterSetName == VirtualSet)
        {
            lab = EmbeddedLab.Plan(this, VirtualNetwork, MyInvocation.BoundParameters.ContainsKey(nameof(IPAddress)) ? IPAddress : null, Simulate, Dhcp);
            IPAddress = lab.Address;
            VirtualNetwork = lab.Network;
        }
        // A DHCP stack has no address to be named after: it is dhcp-N, with a MAC of its own on a virtual network.
        var (name, dhcpMac) = Dhcp ? DhcpStart.NextIdentity(Name) : (Name ?? IPAddress.Address.ToString(), default);
        var where = ParameterSetName == AdapterSet ? $"adapter '{Adapter}'" : $"virtual network '{VirtualNetwork}'";
        if (!ShouldProcess($"{name}: {(Dhcp ? "DHCP" : IPAddress)} on {where}", "Start stack")) return;
        if (ModuleState.IsNameTaken(name)) ThrowTerminatingError(NameInUse(name));

        var config = new StackConfig
        {
            Address = IPAddress.Address,
            PrefixLength = Dhcp ? 24 : IPAddress.PrefixLength,
            Gateway = Gateway ?? lab?.Gateway,
            MacAddress = MacAddress,
            Mtu = Mtu,
            DnsServers = DnsServer ?? lab?.DnsServers ?? Array.Empty<Ipv4Address>(),
            // On a network with a service host its domain is searched (www -> www.lab.test), unless the user chose a DNS server or a list.
            DnsSearch = DnsSearch ?? (DnsServer is null ? lab?.DnsSearch : null) ?? Array.Empty<string>(),
            PacketLogCapacity = PacketLogSize,
            CallerWaitMicroseconds = CallerWaitMicroseconds, // range checked by Validate too
            BusyPollMicroseconds = BusyPollMicroseconds, // range checked by Validate: an ErrorRecord that says what to choose
            LoopProcessor = LoopProcessor, // a processor the system refuses fails Start below
            Dhcp = new DhcpSettings { Enabled = Dhcp, HostName = Dhcp ? DhcpStart.HostName(name) : null },
        };
        if (CongestionControl is { } cc) config = config with { Tcp = config.Tcp with { CongestionControl = cc } };
        try { config.Validate(Mtu ?? 9000); }
        catch (StackConfigurationException e) { ThrowTerminatingError(ErrorFor(e, config)); }

        string? capturePath = CaptureFile is null ? null : GetUnresolvedProviderPathFromPSPath(CaptureFile);
        ILinkDevice device;
        IClock? clock = null;
        if (ParameterSetName == VirtualSet)
        {
            var net = EmbeddedLab.Join(lab!);
            // A locally administered MAC derived from the address: readable in captures and unique per address.
            var mac = MacAddress ?? (Dhcp ? dhcpMac : new MacAddress(0x0200_0000_0000UL | IPAddress.Address.Value));
            device = net.Wire.CreatePort(name, mac, Mtu ?? 1500); // a virtual link carries whatever MTU the stack asks for
            clock = net.Clock;
        }
        else
        {
            device = LinkFactory.OpenAdapter(this, Adapter, NetworkNamespace, HostIngressDrop ? IPAddress.Address : (Ipv4Address?)null);
        }

        NetworkStack stack;
        try
        {
            if (capturePath != null) device = LinkFactory.WithCapture(device, capturePath);
            stack = new NetworkStack(device, config, clock, name: name);
        }
        catch (Exception e) when (e is StackConfigurationException or ArgumentException or IOException or UnauthorizedAccessException)
        {
            device.Dispose();
            ThrowTerminatingError(e is IOException or UnauthorizedAccessException
                ? new ErrorRecord(e, "CaptureFileFailed", ErrorCategory.WriteError, capturePath)
                : ErrorFor(e, config));
            return;
        }
        var instance = new StackInstance(stack, ParameterSetName == AdapterSet ? Adapter : null,
            ParameterSetName == VirtualSet ? VirtualNetwork : null, capturePath, ModuleState.CurrentRunspaceId);
        if (!ModuleState.TryRegister(instance))
        {
            stack.Dispose();
            ThrowTerminatingError(NameInUse(name));
        }
        if (Dhcp)
        {
            WriteVerbose($"Stack '{name}' starting with DHCP: MAC {stack.MacAddress} MTU {stack.Mtu} on {where}.");
            if (lab != null) EmbeddedLab.Complete(this, lab, instance); // the service host first: it serves the lease
            DhcpStart.Acquire(this, instance, TimeoutSec, where);
            WriteVerbose(DhcpStart.Describe(instance));
            WriteObject(instance);
            return;
        }
        try { stack.Start(); }
        catch (StackConfigurationException e)
        {
            ModuleState.Stop(instance);
            ThrowTerminatingError(ErrorFor(e, config));
        }
        WriteVerbose($"Stack '{name}' started: {IPAddress} MAC {stack.MacAddress} MTU {stack.Mtu} on {where}.");
        if (instance.HostIngressDrop is { } table) WriteVerbose($"Host ingress drop: nftables table netdev {table} drops IPv4 to {IPAddress.Address} for the host kernel.");
        if (lab != null) EmbeddedLab.Complete(this, lab, instance);
        WriteObject(instance);
    }

    /// <summary>An adapter needs -IPAddress or -Dhcp, never both; -TimeoutSec belongs to -Dhcp; -HostIngressDrop needs a fixed address.</summary>
    private void CheckAddressChoice()
    {
        var given = MyInvocation.BoundParameters.ContainsKey(nameof(IPAddress));
        string? problem = null;
        if (Dhcp && given) problem = "-Dhcp and -IPAddress exclude each other: the DHCP lease brings the address. Give one of them.";
        else if (!Dhcp && !given && ParameterSetName == AdapterSet)
            problem = $"Give the stack's address on adapter '{Adapter}' with -IPAddress (e.g. -IPAddress 192.0.2.2/24, an address the host does not use), or -Dhcp to lease one from the link's DHCP server.";
        else if (!Dhcp && MyInvocation.BoundParameters.ContainsKey(nameof(TimeoutSec)))
            problem = "-TimeoutSec is how long -Dhcp waits for its lease; add -Dhcp, or leave -TimeoutSec out.";
        else if (Dhcp && HostIngressDrop)
            problem = "-HostIngressDrop names the stack's address in its nftables rule, and a DHCP lease can change that address: use -HostIngressDrop with -IPAddress, or add the rule yourself once the lease is bound (see Get-Help Start-Stack).";
        if (problem != null)
            ThrowTerminatingError(new ErrorRecord(new ArgumentException(problem), "InvalidAddressChoice", ErrorCategory.InvalidArgument, null));
    }

    private static ErrorRecord NameInUse(string name) => new(
        new InvalidOperationException($"A stack named '{name}' is already running. Give this one another -Name, or stop that one with Stop-Stack -Stack '{name}'."),
        "StackNameInUse", ErrorCategory.ResourceExists, name);
}

/// <summary>Get-Stack: the running stacks with their settings and uptime.</summary>
[Cmdlet(VerbsCommon.Get, "Stack")]
[OutputType(typeof(StackInstance))]
public sealed class GetStackCommand : PSCmdlet
{
    [Parameter(Position = 0, ValueFromPipelineByPropertyName = true)]
    [SupportsWildcards]
    [ArgumentCompleter(typeof(StackNameCompleter))]
    public string[]? Name { get; set; }

    protected override void ProcessRecord()
    {
        var all = ModuleState.All();
        if (Name is null) { WriteObject(all, true); return; }
        foreach (var n in Name)
        {
            var pattern = new WildcardPattern(n, WildcardOptions.IgnoreCase);
            var found = all.Where(s => pattern.IsMatch(s.Name)).ToList();
            if (found.Count == 0 && !WildcardPattern.ContainsWildcardCharacters(n))
                WriteError(new ErrorRecord(new ItemNotFoundException($"No stack is named '{n}'. List the running stacks with Get-Stack."),
                    "StackNotFound", ErrorCategory.ObjectNotFound, n));
            WriteObject(found, true);
        }
    }
}

/// <summary>Stop-Stack: stops a stack: closes its sockets, releases its adapter, completes its capture file.</summary>
[Cmdlet(VerbsLifecycle.Stop, "Stack", SupportsShouldProcess = true, ConfirmImpact = ConfirmImpact.Medium)]
[OutputType(typeof(void))]
public sealed class StopStackCommand : NetStackCmdlet
{
    [Parameter(Position = 0, ValueFromPipeline = true)]
    [StackTransformation]
    [ArgumentCompleter(typeof(StackNameCompleter))]
    public StackInstance?[]? Stack { get; set; }

    protected override void ProcessRecord()
    {
        if (Stack is null || Stack.Length == 0) { StopOne(null); return; }
        foreach (var s in Stack) StopOne(s);
    }

    private void StopOne(StackInstance? given)
    {
        if (given is { IsMissing: false, IsStopped: true })
        {
            // Stopping is idempotent, as Stop-Service is: the goal state already holds.
            WriteVerbose($"Stack '{given.Name}' is already stopped.");
            return;
        }
        var stack = ResolveStack(given);
        if (!ShouldProcess($"{stack.Name} ({stack.Address} on {stack.Link})", "Stop stack")) return;
        var lease = stack.Dhcp is { Address: { } leased, Server: { } server } ? $" DHCP lease on {leased} released to {server}." : "";
        ModuleState.Stop(stack);
        if (lease.Length > 0) WriteVerbose(lease.Trim());
        WriteVerbose($"Stack '{stack.Name}' stopped after {stack.Uptime:g}.");
    }
}
