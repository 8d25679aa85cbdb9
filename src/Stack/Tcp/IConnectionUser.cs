namespace NetStack.Tcp;

/// <summary>
/// Whoever holds a connection for the user (the socket API's <c>TcpSocket</c>): the connection tells it of every
/// state change (to publish for readers on other threads) and of its end. Called on the loop.
/// </summary>
internal interface IConnectionUser
{
    /// <summary>The descriptor shown in snapshots.</summary>
    int Id { get; }

    void OnStateChanged(TcpState state);

    /// <summary>The connection is gone (CLOSED, or closed by the user before it ever connected).</summary>
    void OnClosed();
}
