namespace NetStack.Udp;

/// <summary>One received UDP datagram: who sent it and its data (allocated for the caller).</summary>
public sealed record UdpDatagram(Ipv4Address RemoteAddress, ushort RemotePort, byte[] Data)
{
    public IpEndPoint RemoteEndPoint => new(RemoteAddress, RemotePort);
    public int Length => Data.Length;
}
