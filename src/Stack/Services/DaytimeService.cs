using System.Globalization;
using System.Text;
using NetStack.Sockets;
using NetStack.Tcp;
using NetStack.Udp;

namespace NetStack.Services;

/// <summary>
/// Daytime (RFC 867): one line with the date and time in UTC, e.g. "Tuesday, February 22, 1982 17:37:43 UTC";
/// TCP sends it on connect and closes, UDP answers any datagram with it. (RFC 867 leaves the format open.)
/// </summary>
internal sealed class DaytimeService(Func<DateTimeOffset> clock)
{
    public const ushort Port = 13;

    public byte[] Line() => Encoding.ASCII.GetBytes(
        clock().ToUniversalTime().ToString("dddd, MMMM d, yyyy HH:mm:ss 'UTC'", CultureInfo.InvariantCulture) + "\r\n");

    public async Task ServeAsync(TcpSocket socket, CancellationToken token)
    {
        await socket.SendAsync(Line(), token).ConfigureAwait(false);
        await socket.CloseAsync().ConfigureAwait(false);
    }

    public byte[]? Answer(UdpDatagram datagram) => Line();
}
