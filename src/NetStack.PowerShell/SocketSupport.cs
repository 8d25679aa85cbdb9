using System.Management.Automation;

namespace NetStack.PowerShell;

/// <summary>Errors about sockets, with the module's stable ids.</summary>
internal static class SocketErrors
{
    public static ErrorRecord NotFound(StackInstance stack, int id) => new(
        new ItemNotFoundException($"Stack '{stack.Name}' has no socket {id} (closed, or never opened). List sockets with Get-StackConnection."),
        "SocketNotFound", ErrorCategory.ObjectNotFound, id);
}

/// <summary>Name resolution for cmdlets that accept host names.</summary>
internal static class DnsResolution
{
    // PLACEHOLDER until the DNS resolver is on main: names other than dotted quads are reported as not found.
    public static Ipv4Address? Resolve(NetStackCmdlet cmdlet, StackInstance stack, string name)
    {
        cmdlet.WriteError(new ErrorRecord(
            new StackException(StackError.NameNotFound, $"'{name}' is not an IPv4 address, and this build of the stack has no DNS resolver yet; give an address such as 192.0.2.1."),
            "NameNotFound", ErrorCategory.ObjectNotFound, name));
        return null;
    }
}

/// <summary>Test-StackConnection -TcpPort: a TCP connect test.</summary>
internal static class TcpConnectTest
{
    public readonly record struct Result(TimeSpan Elapsed, Exception? Error);

    // PLACEHOLDER until TCP is on main.
    public static Result Run(TestStackConnectionCommand cmdlet, StackInstance stack, Ipv4Address address, int port, TimeSpan timeout) =>
        new(TimeSpan.Zero, new StackException(StackError.InvalidState, "This build of the stack has no TCP yet."));
}
