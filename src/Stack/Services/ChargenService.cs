using NetStack.Sockets;
using NetStack.Tcp;
using NetStack.Udp;

namespace NetStack.Services;

/// <summary>
/// Character generator (RFC 864): lines of 72 printable ASCII characters, each starting one character further along
/// the 95-character cycle, ended by CRLF. TCP sends them until the client closes (or resets) or the host's limit has
/// gone, then closes, so a client can read some and close or read to the end; UDP answers any datagram with 512 of them.
/// </summary>
internal sealed class ChargenService(int limit)
{
    public const ushort Port = 19;
    public const int LineLength = 74; // 72 characters and CRLF
    private const int Printable = 95;  // ' ' (32) to '~' (126)

    /// <summary>The pattern from its start: line i begins with character 32 + i mod 95 (RFC 864's sample).</summary>
    public static byte[] Pattern(int length, int startLine = 0)
    {
        var data = new byte[length];
        for (int i = 0; i < length; i++)
        {
            var line = startLine + i / LineLength;
            var col = i % LineLength;
            data[i] = col switch
            {
                72 => (byte)'\r',
                73 => (byte)'\n',
                _ => (byte)(32 + (line + col) % Printable),
            };
        }
        return data;
    }

    public async Task ServeAsync(TcpSocket socket, CancellationToken token)
    {
        // The client ends the stream by closing: its FIN (a receive of 0) or a reset stops the sending.
        using var clientDone = CancellationTokenSource.CreateLinkedTokenSource(token);
        var watcher = WatchForCloseAsync(socket, clientDone);
        // 95 lines make one full cycle of the pattern: sending that block again and again continues it exactly.
        var block = Pattern(Printable * LineLength);
        var sent = 0;
        try
        {
            while (sent < limit)
            {
                var n = Math.Min(block.Length, limit - sent);
                await socket.SendAsync(block.AsMemory(0, n), clientDone.Token).ConfigureAwait(false);
                sent += n;
            }
        }
        catch (OperationCanceledException) when (!token.IsCancellationRequested) { /* the client closed: done */ }
        await socket.CloseAsync().ConfigureAwait(false);
        clientDone.Cancel();
        await watcher.ConfigureAwait(false);
    }

    private static async Task WatchForCloseAsync(TcpSocket socket, CancellationTokenSource clientDone)
    {
        var sink = new byte[4096];
        try
        {
            while (await socket.ReceiveAsync(sink, clientDone.Token).ConfigureAwait(false) > 0) { } // RFC 864: input is thrown away
        }
        catch (Exception e) when (e is OperationCanceledException or StackException) { }
        clientDone.Cancel();
    }

    public byte[]? Answer(UdpDatagram datagram) => Pattern(512);
}
