using System.Management.Automation;
using NetStack.Arp;

namespace NetStack.PowerShell;

/// <summary>Get-StackArpCache: the neighbour cache, like Get-NetNeighbor.</summary>
[Cmdlet(VerbsCommon.Get, "StackArpCache")]
[OutputType(typeof(StackArpEntry))]
public sealed class GetStackArpCacheCommand : StackViewCmdlet
{
    [Parameter(Position = 0)]
    [SupportsWildcards]
    public string[]? IPAddress { get; set; }

    [Parameter]
    public ArpState[]? State { get; set; }

    protected override void ProcessStack(StackInstance stack)
    {
        var entries = OrTerminate(() => Await(stack, () => stack.Core.GetArpCacheAsync()), stack);
        var patterns = IPAddress?.Select(p => new WildcardPattern(p, WildcardOptions.IgnoreCase)).ToArray();
        foreach (var e in entries.OrderBy(e => e.IPAddress))
        {
            if (State != null && !State.Contains(e.State)) continue;
            var ip = e.IPAddress.ToString();
            if (patterns != null && !patterns.Any(p => p.IsMatch(ip))) continue;
            WriteObject(new StackArpEntry(e, stack.Name));
        }
    }
}

/// <summary>Add-StackArpEntry: adds a static (Permanent) entry, replacing what the cache knew for that address.</summary>
[Cmdlet(VerbsCommon.Add, "StackArpEntry", SupportsShouldProcess = true, ConfirmImpact = ConfirmImpact.Low)]
[OutputType(typeof(StackArpEntry))]
public sealed class AddStackArpEntryCommand : StackScopedCmdlet
{
    [Parameter(Mandatory = true, Position = 0, ValueFromPipelineByPropertyName = true)]
    [Ipv4AddressTransformation]
    public Ipv4Address IPAddress { get; set; }

    [Parameter(Mandatory = true, Position = 1, ValueFromPipelineByPropertyName = true)]
    [MacAddressTransformation]
    public MacAddress LinkLayerAddress { get; set; }

    [Parameter]
    public SwitchParameter PassThru { get; set; }

    protected override void ProcessStack(StackInstance stack)
    {
        if (!ShouldProcess($"{IPAddress} -> {LinkLayerAddress} on stack {stack.Name}", "Add static ARP entry")) return;
        if (!TryStack(() => Await(stack, () => stack.Core.AddArpEntryAsync(IPAddress, LinkLayerAddress)), IPAddress.ToString())) return;
        if (PassThru)
        {
            var entries = Await(stack, () => stack.Core.GetArpCacheAsync());
            var e = entries.FirstOrDefault(x => x.IPAddress == IPAddress);
            if (e != null) WriteObject(new StackArpEntry(e, stack.Name));
        }
    }
}

/// <summary>Remove-StackArpEntry: forgets an entry (static ones too); a resolution in progress fails as unreachable.</summary>
[Cmdlet(VerbsCommon.Remove, "StackArpEntry", SupportsShouldProcess = true, ConfirmImpact = ConfirmImpact.Medium)]
[OutputType(typeof(void))]
public sealed class RemoveStackArpEntryCommand : StackScopedCmdlet
{
    [Parameter(Mandatory = true, Position = 0, ValueFromPipelineByPropertyName = true)]
    [Ipv4AddressTransformation]
    public Ipv4Address IPAddress { get; set; }

    protected override void ProcessStack(StackInstance stack)
    {
        if (!ShouldProcess($"{IPAddress} on stack {stack.Name}", "Remove ARP entry")) return;
        bool removed = false;
        if (!TryStack(() => removed = Await(stack, () => stack.Core.RemoveArpEntryAsync(IPAddress)), IPAddress.ToString())) return;
        if (!removed)
            WriteError(new ErrorRecord(new ItemNotFoundException($"Stack '{stack.Name}' has no ARP entry for {IPAddress}."),
                "ArpEntryNotFound", ErrorCategory.ObjectNotFound, IPAddress.ToString()));
    }
}

/// <summary>Clear-StackArpCache: forgets every learned entry (static ones too with -IncludeStatic).</summary>
[Cmdlet(VerbsCommon.Clear, "StackArpCache", SupportsShouldProcess = true, ConfirmImpact = ConfirmImpact.Medium)]
[OutputType(typeof(void))]
public sealed class ClearStackArpCacheCommand : StackScopedCmdlet
{
    [Parameter]
    public SwitchParameter IncludeStatic { get; set; }

    protected override void ProcessStack(StackInstance stack)
    {
        if (!ShouldProcess($"ARP cache of stack {stack.Name}{(IncludeStatic ? " (static entries too)" : "")}", "Clear")) return;
        int n = 0;
        if (TryStack(() => n = Await(stack, () => stack.Core.ClearArpCacheAsync(IncludeStatic)), stack.Name))
            WriteVerbose($"Removed {n} entries from the ARP cache of stack '{stack.Name}'.");
    }
}

/// <summary>Resolve-StackArpEntry: ARPs for an address now (like arping) and returns the entry.</summary>
[Cmdlet(VerbsDiagnostic.Resolve, "StackArpEntry")]
[OutputType(typeof(StackArpEntry))]
public sealed class ResolveStackArpEntryCommand : StackScopedCmdlet
{
    [Parameter(Mandatory = true, Position = 0, ValueFromPipeline = true, ValueFromPipelineByPropertyName = true)]
    [Ipv4AddressTransformation]
    public Ipv4Address IPAddress { get; set; }

    protected override void ProcessStack(StackInstance stack)
    {
        ArpEntryInfo? entry = null;
        if (TryStack(() => entry = Await(stack, () => stack.Core.ResolveArpAsync(IPAddress)), IPAddress.ToString()))
            WriteObject(new StackArpEntry(entry!, stack.Name));
    }
}
