#!/usr/bin/env pwsh
<#
.SYNOPSIS
    NetStack in five minutes: a stack on the embedded lab, no adapter and no root.
.DESCRIPTION
    Starts a stack on the embedded virtual network (its service host at 192.0.2.1 starts with it), pings the
    service host, resolves a name, talks to the echo service over TCP, fetches a page over HTTP with the socket
    cmdlets, shows the connections (the closed echo connection in TimeWait), that connection as a ladder diagram and
    the ARP cache, then stops.
    Run it from the repository root with:  dotnet tool restore && dotnet pwsh ./build.ps1 -Task Quickstart
    (which builds the module first if it is missing or older than the sources), or after a build with:
    dotnet pwsh ./examples/Quickstart.ps1
#>
$ErrorActionPreference = 'Stop'
Import-Module (Join-Path $PSScriptRoot '../NetStack.psd1')

function Step([string] $Text) { Write-Host "`n> $Text" -ForegroundColor Cyan }

Step 'Start-Stack    # joins the embedded lab: the next free address, the service host as gateway and DNS'
$me = Start-Stack
$me | Format-Table Name, Address, Gateway, DnsServer, MacAddress, Link | Out-Host

Step 'Test-StackConnection 192.0.2.1 -Count 2    # ARP, then ICMP echo to the service host'
Test-StackConnection 192.0.2.1 -Count 2 | Format-Table Ping, Address, Latency, Ttl, Status | Out-Host

Step 'Resolve-StackDnsName www.lab.test    # a CNAME to host.lab.test, answered by the service host'
Resolve-StackDnsName www.lab.test | Out-Host

Step '$c = Connect-StackSocket 192.0.2.1 7    # TCP to the echo service; send a line, read it back, close'
$c = Connect-StackSocket 192.0.2.1 7
Send-StackData -Socket $c -Text "hello, echo`n"
$echoed = Receive-StackData -Socket $c -Until "`n" -AsString
Write-Host "echoed: $($echoed.TrimEnd())"
$echoPort = $c.LocalEndPoint.Port
Close-StackSocket -Socket $c

Step '$web = Connect-StackSocket 192.0.2.1 80    # HTTP/1.1 by hand: GET /hello, read to the end'
$web = Connect-StackSocket 192.0.2.1 80
Send-StackData -Socket $web -Text "GET /hello HTTP/1.1`r`nHost: host.lab.test`r`nConnection: close`r`n`r`n"
$response = Receive-StackData -Socket $web -ToEnd -AsString
Close-StackSocket -Socket $web
Write-Host ($response.TrimEnd() -replace "`r", '')

Step 'Get-StackConnection    # the echo connection we closed first waits in TimeWait (2 MSL)'
# Our FIN and the server's cross the wire in a moment; wait (bounded) until the connection has reached TimeWait.
$deadline = [DateTime]::UtcNow.AddSeconds(30)
while (-not (Get-StackConnection -Stack $me | Where-Object { $_.LocalPort -eq $echoPort -and $_.State -eq 'TimeWait' })) {
    if ([DateTime]::UtcNow -gt $deadline) { throw 'The echo connection did not reach TimeWait within 30 s.' }
    Start-Sleep -Milliseconds 20
}
Get-StackConnection -Stack $me | Out-Host

Step 'Show-StackLadder -Socket $c -Width 100    # the echo connection as a ladder: each segment, both sides'' TCP states'
Show-StackLadder -Socket $c -Width 100 | Out-Host

Step 'Get-StackArpCache    # what ARP learned'
Get-StackArpCache -Stack $me | Out-Host

Step 'Stop-Stack    # the service host stops with the last stack of its network'
Stop-Stack -Stack $me
Write-Host "stacks left: $(@(Get-Stack).Count)"
