using System.Management.Automation;
using NetStack.Diagnostics;
using NetStack.Sockets;

namespace NetStack.PowerShell;

/// <summary>
/// Base of the picture cmdlets: what to draw comes from the pipeline (Get-StackPacket or Read-StackCapture output),
/// from a capture file (-CaptureFile), or from a stack's packet log (-Stack, optionally one -Socket's connection).
/// States are the stacks' own where they are known (the stack the packets came from and the stacks on its virtual
/// network, which share its clock); elsewhere they are inferred from the segments.
/// </summary>
public abstract class PictureCmdlet : NetStackCmdlet
{
    internal const string PacketSet = "Packet";
    internal const string CaptureSet = "Capture";
    internal const string StackSet = "Stack";

    private readonly List<StackPacket> _packets = new();

    /// <summary>Packets from Get-StackPacket or Read-StackCapture.</summary>
    [Parameter(Mandatory = true, ValueFromPipeline = true, ParameterSetName = PacketSet)]
    public StackPacket[] InputObject { get; set; } = Array.Empty<StackPacket>();

    /// <summary>A pcap or pcapng file to draw.</summary>
    [Parameter(Mandatory = true, ParameterSetName = CaptureSet)]
    [ValidateNotNullOrEmpty]
    public string CaptureFile { get; set; } = "";

    /// <summary>The stack whose packet log to draw (the most recently started one if omitted).</summary>
    [Parameter(ParameterSetName = StackSet, ValueFromPipelineByPropertyName = true)]
    [StackTransformation]
    [ArgumentCompleter(typeof(StackNameCompleter))]
    public StackInstance? Stack { get; set; }

    /// <summary>Only this socket's connection (a socket object, its Id, or a Get-StackConnection row).</summary>
    [Parameter(ParameterSetName = StackSet, ValueFromPipeline = true, ValueFromPipelineByPropertyName = true)]
    [Alias("Id")]
    [ArgumentCompleter(typeof(SocketIdCompleter))]
    public SocketReference? Socket { get; set; }

    /// <summary>Only frames of these protocols (TCP, UDP, DNS, ICMP, ARP...).</summary>
    [Parameter]
    [SupportsWildcards]
    [ArgumentCompleter(typeof(PacketProtocolCompleter))]
    public string[]? Protocol { get; set; }

    protected override void ProcessRecord()
    {
        switch (ParameterSetName)
        {
            case PacketSet:
                _packets.AddRange(InputObject);
                break;
            case StackSet:
                var stack = ResolveStack(Stack ?? (Socket?.StackName is { } n ? ModuleState.Find(n) ?? StackInstance.Missing(n) : null));
                Draw(FromStack(stack), stack.Name);
                break;
        }
    }

    protected override void EndProcessing()
    {
        if (ParameterSetName == PacketSet)
        {
            if (_packets.Count == 0) return;
            var stacks = _packets.Select(p => p.Stack).Distinct().Select(ModuleState.Find).OfType<StackInstance>().ToList();
            var states = stacks.Count == 1 && !stacks[0].IsStopped ? StatesAround(stacks[0]) : new List<TcpStateChange>();
            Draw(new Drawing(Filter(_packets.Select(p => p.Summary)), states, string.Join(", ", _packets.Select(p => p.Stack).Distinct())), null);
        }
        else if (ParameterSetName == CaptureSet)
        {
            var path = GetUnresolvedProviderPathFromPSPath(CaptureFile);
            var trace = CaptureReading.Read(this, path);
            Draw(new Drawing(Filter(trace.Decode()), new List<TcpStateChange>(), Path.GetFileName(path)), null);
        }
    }

    /// <summary>What to draw: frames in order, the stacks' own state transitions, a name for the title.</summary>
    internal sealed record Drawing(IReadOnlyList<FrameSummary> Frames, IReadOnlyList<TcpStateChange> States, string Source);

    /// <summary>Draws (or writes) the picture. <paramref name="stackName"/> is set when it came from a stack's log.</summary>
    internal abstract void Draw(Drawing drawing, string? stackName);

    private Drawing FromStack(StackInstance stack)
    {
        var trace = OrTerminate(() => Await(stack, () => stack.Core.GetPacketTraceAsync()), stack);
        IEnumerable<FrameSummary> frames = trace.Decode();
        if (Socket is { } sref)
        {
            var rows = OrTerminate(() => Await(stack, () => stack.Core.GetConnectionsAsync()), stack);
            var socket = rows.FirstOrDefault(r => r.Id == sref.Id);
            if (socket is null) ThrowTerminatingError(SocketErrors.NotFound(stack, sref.Id));
            frames = frames.Where(f => GetStackPacketCommand.Belongs(f, socket!));
        }
        return new Drawing(Filter(frames), StatesAround(stack, trace.StateChanges), stack.Name);
    }

