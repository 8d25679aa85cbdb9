using System.Collections.Concurrent;
using System.Management.Automation;

namespace NetStack.PowerShell;

/// <summary>
/// Base of every NetStack cmdlet: the -Stack parameter and its default, waiting on the stack's tasks so that
/// Ctrl+C (StopProcessing) ends the wait at once, -Verbose narration of protocol events, and the mapping of stack
/// errors to ErrorRecords with stable ids and categories.
/// </summary>
public abstract class NetStackCmdlet : PSCmdlet
{
    private readonly CancellationTokenSource _stopping = new();
    private readonly ConcurrentQueue<string> _verbose = new();
    private readonly AutoResetEvent _verboseReady = new(false);

    /// <summary>Cancelled when the pipeline stops (Ctrl+C, or PowerShell.Stop from another thread).</summary>
    protected internal CancellationToken StopToken => _stopping.Token;

    protected override void StopProcessing() => _stopping.Cancel();

    /// <summary>
    /// The stack to act on: the one given, or else the most recently started. Terminates with StackNotStarted
    /// (no stack at all), StackNotFound (unknown name) or StackStopped.
    /// </summary>
    protected StackInstance ResolveStack(StackInstance? given)
    {
        if (given is null)
        {
            var latest = ModuleState.Latest();
            if (latest is null)
                ThrowTerminatingError(new ErrorRecord(
                    new InvalidOperationException("No stack is running. Start one with Start-Stack (alone, it joins the embedded lab: no adapter, no root), or Start-Stack -Adapter <name> -IPAddress <address/prefix> on a real network; or name one with -Stack."),
                    "StackNotStarted", ErrorCategory.InvalidOperation, null));
            return latest!;
        }
        if (given.IsMissing)
        {
            var names = string.Join(", ", ModuleState.All().Select(s => s.Name));
            ThrowTerminatingError(new ErrorRecord(
                new ItemNotFoundException($"No stack is named '{given.Name}'. {(names.Length == 0 ? "No stack is running; start one with Start-Stack." : "Running stacks: " + names + ".")}"),
                "StackNotFound", ErrorCategory.ObjectNotFound, given.Name));
        }
        if (given.IsStopped)
            ThrowTerminatingError(new ErrorRecord(
                new InvalidOperationException($"Stack '{given.Name}' has been stopped; start a new one with Start-Stack."),
                "StackStopped", ErrorCategory.InvalidOperation, given));
        return given;
    }

    /// <summary>The default stack (the most recently started that still runs), named in the verbose output when several run.</summary>
    protected StackInstance DefaultStack()
    {
        var stack = ResolveStack(null);
        if (ModuleState.All().Length > 1)
            WriteVerbose($"Using stack '{stack.Name}', the most recently started; name another with -Stack.");
        return stack;
    }

    private bool VerboseWanted =>
        MyInvocation.BoundParameters.TryGetValue("Verbose", out var v)
            ? v is SwitchParameter { IsPresent: true } || v is true
            : GetVariableValue("VerbosePreference") is ActionPreference p && p != ActionPreference.SilentlyContinue && p != ActionPreference.Ignore;

    /// <summary>
    /// Waits for <paramref name="task"/> on the pipeline thread. While waiting, protocol events from the stack are
    /// written as verbose messages (events arrive on the loop thread; only the pipeline thread may write), and a
    /// stop request ends the wait with PipelineStoppedException. The stack-side operation carries on and ends by its
    /// own timeout; nothing it holds belongs to this cmdlet.
    /// </summary>
    /// <remarks>The operation is started only after the verbose listener is attached, so no early event is missed.</remarks>
    protected internal T Await<T>(StackInstance stack, Func<Task<T>> start) => Await(stack, start, null, TimeSpan.Zero);

    /// <summary>
    /// As <see cref="Await{T}(StackInstance, Func{Task{T}})"/>, writing the progress <paramref name="report"/> gives (null:
    /// nothing to show yet) every quarter second while the task runs; the bar is completed when the wait ends.
    /// </summary>
    protected internal T Await<T>(StackInstance stack, Func<Task<T>> start, Func<ProgressRecord?> report) => Await(stack, start, null, TimeSpan.Zero, report);

