#!/usr/bin/env pwsh
<#
.SYNOPSIS
    Regenerates the example pictures in docs/images (build.ps1 -Task Pictures):
    - quickstart-ladder.txt/.svg: the quickstart's echo connection on the embedded lab, as a ladder (the cmdlets, real
      time: the times differ a little on every run);
    - lab-transfer.svg: a traced, lossy upload to the embedded lab's discard service (Set-StackNetwork -Simulate), as a
      time-sequence graph with the sender's internals under it (the cmdlets, real time: the losses differ per run);
    - ladder.txt/.svg: a small exchange between two stacks of your own on a virtual network (the cmdlets);
    - sequence-graph.svg: a seeded lossy transfer run in virtual time (the stack's .NET API), traced, so the graph and
      its panel are the same on every run.
#>
param([Parameter(Mandatory)] [string] $OutDir)
$ErrorActionPreference = 'Stop'
Import-Module (Join-Path $PSScriptRoot '../NetStack.psd1')
New-Item -ItemType Directory -Force $OutDir | Out-Null

function Wait-Until([scriptblock] $Condition, [string] $What) {
    $deadline = [DateTime]::UtcNow.AddSeconds(60)
    while (-not (& $Condition)) {
        if ([DateTime]::UtcNow -gt $deadline) { throw "$What did not happen within 60 s." }
        Start-Sleep -Milliseconds 20
    }
}

# The quickstart's echo connection on the embedded lab (examples/Quickstart.ps1): connect, a line there and back, close.
$me = Start-Stack
try {
    $c = Connect-StackSocket 192.0.2.1 7
    Send-StackData -Socket $c -Text "hello, echo`n"
    $null = Receive-StackData -Socket $c -Until "`n"
    Close-StackSocket -Socket $c
    Wait-Until { Get-StackConnection -Stack $me -Id $c.Id -State TimeWait } 'TIME-WAIT'
    Wait-Until { -not (Get-StackConnection -Stack lab-services -RemotePort $c.LocalEndPoint.Port) } 'the service host closing its side'
    Show-StackLadder -Socket $c -Width 100 | Set-Content (Join-Path $OutDir 'quickstart-ladder.txt')
    Export-StackLadder (Join-Path $OutDir 'quickstart-ladder.svg') -Socket $c

    # A lossy upload on the same network: 300 kB to the discard service over 2% loss, 10 ms delay, 20 Mbit/s, traced.
    Set-StackNetwork -Simulate @{ Loss = 0.02; DelayMs = 10; RateMbps = 20 }
    $up = Connect-StackSocket 192.0.2.1 9 -Trace
    $up | Send-StackData ([byte[]]::new(300KB)) -TimeoutSec 120
    $up | Close-StackSocket
    Wait-Until { Get-StackConnection -Stack $me -Id $up.Id -State TimeWait } 'the upload reaching TIME-WAIT'
    Export-StackSequenceGraph (Join-Path $OutDir 'lab-transfer.svg') -Socket $up
    $tcp = Get-StackStatistics -Stack $me -Layer Tcp -All
    "lab transfer: $(($tcp | Where-Object Name -eq SegmentsRetransmitted).Value) retransmitted, $(($tcp | Where-Object Name -eq FastRetransmits).Value) fast retransmits, $(($tcp | Where-Object Name -eq Timeouts).Value) timeouts"
}
finally { $me | Stop-Stack -Confirm:$false }

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
    $sender.TraceInternals = $true   # the second panel: cwnd, ssthresh, bytes in flight, SRTT, RTO
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
    $samplesTask = $sender.GetInternalsTraceAsync()
    $null = $sim.RunUntil({ $samplesTask.IsCompleted }, [timespan]::FromSeconds(1))
    $graph = [NetStack.Diagnostics.SequenceGraphBuilder]::Build($traceTask.Result.Decode(), $null).WithInternals($samplesTask.Result)
    [IO.File]::WriteAllText((Join-Path $OutDir 'sequence-graph.svg'), [NetStack.Diagnostics.SequenceGraphSvg]::Render($graph))
    "sequence graph: $($graph.Segments.Count) segments, $($graph.Retransmissions) retransmitted"
}
finally { $sim.Dispose() }
