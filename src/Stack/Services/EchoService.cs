using NetStack.Sockets;
using NetStack.Tcp;
using NetStack.Udp;

namespace NetStack.Services;

/// <summary>Echo (RFC 862): TCP sends back every byte until the client closes; UDP sends back every datagram.</summary>
internal sealed class EchoService
{
    public const ushort Port = 7;

    public async Task ServeAsync(TcpSocket socket, CancellationToken token)
    {
        var buffer = new byte[16 * 1024];
        int n;
        // SendAsync completes once TCP has copied the bytes, so the buffer can take the next read at once.
        while ((n = await socket.ReceiveAsync(buffer, token).ConfigureAwait(false)) > 0)
            await socket.SendAsync(buffer.AsMemory(0, n), token).ConfigureAwait(false);
        await socket.CloseAsync().ConfigureAwait(false); // the client's FIN: ours follows the echoed data
    }

    public byte[]? Answer(UdpDatagram datagram) => datagram.Data;
}
