<#
.SYNOPSIS
    Runs every example of the help source on the embedded network, each in a fresh runspace with a small world, and
    writes one result per example as JSON (called by HelpExamples.Tests.ps1 in its own pwsh).
.DESCRIPTION
    The world an example runs in, on the virtual network 'examples' (stack names as the help examples use them):
      server 192.0.2.1  listening on TCP 80 ($listener), a UDP socket on port 9
      client 192.0.2.2  (started last: the default stack) with DNS server 192.0.2.53; $c connected to server:80 and
                        $s its accepted socket with "hello`n" waiting to be read; one more connection waiting in the
                        listener's accept queue; $u a UDP socket with a datagram waiting; a static ARP entry 192.0.2.9
      dns   192.0.2.53  answers every name (web.lab, echo.lab, www.example...) with 192.0.2.1
      and on server the test web server (TestServers.ps1) on port 8080
    An example about the embedded lab (Start-Stack alone or with -Simulate, *-StackNetwork, Start-StackServiceHost,
    the service host's names under lab.test, or whose remarks begin 'On the embedded lab')
    runs on the lab instead, against the service host's real pages and names: 'client' joined it, so its service host runs at 192.0.2.1 (and a service host on
    'bench' for Set-StackNetwork bench). Another example that starts stacks itself (Start-Stack ...) runs with no
    world; one that starts the listener itself
    (Start-StackListener ...) runs without $listener, with the client connecting to server:80 until it gets in.
    Examples run in a scratch folder (-WorkingFolder): what they write (-OutFile) lands there, and there they find
    trace.pcap (a short TCP exchange captured with -CaptureFile) and trace.pcapng (the same frames in pcapng).
    An example with Needs is skipped with that reason, except Needs = 'libpcap' where libpcap is installed.
#>
param(
    [Parameter(Mandatory)] [string] $HelpSourcePath,
    [Parameter(Mandatory)] [string] $ResultPath,
    [Parameter(Mandatory)] [string] $WorkingFolder
)
$ErrorActionPreference = 'Stop'
. $PSScriptRoot/Common.ps1        # the module, New-ModulePowerShell
. $PSScriptRoot/TestServers.ps1   # Start-TestDnsServer, Start-TestWebServer
Set-Location -LiteralPath $WorkingFolder
[Environment]::CurrentDirectory = $WorkingFolder   # new runspaces start here

$world = {
    param([string] $Code, [string] $Folder, [bool] $OnLab)
    $ErrorActionPreference = 'Stop'
    Set-Location -LiteralPath $Folder
    if ($OnLab -or $Code -match '^\s*Start-Stack(\s*$|\s+-Simulate)|StackNetwork|StackServiceHost|\blab\.test\b') {
        $global:client = Start-Stack -Name client   # the embedded lab, with its service host
        if ($Code -match 'Set-StackNetwork bench') { $null = Start-StackServiceHost -VirtualNetwork bench }
        return
    }
    if ($Code -match '^\s*Start-Stack\b') { return }
    $null = Start-Stack -VirtualNetwork examples -IPAddress 192.0.2.53/24 -Name dns
    $global:server = Start-Stack -VirtualNetwork examples -IPAddress 192.0.2.1/24 -Name server
    $global:client = Start-Stack -VirtualNetwork examples -IPAddress 192.0.2.2/24 -Name client -DnsServer 192.0.2.53
    $null = Add-StackArpEntry 192.0.2.9 02-00-5E-10-00-09 -Stack client
    $discard = New-StackSocket Udp -LocalPort 9 -Stack server
    if ($Code -notmatch 'Start-StackListener|Invoke-StackWebRequest') {
        $global:listener = Start-StackListener 80 -Stack server
        $global:c = Connect-StackSocket 192.0.2.1 80 -Stack client
        $global:s = $listener | Wait-StackConnection
        $c | Send-StackData "hello`n"
        $null = Connect-StackSocket 192.0.2.1 80 -Stack client   # left in the accept queue
    }
    $global:u = New-StackSocket Udp -Stack client
    Send-StackData 'datagram' -Socket $discard -RemoteAddress 192.0.2.2 -RemotePort $u.LocalEndPoint.Port
}

# Connects the client to server:80 until a listener there takes it (for an example that starts the listener).
$connector = {
    for ($i = 0; $i -lt 300; $i++) {
        try { $null = Connect-StackSocket 192.0.2.1 80 -Stack client -TimeoutSec 5 -ErrorAction Stop; return }
        catch { Start-Sleep -Milliseconds 100 }
    }
}