    /// <summary>Progress shows for waits longer than this.</summary>
    private static readonly TimeSpan ProgressAfter = TimeSpan.FromSeconds(1);

    /// <summary>The progress id of the wait bar (the data bars of Send/Receive-StackData use 1 to 3).</summary>
    private const int WaitProgressId = 9;

    /// <summary>
    /// As the overload without an activity; with an <paramref name="activity"/>, a wait that lasts over a second shows
    /// Write-Progress (time waited of <paramref name="limit"/>) until it ends.
    /// </summary>
    private T Await<T>(StackInstance stack, Func<Task<T>> start, string? activity, TimeSpan limit, Func<ProgressRecord?>? report = null)
    {
        Action<StackEvent>? handler = null;
        if (VerboseWanted)
        {
            handler = e =>
            {
                _verbose.Enqueue($"[{stack.Name} {e.Time.TotalSeconds:F3}s] {e.Layer}: {e.Message}");
                _verboseReady.Set();
            };
            stack.Core.Event += handler;
        }
        Task<T> task = null!;
        var waited = System.Diagnostics.Stopwatch.StartNew();
        var progressShown = false;
        ProgressRecord? reported = null;
        try
        {
            task = start();
            var handles = new[] { ((IAsyncResult)task).AsyncWaitHandle, _stopping.Token.WaitHandle, _verboseReady };
            while (!task.IsCompleted)
            {
                WaitHandle.WaitAny(handles, 250);
                DrainVerbose();
                if (_stopping.IsCancellationRequested) throw new PipelineStoppedException();
                if (activity != null && !task.IsCompleted && waited.Elapsed >= ProgressAfter)
                {
                    var record = new ProgressRecord(WaitProgressId, activity, $"Waiting: {waited.Elapsed.TotalSeconds:0} s of {limit.TotalSeconds:0} s");
                    if (limit > TimeSpan.Zero)
                    {
                        record.PercentComplete = (int)Math.Min(100, waited.Elapsed.Ticks * 100 / limit.Ticks);
                        record.SecondsRemaining = (int)Math.Max(0, (limit - waited.Elapsed).TotalSeconds);
                    }
                    WriteProgress(record);
                    progressShown = true;
                }
                if (report?.Invoke() is { } own)
                {
                    WriteProgress(own);
                    reported = own;
                }
            }
        }
        finally
        {
            if (handler != null) stack.Core.Event -= handler;
            // Not while stopping: writing then would throw and hide the stop.
            if (progressShown && !_stopping.IsCancellationRequested)
                WriteProgress(new ProgressRecord(WaitProgressId, activity, "Done") { RecordType = ProgressRecordType.Completed });
            if (reported != null && !_stopping.IsCancellationRequested)
                WriteProgress(new ProgressRecord(reported.ActivityId, reported.Activity, "Done") { RecordType = ProgressRecordType.Completed });
        }
        DrainVerbose();
        return task.GetAwaiter().GetResult();
    }

    protected internal void Await(StackInstance stack, Func<Task> start) =>
        Await(stack, () => start().ContinueWith(static t => { t.GetAwaiter().GetResult(); return true; }, TaskScheduler.Default));

    /// <summary>
    /// Runs a cancellable stack operation with a time limit, writing a failure as a non-terminating error (TimedOut in
    /// OperationTimeout when the limit passes). The token given to <paramref name="start"/> fires on the timeout and on
    /// Ctrl+C, so the stack itself abandons the operation (a receive keeps its data for the next one).
    /// </summary>
    /// <param name="limit">
    /// The limit the user gave, for the message, when <paramref name="timeout"/> is what is left of it (a command that
    /// waits several times): "timed out after 2 s", not after the 1.995 s this wait had.
    /// </param>
    /// <param name="giveBack">
    /// For operations that take something (a receive): called with what the operation returned when the pipeline
    /// stopped just as it completed, so the caller can put it back (<c>TcpSocket.Unread</c>); it runs before this
    /// method throws, so the next command's operation comes after it.
    /// </param>
    /// <param name="report">Progress to show while waiting (see <see cref="Await{T}(StackInstance, Func{Task{T}}, Func{ProgressRecord?})"/>).</param>
    protected internal bool TryAwaitTimed<T>(StackInstance stack, Func<CancellationToken, Task<T>> start, TimeSpan timeout, object? target, string what, out T result,
        TimeSpan? limit = null, Action<T>? giveBack = null, Func<ProgressRecord?>? report = null)
    {
        var error = AwaitTimed(stack, start, timeout, target, what, out result, limit, giveBack, report);
        if (error is null) return true;
        WriteError(error);
        return false;
    }

