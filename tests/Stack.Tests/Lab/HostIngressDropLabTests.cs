using System.Globalization;
using System.Text.RegularExpressions;
using NetStack.Link;
using Xunit.Abstractions;

namespace NetStack.Tests.Lab;

/// <summary>
/// The host ingress drop (<see cref="PcapDeviceOptions.HostIngressDrop"/>) against the kernel in U: while the stack
/// runs, frames for its address still reach it, the kernel in U no longer takes them in, and the rule is gone after the
/// stack stops, and after a killed owner once the next one starts. And a stack with a MAC of its own: the kernel in U
/// drops its frames before routing them without the rule (another host's frames), and the rule still matches them.
/// </summary>
[Collection(KernelLabCollection.Name)]
public sealed partial class HostIngressDropLabTests(ITestOutputHelper output)
{
    private static readonly TimeSpan Generous = TimeSpan.FromSeconds(30);
    private static readonly string Table = HostIngressDropRule.TableName(KernelLab.StackInterface, KernelLab.StackAddress);

    /// <summary>A MAC of the stack's own, as Start-Stack -MacAddress gives it (a virtual stack's would be derived the same way).</summary>
    private static readonly MacAddress OwnMac = MacAddress.Parse("02-00-C0-00-02-02");

    private static NetworkStack StartStack(KernelLab lab, bool hostDrop, MacAddress? mac = null)
    {
        var device = lab.OpenStackDevice(new PcapDeviceOptions { HostIngressDrop = hostDrop ? KernelLab.StackAddress : (Ipv4Address?)null });
        var stack = new NetworkStack(device, new StackConfig { Address = KernelLab.StackAddress, PrefixLength = KernelLab.PrefixLength, MacAddress = mac }, name: "drop");
        stack.Start();
        return stack;
    }

    /// <summary>IPv4 datagrams the kernel in U took in (/proc/net/snmp Ip: InReceives; veth frames for u0's MAC count).</summary>
    private static long KernelInReceives(KernelLab lab) => Snmp(lab, "Ip", "InReceives");

    /// <summary>A counter of the kernel in U's /proc/net/snmp (a header line "Ip: Forwarding ...", then its values).</summary>
    private static long Snmp(KernelLab lab, string group, string name)
    {
        var snmp = lab.RunInStackNamespace("cat /proc/net/snmp").EnsureSuccess().Output.Split('\n');
        var prefix = group + ": ";
        var header = snmp.First(l => l.StartsWith(prefix, StringComparison.Ordinal) && !char.IsDigit(l[prefix.Length])).Split(' ');
        var values = snmp.First(l => l.StartsWith(prefix, StringComparison.Ordinal) && char.IsDigit(l[prefix.Length])).Split(' ');
        return long.Parse(values[Array.IndexOf(header, name)], CultureInfo.InvariantCulture);
    }

    private static string Tables(KernelLab lab) => lab.RunInStackNamespace("nft list tables netdev").EnsureSuccess().Output;

    private static void KernelPings(KernelLab lab, int count)
    {
        var r = lab.RunInKernel($"ping -c {count} -i 0.05 -W 5 {KernelLab.StackAddress}", Generous);
        Assert.True(r.ExitCode == 0, $"the kernel's ping failed: {r.Output} {r.Error}");
        Assert.Matches($"{count} packets transmitted, {count} received", r.Output);
    }

    [KernelFact(Programs = ["ping", "nft"])]
    public async Task With_the_drop_frames_reach_us_but_not_the_host_kernel_and_the_rule_goes_with_the_stack()
    {
        using var lab = new KernelLab();

        // Without the rule the kernel in U takes in every echo request meant for our stack (and drops it).
        using (StartStack(lab, hostDrop: false))
        {
            var before = KernelInReceives(lab);
            KernelPings(lab, 10);
            Assert.True(KernelInReceives(lab) - before >= 10, "without the drop the host kernel sees our frames");
            Assert.DoesNotContain(Table, Tables(lab));
        }

        var stack = StartStack(lab, hostDrop: true);
        try
        {
            var rule = ((PcapDevice)stack.Device).HostIngressDrop ?? throw new InvalidOperationException("no rule on the device");
            Assert.Equal(Table, rule.Table);
            var listing = lab.RunInStackNamespace($"nft list table netdev {Table}").EnsureSuccess().Output;
            output.WriteLine(listing);
            Assert.Contains($"ip daddr {KernelLab.StackAddress}", listing);
            Assert.Contains("hook ingress device \"u0\"", listing);
            Assert.Contains($"owner pid {Environment.ProcessId} ", listing);

            var before = KernelInReceives(lab);
            KernelPings(lab, 10); // our stack answered every one
            Assert.Equal(0, KernelInReceives(lab) - before);
            Assert.True(rule.DroppedPackets() >= 10, $"the rule's counter: {rule.DroppedPackets()}");
            var echoes = (await stack.GetStatisticsAsync().WaitAsync(Generous)).Single(c => c.Layer == "Icmp" && c.Name == "EchoRepliesSent").Value;
            Assert.Equal(10, echoes);
        }
        finally
        {
            stack.Dispose();
        }
        Assert.DoesNotContain(Table, Tables(lab));
    }

