namespace NetStack.Tcp;

/// <summary>
/// A user's send or receive parked on a connection until the loop can finish it. The connection completes it exactly
/// once, on the loop: with a result, an error, or as cancelled. Declared here, implemented by the socket API (the socket
/// itself for its receive, a reusable <c>IValueTaskSource</c> per socket for its send, or a <see cref="TaskWaiter{T}"/>),
/// so a parked operation costs no allocation.
/// </summary>
internal interface IOperationWaiter<in T>
{
    void Complete(T result);
    void Fail(Exception error);
    void Cancel();
}

/// <summary>
/// A parked receive: it carries the buffer the connection fills when data comes, so the connection keeps no copy of it
/// (issue 18: 16 B less in every connection).
/// </summary>
internal interface IReceiveWaiter : IOperationWaiter<int>
{
    /// <summary>Where the data goes; the same memory the receive was called with.</summary>
    Memory<byte> ReceiveBuffer { get; }
}

/// <summary>A waiter that is a <see cref="TaskCompletionSource{T}"/>: the Task-returning paths.</summary>
/// <remarks>
/// Completed on the loop, so a simulation sees the task complete in the loop turn that finished it. The connection's
/// own Task-returning calls use plain ones (continuations run synchronously on the loop, for the loop's own callers);
/// the socket API's ask for <see cref="TaskCreationOptions.RunContinuationsAsynchronously"/>, so user code never runs there.
/// </remarks>
internal class TaskWaiter<T>(TaskCreationOptions options = TaskCreationOptions.None) : TaskCompletionSource<T>(options), IOperationWaiter<T>
{
    public virtual void Complete(T result) => TrySetResult(result);
    public virtual void Fail(Exception error) => TrySetException(error);
    public virtual void Cancel() => TrySetCanceled();
}

/// <summary>A <see cref="TaskWaiter{T}"/> for a receive: the Task-returning receive paths.</summary>
internal class TaskReceiveWaiter(Memory<byte> buffer, TaskCreationOptions options = TaskCreationOptions.None) : TaskWaiter<int>(options), IReceiveWaiter
{
    public Memory<byte> ReceiveBuffer => buffer;
}
