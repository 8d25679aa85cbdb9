using System.Management.Automation;
using System.Text;
using NetStack.Sockets;
using NetStack.Udp;

namespace NetStack.PowerShell;

/// <summary>Base of cmdlets that act on one socket: -Socket from the pipeline by value, or by property name (Id).</summary>
public abstract class SocketCmdletBase : StackScopedCmdlet
{
    /// <summary>The -Socket parameter's value (declared by the derived class, which decides its position).</summary>
    protected abstract SocketReference SocketArgument { get; }

    protected override void ProcessStack(StackInstance stack)
    {
        if (ResolveSocket(stack, SocketArgument) is { } socket) ProcessSocket(stack, socket);
        else WriteVerbose($"Socket {SocketArgument.Id} is already closed.");
    }

    /// <summary>True for cmdlets whose goal a closed socket already meets (Close-StackSocket), which then do nothing.</summary>
    protected virtual bool ClosedIsDone => false;

    /// <summary>True for a cmdlet that still acts on a socket the user closed while its connection lingers (Close -Abort).</summary>
    protected virtual bool TakesUserClosed => false;

    /// <summary>True for data cmdlets: on a TCP socket whose connection the peer or the network ended, they run and report its error.</summary>
    protected virtual bool SurfacesConnectionError => false;

    /// <summary>A socket object (or a row naming its stack) says which stack it is on, so -Stack may be left out.</summary>
    protected override StackInstance? ImpliedStack()
    {
        if (SocketArgument?.Socket is { } s)
        {
            var owner = ModuleState.All().FirstOrDefault(i => ReferenceEquals(i.NetworkStack, s.Stack));
            if (owner is null)
                ThrowTerminatingError(new ErrorRecord(
                    new InvalidOperationException($"Socket {s.Id}'s stack '{s.Stack.Name}' has been stopped; its sockets are closed."),
                    "StackStopped", ErrorCategory.InvalidOperation, s.Id));
            return owner;
        }
        return SocketArgument?.StackName is { } name ? ModuleState.Lookup(name) : null;
    }

    protected abstract void ProcessSocket(StackInstance stack, StackSocket socket);

    /// <summary>
    /// The live socket for a reference, or a terminating SocketNotFound / SocketClosed error; null for a socket object
    /// already closed when the cmdlet's goal is met by that (<see cref="ClosedIsDone"/>). One check, so a reset that
    /// arrives meanwhile cannot make it say both.
    /// </summary>
    private StackSocket? ResolveSocket(StackInstance stack, SocketReference reference)
    {
        var socket = reference.Socket;
        if (socket != null && !ReferenceEquals(socket.Stack, stack.Core))
            ThrowTerminatingError(new ErrorRecord(
                new ArgumentException($"Socket {reference.Id} belongs to stack '{socket.Stack.Name}', not '{stack.Name}'. Leave out -Stack, or name the socket's own stack."),
                "SocketStackMismatch", ErrorCategory.InvalidArgument, reference.Id));
        socket ??= stack.Core.FindSocket(reference.Id);
        if (socket is null || SocketState.IsClosed(socket, !TakesUserClosed))
        {
            if (reference.Socket != null && ClosedIsDone) return null;
            // A connection the peer or the network ended (a reset, a timeout), not the user: the operation itself
            // reports why (ConnectionReset...), as recv() gives ECONNRESET, rather than "closed".
            if (SurfacesConnectionError && reference.Socket is TcpSocket && !SocketState.ClosedByUserOf(socket!)) return socket;
            if (reference.Socket != null)
                ThrowTerminatingError(new ErrorRecord(
                    new StackException(StackError.SocketClosed, $"Socket {reference.Id} on stack '{stack.Name}' is closed; open a new one with New-StackSocket."),
                    "SocketClosed", ErrorCategory.ResourceUnavailable, reference.Id));
            ThrowTerminatingError(SocketErrors.NotFound(stack, reference.Id));
        }
        return socket!;
    }
}

/// <summary>Socket cmdlets whose first positional argument is the socket: Receive-StackData $s.</summary>
public abstract class SocketCmdlet : SocketCmdletBase
{
    /// <summary>The socket: its object, anything carrying its descriptor Id (a Get-StackConnection row), or the Id.</summary>
    [Parameter(Mandatory = true, Position = 0, ValueFromPipeline = true, ValueFromPipelineByPropertyName = true)]
    [Alias("Id")]
    [ArgumentCompleter(typeof(SocketIdCompleter))]
    public SocketReference Socket { get; set; } = null!;

    protected override SocketReference SocketArgument => Socket;
}

/// <summary>What the module knows about any socket kind without the cmdlets needing to.</summary>
internal static class SocketState
{
    /// <summary>
    /// Closed: the socket says so (<see cref="StackSocket.IsClosed"/>: its user closed it, or the stack ended it), or its
    /// descriptor is gone. One the user closed counts as closed at once, so receive and send both refuse it; with
    /// <paramref name="userClosedCounts"/> false (Close-StackSocket -Abort), a TCP socket the user closed still counts
    /// as open while its connection finishes (FIN, TimeWait) and holds its descriptor.
    /// </summary>
    public static bool IsClosed(StackSocket s, bool userClosedCounts = true) =>
        (s.IsClosed && (userClosedCounts || s is not TcpSocket { IsClosedByUser: true })) || !ReferenceEquals(s.Stack.FindSocket(s.Id), s);

    public static bool ClosedByUserOf(StackSocket s) => s.IsClosedByUser;
}
