using NetStack.Sockets;
using NetStack.Tcp;

namespace NetStack.Diagnostics;

/// <summary>
/// Frames to look at together with what the stack knew about them: the TCP state transitions of its connections and
/// the ISNs and window shifts of the ones still open. Taken from a running stack in one loop turn
/// (<see cref="StackDiagnostics.GetPacketTraceAsync"/>) or read from a capture file (<see cref="CaptureFile.Read"/>,
/// no stack: states are then inferred). Decoding runs on the caller's thread, never on the loop.
/// </summary>
public sealed class PacketTrace
{
    public PacketTrace(string source, IReadOnlyList<LoggedFrame> frames, IReadOnlyList<TcpStateChange>? stateChanges = null,
        IReadOnlyList<TcpStateChange>? openConnections = null, DateTime? startTime = null)
    {
        Source = source;
        Frames = frames;
        StateChanges = stateChanges ?? Array.Empty<TcpStateChange>();
        OpenConnections = openConnections ?? Array.Empty<TcpStateChange>();
        StartTime = startTime;
    }

    /// <summary>The stack's name or the capture file's path.</summary>
    public string Source { get; }
    public IReadOnlyList<LoggedFrame> Frames { get; }
    /// <summary>The stack's own TCP state transitions, oldest first (empty for a capture file).</summary>
    public IReadOnlyList<TcpStateChange> StateChanges { get; }
    /// <summary>The stack's connections at snapshot time (From = To = their state), for their ISNs and window shifts.</summary>
    public IReadOnlyList<TcpStateChange> OpenConnections { get; }
    /// <summary>Wall-clock time of the first frame of a capture file (null for a stack's log).</summary>
    public DateTime? StartTime { get; }
    /// <summary>Frames of a capture file that held neither IPv4 nor ARP (IPv6, other link types): counted, not decoded.</summary>
    public int FramesNotDecoded { get; init; }
    /// <summary>True when the states come from a stack rather than being inferred from the segments.</summary>
    public bool HasStackStates => StateChanges.Count > 0 || OpenConnections.Count > 0;

    /// <summary>Every frame decoded in order, with TCP numbers relative to the ISNs the stack recorded (issue: the handshake may have left the log).</summary>
    public IReadOnlyList<FrameSummary> Decode()
    {
        var decoder = new FrameDecoder();
        foreach (var c in StateChanges.Concat(OpenConnections)) Seed(decoder, c); // newest last, so newest wins
        var list = new List<FrameSummary>(Frames.Count);
        foreach (var f in Frames) list.Add(decoder.Decode(f));
        return list;
    }

    private static void Seed(FrameDecoder decoder, in TcpStateChange c)
    {
        if (c.LocalPort == 0 || c.To == TcpState.Listen) return;
        var known = c.IrsKnown;
        decoder.AddKnownConnection(c.LocalAddress, c.LocalPort, c.RemoteAddress, c.RemotePort, c.Iss, known ? c.Irs : null,
            known ? c.LocalWindowShift : null, known ? c.RemoteWindowShift : null);
    }
}

/// <summary>Diagnostics read from a running stack (any thread; the snapshot is taken on the loop).</summary>
public static class StackDiagnostics
{
    /// <summary>The packet log, the TCP state log and the open connections' ISNs, all from one loop turn.</summary>
    public static Task<PacketTrace> GetPacketTraceAsync(this NetworkStack stack) => stack.InvokeAsync(now =>
    {
        var open = new List<TcpStateChange>();
        foreach (var s in stack.Sockets.All())
        {
            if (s is not TcpSocket { Tcb: var c } || c.Key.LocalPort == 0) continue;
            open.Add(new TcpStateChange(now, stack.Config.Address, c.Key.LocalPort, c.Remote, c.Key.RemotePort, c.State, c.State,
                c.Iss, c.Irs, c.RcvWndShift, c.SndWndShift));
        }
        return new PacketTrace(stack.Name, stack.PacketLog.Snapshot(), stack.Tcp.StateLog.Snapshot(), open);
    });

    /// <summary>The stack's recent TCP state transitions, oldest first.</summary>
    public static Task<TcpStateChange[]> GetTcpStateChangesAsync(this NetworkStack stack) => stack.InvokeAsync(_ => stack.Tcp.StateLog.Snapshot());
}
