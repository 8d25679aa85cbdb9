using System.Management.Automation;
using NetStack.Link;

namespace NetStack.PowerShell;

/// <summary>Opens the link a stack runs on, turning the link layer's failures into the module's ErrorRecords.</summary>
internal static class LinkFactory
{
    // PLACEHOLDER until the pcap device is on main: -Adapter and -CaptureFile report that they are not available.
    public static ILinkDevice OpenAdapter(PSCmdlet cmdlet, string adapter)
    {
        cmdlet.ThrowTerminatingError(new ErrorRecord(
            new PlatformNotSupportedException("This build has no pcap device yet; use -VirtualNetwork."),
            "PcapNotAvailable", ErrorCategory.NotImplemented, adapter));
        throw new InvalidOperationException();
    }

    public static ILinkDevice WithCapture(PSCmdlet cmdlet, ILinkDevice inner, string path)
    {
        cmdlet.ThrowTerminatingError(new ErrorRecord(
            new PlatformNotSupportedException("This build cannot write capture files yet."),
            "CaptureNotAvailable", ErrorCategory.NotImplemented, path));
        throw new InvalidOperationException();
    }
}
