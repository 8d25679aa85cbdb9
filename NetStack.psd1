# Module manifest for NetStack: a user-space TCP/IP stack as PowerShell cmdlets.
# The binary module is laid out by `./build.ps1 -Task Build` under out/NetStack; import this file from the
# repository root:  Import-Module ./NetStack.psd1
# This is the one manifest: the build writes out/NetStack/NetStack.psd1 from it with the 'out/NetStack/' prefixes
# dropped, the copy that -Task Install and -Task Package ship. Paths into the module folder start 'out/NetStack/'.
# The DLL is a nested module rather than the RootModule: Get-Help looks for a cmdlet's help file
# (en-US/NetStack.PowerShell.dll-Help.xml) in the manifest's folder and in a nested module's folder, not in a
# RootModule's, so this keeps the generated help beside the DLL in out/NetStack.
@{
    NestedModules        = @('out/NetStack/NetStack.PowerShell.dll')
    ModuleVersion        = '0.1.0'
    GUID                 = '7feeef0d-9210-4116-ae60-bbcd68f1c3cd'
    Author               = 'NetStack contributors'
    Copyright            = '(c) NetStack contributors'
    Description          = 'A user-space TCP/IP stack: start it on a pcap adapter or an in-process virtual network, then ping, resolve, open sockets and look inside (ARP cache, connections, counters, packets).'
    PowerShellVersion    = '7.4'
    CompatiblePSEditions = @('Core')
    FormatsToProcess     = @('out/NetStack/NetStack.Format.ps1xml', 'out/NetStack/NetStack.Lab.Format.ps1xml', 'out/NetStack/NetStack.Dns.Format.ps1xml')
    TypesToProcess       = @('out/NetStack/NetStack.Types.ps1xml')
    CmdletsToExport      = @(
        'Get-StackAdapter'
        'Start-Stack'
        'Get-Stack'
        'Stop-Stack'
        'Get-StackArpCache'
        'Add-StackArpEntry'
        'Remove-StackArpEntry'
        'Clear-StackArpCache'
        'Resolve-StackArpEntry'
        'Test-StackConnection'
        'Get-StackStatistics'
        'Get-StackPacket'
        'Read-StackCapture'
        'Show-StackLadder'
        'Export-StackLadder'
        'Export-StackSequenceGraph'
        'Get-StackConnection'
        'New-StackSocket'
        'Connect-StackSocket'
        'Send-StackData'
        'Receive-StackData'
        'Start-StackListener'
        'Wait-StackConnection'
        'Close-StackSocket'
        'Resolve-StackDnsName'
        'Invoke-StackWebRequest'
        'Start-StackServiceHost'
        'Get-StackNetwork'
        'Set-StackNetwork'
    )
    FunctionsToExport    = @()
    AliasesToExport      = @()
    VariablesToExport    = @()
    PrivateData          = @{
        PSData = @{
            Tags = @('TCP', 'IP', 'Network', 'Stack', 'pcap', 'Linux')
        }
    }
}
