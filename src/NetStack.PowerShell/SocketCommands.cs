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

/// <summary>
/// Send-StackData: sends a string (encoded with -Encoding, UTF-8 by default) or bytes. TCP: queued on the stream.
/// UDP: one datagram, to -RemoteAddress/-RemotePort or to the connected peer.
/// </summary>
[Cmdlet(VerbsCommunications.Send, "StackData", DefaultParameterSetName = "Data")]
[OutputType(typeof(StackSocket))]
public sealed class SendStackDataCommand : SocketCmdletBase
{
    /// <summary>
    /// The socket, named or from the pipeline ($s | Send-StackData 'hello'). Not positional: a positional argument
    /// binds before pipeline input does, so the data could otherwise be taken for the socket.
    /// </summary>
    [Parameter(Mandatory = true, ValueFromPipeline = true, ValueFromPipelineByPropertyName = true)]
    [Alias("Id")]
    [ArgumentCompleter(typeof(SocketIdCompleter))]
    public SocketReference Socket { get; set; } = null!;

    protected override SocketReference SocketArgument => Socket;

    protected override bool SurfacesConnectionError => true;

    /// <summary>Bytes (a byte[]), or a string (encoded with -Encoding).</summary>
    [Parameter(Mandatory = true, Position = 0, ParameterSetName = "Data")]
    [AllowEmptyString]
    public object Data { get; set; } = null!;

    /// <summary>Text to send, encoded with -Encoding (UTF-8 by default).</summary>
    [Parameter(Mandatory = true, ParameterSetName = "Text")]
    [AllowEmptyString]
    public string Text { get; set; } = null!;

    [Parameter]
    [ArgumentCompleter(typeof(EncodingCompleter))]
    public string Encoding { get; set; } = "utf8";

    /// <summary>UDP: the destination of this datagram (an unconnected socket needs one): an address or a host name.</summary>
    [Parameter]
    [ValidateNotNullOrEmpty]
    public string? RemoteAddress { get; set; }

    [Parameter]
    [ValidateRange(1, 65535)]
    public int? RemotePort { get; set; }

    /// <summary>TCP: how long to wait for room in the send buffer.</summary>
    [Parameter]
    [ValidateRange(0, 86400)]
    public int TimeoutSec { get; set; } = 30;

    [Parameter]
    public SwitchParameter PassThru { get; set; }

    protected override void ProcessSocket(StackInstance stack, StackSocket socket)
    {
        var bytes = DataCodec.ToBytes(this, ParameterSetName == "Text" ? Text : Data, Encoding);
        if ((RemoteAddress is null) != (RemotePort is null))
            ThrowTerminatingError(new ErrorRecord(new ArgumentException("Give both -RemoteAddress and -RemotePort, or neither (to send to the connected peer)."),
                "IncompleteDestination", ErrorCategory.InvalidArgument, null));
        bool ok;
        var to = "";
        if (socket is UdpSocket udp)
        {
            if (RemoteAddress is { } name)
            {
                if (DnsResolution.ResolveTarget(this, stack, name) is not { } ra) return;
                to = Ipv4Address.TryParse(name, out _) ? $" to {ra}:{RemotePort}" : $" to {name} ({ra}):{RemotePort}";
                ok = TryStack(() => Await(stack, () => udp.SendToAsync(ra, (ushort)RemotePort!.Value, bytes)), $"{name}:{RemotePort}");
            }
            else ok = TryStack(() => Await(stack, () => udp.SendAsync(bytes)), socket.Id);
        }
        else
        {
            if (RemoteAddress != null)
                ThrowTerminatingError(new ErrorRecord(new ArgumentException("-RemoteAddress and -RemotePort apply to UDP; a TCP socket sends to the peer it is connected to."),
                    "DestinationNotAllowed", ErrorCategory.InvalidArgument, null));
            ok = TcpSupport.Send(this, stack, socket, bytes, TimeSpan.FromSeconds(TimeoutSec));
        }
        if (ok)
        {
            WriteVerbose($"Sent {bytes.Length} bytes on socket {socket.Id}{to}.");
            if (PassThru) WriteObject(socket);
        }
    }
}

/// <summary>A received UDP datagram with its sender (Receive-StackData -AsDatagram).</summary>
public sealed class StackDatagram
{
    internal StackDatagram(UdpDatagram d, int socketId, string stack)
    {
        RemoteAddress = d.RemoteAddress.ToString();
        RemotePort = d.RemotePort;
        Data = d.Data;
        SocketId = socketId;
        Stack = stack;
    }

    public string RemoteAddress { get; }
    public int RemotePort { get; }
    public byte[] Data { get; }
    public int Length => Data.Length;
    public int SocketId { get; }
    public string Stack { get; }
    /// <summary>The data as UTF-8 text.</summary>
    public string Text => Encoding.UTF8.GetString(Data);
}

/// <summary>
/// Receive-StackData: like recv(): waits (up to -TimeoutSec) for data and returns what is there as one byte[] —
/// for UDP one datagram. TCP also takes -Count (exactly n bytes), -Until (up to and including a delimiter) and
/// -ToEnd (until the peer closes). Returns nothing once the peer has closed and nothing is left.
/// </summary>
[Cmdlet(VerbsCommunications.Receive, "StackData", DefaultParameterSetName = "Bytes")]
[OutputType(typeof(byte[]), ParameterSetName = new[] { "Bytes" })]
[OutputType(typeof(string), ParameterSetName = new[] { "Text" })]
[OutputType(typeof(StackDatagram), ParameterSetName = new[] { "Datagram" })]
public sealed class ReceiveStackDataCommand : SocketCmdlet
{
    protected override bool SurfacesConnectionError => true;

