using System.Management.Automation;
using NetStack.Sockets;
using NetStack.Tcp;

namespace NetStack.PowerShell;

/// <summary>Errors about sockets, with the module's stable ids.</summary>
internal static class SocketErrors
{
    public static ErrorRecord NotFound(StackInstance stack, int id) => new(
        new ItemNotFoundException($"Stack '{stack.Name}' has no socket {id} (closed, or never opened). List sockets with Get-StackConnection."),
        "SocketNotFound", ErrorCategory.ObjectNotFound, id);
}

/// <summary>
/// The TCP side of the socket cmdlets, in one place so the cmdlets stay protocol-neutral. Waits go through
/// <see cref="NetStackCmdlet.TryAwaitTimed{T}"/>: a timeout or Ctrl+C cancels the stack-side operation itself
/// (the connect is aborted, a receive leaves in the socket every byte it did not return), so nothing is lost or left behind.
/// </summary>
internal static class TcpSupport
{
    private const int ChunkSize = 64 * 1024;
    private const long ProgressThreshold = 1024 * 1024;

    public static TcpSocket? CreateSocket(NetStackCmdlet cmdlet, StackInstance stack, ushort port, Ipv4Address? localAddress, bool noDelay, int? receiveBuffer, int? sendBuffer)
    {
        TcpSocket? socket = null;
        cmdlet.TryStack(() =>
        {
            if (localAddress is { } address) stack.Core.RequireLocalAddress(address);
            socket = stack.Core.CreateTcpSocket();
            try
            {
                // The port is claimed when the socket connects (AddressInUse then, if taken), as with bind() before connect().
                if (port != 0) socket.Bind(port);
                if (receiveBuffer is { } r) socket.ReceiveBufferSize = r;
                if (sendBuffer is { } snd) socket.SendBufferSize = snd;
                if (noDelay) socket.NoDelay = true;
            }
            catch
            {
                socket.Abort();
                socket = null;
                throw;
            }
        }, stack.Name);
        return socket;
    }

    private static TcpSocket RequireStream(NetStackCmdlet cmdlet, StackSocket socket, string what)
    {
        if (socket is TcpSocket t) return t;
        cmdlet.ThrowTerminatingError(new ErrorRecord(
            new InvalidOperationException($"Socket {socket.Id} is a listener; {what} needs a connection (take one with Wait-StackConnection)."),
            "WrongSocketType", ErrorCategory.InvalidOperation, socket.Id));
        return null!;
    }

    public static bool Connect(NetStackCmdlet cmdlet, StackInstance stack, StackSocket socket, Ipv4Address address, ushort port, TimeSpan timeout)
    {
        var tcp = RequireStream(cmdlet, socket, "Connect-StackSocket");
        return cmdlet.TryAwaitTimed(stack, ct => Done(tcp.ConnectAsync(address, port, ct)), timeout, $"{address}:{port}", $"Connecting to {address}:{port}", out _);
    }

    public static bool Send(NetStackCmdlet cmdlet, StackInstance stack, StackSocket socket, byte[] data, TimeSpan timeout)
    {
        var tcp = RequireStream(cmdlet, socket, "Send-StackData");
        if (data.Length < ProgressThreshold)
            return cmdlet.TryAwaitTimed(stack, ct => Done(tcp.SendAsync(data, ct)), timeout, socket.Id, $"Sending {data.Length} bytes on socket {socket.Id}", out _);
        // Large sends go in chunks so progress can be shown while the window drains.
        var deadline = DateTime.UtcNow + timeout;
        for (int offset = 0; offset < data.Length; offset += ChunkSize)
        {
            cmdlet.WriteProgress(new ProgressRecord(2, "Send-StackData", $"Socket {socket.Id}: {offset:N0} of {data.Length:N0} bytes queued")
            { PercentComplete = (int)(offset * 100L / data.Length) });
            var chunk = data.AsMemory(offset, Math.Min(ChunkSize, data.Length - offset));
            if (!cmdlet.TryAwaitTimed(stack, ct => Done(tcp.SendAsync(chunk, ct)), Remaining(deadline), socket.Id, $"Sending {data.Length} bytes on socket {socket.Id}", out _, timeout))
                return false;
        }
        cmdlet.WriteProgress(new ProgressRecord(2, "Send-StackData", "Done") { RecordType = ProgressRecordType.Completed });
        return true;
    }

