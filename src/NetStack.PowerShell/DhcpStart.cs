using System.Management.Automation;
using NetStack.Dhcp;

namespace NetStack.PowerShell;

/// <summary>
/// Start-Stack -Dhcp: a name and MAC for a stack that has no address yet, and the wait for its lease — narrated with
/// -Verbose, bounded by -TimeoutSec, and on failure a clear ErrorRecord with the stack stopped (nothing left behind).
/// </summary>
internal static class DhcpStart
{
    /// <summary>"dhcp-N" and the locally administered MAC 02-00-DC-00-00-N for the lowest N that no running stack uses.</summary>
    public static (string Name, MacAddress Mac) NextIdentity(string? name)
    {
        var macs = ModuleState.All().Select(s => s.MacAddress).ToHashSet(StringComparer.OrdinalIgnoreCase);
        for (var n = 1UL; ; n++)
        {
            var mac = new MacAddress(0x0200_DC00_0000UL | n);
            if (macs.Contains(mac.ToString()) || (name is null && ModuleState.IsNameTaken($"dhcp-{n}"))) continue;
            return (name ?? $"dhcp-{n}", mac);
        }
    }

    /// <summary>The stack name as a DHCP host name (option 12) when it is one DNS label; else none.</summary>
    public static string? HostName(string name) =>
        name.Length is > 0 and <= 63 && name.All(c => char.IsAsciiLetterOrDigit(c) || c == '-') ? name : null;

    /// <summary>
    /// Starts the stack's loop and waits for the lease. On timeout, Ctrl+C or failure the stack is stopped; a timeout
    /// ends the command with DhcpTimedOut, saying how far the exchange got.
    /// </summary>
    public static DhcpLease Acquire(NetStackCmdlet cmdlet, StackInstance instance, int timeoutSec, string where)
    {
        var stack = instance.Core;
        using var cts = CancellationTokenSource.CreateLinkedTokenSource(cmdlet.StopToken);
        cts.CancelAfter(TimeSpan.FromSeconds(timeoutSec));
        try
        {
            // The loop starts inside the wait, after -Verbose listens: the first DISCOVER is narrated too.
            return cmdlet.Await(instance, () =>
            {
                stack.Start();
                return stack.WaitForDhcpLeaseAsync(cts.Token);
            });
        }
        catch (StackConfigurationException e) // Start refused the loop's processor
        {
            ModuleState.Stop(instance);
            cmdlet.ThrowTerminatingError(NetStackCmdlet.ErrorFor(e, instance.Name));
            throw; // not reached
        }
        catch (OperationCanceledException) when (!cmdlet.StopToken.IsCancellationRequested)
        {
            var state = stack.DhcpLease;
            var counters = stack.GetStatisticsAsync();
            var discovers = counters.Wait(TimeSpan.FromSeconds(5)) ? counters.Result.FirstOrDefault(c => c.Layer == "Dhcp" && c.Name == "DiscoversSent")?.Value ?? 0 : 0;
            ModuleState.Stop(instance);
            var how = state?.State switch
            {
                DhcpState.Requesting => "a server offered an address but did not acknowledge the request",
                DhcpState.Probing => "the offered address was still being checked with ARP (RFC 5227 takes a few seconds)",
                DhcpState.Init => "the offered address was in use and declined; the client was about to start over",
                _ => $"no DHCP server answered {discovers} DISCOVER{(discovers == 1 ? "" : "s")}",
            };
            cmdlet.ThrowTerminatingError(new ErrorRecord(
                new TimeoutException($"Stack '{instance.Name}' got no DHCP lease on {where} within {timeoutSec} s: {how}. The stack was stopped. " +
                    "Check that a DHCP server serves this link (a virtual network gets one with Start-StackServiceHost), give a longer -TimeoutSec, or give -IPAddress."),
                "DhcpTimedOut", ErrorCategory.OperationTimeout, instance.Name));
            throw; // not reached
        }
        catch (Exception e) when (e is PipelineStoppedException or OperationCanceledException or StackException or ObjectDisposedException)
        {
            ModuleState.Stop(instance);
            if (e is StackException or ObjectDisposedException) cmdlet.ThrowTerminatingError(NetStackCmdlet.ErrorFor(e, instance.Name));
            throw new PipelineStoppedException();
        }
    }

    /// <summary>One line for -Verbose and the docs: the lease and its deadlines.</summary>
    public static string Describe(StackInstance instance) => instance.Dhcp is { } d
        ? $"DHCP lease: {d.Address}/{d.PrefixLength} from {d.Server}, router {d.Router ?? "none"}, DNS {(d.DnsServer.Length == 0 ? "none" : string.Join(", ", d.DnsServer))}, " +
          $"lease {d.LeaseTime?.TotalSeconds:0} s, renew at {d.RenewAt?.LocalDateTime:T}, rebind at {d.RebindAt?.LocalDateTime:T}, expires {d.ExpiresAt?.LocalDateTime:T}."
        : "";
}
