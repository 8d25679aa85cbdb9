using NetStack.Diagnostics;

namespace NetStack.Sockets;

/// <summary>Tracing a connection's sender internals over time (the time-sequence graph's second panel).</summary>
public sealed partial class TcpSocket
{
    private volatile bool _traceInternals;

    /// <summary>
    /// Samples cwnd, ssthresh, bytes in flight, SRTT and RTO on the loop whenever one changes, into a ring of
    /// <see cref="TcpInternalsRecorder.DefaultCapacity"/> samples (the oldest overwritten). Off by default; set it
    /// before ConnectAsync to trace the handshake too. Turning it off lets the samples go.
    /// </summary>
    public bool TraceInternals
    {
        get => _traceInternals;
        set => SetOption(nameof(TraceInternals), () => _traceInternals = value, _ => Tcb.Recorder = value ? Tcb.Recorder ?? new TcpInternalsRecorder() : null);
    }

    /// <summary>The samples taken so far, oldest first (empty when the connection is not traced).</summary>
    public Task<TcpInternalsSample[]> GetInternalsTraceAsync()
    {
        if (!Stack.IsRunning) return Task.FromResult(Tcb.Recorder?.Snapshot() ?? Array.Empty<TcpInternalsSample>()); // the loop has stopped: nothing writes any more
        return Stack.InvokeAsync(_ => Tcb.Recorder?.Snapshot() ?? Array.Empty<TcpInternalsSample>());
    }

    /// <summary>A connection a traced listener accepted starts traced (on the loop, before its SYN-ACK).</summary>
    internal void StartTracing()
    {
        _traceInternals = true;
        Tcb.Recorder = new TcpInternalsRecorder();
    }
}