    /// <summary>Like <see cref="TryAwaitTimed{T}"/> but returns the error instead of writing it.</summary>
    protected internal ErrorRecord? TryAwaitTimedQuiet<T>(StackInstance stack, Func<CancellationToken, Task<T>> start, TimeSpan timeout, object? target, string what) =>
        AwaitTimed(stack, start, timeout, target, what, out _);

    private ErrorRecord? AwaitTimed<T>(StackInstance stack, Func<CancellationToken, Task<T>> start, TimeSpan timeout, object? target, string what, out T result,
        TimeSpan? limit = null, Action<T>? giveBack = null, Func<ProgressRecord?>? report = null)
    {
        result = default!;
        using var cts = CancellationTokenSource.CreateLinkedTokenSource(_stopping.Token);
        // A zero limit still gives the loop a moment to hand over what is already there.
        cts.CancelAfter(timeout > MinimumWait ? timeout : MinimumWait);
        Task<T>? started = null;
        try
        {
            result = Await(stack, () => started = start(cts.Token), what, limit ?? timeout, report);
            return null;
        }
        catch (OperationCanceledException) when (_stopping.IsCancellationRequested) { throw new PipelineStoppedException(); }
        catch (PipelineStoppedException)
        {
            // The wait can see the stop before the stop has reached this linked source (Cancel marks the parent
            // cancelled first, then runs its callbacks), and disposing the source would then unlink it unfired,
            // leaving the stack-side operation alive: a receive that takes the next datagram for nobody.
            cts.Cancel();
            GiveBackAfterStop(started, giveBack);
            throw;
        }
        catch (OperationCanceledException)
        {
            return new ErrorRecord(new TimeoutException($"{what} timed out after {(limit ?? timeout).TotalSeconds:0.###} s."), "TimedOut", ErrorCategory.OperationTimeout, target);
        }
        catch (Exception e) when (e is StackException or ArgumentException or ObjectDisposedException or InvalidOperationException)
        {
            return ErrorFor(e, target);
        }
    }

    private static readonly TimeSpan MinimumWait = TimeSpan.FromMilliseconds(20);

    /// <summary>How long a stopped command waits for the loop to answer the cancel of its operation (one turn, normally).</summary>
    private static readonly TimeSpan SettleLimit = TimeSpan.FromSeconds(10);

    /// <summary>
    /// The pipeline stopped while <paramref name="task"/> ran, and its token is cancelled. The loop settles it at its next
    /// turn: cancelled, having taken nothing, or completed just before, holding what it took; that is given back, now,
    /// so the next command's receive finds it first. Nothing is written: the pipeline is stopping.
    /// </summary>
    private static void GiveBackAfterStop<T>(Task<T>? task, Action<T>? giveBack)
    {
        if (task is null || giveBack is null) return;
        ((IAsyncResult)task).AsyncWaitHandle.WaitOne(SettleLimit);
        if (!task.IsCompletedSuccessfully) return;
        try { giveBack(task.Result); }
        catch (StackException) { /* the stack stopped meanwhile: nothing can be received any more */ }
    }

    /// <summary>
    /// Data received as the pipeline stops cannot be output (writing throws): <paramref name="giveBack"/> puts it back
    /// in the socket, in front, for the next receive, and the stop goes on (PipelineStoppedException). Else nothing.
    /// </summary>
    protected internal void GiveBackIfStopping(Action giveBack)
    {
        if (!Stopping && !_stopping.IsCancellationRequested) return;
        try { giveBack(); }
        catch (StackException) { /* the stack stopped: nothing can be received any more */ }
        throw new PipelineStoppedException();
    }

