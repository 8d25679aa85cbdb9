using NetStack.Dhcp;
using Xunit.Abstractions;

namespace NetStack.Tests.Lab;

/// <summary>Our DHCP client (namespace U) against dnsmasq's DHCP server on the Linux kernel's side (192.0.2.1, namespace K).</summary>
[Collection(KernelLabCollection.Name)]
public sealed class KernelDhcpTests(ITestOutputHelper output) : IDisposable
{
    private static readonly TimeSpan Generous = TimeSpan.FromSeconds(30);
    private readonly string _dir = Directory.CreateTempSubdirectory("netstack-dhcp-").FullName;

    private string LeaseFile => Path.Combine(_dir, "dnsmasq.leases");

    /// <summary>
    /// dnsmasq serving 192.0.2.100-199 with 2-minute leases (its minimum) and T1/T2 of 20/40 s where it honours them,
    /// logging every DHCP message to stdout; no DNS (port 0).
    /// </summary>
    private LabProcess StartDnsmasq(KernelLab lab, params string[] extra)
    {
        var p = lab.StartProgramInKernel("dnsmasq", [
            "--no-daemon", "--port=0", "--no-resolv", "--no-hosts", "--log-facility=-", "--log-dhcp", "--pid-file=", "--user=root",
            $"--interface={KernelLab.KernelInterface}", "--bind-interfaces", "--dhcp-range=192.0.2.100,192.0.2.199,255.255.255.0,2m",
            $"--dhcp-leasefile={LeaseFile}", "--dhcp-option=option:router,192.0.2.1", "--dhcp-option=option:dns-server,192.0.2.1",
            "--domain=lab.test", "--dhcp-option=option:T1,20", "--dhcp-option=option:T2,40", .. extra]);
        Assert.True(p.WaitForAnyOutput(o => o.Contains("DHCP, IP range"), Generous), $"dnsmasq did not start: {Log(p)}");
        return p;
    }

    private static NetworkStack StartStack(KernelLab lab, Func<DhcpSettings, DhcpSettings>? settings = null)
    {
        var dhcp = new DhcpSettings { Enabled = true, HostName = "netstack" };
        var stack = new NetworkStack(lab.OpenStackDevice(), new StackConfig { Dhcp = settings?.Invoke(dhcp) ?? dhcp }, name: "lab");
        stack.Start();
        return stack;
    }

    private long Counter(NetworkStack stack, string layer, string name) =>
        stack.GetStatisticsAsync().WaitAsync(Generous).GetAwaiter().GetResult().Single(c => c.Layer == layer && c.Name == name).Value;

