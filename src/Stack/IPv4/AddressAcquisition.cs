namespace NetStack.IPv4;

/// <summary>
/// What a host may do while it has no address yet (StackConfig.Address is 0.0.0.0, as while DHCP runs; RFC 1122
/// 3.2.1.3, RFC 2131 4.1), in one place: it sends only from 0.0.0.0 and only to the limited broadcast, and besides
/// broadcasts it takes in only DHCP replies (UDP to port 68) unicast to its MAC, whatever their IP destination (the
/// address being offered). Applied by <see cref="Ipv4Layer"/> on send and receive.
/// </summary>
internal static class AddressAcquisition
{
    /// <summary>The DHCP client's UDP port (RFC 2131 4.1).</summary>
    public const ushort DhcpClientPort = 68;

    /// <summary>Whether the stack has no address (it is acquiring one).</summary>
    public static bool Unconfigured(StackConfig config) => config.Address.IsUnspecified;

    /// <summary>
    /// RFC 1122 3.2.1.3: 0.0.0.0 "MUST NOT be sent, except as a source address as part of an initialization procedure
    /// by which the host learns its own IP address" — so without an address only the limited broadcast can be reached.
    /// </summary>
    public static bool MaySend(StackConfig config, Ipv4Address destination) => !Unconfigured(config) || destination.IsBroadcast;

    /// <summary>
    /// RFC 2131 4.1: a server may unicast its OFFER and ACK to the address it offers, at the client's MAC, before the
    /// client has configured it; a client that takes those in need not set the BROADCAST flag. Anything else unicast
    /// to an address that is not ours stays "not for us". <paramref name="datagram"/> is a whole, unfragmented datagram.
    /// </summary>
    public static bool TakesUnicastWhileUnconfigured(StackConfig config, ReadOnlySpan<byte> datagram, int ihl)
    {
        if (!Unconfigured(config) || Ipv4Header.Protocol(datagram) != (byte)IpProtocol.Udp) return false;
        if ((Ipv4Header.FlagsAndOffset(datagram) & (Ipv4Header.FlagMoreFragments | Ipv4Header.OffsetMask)) != 0) return false;
        var udp = datagram[ihl..];
        return udp.Length >= 4 && (udp[2] << 8 | udp[3]) == DhcpClientPort;
    }
}
