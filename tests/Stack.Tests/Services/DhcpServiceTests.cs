using NetStack;
using NetStack.Dhcp;
using NetStack.Services;

namespace Stack.Tests.Services;

/// <summary>The service host's DHCP server and our client, each on a real-time loop, as in the embedded lab.</summary>
public class DhcpServiceTests
{
    private static NetworkStack DhcpClient(LabRig lab, string mac, Func<DhcpSettings, DhcpSettings>? settings = null) =>
        Started(new NetworkStack(lab.Wire.CreatePort("dhcp-" + mac, MacAddress.Parse(mac)),
            new StackConfig { Dhcp = settings?.Invoke(new DhcpSettings { Enabled = true }) ?? new DhcpSettings { Enabled = true } }, new SystemClock(), name: "dhcp-" + mac));

    private static NetworkStack Started(NetworkStack s)
    {
        s.Start();
        return s;
    }

    [Fact]
    public async Task Client_gets_a_lease_from_the_pool_with_the_host_as_router_and_dns_and_releases_it_when_stopped()
    {
        using var lab = new LabRig();
        Assert.Equal("192.0.2.100-192.0.2.199", lab.Host.DhcpPool);
        var client = DhcpClient(lab, "02-00-00-00-dc-01");
        DhcpLease lease;
        try
        {
            lease = await client.WaitForDhcpLeaseAsync(lab.Token);
            Assert.Equal(new Ipv4Address(192, 0, 2, 100), lease.Address);
            Assert.Equal(24, lease.PrefixLength);
            Assert.Equal(LabRig.HostAddress, lease.Server);
            Assert.Equal(LabRig.HostAddress, client.Config.Gateway);
            Assert.Equal([LabRig.HostAddress], client.Config.DnsServers);
            Assert.Equal("lab.test", lease.DomainName);
            Assert.Equal(TimeSpan.FromMinutes(2), lease.LeaseTime);
            // The leased address works: the lab's names resolve through the leased DNS server, and TCP connects.
            var www = await client.ResolveAsync("www.lab.test", cancellationToken: lab.Token);
            Assert.Equal([LabRig.HostAddress], www.Addresses);
            // The lease's domain (option 15) is the search list: a short name resolves in it.
            Assert.Equal(["lab.test"], client.Config.DnsSearch);
            var shortName = await client.ResolveAsync("mail", cancellationToken: lab.Token);
            Assert.Equal("mail.lab.test", shortName.Name);
            using var echo = await client.ConnectTcpAsync(LabRig.HostAddress, 7, lab.Token);
            Assert.Equal(lease.Address, echo.LocalEndPoint.Address);
            Assert.Contains(lab.Host.DhcpLeases, l => l.Address == lease.Address && l.State == "Bound" && l.ClientMac == client.MacAddress);
        }
        finally { client.Dispose(); }
        // Stopping the stack gave the lease back (DHCPRELEASE).
        await lab.WaitUntilAsync(() => lab.Host.DhcpLeases.Any(l => l.Address == new Ipv4Address(192, 0, 2, 100) && l.State == "Released"), "the RELEASE");
        Assert.True(lab.Host.Counters.DhcpMessages >= 3);
    }

    [Fact]
    public async Task Two_clients_get_different_addresses_and_the_same_client_gets_its_address_again()
    {
        using var lab = new LabRig(new ServiceHostOptions { DhcpLeaseTime = TimeSpan.FromMinutes(10) });
        using var a = DhcpClient(lab, "02-00-00-00-dc-0a", s => s with { ConflictProbes = 1 });
        using var b = DhcpClient(lab, "02-00-00-00-dc-0b", s => s with { ConflictProbes = 1 });
        var la = await a.WaitForDhcpLeaseAsync(lab.Token);
        var lb = await b.WaitForDhcpLeaseAsync(lab.Token);
        Assert.NotEqual(la.Address, lb.Address);
        Assert.Equal(TimeSpan.FromMinutes(10), la.LeaseTime);
        Assert.True(await a.ReleaseDhcpLeaseAsync().WaitAsync(lab.Token));
        a.Dispose();
        using var again = DhcpClient(lab, "02-00-00-00-dc-0a", s => s with { ConflictProbes = 0 });
        Assert.Equal(la.Address, (await again.WaitForDhcpLeaseAsync(lab.Token)).Address);
    }
}
