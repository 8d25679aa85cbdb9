namespace NetStack.Dhcp;

/// <summary>
/// What the DHCP client changes: the interface's configuration. Implemented by the composition root (NetworkStack), which
/// replaces the configuration every layer reads and fails the connections that used an address that is gone. Loop only.
/// </summary>
internal interface IInterfaceConfiguration
{
    /// <summary>The link MTU: an interface MTU option above it is not applied.</summary>
    int LinkMtu { get; }

    /// <summary>Configures the lease's address, prefix, router, DNS servers and MTU (settings the user gave win).</summary>
    void Apply(DhcpLease lease, TimeSpan now);

    /// <summary>Takes the address away (lease expired, NAK, released): back to 0.0.0.0, connections on it fail.</summary>
    void Remove(string why, TimeSpan now);
}
