using NetStack.Dhcp;

namespace NetStack;

/// <summary>The stack's DHCP face: the lease, waiting for it, releasing it, and what the client changes when it binds.</summary>
public sealed partial class NetworkStack
{
    /// <summary>The DHCP client's state and lease (null when the stack does not use DHCP). Any thread.</summary>
    public DhcpLease? DhcpLease => Dhcp?.Lease;

    /// <summary>Completes with the lease once DHCP has bound an address (at once if it has). Fails with InvalidState without DHCP.</summary>
    public Task<DhcpLease> WaitForDhcpLeaseAsync(CancellationToken cancellationToken = default)
    {
        var task = InvokeAsync(now => Dhcp?.WaitForLease() ?? throw NoDhcp());
        return cancellationToken.CanBeCanceled ? task.WaitAsync(cancellationToken) : task;
    }

    /// <summary>Gives the lease back (DHCPRELEASE) and removes the address, as ipconfig /release does; false when there was none.</summary>
    public Task<bool> ReleaseDhcpLeaseAsync() => InvokeAsync(now => Dhcp is { } d ? d.ReleaseAsync(now) : throw NoDhcp());

    private StackException NoDhcp() => new(StackError.InvalidState, $"Stack '{Name}' does not use DHCP; start it with DHCP on (StackConfig.Dhcp.Enabled, Start-Stack -Dhcp).");

    /// <summary>
    /// Before the loop stops: ARP for the leasing server (a RELEASE left waiting for ARP would die with the stack), waiting
    /// at most a few seconds. The RELEASE itself goes after the connection resets, from the address they used.
    /// </summary>
    private void PrepareDhcpRelease()
    {
        if (Dhcp is not { } d || !Config.Dhcp.ReleaseOnStop || d.Lease.Address is null || !IsRunning || _thread == Thread.CurrentThread) return;
        try { InvokeAsync(now => d.ResolveServer(now)).Wait(TimeSpan.FromSeconds(4)); }
        catch (AggregateException) { /* the server did not answer ARP: the RELEASE still goes, as a best effort */ }
    }

    /// <summary>With the loop ended: the RELEASE (RFC 2131 4.4.6), when the lease is to be given back on stop.</summary>
    private void ReleaseDhcpOnStop(TimeSpan now)
    {
        if (Dhcp is { } d && Config.Dhcp.ReleaseOnStop) d.Release(now);
    }

    /// <summary>
    /// The interface as DHCP changes it: the configuration every layer reads is replaced on the loop. The user's own
    /// gateway, DNS servers, search domains and MTU win over the lease's; TCP connections on an address that went away fail.
    /// </summary>
    private sealed class DhcpInterface(NetworkStack stack, StackConfig given) : IInterfaceConfiguration
    {
        public int LinkMtu => stack.Ethernet.Mtu;

        public void Apply(DhcpLease lease, TimeSpan now)
        {
            var old = stack._context.Config;
            var address = lease.Address!.Value;
            var gateway = given.Gateway is { } g && g.IsInSubnet(address, lease.PrefixLength) && g != address ? g : lease.Router;
            var next = old with
            {
                Address = address,
                PrefixLength = lease.PrefixLength,
                Gateway = gateway,
                DnsServers = given.DnsServers.Count > 0 ? given.DnsServers : lease.DnsServers,
                DnsSearch = given.DnsSearch.Count > 0 ? given.DnsSearch : SearchOf(lease),
                Mtu = lease.Mtu is { } m ? Math.Min(m, given.Mtu ?? m) : given.Mtu,
            };
            stack._context.Reconfigure(next);
            if (!old.Address.IsUnspecified && old.Address != address)
                FailConnections($"the address {old.Address} was replaced by {address} (DHCP)", now);
        }

        /// <summary>The lease's search list (option 119), else its domain (option 15, as resolv.conf's "domain"); names that cannot be domain names left out.</summary>
        private static string[] SearchOf(DhcpLease lease)
        {
            var names = lease.SearchList.Count > 0 ? lease.SearchList : lease.DomainName is { } d ? [d] : Array.Empty<string>();
            var valid = new List<string>();
            foreach (var n in names)
            {
                try { valid.Add(NetStack.Dns.DnsName.Normalize(n)); }
                catch (ArgumentException) { /* a server's typo: not a name to append */ }
            }
            return valid.ToArray();
        }

        public void Remove(string why, TimeSpan now)
        {
            stack._context.Reconfigure(given);
            FailConnections(why, now);
        }

        private void FailConnections(string why, TimeSpan now) =>
            stack.Tcp.FailAll(StackError.AddressNotAvailable, $"The connection's local address is gone: {why}.", now);
    }
}
