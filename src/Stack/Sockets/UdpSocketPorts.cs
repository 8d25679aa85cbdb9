using NetStack.Udp;

namespace NetStack.Sockets;

/// <summary>
/// How the DNS resolver and the DHCP client get their UDP ports: as sockets of the stack (with descriptors), so a
/// query in flight, or DHCP's port 68, shows in Get-StackConnection like any other socket. They see only <see cref="IUdpPorts"/>.
/// </summary>
internal sealed class UdpSocketPorts : IUdpPorts
{
    private readonly NetworkStack _stack;

    public UdpSocketPorts(NetworkStack stack) => _stack = stack;

    public IUdpPort? OpenRandom(IUdpReceiver receiver, TimeSpan now)
    {
        var port = _stack.Udp.AllocateRandomPort();
        if (port is null) return null;
        var socket = new UdpSocket(_stack) { Receiver = receiver };
        socket.Bind(port.Value, Ipv4Address.Any, now);
        return socket;
    }

    public IUdpPort? Open(ushort port, IUdpReceiver receiver, TimeSpan now)
    {
        if (_stack.Udp.IsPortInUse(port)) return null;
        var socket = new UdpSocket(_stack) { Receiver = receiver };
        socket.Bind(port, Ipv4Address.Any, now);
        return socket;
    }
}