# trace.pcap: a short TCP exchange as -CaptureFile records it; trace.pcapng: the same frames in pcapng (section header,
# one Ethernet interface with microsecond timestamps, an enhanced packet block per frame).
$capServer = Start-Stack -VirtualNetwork capture -IPAddress 192.0.2.1/24 -Name capture-server
$capClient = Start-Stack -VirtualNetwork capture -IPAddress 192.0.2.2/24 -Name capture-client -CaptureFile (Join-Path $WorkingFolder 'trace.pcap')
$l = Start-StackListener 80 -Stack $capServer
$c = Connect-StackSocket 192.0.2.1 80 -Stack $capClient
$s = $l | Wait-StackConnection
$c | Send-StackData "GET / HTTP/1.0`r`n`r`n"
$null = $s | Receive-StackData -Until "`r`n`r`n"
$s | Send-StackData ('x' * 3000); $s | Close-StackSocket
$null = $c | Receive-StackData -ToEnd; $c | Close-StackSocket
$capClient, $capServer | Stop-Stack
$pcap = [IO.File]::ReadAllBytes((Join-Path $WorkingFolder 'trace.pcap'))
$ng = [IO.MemoryStream]::new()
function Write-Block([int] $Type, [byte[]] $Body) {
    $pad = (4 - $Body.Length % 4) % 4
    $len = 12 + $Body.Length + $pad
    $ng.Write([BitConverter]::GetBytes([uint32]$Type)); $ng.Write([BitConverter]::GetBytes([uint32]$len))
    $ng.Write($Body); $ng.Write([byte[]]::new($pad)); $ng.Write([BitConverter]::GetBytes([uint32]$len))
}
Write-Block 0x0A0D0D0A ([byte[]](0x4D, 0x3C, 0x2B, 0x1A, 1, 0, 0, 0) + [BitConverter]::GetBytes([int64]-1))
Write-Block 1 ([byte[]](1, 0, 0, 0) + [BitConverter]::GetBytes([uint32]65535))
for ($at = 24; $at + 16 -le $pcap.Length; ) {
    $sec = [BitConverter]::ToUInt32($pcap, $at); $usec = [BitConverter]::ToUInt32($pcap, $at + 4)
    $incl = [BitConverter]::ToInt32($pcap, $at + 8); $orig = [BitConverter]::ToUInt32($pcap, $at + 12)
    $ts = [uint64]$sec * 1000000 + $usec
    $body = [BitConverter]::GetBytes([uint32]0) + [BitConverter]::GetBytes([uint32][math]::Floor($ts / 4294967296)) + [BitConverter]::GetBytes([uint32]($ts % 4294967296)) +
        [BitConverter]::GetBytes([uint32]$incl) + [BitConverter]::GetBytes($orig) + $pcap[($at + 16)..($at + 15 + $incl)]
    Write-Block 6 ([byte[]]$body)
    $at += 16 + $incl
}
[IO.File]::WriteAllBytes((Join-Path $WorkingFolder 'trace.pcapng'), $ng.ToArray())

$source = Import-PowerShellDataFile $HelpSourcePath
$hasPcap = [bool](Get-ChildItem /usr/lib/*/libpcap.so.* -ErrorAction Ignore)
$results = foreach ($command in $source.Commands.Keys | Sort-Object) {
    $n = 0
    foreach ($example in @($source.Commands[$command].Examples)) {
        $n++
        $result = [ordered]@{ Command = $command; Number = $n; Code = $example.Code; Status = 'Passed'; Message = '' }
        $needs = $example['Needs']
        if ($needs -and -not ($needs -eq 'libpcap' -and $hasPcap)) {
            $result.Status = 'Skipped'; $result.Message = "needs $needs"
            [pscustomobject]$result
            continue
        }
        $ps = New-ModulePowerShell
        $helpers = @()
        try {
            $onLab = "$($example.Remarks)" -match '^On the embedded lab'
            $null = $ps.AddScript($world).AddArgument($example.Code).AddArgument($WorkingFolder).AddArgument($onLab).Invoke()
            if ($ps.HadErrors) { throw "the world: $($ps.Streams.Error[0])" }
            $ps.Commands.Clear()
            # The DNS and web servers only where an example names a host or speaks HTTP (each costs a runspace).
            $servers = $example.Code -match '\w\.(lab|example)\b|Resolve-StackDnsName|Invoke-StackWebRequest|\b8080\b'
            if ($servers -and ($dns = Get-Stack -Name dns -ErrorAction Ignore)) {
                $helpers += Start-TestDnsServer $dns -Address 192.0.2.1 -Domain ''
                $server = Get-Stack -Name server
                $helpers += Start-TestWebServer $server -Port 8080
            }
            if ($example.Code -match 'Start-StackListener' -and (Get-Stack -Name client -ErrorAction Ignore)) {
                $h = New-ModulePowerShell
                $null = $h.AddScript($connector).BeginInvoke()
                $helpers += $h
            }
            $null = $ps.AddScript("`$ErrorActionPreference = 'Stop'`n" + $example.Code)
            $run = $ps.BeginInvoke()
            if (-not $run.AsyncWaitHandle.WaitOne([TimeSpan]::FromSeconds(90))) { $ps.Stop(); throw 'it did not finish within 90 s' }
            $output = $ps.EndInvoke($run)
            if ($ps.HadErrors -and $ps.Streams.Error.Count) { throw "it wrote an error: $($ps.Streams.Error[0])" }
            $null = $output | Out-String   # its output formats too
        }
        catch {
            $result.Status = 'Failed'
            $result.Message = "$($_.Exception.Message)"
        }
        finally {
            foreach ($h in $helpers) { $h.Stop(); $h.Dispose() }
            $ps.Dispose()
            Get-Stack | Stop-Stack -Confirm:$false
        }
        [pscustomobject]$result
    }
}
$results | ConvertTo-Json | Set-Content -Path $ResultPath