    /// <summary>
    /// recv() by default: waits for at least one byte, returns what is buffered; null once the peer closed and nothing is
    /// left. -Count: exactly that many bytes (fewer only if the peer closes). -Until: through the delimiter (or -Count
    /// bytes, if that comes first). -ToEnd: until EOF. The socket's own bounded receives do the work, so bytes read past
    /// a boundary stay in the socket (ReceiveAsync, GetStream() and Recv-Q see them), and a timeout, an error or Ctrl+C
    /// leaves every byte not returned there for the next receive.
    /// </summary>
    public static byte[]? Receive(NetStackCmdlet cmdlet, StackInstance stack, StackSocket socket, int? count, byte[]? until, bool toEnd, TimeSpan timeout)
    {
        var tcp = RequireStream(cmdlet, socket, "Receive-StackData");
        var what = $"Receiving on socket {socket.Id}";
        if (count is null && until is null && !toEnd)
        {
            // recv() returns everything buffered, up to the receive buffer's size.
            var buffer = new byte[Math.Max(ChunkSize, tcp.ReceiveBufferSize)];
            if (!cmdlet.TryAwaitTimed(stack, ct => tcp.ReceiveAsync(buffer, ct).AsTask(), timeout, socket.Id, what, out var n,
                    giveBack: got => tcp.Unread(buffer.AsMemory(0, got))))
                return null;
            return n == 0 ? null : buffer.AsSpan(0, n).ToArray();
        }
        var progress = new ReceiveProgress(socket.Id, count);
        Func<CancellationToken, Task<byte[]>> start =
            until != null ? ct => tcp.ReceiveUntilAsync(until, count ?? int.MaxValue, ct, progress)
            : count is { } c ? ct => tcp.ReceiveExactlyAsync(c, ct, progress)
            : ct => tcp.ReceiveToEndAsync(ct, progress);
        if (!cmdlet.TryAwaitTimed(stack, start, timeout, socket.Id, what, out var data, giveBack: d => tcp.Unread(d), report: progress.Record))
            return null;
        if (data.Length == 0) return null; // the peer closed and nothing was left
        var complete = until != null
            ? data.AsSpan().EndsWith(until) || data.Length == count
            : count is null || data.Length == count;
        if (!complete)
            cmdlet.WriteWarning($"Socket {socket.Id}: the peer closed after {data.Length} bytes, before {(until != null ? "the delimiter" : $"{count} bytes")} arrived.");
        return data;
    }

    /// <summary>How far a bounded receive has got, for Write-Progress once it passes a mebibyte.</summary>
    private sealed class ReceiveProgress(int socketId, int? total) : IProgress<long>
    {
        private long _received;

        public void Report(long value) => Volatile.Write(ref _received, value);

        public ProgressRecord? Record()
        {
            var received = Volatile.Read(ref _received);
            if (received < ProgressThreshold) return null;
            return new ProgressRecord(3, "Receive-StackData", $"Socket {socketId}: {received:N0} bytes{(total is { } t ? $" of {t:N0}" : "")}")
            { PercentComplete = total is { } all ? (int)(received * 100L / all) : -1 };
        }
    }

    public static void Close(NetStackCmdlet cmdlet, StackInstance stack, StackSocket socket, bool abort)
    {
        switch (socket)
        {
            case TcpListener listener:
                cmdlet.TryStack(() => cmdlet.Await(stack, () => listener.StopAsync()), socket.Id);
                break;
            case TcpSocket tcp when abort:
                tcp.Abort();
                break;
            case TcpSocket tcp:
                // The orderly close (FIN, then the peer's ACK) finishes in the background, as closing a kernel socket does.
                tcp.CloseAsync().ContinueWith(static t => _ = t.Exception, TaskContinuationOptions.OnlyOnFaulted);
                break;
        }
    }

    public static TcpListener? Listen(NetStackCmdlet cmdlet, StackInstance stack, ushort port, Ipv4Address? localAddress, int backlog)
    {
        TcpListener? listener = null;
        cmdlet.TryStack(() =>
        {
            if (localAddress is { } address) stack.Core.RequireLocalAddress(address);
            listener = cmdlet.Await(stack, () => stack.Core.ListenAsync(port, backlog));
        }, port);
        return listener;
    }

    public static TcpSocket? Accept(NetStackCmdlet cmdlet, StackInstance stack, StackSocket socket, TimeSpan timeout)
    {
        if (socket is not TcpListener listener)
        {
            cmdlet.ThrowTerminatingError(new ErrorRecord(
                new InvalidOperationException($"Socket {socket.Id} is not a listener; start one with Start-StackListener."),
                "WrongSocketType", ErrorCategory.InvalidOperation, socket.Id));
            return null;
        }
        return cmdlet.TryAwaitTimed(stack, ct => listener.AcceptAsync(ct), timeout, socket.Id, $"Waiting for a connection on port {listener.Port}", out var accepted)
            ? accepted : null;
    }

    private static TimeSpan Remaining(DateTime deadline)
    {
        var left = deadline - DateTime.UtcNow;
        return left > TimeSpan.Zero ? left : TimeSpan.Zero;
    }

    private static async Task<bool> Done(Task task)
    {
        await task.ConfigureAwait(false);
        return true;
    }
}