    /// <summary>The stack's state transitions and those of the stacks on its virtual network (one clock).</summary>
    private List<TcpStateChange> StatesAround(StackInstance stack, IReadOnlyList<TcpStateChange>? own = null)
    {
        var list = new List<TcpStateChange>(own ?? OrTerminate(() => Await(stack, () => stack.Core.GetTcpStateChangesAsync()), stack));
        if (stack.VirtualNetwork is { } net)
            foreach (var peer in ModuleState.All().Where(s => s != stack && s.VirtualNetwork == net && !s.IsStopped))
                list.AddRange(OrTerminate(() => Await(peer, () => peer.Core.GetTcpStateChangesAsync()), peer));
        return list;
    }

    private List<FrameSummary> Filter(IEnumerable<FrameSummary> frames)
    {
        var protocols = Protocol?.Select(p => new WildcardPattern(p, WildcardOptions.IgnoreCase)).ToArray();
        return frames.Where(f => protocols is null || protocols.Any(p => p.IsMatch(f.Protocol))).ToList();
    }

    /// <summary>Writes text to a file the user named (Export- cmdlets), with a FileInfo for -PassThru.</summary>
    protected void WriteFile(string path, string content, bool passThru)
    {
        var full = GetUnresolvedProviderPathFromPSPath(path);
        try { File.WriteAllText(full, content); }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            ThrowTerminatingError(new ErrorRecord(e, "PictureFileFailed", ErrorCategory.WriteError, path));
        }
        if (passThru) WriteObject(new FileInfo(full));
    }

    /// <summary>Svg or Html: from -Format, else from the file's extension (.svg, .html/.htm).</summary>
    protected PictureFormat FormatFor(string path, PictureFormat? format)
    {
        if (format is { } f) return f;
        var ext = Path.GetExtension(path).ToLowerInvariant();
        if (ext is ".html" or ".htm") return PictureFormat.Html;
        if (ext == ".svg") return PictureFormat.Svg;
        ThrowTerminatingError(new ErrorRecord(new ArgumentException($"Cannot tell the format of '{path}': name the file .svg or .html, or give -Format Svg or -Format Html."),
            "UnknownPictureFormat", ErrorCategory.InvalidArgument, path));
        return default;
    }
}

/// <summary>The file formats of the Export- picture cmdlets.</summary>
public enum PictureFormat { Svg, Html }

/// <summary>Reading capture files for the cmdlets: errors as ErrorRecords naming the fix.</summary>
internal static class CaptureReading
{
    public static PacketTrace Read(PSCmdlet cmdlet, string path)
    {
        try { return CaptureFile.Read(path); }
        catch (FileNotFoundException e)
        {
            cmdlet.ThrowTerminatingError(new ErrorRecord(new ItemNotFoundException($"No capture file at '{path}'. Give the path of a .pcap or .pcapng file (Start-Stack -CaptureFile writes one).", e),
                "CaptureFileNotFound", ErrorCategory.ObjectNotFound, path));
        }
        catch (InvalidDataException e)
        {
            cmdlet.ThrowTerminatingError(new ErrorRecord(e, "NotACaptureFile", ErrorCategory.InvalidData, path));
        }
        catch (Exception e) when (e is DllNotFoundException or TypeInitializationException)
        {
            cmdlet.ThrowTerminatingError(new ErrorRecord(new InvalidOperationException("Reading capture files needs libpcap: apt-get install libpcap0.8.", e),
                "PcapNotInstalled", ErrorCategory.NotInstalled, path));
        }
        catch (UnauthorizedAccessException e)
        {
            cmdlet.ThrowTerminatingError(new ErrorRecord(e, "PermissionDenied", ErrorCategory.PermissionDenied, path));
        }
        return null!; // not reached
    }
}

/// <summary>Read-StackCapture: a pcap or pcapng file decoded into the packet objects Get-StackPacket writes.</summary>
[Cmdlet(VerbsCommunications.Read, "StackCapture")]
[OutputType(typeof(StackPacket))]
public sealed class ReadStackCaptureCommand : NetStackCmdlet
{
    [Parameter(Mandatory = true, Position = 0, ValueFromPipeline = true, ValueFromPipelineByPropertyName = true)]
    [Alias("FullName", "CaptureFile")]
    [ValidateNotNullOrEmpty]
    public string[] Path { get; set; } = Array.Empty<string>();

    [Parameter]
    [SupportsWildcards]
    [ArgumentCompleter(typeof(PacketProtocolCompleter))]
    public string[]? Protocol { get; set; }

    protected override void ProcessRecord()
    {
        var protocols = Protocol?.Select(p => new WildcardPattern(p, WildcardOptions.IgnoreCase)).ToArray();
        foreach (var p in Path)
        {
            var full = GetUnresolvedProviderPathFromPSPath(p);
            var trace = CaptureReading.Read(this, full);
            if (trace.FramesNotDecoded > 0)
                WriteVerbose($"{full}: {trace.FramesNotDecoded} frames held neither IPv4 nor ARP and were left out.");
            foreach (var f in trace.Decode())
                if (protocols is null || protocols.Any(w => w.IsMatch(f.Protocol))) WriteObject(new StackPacket(f, full));
        }
    }
}
