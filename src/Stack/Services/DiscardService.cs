using NetStack.Sockets;
using NetStack.Tcp;
using NetStack.Udp;

namespace NetStack.Services;

/// <summary>Discard (RFC 863): reads and drops everything; TCP closes after the client does.</summary>
internal sealed class DiscardService
{
    public const ushort Port = 9;

    public async Task ServeAsync(TcpSocket socket, CancellationToken token)
    {
        var buffer = new byte[64 * 1024];
        while (await socket.ReceiveAsync(buffer, token).ConfigureAwait(false) > 0) { }
        await socket.CloseAsync().ConfigureAwait(false);
    }

    public byte[]? Answer(UdpDatagram datagram) => null;
}
