using NetStack.IPv4;

namespace NetStack.Udp;

public sealed class UdpCounters : LayerCounters
{
    public override string Layer => "Udp";
    public long DatagramsReceived;
    public long DatagramsDelivered;
    public long DatagramsSent;
    public long DroppedTruncated;
    public long DroppedBadLength;
    public long DroppedBadChecksum;
    public long DroppedNoSocket;
    public long DroppedReceiveBufferFull;
}

/// <summary>UDP (RFC 768). PLACEHOLDER: no sockets yet; every datagram gets port unreachable.</summary>
internal sealed class UdpLayer : IIpProtocolHandler
{
    private readonly NetworkStack _stack;
    public UdpLayer(NetworkStack stack) => _stack = stack;
    public UdpCounters Counters { get; } = new();

    public void OnDatagram(in IpDatagramInfo info, ReadOnlySpan<byte> payload, TimeSpan now)
    {
        Counters.DatagramsReceived++;
        Counters.DroppedNoSocket++;
    }

    public void OnError(in IpErrorInfo error, ReadOnlySpan<byte> original, TimeSpan now) { }

    public TimeSpan? Poll(TimeSpan now) => null;
    public void Dispose() { }
}
