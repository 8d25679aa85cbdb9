namespace NetStack.IPv4;

/// <summary>
/// How an error about a datagram we sent reads in a message, the same for ping, TCP and UDP: a local failure says what
/// failed here (no ARP reply, no route), an ICMP error says who sent it.
/// </summary>
public static class IpErrorText
{
    public static string Describe(in IpErrorInfo error) => error.IsLocal
        ? error.Error switch
        {
            StackError.HostUnreachable => "host unreachable (no ARP reply)",
            StackError.NetworkUnreachable => "network unreachable (no route; set a gateway)",
            var e => Words(e),
        }
        : $"{Words(error.Error)} (ICMP from {error.Reporter})";

    private static string Words(StackError error) => error switch
    {
        StackError.HostUnreachable => "host unreachable",
        StackError.NetworkUnreachable => "network unreachable",
        StackError.PortUnreachable => "port unreachable",
        StackError.ProtocolUnreachable => "protocol unreachable",
        StackError.MessageTooLong => "fragmentation needed",
        var e => e.ToString(),
    };
}
