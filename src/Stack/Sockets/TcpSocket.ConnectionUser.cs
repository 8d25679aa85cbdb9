using NetStack.Tcp;

namespace NetStack.Sockets;

/// <summary>What the socket is to its connection: the <see cref="IConnectionUser"/> told of state changes and the end (on the loop).</summary>
public sealed partial class TcpSocket : IConnectionUser
{
    void IConnectionUser.OnStateChanged(TcpState state) => PublishState(state);

    void IConnectionUser.OnClosed() => OnClosed();
}
