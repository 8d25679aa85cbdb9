using System.Buffers.Binary;
using NetStack.Tcp;

namespace NetStack.Dns;

/// <summary>
/// DNS over TCP (RFC 1035 4.2.2, RFC 7766 8): each message is preceded by its length in two bytes. The resolver asks
/// over TCP when a UDP answer comes truncated (TC set, RFC 7766 5 / RFC 2181 9): one connection per question, the
/// query sent in one write with its length (RFC 7766 8), the answer read whole, then the connection closed by us.
/// </summary>
internal sealed class DnsTcpExchange : ITcpClientReceiver
{
    private readonly byte[] _query;
    private readonly Action<DnsTcpExchange, ReadOnlyMemory<byte>, TimeSpan> _onMessage;
    private readonly Action<DnsTcpExchange, string, TimeSpan> _onFailure;
    private byte[] _received = new byte[512];
    private int _count;
    private ITcpClient? _client;
    private bool _done;

    /// <param name="query">The query message, without the length prefix.</param>
    /// <param name="onMessage">Gets the one response message (valid during the call); the connection is closed by then.</param>
    /// <param name="onFailure">Gets why no response came (refused, reset, closed early...).</param>
    public DnsTcpExchange(ReadOnlySpan<byte> query, Action<DnsTcpExchange, ReadOnlyMemory<byte>, TimeSpan> onMessage,
        Action<DnsTcpExchange, string, TimeSpan> onFailure)
    {
        _query = Frame(query);
        _onMessage = onMessage;
        _onFailure = onFailure;
    }

    /// <summary>The message with its two-byte length in front (RFC 1035 4.2.2).</summary>
    public static byte[] Frame(ReadOnlySpan<byte> message)
    {
        var framed = new byte[2 + message.Length];
        BinaryPrimitives.WriteUInt16BigEndian(framed, (ushort)message.Length);
        message.CopyTo(framed.AsSpan(2));
        return framed;
    }

    /// <summary>The length of the first framed message in <paramref name="data"/>, once all of it is there; else -1.</summary>
    public static int CompleteMessageLength(ReadOnlySpan<byte> data)
    {
        if (data.Length < 2) return -1;
        var length = BinaryPrimitives.ReadUInt16BigEndian(data);
        return data.Length >= 2 + length ? length : -1;
    }

    public void Start(ITcpClientPorts tcp, Ipv4Address server, ushort port, TimeSpan now) => _client = tcp.Connect(server, port, this, now);

    /// <summary>Gives up (the resolver's deadline passed, or the resolution ended): the connection is reset.</summary>
    public void Abort(TimeSpan now)
    {
        if (_done) return;
        _done = true;
        _client?.Close(abort: true, now);
    }

    public void OnTcpConnected(ITcpClient client, TimeSpan now)
    {
        if (!_done) client.Send(_query, now);
    }

    public void OnTcpData(ITcpClient client, ReadOnlySpan<byte> data, TimeSpan now)
    {
        if (_done) return;
        if (_count + data.Length > _received.Length)
            Array.Resize(ref _received, Math.Min(2 + ushort.MaxValue, Math.Max(_received.Length * 2, _count + data.Length)));
        var take = Math.Min(data.Length, _received.Length - _count); // bytes past the one answer we wait for are not ours to keep
        data[..take].CopyTo(_received.AsSpan(_count));
        _count += take;
        var length = CompleteMessageLength(_received.AsSpan(0, _count));
        if (length < 0) return;
        _done = true;
        client.Close(abort: false, now);
        _onMessage(this, _received.AsMemory(2, length), now);
    }

    public void OnTcpEnded(ITcpClient client, StackError error, TimeSpan now)
    {
        if (_done) return;
        _done = true;
        _onFailure(this, error == StackError.None
            ? $"closed the TCP connection after {_count} bytes, before a whole answer"
            : $"failed over TCP ({error})", now);
    }
}