    [KernelFact(Programs = ["ping", "nft"])]
    public async Task With_a_mac_of_its_own_the_host_kernel_drops_our_frames_before_routing_even_when_forwarding_and_the_rule_still_matches()
    {
        using var lab = new KernelLab();
        // A host that forwards would route frames for the adapter's MAC back out (ICMP redirects): not frames for another MAC.
        lab.RunInStackNamespace("sysctl -q -w net.ipv4.ip_forward=1").EnsureSuccess();

        // Without the rule: u0 takes our frames as another host's (PACKET_OTHERHOST) and IPv4 drops them before it counts them.
        using (var stack = StartStack(lab, hostDrop: false, OwnMac))
        {
            var (inReceives, icmpOut, forwarded) = (KernelInReceives(lab), Snmp(lab, "Icmp", "OutMsgs"), Snmp(lab, "Ip", "ForwDatagrams"));
            KernelPings(lab, 10); // our stack answered every one
            Assert.Equal(0, KernelInReceives(lab) - inReceives);
            Assert.Equal(0, Snmp(lab, "Icmp", "OutMsgs") - icmpOut);
            Assert.Equal(0, Snmp(lab, "Ip", "ForwDatagrams") - forwarded);
            var neigh = lab.RunInKernel($"ip neigh show {KernelLab.StackAddress} dev {KernelLab.KernelInterface}").EnsureSuccess().Output;
            Assert.Contains("02:00:c0:00:02:02", neigh);
        }

        // The rule matches the IPv4 destination, whatever the MAC: it still takes the frames first.
        var withRule = StartStack(lab, hostDrop: true, OwnMac);
        try
        {
            var rule = ((PcapDevice)withRule.Device).HostIngressDrop ?? throw new InvalidOperationException("no rule on the device");
            KernelPings(lab, 10);
            Assert.True(rule.DroppedPackets() >= 10, $"the rule's counter: {rule.DroppedPackets()}");
            var echoes = (await withRule.GetStatisticsAsync().WaitAsync(Generous)).Single(c => c.Layer == "Icmp" && c.Name == "EchoRepliesSent").Value;
            Assert.Equal(10, echoes);
        }
        finally
        {
            withRule.Dispose();
        }
    }

    [KernelFact(Programs = ["nft"])]
    public void A_killed_owners_rule_is_removed_by_the_next_start_and_a_live_owners_is_kept()
    {
        using var lab = new KernelLab();
        // A process that owned a rule and was killed (SIGKILL: no chance to clean up), and one that still runs.
        using var dead = LabProcess.Start("sleep", ["600"]);
        var deadStart = HostIngressDropRule.StartTime(dead.Id) ?? throw new InvalidOperationException("no start time");
        var deadTable = HostIngressDropRule.TableName(KernelLab.StackInterface, new Ipv4Address(192, 0, 2, 77));
        var liveTable = HostIngressDropRule.TableName(KernelLab.StackInterface, new Ipv4Address(192, 0, 2, 78));
        using var live = LabProcess.Start("sleep", ["600"]);
        PcapDevice.RunInNetworkNamespace(lab.StackNamespace, () =>
        {
            HostIngressDropRule.Nft(HostIngressDropRule.Script(deadTable, KernelLab.StackInterface, new Ipv4Address(192, 0, 2, 77), dead.Id, deadStart));
            HostIngressDropRule.Nft(HostIngressDropRule.Script(liveTable, KernelLab.StackInterface, new Ipv4Address(192, 0, 2, 78), live.Id, HostIngressDropRule.StartTime(live.Id)!.Value));
            return 0;
        });
        Assert.Contains(deadTable, Tables(lab));
        dead.Kill();

        using (var device = lab.OpenStackDevice(new PcapDeviceOptions { HostIngressDrop = KernelLab.StackAddress }))
        {
            var tables = Tables(lab);
            output.WriteLine(tables);
            Assert.DoesNotContain(deadTable, tables);
            Assert.Contains(liveTable, tables);
            Assert.Contains(Table, tables);
        }
        Assert.DoesNotContain(Table, Tables(lab));

        // A rule a live process holds for the same adapter and address is not taken over.
        var clash = Assert.Throws<HostIngressDropException>(() =>
            lab.OpenStackDevice(new PcapDeviceOptions { HostIngressDrop = new Ipv4Address(192, 0, 2, 78) }));
        Assert.Equal(HostIngressDropFailure.InUse, clash.Reason);
        Assert.Contains($"Process {live.Id}", clash.Message);
        Assert.Matches(OwnerComment(), lab.RunInStackNamespace($"nft list table netdev {liveTable}").EnsureSuccess().Output);
    }

    [GeneratedRegex(@"owner pid \d+ start \d+")]
    private static partial Regex OwnerComment();
}
