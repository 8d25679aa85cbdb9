using NetStack.Dhcp;
using NetStack.Sockets;

namespace NetStack.Services;

/// <summary>
/// DHCP over UDP port 67 (RFC 2131 4.1): each request read with <see cref="DhcpMessage"/>, answered by the
/// <see cref="DhcpServer"/>, the reply sent to port 68 at the destination it names (the limited broadcast while the
/// client has no address). Runs on the service host's stack like its other services, with the public socket API.
/// </summary>
internal sealed class DhcpService(DhcpServer server, NetworkStack stack, ServiceCounters counters)
{
    public const ushort Port = DhcpMessage.ServerPort;

    /// <summary>The pool, gateway, DNS and domain a service host hands out: its own address as router and DNS server.</summary>
    public static DhcpServerSettings SettingsFor(NetworkStack stack, ServiceHostOptions options)
    {
        var address = stack.Config.Address;
        var prefix = stack.Config.PrefixLength;
        var mask = Ipv4Address.MaskOf(prefix);
        var network = address.Value & mask;
        var last = (address.Value | ~mask) - 1;
        // .100 to .199 of a /24 (and of larger subnets); the upper half of a smaller one.
        var first = options.DhcpPoolFirst ?? new Ipv4Address(prefix <= 24 ? network + 100 : network + (~mask + 1) / 2);
        var end = options.DhcpPoolLast ?? new Ipv4Address(prefix <= 24 ? network + 199 : last);
        if (!first.IsInSubnet(address, prefix) || !end.IsInSubnet(address, prefix) || first.Value > end.Value
            || first.Value <= network || end.Value > last)
            throw new ArgumentException($"The DHCP pool {first}-{end} must lie inside {new Ipv4Address(network)}/{prefix}, first to last.", nameof(options));
        return new DhcpServerSettings(address, prefix, first, end, options.DhcpLeaseTime, address, [address], options.Domain, null);
    }

    public async Task RunAsync(UdpSocket socket, CancellationToken token)
    {
        var buffer = new byte[DhcpMessage.MaxWrittenLength];
        while (!token.IsCancellationRequested)
        {
            Udp.UdpDatagram d;
            try { d = await socket.ReceiveAsync(token).ConfigureAwait(false); }
            catch (Exception e) when (e is OperationCanceledException or StackException or ObjectDisposedException) { return; }
            Interlocked.Increment(ref counters.DhcpMessages);
            if (!DhcpMessage.TryParse(d.Data, out var request, out _))
            {
                Interlocked.Increment(ref counters.DhcpMalformed);
                continue;
            }
            if (server.Answer(request, stack.Clock.Now) is not var (reply, destination)) continue;
            var length = reply.Write(buffer);
            try { await socket.SendToAsync(destination, DhcpMessage.ClientPort, buffer.AsMemory(0, length)).ConfigureAwait(false); }
            catch (StackException e) when (e.Error is not (StackError.StackStopped or StackError.SocketClosed))
            {
                // No ARP answer for a renewing client: it will ask again, or rebind.
            }
            catch (Exception e) when (e is StackException or ObjectDisposedException) { return; }
        }
    }
}
