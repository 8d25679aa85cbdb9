using System.Management.Automation;
using NetStack.Dns;

namespace NetStack.PowerShell;

/// <summary>One resolved address (Resolve-StackDnsName), shaped like Resolve-DnsName's A record.</summary>
public sealed class StackDnsRecord
{
    public string Name { get; init; } = "";
    public string Type { get; init; } = "A";
    public int TTL { get; init; }
    public string IPAddress { get; init; } = "";
    public string? Server { get; init; }
    public bool FromCache { get; init; }
    public string Stack { get; init; } = "";
}

/// <summary>Resolve-StackDnsName: A records over the stack's own UDP, from -Server or the stack's DNS servers.</summary>
[Cmdlet(VerbsDiagnostic.Resolve, "StackDnsName")]
[OutputType(typeof(StackDnsRecord))]
public sealed class ResolveStackDnsNameCommand : StackScopedCmdlet
{
    [Parameter(Mandatory = true, Position = 0, ValueFromPipeline = true, ValueFromPipelineByPropertyName = true)]
    [ValidateNotNullOrEmpty]
    public string[] Name { get; set; } = Array.Empty<string>();

    /// <summary>Ask this server instead of the stack's -DnsServer list.</summary>
    [Parameter]
    [Ipv4AddressTransformation]
    public Ipv4Address? Server { get; set; }

    protected override void ProcessStack(StackInstance stack)
    {
        foreach (var n in Name)
        {
            var result = DnsResolution.Resolve(this, stack, n, Server);
            if (result is null) continue;
            foreach (var a in result.Addresses)
                WriteObject(new StackDnsRecord
                {
                    Name = result.Name, TTL = result.Ttl, IPAddress = a.ToString(), Server = result.Server?.ToString(),
                    FromCache = result.FromCache, Stack = stack.Name,
                });
        }
    }
}

/// <summary>Name resolution for the cmdlets that accept host names.</summary>
internal static class DnsResolution
{
    /// <summary>
    /// Resolves through the stack; a failure is written as a non-terminating error (not when <paramref name="quiet"/>,
    /// as with Test-Connection -Quiet) and gives null.
    /// </summary>
    public static DnsResult? Resolve(NetStackCmdlet cmdlet, StackInstance stack, string name, Ipv4Address? server = null, bool quiet = false)
    {
        if (server is null && NoDnsServer(stack, name) is { } error)
        {
            if (!quiet) cmdlet.WriteError(error);
            return null;
        }
        DnsResult? result = null;
        void Lookup() => result = cmdlet.Await(stack, () => stack.Core.ResolveAsync(name, server, cmdlet.StopToken));
        if (!quiet) cmdlet.TryStack(Lookup, name);
        else
        {
            try { Lookup(); }
            catch (Exception e) when (e is StackException or ArgumentException) { }
        }
        return result;
    }

    /// <summary>NoDnsServer (ObjectNotFound) when <paramref name="name"/> is a name and the stack has no DNS server to ask; else null.</summary>
    public static ErrorRecord? NoDnsServer(StackInstance stack, string name) =>
        stack.DnsServer.Length > 0 || Ipv4Address.TryParse(name, out _) ? null : new ErrorRecord(
            new StackException(StackError.NameNotFound, $"Cannot resolve '{name}': stack '{stack.Name}' has no DNS server. Give -Server, or start the stack with -DnsServer."),
            "NoDnsServer", ErrorCategory.ObjectNotFound, name);

    /// <summary>
    /// The address of a target given as an IPv4 address or a host name (looked up through the stack, a failure written as
    /// a non-terminating error naming it: NameNotFound, NoDnsServer, TimedOut...); null when it did not resolve.
    /// </summary>
    public static Ipv4Address? ResolveTarget(NetStackCmdlet cmdlet, StackInstance stack, string target, bool quiet = false) =>
        Ipv4Address.TryParse(target, out var address) ? address : ResolveAddress(cmdlet, stack, target, quiet);

    /// <summary>
    /// The socket as output, carrying the host name it was connected or sent to (a RemoteName note property, which the
    /// socket table shows beside the remote address) when <paramref name="target"/> was a name.
    /// </summary>
    public static object Named(object socket, string target)
    {
        if (Ipv4Address.TryParse(target, out _)) return socket;
        var o = PSObject.AsPSObject(socket);
        o.Properties.Remove("RemoteName");
        o.Properties.Add(new PSNoteProperty("RemoteName", target));
        return o;
    }

    public static Ipv4Address? ResolveAddress(NetStackCmdlet cmdlet, StackInstance stack, string name, bool quiet = false) =>
        Resolve(cmdlet, stack, name, quiet: quiet) is { Addresses.Length: > 0 } r ? r.Addresses[0] : (Ipv4Address?)null;
}
