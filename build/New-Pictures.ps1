#!/usr/bin/env pwsh
<#
.SYNOPSIS
    Regenerates the example pictures in docs/images (build.ps1 -Task Pictures): the ladder of a small exchange between
    two stacks on a virtual network (the cmdlets), and the time-sequence graph of a seeded lossy transfer run in
    virtual time (the stack's .NET API), so the graph is the same on every run.
#>
param([Parameter(Mandatory)] [string] $OutDir)
$ErrorActionPreference = 'Stop'
Import-Module (Join-Path $PSScriptRoot '../NetStack.psd1')
New-Item -ItemType Directory -Force $OutDir | Out-Null

# The ladder: connect, one line each way, close from the client (it ends in TIME-WAIT), close the server.
$net = "pictures-$PID"
$server = Start-Stack -VirtualNetwork $net -IPAddress 192.0.2.1/24 -Name server
$client = Start-Stack -VirtualNetwork $net -IPAddress 192.0.2.2/24 -Name client
try {
    $l = Start-StackListener 80 -Stack server
    $c = Connect-StackSocket 192.0.2.1 80 -Stack client
    $s = $l | Wait-StackConnection
    $c | Send-StackData "hello`n"
    $null = $s | Receive-StackData -Until "`n"
    $s | Send-StackData "world`n"
    $null = $c | Receive-StackData -Until "`n"
    $c | Close-StackSocket
    while (-not (Get-StackConnection -Stack server -LocalPort 80 -State CloseWait)) { Start-Sleep -Milliseconds 10 }
    $s | Close-StackSocket
    while (-not (Get-StackConnection -Stack client -State TimeWait)) { Start-Sleep -Milliseconds 10 }
    Export-StackLadder (Join-Path $OutDir 'ladder.svg') -Socket $c
    Show-StackLadder -Socket $c -Width 100 | Set-Content (Join-Path $OutDir 'ladder.txt')
}
finally { $client, $server | Stop-Stack -Confirm:$false }

# The graph: 200 kB over a 20 Mbit/s wire with 10 ms delay and 2% loss each way, seed 5, in virtual time.
$faults = [NetStack.Link.WireFaults]@{ LossRate = 0.02; Delay = [timespan]::FromMilliseconds(10); RateBitsPerSecond = 20000000 }
$sim = [NetStack.Simulation]::new(5, $faults)
try {
    $a = $sim.AddStack('192.0.2.1/24', $null, $null, $null)
    $b = $sim.AddStack('192.0.2.2/24', $null, $null, $null)
    $listener = $b.Listen(5000)
    $accept = $listener.AcceptAsync()
    $sender = $a.CreateTcpSocket()
    $connect = $sender.ConnectAsync([NetStack.Ipv4Address]::Parse('192.0.2.2'), 5000)
    if (-not $sim.RunUntil({ $connect.IsCompleted -and $accept.IsCompleted }, [timespan]::FromMinutes(1))) { throw 'The connection did not open.' }
    $receiver = $accept.Result
    $total = 200000
    $send = $sender.SendAsync([byte[]]::new($total))
    $buffer = [byte[]]::new(65536)
    $got = 0
    while ($got -lt $total) {
        $recv = $receiver.ReceiveAsync($buffer)
        if (-not $sim.RunUntil({ $recv.IsCompleted }, [timespan]::FromMinutes(5))) { throw 'The transfer stalled.' }
        $got += $recv.Result
    }
    $sim.Advance([timespan]::FromMilliseconds(200))
    $traceTask = [NetStack.Diagnostics.StackDiagnostics]::GetPacketTraceAsync($a)
    $null = $sim.RunUntil({ $traceTask.IsCompleted }, [timespan]::FromSeconds(1))
    $graph = [NetStack.Diagnostics.SequenceGraphBuilder]::Build($traceTask.Result.Decode(), $null)
    [IO.File]::WriteAllText((Join-Path $OutDir 'sequence-graph.svg'), [NetStack.Diagnostics.SequenceGraphSvg]::Render($graph))
    "sequence graph: $($graph.Segments.Count) segments, $($graph.Retransmissions) retransmitted"
}
finally { $sim.Dispose() }