    /// <summary>Waits up to <paramref name="delay"/>, returning early (with PipelineStoppedException) if the pipeline stops.</summary>
    protected void Sleep(TimeSpan delay)
    {
        if (delay <= TimeSpan.Zero) return;
        if (_stopping.Token.WaitHandle.WaitOne(delay)) throw new PipelineStoppedException();
    }

    private void DrainVerbose()
    {
        while (_verbose.TryDequeue(out var m)) WriteVerbose(m);
    }

    /// <summary>An ErrorRecord for a failure of the stack, with an id and category a script can rely on.</summary>
    protected internal static ErrorRecord ErrorFor(Exception e, object? target)
    {
        if (e is AggregateException { InnerExceptions.Count: 1 } a) e = a.InnerException!;
        return e switch
        {
            StackException se => new ErrorRecord(se, se.Error.ToString(), CategoryOf(se.Error), target),
            StackConfigurationException ce => new ErrorRecord(ce, "InvalidConfiguration", ErrorCategory.InvalidArgument, target),
            ArgumentException ae => new ErrorRecord(ae.ParamName is null ? ae : new ArgumentException(PlainMessage(ae), ae), "InvalidArgument", ErrorCategory.InvalidArgument, target),
            TimeoutException te => new ErrorRecord(te, "TimedOut", ErrorCategory.OperationTimeout, target),
            ObjectDisposedException de => new ErrorRecord(de, "StackStopped", ErrorCategory.InvalidOperation, target),
            UnauthorizedAccessException ue => new ErrorRecord(ue, "PermissionDenied", ErrorCategory.PermissionDenied, target),
            _ => new ErrorRecord(e, "StackFailure", ErrorCategory.NotSpecified, target),
        };
    }

    /// <summary>An ArgumentException's message without the " (Parameter 'name')" that .NET adds: the name is the code's, not the user's.</summary>
    internal static string PlainMessage(ArgumentException e) =>
        e.ParamName is { } p ? e.Message.Replace($" (Parameter '{p}')", "", StringComparison.Ordinal) : e.Message;

    internal static ErrorCategory CategoryOf(StackError error) => error switch
    {
        StackError.ConnectionRefused or StackError.ConnectionReset or StackError.ConnectionAborted
            or StackError.HostUnreachable or StackError.NetworkUnreachable or StackError.PortUnreachable
            or StackError.ProtocolUnreachable or StackError.ServerFailure => ErrorCategory.ConnectionError,
        StackError.TimedOut => ErrorCategory.OperationTimeout,
        StackError.AddressInUse => ErrorCategory.ResourceExists,
        StackError.AddressNotAvailable or StackError.InvalidArgument or StackError.MessageTooLong => ErrorCategory.InvalidArgument,
        StackError.NoEphemeralPorts or StackError.NoBufferSpace => ErrorCategory.LimitsExceeded,
        StackError.SocketClosed => ErrorCategory.ResourceUnavailable,
        StackError.NameNotFound => ErrorCategory.ObjectNotFound,
        _ => ErrorCategory.InvalidOperation,
    };

    /// <summary>Runs <paramref name="action"/>; a stack failure becomes a non-terminating error and false.</summary>
    protected internal bool TryStack(Action action, object? target)
    {
        try
        {
            action();
            return true;
        }
        catch (PipelineStoppedException) { throw; }
        catch (Exception e) when (e is StackException or ArgumentException or TimeoutException or ObjectDisposedException or AggregateException)
        {
            WriteError(ErrorFor(e, target));
            return false;
        }
    }

    /// <summary>Like <see cref="TryStack"/> but for a failure that ends the command.</summary>
    protected T OrTerminate<T>(Func<T> fn, object? target)
    {
        try { return fn(); }
        catch (PipelineStoppedException) { throw; }
        catch (Exception e) when (e is StackException or ArgumentException or TimeoutException or ObjectDisposedException or AggregateException or UnauthorizedAccessException)
        {
            ThrowTerminatingError(ErrorFor(e, target));
            throw; // not reached
        }
    }
}