    [KernelFact(Programs = ["dnsmasq", "ping"])]
    public async Task Lease_renewal_and_release_against_dnsmasq()
    {
        using var lab = new KernelLab();
        var dnsmasq = StartDnsmasq(lab);
        var stack = StartStack(lab);
        stack.Event += e => { if (e.Layer is "Dhcp" or "Arp") output.WriteLine($"{e.Time.TotalSeconds,8:F3} {e.Layer}: {e.Message}"); };
        try
        {
            var lease = await stack.WaitForDhcpLeaseAsync().WaitAsync(Generous);
            var address = lease.Address!.Value;
            Assert.InRange(address.Value, new Ipv4Address(192, 0, 2, 100).Value, new Ipv4Address(192, 0, 2, 199).Value);
            Assert.Equal(KernelLab.KernelAddress, lease.Server);
            Assert.Equal(KernelLab.KernelAddress, stack.Config.Gateway);
            Assert.Equal([KernelLab.KernelAddress], stack.Config.DnsServers);
            Assert.Equal("lab.test", lease.DomainName);
            Assert.Equal(TimeSpan.FromMinutes(2), lease.LeaseTime);
            // dnsmasq answers a client without the BROADCAST flag by unicast to the offered address (UDP from port 67 to
            // it in our packet log): we took it before we had the address (RFC 2131 4.1).
            Assert.Contains($"DHCPACK({KernelLab.KernelInterface}) {address}", Log(dnsmasq));
            var frames = await stack.GetPacketLogAsync().WaitAsync(Generous);
            Assert.Contains(frames, f => f.Direction == Diagnostics.FrameDirection.In && f.Bytes.Length > 34 && f.Bytes[23] == 17
                && Ipv4Address.Read(f.Bytes.AsSpan(30)) == address && f.Bytes[34] == 0 && f.Bytes[35] == 67);
            // (dnsmasq's ping check of the address before it offered it reached us too, and was not for us: dropped.)
            lab.RunInKernel($"ping -c 1 -W 5 {address}").EnsureSuccess();
            Assert.Contains(stack.MacAddress.ToString().Replace('-', ':').ToLowerInvariant(), File.ReadAllText(LeaseFile));

            // Renewal at T1: a REQUEST unicast to dnsmasq, which logs it and ACKs it; the lease runs on.
            var renewal = lease.Renewal!.Value - stack.Clock.Now;
            output.WriteLine($"T1 in {renewal.TotalSeconds:0} s (lease {lease.LeaseTime.TotalSeconds} s)");
            Assert.True(await WaitUntil(() => Counter(stack, "Dhcp", "LeasesExtended") >= 1, renewal + Generous),
                $"no renewal within {renewal + Generous}: {Log(dnsmasq)}");
            // dnsmasq may write its log line after its ACK has reached us: wait for it rather than read the log once.
            int Requests() => Log(dnsmasq).Split('\n').Count(l => l.Contains($"DHCPREQUEST({KernelLab.KernelInterface}) {address}"));
            Assert.True(await WaitUntil(() => Requests() >= 2, Generous), Log(dnsmasq));
            Assert.Equal(DhcpState.Bound, stack.DhcpLease!.State);
            Assert.Equal(address, stack.Config.Address);
            Assert.True(stack.DhcpLease.Expiry > lease.Expiry);
        }
        finally
        {
            stack.Dispose();
        }
        // Stopping the stack released the lease: dnsmasq logs the RELEASE and drops it from its lease file.
        Assert.True(dnsmasq.WaitForAnyOutput(o => o.Contains($"DHCPRELEASE({KernelLab.KernelInterface})"), Generous), Log(dnsmasq));
        Assert.True(await WaitUntil(() => !File.ReadAllText(LeaseFile).Contains("netstack"), Generous), File.ReadAllText(LeaseFile));
        output.WriteLine(Log(dnsmasq));
    }

    [KernelFact(Programs = ["dnsmasq"])]
    public async Task Address_in_use_is_declined_and_another_taken()
    {
        using var lab = new KernelLab();
        // dnsmasq keeps .100 for our MAC, and the kernel holds .100 too, so it answers our ARP probe for it
        // (--no-ping keeps dnsmasq from noticing first).
        lab.RunInKernel("ip addr add 192.0.2.100/32 dev lo").EnsureSuccess();
        var dnsmasq = StartDnsmasq(lab, "--no-ping", $"--dhcp-host={lab.StackMac.ToString().Replace('-', ':')},192.0.2.100");
        using var stack = StartStack(lab);
        stack.Event += e => { if (e.Layer is "Dhcp" or "Arp") output.WriteLine($"{e.Time.TotalSeconds,8:F3} {e.Layer}: {e.Message}"); };
        var leased = stack.WaitForDhcpLeaseAsync();
        if (await Task.WhenAny(leased, Task.Delay(Generous + DhcpClient.DeclineWait)) != leased) Assert.Fail("no lease: " + Log(dnsmasq));
        var lease = await leased;
        Assert.NotEqual(new Ipv4Address(192, 0, 2, 100), lease.Address); // dnsmasq holds a declined address back for 10 minutes
        Assert.Equal(1, Counter(stack, "Dhcp", "DeclinesSent"));
        Assert.Contains($"DHCPDECLINE({KernelLab.KernelInterface}) 192.0.2.100", Log(dnsmasq));
        output.WriteLine(Log(dnsmasq));
    }

    private static string Log(LabProcess p) => p.Output + p.Error;

    private static async Task<bool> WaitUntil(Func<bool> condition, TimeSpan limit)
    {
        var deadline = DateTime.UtcNow + limit;
        while (!condition())
        {
            if (DateTime.UtcNow > deadline) return false;
            await Task.Delay(100);
        }
        return true;
    }

    public void Dispose()
    {
        try { Directory.Delete(_dir, recursive: true); }
        catch (IOException) { /* dnsmasq still closing its lease file: the temp folder is cleaned by the OS */ }
    }
}
