using System.Management.Automation;
using NetStack.Diagnostics;
using NetStack.Sockets;

namespace NetStack.PowerShell;

/// <summary>
/// Show-StackLadder: a ladder diagram in the console — a column per host, time (ms) down the left, an arrow per frame
/// with its flags, relative Seq/Ack, Len, Win (options on SYNs), retransmissions, duplicate ACKs, zero windows and
/// resets marked, and each side's TCP state beside its column where it changes. Writes the lines as strings.
/// </summary>
[Cmdlet(VerbsCommon.Show, "StackLadder", DefaultParameterSetName = StackSet)]
[OutputType(typeof(string))]
public sealed class ShowStackLadderCommand : PictureCmdlet
{
    /// <summary>Columns to fit (default: the console's width, or 120 when there is none).</summary>
    [Parameter]
    [ValidateRange(40, 1000)]
    public int Width { get; set; }

    /// <summary>Plain ASCII instead of Unicode box drawing (chosen on its own when the console cannot show Unicode).</summary>
    [Parameter]
    public SwitchParameter Ascii { get; set; }

    internal override void Draw(Drawing drawing, string? stackName)
    {
        var ladder = LadderBuilder.Build(drawing.Frames, drawing.States);
        ladder = new Ladder($"{drawing.Source}: {ladder.Title}", ladder.Hosts, ladder.Rows, ladder.Origin);
        var ascii = Ascii || !Console.OutputEncoding.WebName.StartsWith("utf", StringComparison.OrdinalIgnoreCase);
        foreach (var line in LadderText.Render(ladder, Width > 0 ? Width : ConsoleWidth(), ascii)) WriteObject(line);
    }

    private int ConsoleWidth()
    {
        try
        {
            var w = Host.UI.RawUI.BufferSize.Width;
            return w >= 40 ? w - 1 : 120;
        }
        catch (Exception e) when (e is NotImplementedException or System.Management.Automation.Host.HostException or IOException or PlatformNotSupportedException)
        {
            return 120;
        }
    }
}

/// <summary>Base of the Export- picture cmdlets: the file to write, its format, -PassThru.</summary>
public abstract class ExportPictureCmdlet : PictureCmdlet
{
    /// <summary>The file to write: .svg or .html.</summary>
    [Parameter(Mandatory = true, Position = 0)]
    [ValidateNotNullOrEmpty]
    public string Path { get; set; } = "";

    [Parameter]
    public PictureFormat? Format { get; set; }

    [Parameter]
    public SwitchParameter PassThru { get; set; }

    /// <summary>Writes the SVG or the HTML page, as -Format or the file's extension says; each is made only if asked for.</summary>
    protected void Write(Func<string> svg, Func<string> html) =>
        WriteFile(Path, FormatFor(Path, Format) == PictureFormat.Svg ? svg() : html(), PassThru);
}

/// <summary>Export-StackLadder: the ladder diagram as an SVG file or one self-contained HTML page (hover a segment for its fields).</summary>
[Cmdlet(VerbsData.Export, "StackLadder", DefaultParameterSetName = StackSet)]
[OutputType(typeof(FileInfo))]
public sealed class ExportStackLadderCommand : ExportPictureCmdlet
{
    internal override void Draw(Drawing drawing, string? stackName)
    {
        FormatFor(Path, Format); // a bad file name fails before any work
        var ladder = LadderBuilder.Build(drawing.Frames, drawing.States);
        ladder = new Ladder($"{drawing.Source}: {ladder.Title}", ladder.Hosts, ladder.Rows, ladder.Origin);
        Write(() => LadderSvg.Render(ladder), () => LadderHtml.Render(ladder));
    }
}

/// <summary>
/// Export-StackSequenceGraph: a time-sequence graph (tcptrace style) of one direction of a TCP connection as SVG or
/// HTML: the sender's segments, the receiver's ACK and window lines, SACK blocks, retransmissions and probes marked.
/// </summary>
[Cmdlet(VerbsData.Export, "StackSequenceGraph", DefaultParameterSetName = StackSet)]
[OutputType(typeof(FileInfo))]
public sealed class ExportStackSequenceGraphCommand : ExportPictureCmdlet
{
    /// <summary>The data sender, as an address or address:port (default: the side that sent the most data).</summary>
    [Parameter]
    [ValidateNotNullOrEmpty]
    public string? Sender { get; set; }

    internal override void Draw(Drawing drawing, string? stackName)
    {
        FormatFor(Path, Format); // a bad file name fails before any work
        TcpFlowKey? flow = null;
        if (Sender is { } sender)
        {
            flow = FindFlow(drawing.Frames, sender);
            if (flow is null)
                ThrowTerminatingError(new ErrorRecord(new ArgumentException($"No TCP segment with data was sent from '{sender}' in these packets. Give the sender as an address or address:port that appears in Get-StackPacket's Source."),
                    "SenderNotFound", ErrorCategory.ObjectNotFound, sender));
        }
        var graph = SequenceGraphBuilder.Build(drawing.Frames, flow);
        if (graph is null)
        {
            WriteError(new ErrorRecord(new InvalidOperationException($"The packets from {drawing.Source} hold no TCP segment to draw."),
                "NoTcpSegments", ErrorCategory.ObjectNotFound, drawing.Source));
            return;
        }
        if (Socket is { } sref && stackName != null && ModuleState.Find(stackName) is { } stack) graph = WithInternals(graph, stack, sref);
        Write(() => SequenceGraphSvg.Render(graph), () => SequenceGraphSvg.RenderHtml(graph));
    }

    /// <summary>The second panel: the socket's traced internals, when it was traced and is the graph's sender.</summary>
    private SequenceGraph WithInternals(SequenceGraph graph, StackInstance stack, SocketReference sref)
    {
        if ((sref.Socket ?? stack.Core.FindSocket(sref.Id)) is not TcpSocket tcp || !tcp.TraceInternals)
        {
            WriteVerbose($"Socket {sref.Id} is not traced: no panel of its internals (connect with Connect-StackSocket -Trace, or set TraceInternals).");
            return graph;
        }
        var local = tcp.LocalEndPoint;
        if (graph.Flow.Source != local.Address || graph.Flow.SourcePort != local.Port)
        {
            WriteVerbose($"Socket {sref.Id} ({local.Address}:{local.Port}) received the data drawn, it did not send it: its internals are not drawn (they are the sender's).");
            return graph;
        }
        var samples = OrTerminate(() => Await(stack, () => tcp.GetInternalsTraceAsync()), stack);
        return samples.Length == 0 ? graph : graph.WithInternals(samples);
    }

    private static TcpFlowKey? FindFlow(IReadOnlyList<FrameSummary> frames, string sender)
    {
        var colon = sender.LastIndexOf(':');
        var address = colon > 0 ? sender[..colon] : sender;
        ushort? port = colon > 0 && ushort.TryParse(sender[(colon + 1)..], out var p) ? p : null;
        var busiest = SequenceGraphBuilder.BusiestFlow(frames.Where(f => f.Source == address && (port is null || f.SourcePort == port)).ToList());
        return busiest;
    }
}
