namespace NetStack.Tcp;

/// <summary>
/// TCP client connections for a layer that lives on the loop (the DNS resolver's fallback to TCP, RFC 7766): open one,
/// send on it, hear its data and its end through <see cref="ITcpClientReceiver"/>. Every call and callback is on the loop.
/// </summary>
internal interface ITcpClientPorts
{
    /// <summary>Starts connecting to <paramref name="remote"/>:<paramref name="port"/> from an ephemeral port; the receiver hears the outcome.</summary>
    ITcpClient Connect(Ipv4Address remote, ushort port, ITcpClientReceiver receiver, TimeSpan now);
}

/// <summary>One client connection opened through <see cref="ITcpClientPorts"/>.</summary>
internal interface ITcpClient
{
    /// <summary>Queues <paramref name="data"/> (copied) for sending; call after <see cref="ITcpClientReceiver.OnTcpConnected"/>.</summary>
    void Send(ReadOnlySpan<byte> data, TimeSpan now);

    /// <summary>Ends the connection: an orderly close, or a reset when <paramref name="abort"/>. No callback follows.</summary>
    void Close(bool abort, TimeSpan now);
}

/// <summary>What a <see cref="ITcpClient"/> tells its owner, on the loop.</summary>
internal interface ITcpClientReceiver
{
    void OnTcpConnected(ITcpClient client, TimeSpan now);

    /// <summary>Bytes that arrived, valid during the call.</summary>
    void OnTcpData(ITcpClient client, ReadOnlySpan<byte> data, TimeSpan now);

    /// <summary>The connection ended without being closed by the owner: None when the peer closed, else why it failed (refused, timed out...).</summary>
    void OnTcpEnded(ITcpClient client, StackError error, TimeSpan now);
}
