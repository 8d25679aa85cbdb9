using System.Buffers;

namespace NetStack.Sockets;

/// <summary>
/// A <see cref="Stream"/> over a <see cref="TcpSocket"/>, so SslStream, StreamReader or HttpClient's
/// ConnectCallback can run over the stack. Reads return 0 at the peer's FIN; disposing closes the socket
/// (orderly) when the stream owns it.
/// </summary>
public sealed class TcpStream : Stream
{
    private readonly bool _ownsSocket;
    private bool _disposed;

    public TcpStream(TcpSocket socket, bool ownsSocket = true)
    {
        Socket = socket ?? throw new ArgumentNullException(nameof(socket));
        _ownsSocket = ownsSocket;
    }

    public TcpSocket Socket { get; }

    public override bool CanRead => !_disposed;
    public override bool CanWrite => !_disposed;
    public override bool CanSeek => false;
    public override long Length => throw new NotSupportedException("A TCP stream has no length.");
    public override long Position
    {
        get => throw new NotSupportedException("A TCP stream has no position.");
        set => throw new NotSupportedException("A TCP stream cannot seek.");
    }

    public override int Read(byte[] buffer, int offset, int count) => Read(buffer.AsSpan(offset, count));

    public override int Read(Span<byte> buffer)
    {
        // A span cannot cross the hop to the loop: receive into a pooled array and copy out.
        var tmp = ArrayPool<byte>.Shared.Rent(buffer.Length);
        try
        {
            var n = Socket.ReceiveTaskAsync(tmp.AsMemory(0, buffer.Length)).GetAwaiter().GetResult();
            tmp.AsSpan(0, n).CopyTo(buffer);
            return n;
        }
        finally { ArrayPool<byte>.Shared.Return(tmp); }
    }

    public override Task<int> ReadAsync(byte[] buffer, int offset, int count, CancellationToken cancellationToken) =>
        Socket.ReceiveTaskAsync(buffer.AsMemory(offset, count), cancellationToken);

    /// <summary>The socket's <see cref="TcpSocket.ReadAsync"/>: no allocation per call.</summary>
    public override ValueTask<int> ReadAsync(Memory<byte> buffer, CancellationToken cancellationToken = default) =>
        Socket.ReadAsync(buffer, cancellationToken);

    // Waiting for the send keeps the caller's array alive and unchanged until TCP has copied it: no copy needed.
    public override void Write(byte[] buffer, int offset, int count) => Socket.SendAsync(buffer.AsMemory(offset, count)).GetAwaiter().GetResult();

    public override void Write(ReadOnlySpan<byte> buffer)
    {
        // SendAsync completes once the bytes are copied into the send buffer, so a pooled array can go back at once.
        var tmp = ArrayPool<byte>.Shared.Rent(buffer.Length);
        try
        {
            buffer.CopyTo(tmp);
            Socket.SendAsync(tmp.AsMemory(0, buffer.Length)).GetAwaiter().GetResult();
        }
        finally { ArrayPool<byte>.Shared.Return(tmp); }
    }

    public override Task WriteAsync(byte[] buffer, int offset, int count, CancellationToken cancellationToken) =>
        Socket.SendAsync(buffer.AsMemory(offset, count), cancellationToken);

    /// <summary>The socket's <see cref="TcpSocket.WriteAsync"/>: no allocation per call.</summary>
    public override ValueTask WriteAsync(ReadOnlyMemory<byte> buffer, CancellationToken cancellationToken = default) =>
        Socket.WriteAsync(buffer, cancellationToken);

    /// <summary>Data is handed to TCP on write; there is nothing to flush.</summary>
    public override void Flush() { }
    public override Task FlushAsync(CancellationToken cancellationToken) => Task.CompletedTask;

    public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException("A TCP stream cannot seek.");
    public override void SetLength(long value) => throw new NotSupportedException("A TCP stream has no length.");

    protected override void Dispose(bool disposing)
    {
        if (!_disposed && disposing && _ownsSocket) Socket.Dispose();
        _disposed = true;
        base.Dispose(disposing);
    }
}
