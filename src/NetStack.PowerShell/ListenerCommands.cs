using System.Management.Automation;
using System.Text;
using NetStack.Sockets;
using NetStack.Udp;

namespace NetStack.PowerShell;

/// <summary>Start-StackListener: a TCP listener on a local port (passive open); outputs it (its Id is a descriptor).</summary>
[Cmdlet(VerbsLifecycle.Start, "StackListener")]
[OutputType(typeof(TcpListener))]
public sealed class StartStackListenerCommand : StackScopedCmdlet
{
    [Parameter(Mandatory = true, Position = 0)]
    [ValidateRange(1, 65535)]
    public int LocalPort { get; set; }

    [Parameter]
    [Ipv4AddressTransformation]
    public Ipv4Address? LocalAddress { get; set; }

    /// <summary>Connections completed and not yet taken by Wait-StackConnection before new SYNs are refused.</summary>
    [Parameter]
    [ValidateRange(1, 65535)]
    public int Backlog { get; set; } = 128;

    /// <summary>Trace every connection the listener takes, from its SYN on (Export-StackSequenceGraph's second panel).</summary>
    [Parameter]
    public SwitchParameter Trace { get; set; }

    protected override void ProcessStack(StackInstance stack)
    {
        if (TcpSupport.Listen(this, stack, (ushort)LocalPort, LocalAddress, Backlog) is not { } listener) return;
        listener.TraceInternals = Trace;
        WriteObject(listener);
    }
}

/// <summary>Wait-StackConnection: waits (up to -TimeoutSec) for the listener's next connection and outputs its socket.</summary>
[Cmdlet(VerbsLifecycle.Wait, "StackConnection")]
[OutputType(typeof(TcpSocket))]
public sealed class WaitStackConnectionCommand : SocketCmdletBase
{
    /// <summary>The listener (from Start-StackListener), by value, by its Id, or named.</summary>
    [Parameter(Mandatory = true, Position = 0, ValueFromPipeline = true, ValueFromPipelineByPropertyName = true)]
    [Alias("Id", "Listener")]
    [ArgumentCompleter(typeof(SocketIdCompleter))]
    public SocketReference Socket { get; set; } = null!;

    protected override SocketReference SocketArgument => Socket;

    [Parameter]
    [ValidateRange(0, 86400)]
    public int TimeoutSec { get; set; } = 30;

    protected override void ProcessSocket(StackInstance stack, StackSocket socket)
    {
        if (TcpSupport.Accept(this, stack, socket, TimeSpan.FromSeconds(TimeoutSec)) is { } accepted) WriteObject(accepted);
    }
}
