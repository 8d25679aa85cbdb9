using System.Management.Automation;
using System.Text;
using NetStack.Sockets;
using NetStack.Udp;

namespace NetStack.PowerShell;

/// <summary>New-StackSocket: opens a socket; its Id is its descriptor in the stack.</summary>
[Cmdlet(VerbsCommon.New, "StackSocket")]
[OutputType(typeof(UdpSocket), typeof(TcpSocket))]
public sealed class NewStackSocketCommand : StackScopedCmdlet
{
    [Parameter(Mandatory = true, Position = 0)]
    public SocketProtocol Protocol { get; set; }

    /// <summary>The local port (0 or omitted: an ephemeral one). TCP claims it when the socket connects.</summary>
    [Parameter]
    [ValidateRange(0, 65535)]
    public int LocalPort { get; set; }

    /// <summary>The local address: the stack's own or 0.0.0.0 (any, the default).</summary>
    [Parameter]
    [Ipv4AddressTransformation]
    public Ipv4Address? LocalAddress { get; set; }

    /// <summary>TCP: send small segments at once (no Nagle delay).</summary>
    [Parameter]
    public SwitchParameter NoDelay { get; set; }

    [Parameter]
    [ValidateRange(2048, 64 * 1024 * 1024)]
    public int? ReceiveBufferSize { get; set; }

    [Parameter]
    [ValidateRange(2048, 64 * 1024 * 1024)]
    public int? SendBufferSize { get; set; }

    /// <summary>TCP: sample cwnd, ssthresh, bytes in flight, SRTT and RTO over time (Export-StackSequenceGraph's second panel).</summary>
    [Parameter]
    public SwitchParameter Trace { get; set; }

    protected override void ProcessStack(StackInstance stack)
    {
        if (Protocol == SocketProtocol.Udp)
        {
            if (NoDelay || Trace || ReceiveBufferSize != null || SendBufferSize != null)
                WriteWarning("-NoDelay, -Trace, -ReceiveBufferSize and -SendBufferSize apply to TCP sockets; a UDP socket's receive queue is the stack's Udp.ReceiveBufferSize.");
            UdpSocket? socket = null;
            if (TryStack(() => socket = Await(stack, () => stack.Core.CreateUdpSocketAsync((ushort)LocalPort, LocalAddress)), LocalPort))
                WriteObject(socket);
            return;
        }
        if (TcpSupport.CreateSocket(this, stack, (ushort)LocalPort, LocalAddress, NoDelay, ReceiveBufferSize, SendBufferSize) is not { } tcp) return;
        if (Trace) tcp.TraceInternals = true;
        WriteObject(tcp);
    }
}

/// <summary>
/// Connect-StackSocket: TCP: the three-way handshake (waits up to -TimeoutSec). UDP: sets the default peer and
/// accepts datagrams only from it (no packet is sent). Outputs the socket.
/// </summary>
[Cmdlet(VerbsCommunications.Connect, "StackSocket")]
[OutputType(typeof(StackSocket))]
public sealed class ConnectStackSocketCommand : SocketCmdletBase
{
    /// <summary>
    /// The socket, named or from the pipeline ($s | Connect-StackSocket 192.0.2.1 80); not positional, see Send-StackData.
    /// Left out, a new TCP socket is made (with -LocalPort and -NoDelay) and connected.
    /// </summary>
    [Parameter(ValueFromPipeline = true, ValueFromPipelineByPropertyName = true)]
    [Alias("Id")]
    [ArgumentCompleter(typeof(SocketIdCompleter))]
    public SocketReference? Socket { get; set; }

    protected override SocketReference SocketArgument => Socket!;

    /// <summary>An IPv4 address, or a host name resolved through the stack's DNS servers.</summary>
    [Parameter(Mandatory = true, Position = 0)]
    [Alias("ComputerName")]
    [ValidateNotNullOrEmpty]
    public string RemoteAddress { get; set; } = "";

