using System.Management.Automation;
using NetStack.Link;
using SharpPcap;

namespace NetStack.PowerShell;

/// <summary>Opens the link a stack runs on, turning the link layer's failures into the module's ErrorRecords.</summary>
internal static class LinkFactory
{
    /// <summary>
    /// Opens a pcap adapter (in <paramref name="networkNamespace"/> if given), with the host ingress drop for
    /// <paramref name="hostIngressDrop"/> if given, or terminates with a clear error.
    /// </summary>
    public static ILinkDevice OpenAdapter(PSCmdlet cmdlet, string adapter, string? networkNamespace, Ipv4Address? hostIngressDrop = null)
    {
        PcapDevice device;
        try
        {
            device = PcapDevice.Open(adapter, new PcapDeviceOptions { NetworkNamespace = networkNamespace, HostIngressDrop = hostIngressDrop });
        }
        catch (HostIngressDropException e)
        {
            cmdlet.ThrowTerminatingError(HostIngressDropError(e, adapter));
            throw;
        }
        catch (UnauthorizedAccessException e)
        {
            cmdlet.ThrowTerminatingError(new ErrorRecord(e, "PermissionDenied", ErrorCategory.PermissionDenied, adapter));
            throw;
        }
        catch (PcapUnavailableException e)
        {
            cmdlet.ThrowTerminatingError(new ErrorRecord(e, "PcapNotInstalled", ErrorCategory.NotInstalled, adapter));
            throw;
        }
        catch (ArgumentException e) when (e.ParamName == "interfaceName")
        {
            cmdlet.ThrowTerminatingError(new ErrorRecord(new ItemNotFoundException(NetStackCmdlet.PlainMessage(e) + " List them with Get-StackAdapter.", e),
                "AdapterNotFound", ErrorCategory.ObjectNotFound, adapter));
            throw;
        }
        catch (ArgumentException e) when (e.ParamName == "networkNamespace")
        {
            cmdlet.ThrowTerminatingError(new ErrorRecord(new ItemNotFoundException(NetStackCmdlet.PlainMessage(e), e), "NetworkNamespaceNotFound", ErrorCategory.ObjectNotFound, networkNamespace));
            throw;
        }
        catch (Exception e) when (e is InvalidOperationException or PcapException)
        {
            cmdlet.ThrowTerminatingError(new ErrorRecord(e, "AdapterOpenFailed", ErrorCategory.OpenError, adapter));
            throw;
        }
        foreach (var w in device.Warnings) cmdlet.WriteWarning($"{adapter}: {w}");
        // The stack tells the device its MAC itself (ILinkDevice.SetStackAddress) when it differs from the adapter's.
        return device;
    }

    /// <summary>The module's ErrorRecord for a host ingress drop that could not be installed (the message names the fix).</summary>
    private static ErrorRecord HostIngressDropError(HostIngressDropException e, string adapter)
    {
        var (id, category) = e.Reason switch
        {
            HostIngressDropFailure.NftMissing => ("NftablesNotInstalled", ErrorCategory.NotInstalled),
            HostIngressDropFailure.PermissionDenied => ("HostIngressDropDenied", ErrorCategory.PermissionDenied),
            HostIngressDropFailure.InUse => ("HostIngressDropInUse", ErrorCategory.ResourceExists),
            _ => ("HostIngressDropFailed", ErrorCategory.InvalidOperation),
        };
        return new ErrorRecord(new InvalidOperationException($"-HostIngressDrop on '{adapter}': {e.Message}", e), id, category, adapter);
    }

    /// <summary>Wraps <paramref name="inner"/> so every frame in and out is written to a pcap file.</summary>
    public static ILinkDevice WithCapture(ILinkDevice inner, string path) => new CaptureTap(inner, path);

    /// <summary>The pcap device under any wrappers, or null on a virtual network.</summary>
    public static PcapDevice? PcapOf(ILinkDevice device) => device switch
    {
        PcapDevice p => p,
        CaptureTap t => PcapOf(t.Inner),
        _ => null,
    };

    /// <summary>Lists adapters here, or inside <paramref name="networkNamespace"/> (from a thread that entered it).</summary>
    public static IReadOnlyList<AdapterInfo> ListAdapters(string? networkNamespace) =>
        networkNamespace is null ? AdapterInfo.List() : PcapDevice.RunInNetworkNamespace(networkNamespace, AdapterInfo.List);
}
