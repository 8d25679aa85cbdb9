using System.Management.Automation;
using System.Text;
using NetStack.Sockets;
using NetStack.Udp;

namespace NetStack.PowerShell;

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