    /// <summary>For the socket made when none is given: its local port (0 or omitted: an ephemeral one).</summary>
    [Parameter]
    [ValidateRange(0, 65535)]
    public int LocalPort { get; set; }

    /// <summary>For the socket made when none is given: send small segments at once (no Nagle delay).</summary>
    [Parameter]
    public SwitchParameter NoDelay { get; set; }

    [Parameter(Mandatory = true, Position = 1)]
    [ValidateRange(1, 65535)]
    public int RemotePort { get; set; }

    [Parameter]
    [ValidateRange(1, 3600)]
    public int TimeoutSec { get; set; } = 30;

    /// <summary>TCP: trace the connection's internals from its SYN on (Export-StackSequenceGraph's second panel).</summary>
    [Parameter]
    public SwitchParameter Trace { get; set; }

    /// <summary>The address <see cref="RemoteAddress"/> resolved to (a name is looked up once per record).</summary>
    private Ipv4Address _remote;

    protected override void ProcessStack(StackInstance stack)
    {
        if (DnsResolution.ResolveTarget(this, stack, RemoteAddress) is not { } remote) return;
        _remote = remote;
        if (Socket != null)
        {
            if (MyInvocation.BoundParameters.ContainsKey(nameof(LocalPort)) || NoDelay)
                WriteWarning("-LocalPort and -NoDelay apply to the socket Connect-StackSocket makes when none is given; set them on New-StackSocket instead.");
            base.ProcessStack(stack);
            return;
        }
        // connect() without a socket: make one, and do not leave it behind if the handshake fails.
        if (TcpSupport.CreateSocket(this, stack, (ushort)LocalPort, null, NoDelay, null, null) is not { } made) return;
        if (Trace) made.TraceInternals = true;
        if (TcpSupport.Connect(this, stack, made, _remote, (ushort)RemotePort, TimeSpan.FromSeconds(TimeoutSec))) WriteObject(DnsResolution.Named(made, RemoteAddress));
        else made.Abort();
    }

    protected override void ProcessSocket(StackInstance stack, StackSocket socket)
    {
        var target = $"{RemoteAddress}:{RemotePort}";
        if (socket is UdpSocket udp)
        {
            if (TryStack(() => Await(stack, () => udp.ConnectAsync(_remote, (ushort)RemotePort)), target)) WriteObject(DnsResolution.Named(socket, RemoteAddress));
            return;
        }
        if (Trace && socket is TcpSocket traced) traced.TraceInternals = true;
        if (TcpSupport.Connect(this, stack, socket, _remote, (ushort)RemotePort, TimeSpan.FromSeconds(TimeoutSec))) WriteObject(DnsResolution.Named(socket, RemoteAddress));
    }
}

/// <summary>Close-StackSocket: closes a socket (TCP: FIN; -Abort: RST) and frees its descriptor.</summary>
[Cmdlet(VerbsCommon.Close, "StackSocket", SupportsShouldProcess = true, ConfirmImpact = ConfirmImpact.Low)]
[OutputType(typeof(void))]
public sealed class CloseStackSocketCommand : SocketCmdlet
{
    /// <summary>TCP: reset the connection instead of closing it gracefully (no TimeWait).</summary>
    [Parameter]
    public SwitchParameter Abort { get; set; }

    /// <summary>Closing is idempotent for a socket object: one already closed (by us or by the peer's reset) is left as is.</summary>
    protected override bool ClosedIsDone => true;

    /// <summary>-Abort resets a connection still finishing after a close (FinWait, TimeWait).</summary>
    protected override bool TakesUserClosed => Abort;

    protected override void ProcessSocket(StackInstance stack, StackSocket socket)
    {
        if (!ShouldProcess($"socket {socket.Id} ({socket.Protocol}) on stack {stack.Name}", Abort ? "Abort" : "Close")) return;
        if (socket is UdpSocket udp)
        {
            udp.Close();
            return;
        }
        TcpSupport.Close(this, stack, socket, Abort);
    }
}