    /// <summary>TCP: wait for exactly this many bytes. UDP: receive this many datagrams.</summary>
    [Parameter]
    [ValidateRange(1, int.MaxValue)]
    public int? Count { get; set; }

    /// <summary>TCP: read up to and including this text (e.g. "`n").</summary>
    [Parameter]
    [ValidateNotNullOrEmpty]
    public string? Until { get; set; }

    /// <summary>TCP: read until the peer closes.</summary>
    [Parameter]
    public SwitchParameter ToEnd { get; set; }

    [Parameter]
    [ValidateRange(0, 86400)]
    public int TimeoutSec { get; set; } = 30;

    /// <summary>Decode the data as text (with -Encoding).</summary>
    [Parameter(ParameterSetName = "Text")]
    public SwitchParameter AsString { get; set; }

    /// <summary>For -AsString and -Until (UTF-8 by default).</summary>
    [Parameter]
    [ArgumentCompleter(typeof(EncodingCompleter))]
    public string Encoding { get; set; } = "utf8";

    /// <summary>UDP: output each datagram with its sender.</summary>
    [Parameter(ParameterSetName = "Datagram")]
    public SwitchParameter AsDatagram { get; set; }

    protected override void ProcessSocket(StackInstance stack, StackSocket socket)
    {
        if (socket is UdpSocket udp)
        {
            if (Until != null || ToEnd)
                ThrowTerminatingError(new ErrorRecord(new ArgumentException("-Until and -ToEnd apply to TCP streams; a UDP receive returns one datagram (use -Count for several)."),
                    "StreamOptionOnDatagram", ErrorCategory.InvalidArgument, null));
            var n = Count ?? 1;
            for (int i = 0; i < n; i++)
            {
                if (n > 1) WriteProgress(new ProgressRecord(1, "Receive-StackData", $"Datagram {i + 1} of {n} on socket {socket.Id}") { PercentComplete = i * 100 / n });
                var d = ReceiveDatagram(stack, udp);
                if (d is null) return;
                GiveBackIfStopping(() => udp.Unread(d));
                if (AsDatagram) WriteObject(new StackDatagram(d, socket.Id, stack.Name));
                else Emit(d.Data);
            }
            if (n > 1) WriteProgress(new ProgressRecord(1, "Receive-StackData", "Done") { RecordType = ProgressRecordType.Completed });
            return;
        }
        if (AsDatagram)
            ThrowTerminatingError(new ErrorRecord(new ArgumentException("-AsDatagram applies to UDP sockets."), "DatagramOptionOnStream", ErrorCategory.InvalidArgument, null));
        var delimiter = Until is null ? null : DataCodec.GetEncoding(this, Encoding).GetBytes(Until);
        var data = TcpSupport.Receive(this, stack, socket, Count, delimiter, ToEnd, TimeSpan.FromSeconds(TimeoutSec));
        if (data is null) return;
        GiveBackIfStopping(() => ((TcpSocket)socket).Unread(data));
        Emit(data);
    }

    private UdpDatagram? ReceiveDatagram(StackInstance stack, UdpSocket udp) =>
        TryAwaitTimed(stack, ct => udp.ReceiveAsync(ct), TimeSpan.FromSeconds(TimeoutSec), udp.Id,
            $"Receiving on socket {udp.Id} (the socket stays usable)", out var d, giveBack: udp.Unread) ? d : null;

    private void Emit(byte[] data)
    {
        if (AsString) WriteObject(DataCodec.GetEncoding(this, Encoding).GetString(data));
        else WriteObject(data, false); // one byte[], not a stream of bytes
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

/// <summary>Turns Send-StackData's input into bytes and names encodings.</summary>
internal static class DataCodec
{
    /// <summary>The short encoding names, also what -Encoding completes; any other .NET encoding name works too.</summary>
    internal static readonly IReadOnlyDictionary<string, Func<Encoding>> Named = new Dictionary<string, Func<Encoding>>(StringComparer.OrdinalIgnoreCase)
    {
        ["utf8"] = () => new UTF8Encoding(false),
        ["ascii"] = () => System.Text.Encoding.ASCII,
        ["latin1"] = () => System.Text.Encoding.Latin1,
        ["unicode"] = () => System.Text.Encoding.Unicode,
    };

    public static Encoding GetEncoding(PSCmdlet cmdlet, string name)
    {
        if (Named.TryGetValue(name, out var make)) return make();
        if (string.Equals(name, "utf-8", StringComparison.OrdinalIgnoreCase)) return Named["utf8"]();
        try { return System.Text.Encoding.GetEncoding(name); }
        catch (ArgumentException e)
        {
            cmdlet.ThrowTerminatingError(new ErrorRecord(new ArgumentException($"Unknown encoding '{name}'; use {string.Join(", ", Named.Keys)} or a .NET encoding name.", e),
                "UnknownEncoding", ErrorCategory.InvalidArgument, name));
            throw;
        }
    }

    public static byte[] ToBytes(PSCmdlet cmdlet, object data, string encoding)
    {
        var value = data is PSObject p ? p.BaseObject : data;
        return value switch
        {
            byte[] b => b,
            string s => GetEncoding(cmdlet, encoding).GetBytes(s),
            object[] items when items.All(i => (i is PSObject pi ? pi.BaseObject : i) is byte) =>
                items.Select(i => (byte)(i is PSObject pi ? pi.BaseObject : i)).ToArray(),
            _ => GetEncoding(cmdlet, encoding).GetBytes(value?.ToString() ?? ""),
        };
    }
}

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
