using System.Management.Automation;
using NetStack.Dns;

namespace NetStack.PowerShell;

/// <summary>The record types Resolve-StackDnsName asks for (-Type).</summary>
public enum StackDnsType { A = 1, NS = 2, CNAME = 5, SOA = 6, PTR = 12, MX = 15, TXT = 16, AAAA = 28, SRV = 33, ANY = 255 }

/// <summary>
/// Resolve-StackDnsName: records of any type over the stack's own UDP (TCP when the answer is truncated), from -Server or
/// the stack's DNS servers; the CNAME records followed come first, as Resolve-DnsName shows them. An address asks PTR
/// for its reverse name.
/// </summary>
[Cmdlet(VerbsDiagnostic.Resolve, "StackDnsName")]
[OutputType(typeof(StackDnsRecord))]
public sealed class ResolveStackDnsNameCommand : StackScopedCmdlet
{
    [Parameter(Mandatory = true, Position = 0, ValueFromPipeline = true, ValueFromPipelineByPropertyName = true)]
    [ValidateNotNullOrEmpty]
    public string[] Name { get; set; } = Array.Empty<string>();

    /// <summary>The record type asked for; A by default, PTR for an address.</summary>
    [Parameter(Position = 1)]
    public StackDnsType Type { get; set; } = StackDnsType.A;

    /// <summary>Ask this server instead of the stack's -DnsServer list (the cache is neither read nor filled).</summary>
    [Parameter]
    [Ipv4AddressTransformation]
    public Ipv4Address? Server { get; set; }

    /// <summary>Ask the server even when the cache holds an answer (which the new answer then replaces).</summary>
    [Parameter]
    public SwitchParameter NoCache { get; set; }

    protected override void ProcessStack(StackInstance stack)
    {
        var typeGiven = MyInvocation.BoundParameters.ContainsKey(nameof(Type));
        foreach (var n in Name)
        {
            // Resolve-DnsName 192.0.2.1 asks for 1.2.0.192.in-addr.arpa (RFC 1035 3.5), PTR unless told otherwise.
            var isAddress = Ipv4Address.TryParse(n.Trim(), out var address);
            var name = isAddress ? DnsName.ReverseName(address) : n;
            var type = isAddress && !typeGiven ? DnsRecordType.PTR : (DnsRecordType)Type;
            if (Server is null && DnsResolution.NoDnsServer(stack, name) is { } noServer)
            {
                WriteError(noServer);
                continue;
            }
            DnsAnswer? answer = null;
            if (!TryStack(() => answer = Await(stack, () => stack.Core.QueryDnsAsync(name, type, Server, NoCache, StopToken)), n) || answer is null)
                continue;
            foreach (var r in answer.Records) WriteObject(StackDnsRecord.From(r, answer, stack.Name));
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
