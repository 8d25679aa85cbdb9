# Ladders, time-sequence graphs and captures read back (issue 17), on a virtual network and from capture files.
BeforeAll {
    . $PSScriptRoot/Common.ps1
    $net = New-TestName 'pict'
    $capture = Join-Path ([System.IO.Path]::GetTempPath()) "$(New-TestName 'pict').pcap"
    $server = Start-Stack -VirtualNetwork $net -IPAddress 192.0.2.1/24 -Name (New-TestName 'pictS')
    $client = Start-Stack -VirtualNetwork $net -IPAddress 192.0.2.2/24 -Name (New-TestName 'pictC') -CaptureFile $capture
    $l = Start-StackListener 80 -Stack $server
    $c = Connect-StackSocket 192.0.2.1 80 -Stack $client -TimeoutSec 30
    $s = $l | Wait-StackConnection -TimeoutSec 30
    $c | Send-StackData "hello`n"
    $null = $s | Receive-StackData -Until "`n" -TimeoutSec 30
    $s | Send-StackData "world`n"
    $null = $c | Receive-StackData -Until "`n" -TimeoutSec 30
    $c | Close-StackSocket
    Wait-Until { (Get-StackConnection -Stack $server -LocalPort 80 -State CloseWait) } -Because 'the server to see the FIN'
    $s | Close-StackSocket
    Wait-Until { (Get-StackConnection -Stack $client -State TimeWait) } -Because 'the client to reach TIME-WAIT'
    $dir = New-Item -ItemType Directory -Path (Join-Path ([System.IO.Path]::GetTempPath()) (New-TestName 'pictout'))
}
AfterAll {
    $client, $server | Stop-Stack -Confirm:$false -ErrorAction SilentlyContinue
    Remove-Item -Recurse -Force $dir -ErrorAction SilentlyContinue
    Remove-Item -Force $capture -ErrorAction SilentlyContinue
}

Describe 'Show-StackLadder' {
    It 'draws the connection from Get-StackPacket output with both stacks'' own states' {
        $text = Get-StackPacket -Stack $client -Protocol TCP | Show-StackLadder -Width 110 | Out-String
        $text | Should -Match '192\.0\.2\.2\s+192\.0\.2\.1'
        $text | Should -Match 'SYN Seq=0 Len=0 Win=\d+ MSS=1460'
        $text | Should -Match 'SYN,ACK Seq=0 Ack=1'
        $text | Should -Match 'PSH,ACK Seq=1 Ack=1 Len=6'
        $text | Should -Match 'FIN,ACK Seq=7 Ack=7'
        foreach ($state in 'SYN-SENT', 'SYN-RECEIVED', 'ESTABLISHED', 'FIN-WAIT-1', 'CLOSE-WAIT', 'FIN-WAIT-2', 'LAST-ACK', 'TIME-WAIT') {
            $text | Should -Match "(?<!~)$state" -Because "the stacks recorded $state"
        }
        $text | Should -Not -Match '~[A-Z]' -Because 'both sides are our stacks: nothing is inferred'
        $text | Should -Match '├─+▶│'
    }

    It 'writes lines that fit -Width, in ASCII with -Ascii' {
        $lines = Show-StackLadder -Stack $client -Width 80 -Ascii
        $lines | Should -BeOfType [string]
        $lines | ForEach-Object { $_.Length | Should -BeLessOrEqual 80 }
        ($lines -join "`n") | Should -Match '\+-+>\|'
        ($lines -join "`n") -cmatch '[^\x00-\x7F]' | Should -BeFalse
    }

    It 'takes a socket (its connection only) and a Get-StackConnection row' {
        $bySocket = Show-StackLadder -Socket $c -Width 100 | Out-String
        $bySocket | Should -Not -Match 'ARP'
        $bySocket | Should -Match 'TIME-WAIT'
        $byRow = Get-StackConnection -Stack $client -State TimeWait | Show-StackLadder -Width 100 | Out-String
        $byRow | Should -Be $bySocket
    }

    It 'reads a capture file: states inferred and marked' {
        $count = (Get-StackPacket -Stack $client -Protocol TCP).Count
        Wait-Until { (Read-StackCapture $capture -Protocol TCP).Count -ge $count } -Because 'the capture tap to flush the file (every 500 ms)'
        $text = Show-StackLadder -CaptureFile $capture -Protocol TCP -Width 110 | Out-String
        $text | Should -Match 'SYN,ACK Seq=0 Ack=1'
        $text | Should -Match '~ESTABLISHED'
        $text | Should -Match '~TIME-WAIT'
    }
}

Describe 'Read-StackCapture' {
    It 'gives the packet objects Get-StackPacket gives, with the TCP fields decoded' {
        $live = Get-StackPacket -Stack $client -Protocol TCP
        Wait-Until { (Read-StackCapture $capture -Protocol TCP).Count -ge $live.Count } -Because 'the capture tap to flush the file (every 500 ms)'
        $read = Read-StackCapture $capture -Protocol TCP
        $read | Should -BeOfType NetStack.PowerShell.StackPacket
        $read.Count | Should -Be $live.Count
        $read.Info | Should -Be $live.Info
        $read[0].Direction | Should -Be 'Unknown'
        $read[0].Stack | Should -Be (Resolve-Path $capture).Path
        $read[0].Tcp.Flags | Should -Be 'Syn'
        $read[0].Tcp.Mss | Should -Be 1460
    }

    It 'takes files from the pipeline (Get-ChildItem)' {
        (Get-Item $capture | Read-StackCapture -Protocol ARP).Count | Should -BeGreaterThan 0
    }

    It 'names the problem with a stable error id' {
        { Read-StackCapture (Join-Path $dir 'missing.pcap') } | Should -Throw -ErrorId 'CaptureFileNotFound,*'
        $junk = Join-Path $dir 'junk.pcap'
        Set-Content $junk 'not a capture'
        { Read-StackCapture $junk } | Should -Throw -ErrorId 'NotACaptureFile,*'
    }
}

Describe 'Export-StackLadder and Export-StackSequenceGraph' {
    It 'writes an SVG and an HTML page by the file''s extension' {
        $svg = Get-StackPacket -Stack $client | Export-StackLadder (Join-Path $dir 'ladder.svg') -PassThru
        $svg | Should -BeOfType System.IO.FileInfo
        $content = Get-Content -Raw $svg.FullName
        $content | Should -Match '^<svg xmlns="http://www.w3.org/2000/svg"'
        $content | Should -Match 'SYN-SENT'
        $html = Export-StackLadder (Join-Path $dir 'ladder.html') -Stack $client -Protocol TCP -PassThru
        $page = Get-Content -Raw $html.FullName
        $page | Should -Match '<!DOCTYPE html>'
        $page | Should -Not -Match '(src|href)="https?:' -Because 'the page needs no network access'
        ([regex]::Matches($page, '<g class="seg[^"]*" data-index')).Count | Should -Be (Get-StackPacket -Stack $client -Protocol TCP).Count
    }

    It 'writes the time-sequence graph of the chosen sender' {
        $f = Export-StackSequenceGraph (Join-Path $dir 'graph.svg') -Stack $client -Sender 192.0.2.1 -PassThru
        $svg = Get-Content -Raw $f.FullName
        $svg | Should -Match 'Time-sequence graph 192\.0\.2\.1:80 → 192\.0\.2\.2:\d+'
        $svg | Should -Match 'relative sequence number \(bytes\)'
        $svg | Should -Match 'time since the connection(&#39;|'')s first frame \(ms\)'
        Read-StackCapture $capture | Export-StackSequenceGraph (Join-Path $dir 'graph.html') -PassThru | Should -Not -BeNullOrEmpty
    }

    It 'refuses a file name that names no format, and a sender with no data' {
        { Export-StackLadder (Join-Path $dir 'ladder.txt') -Stack $client } | Should -Throw -ErrorId 'UnknownPictureFormat,*'
        { Export-StackSequenceGraph (Join-Path $dir 'g.svg') -Stack $client -Sender 192.0.2.99 } | Should -Throw -ErrorId 'SenderNotFound,*'
    }
}

Describe 'Get-StackPacket after the handshake left the packet log (issue 15)' {
    It 'keeps Seq and Ack relative to the ISNs the stack recorded' {
        $n = New-TestName 'small'
        $a = Start-Stack -VirtualNetwork $n -IPAddress 192.0.2.1/24 -Name (New-TestName 'smallA')
        $b = Start-Stack -VirtualNetwork $n -IPAddress 192.0.2.2/24 -Name (New-TestName 'smallB') -PacketLogSize 8
        try {
            $listener = Start-StackListener 80 -Stack $a
            $cs = Connect-StackSocket 192.0.2.1 80 -Stack $b -TimeoutSec 30
            $ss = $listener | Wait-StackConnection -TimeoutSec 30
            1..20 | ForEach-Object { $cs | Send-StackData ('x' * 100); $null = $ss | Receive-StackData -Count 100 -TimeoutSec 30 }
            $packets = Get-StackPacket -Stack $b -Protocol TCP
            $packets | Where-Object { $_.Tcp.Flags -match 'Syn' } | Should -BeNullOrEmpty -Because 'the handshake has left the 8-frame log'
            $last = $packets | Where-Object SourcePort -NE 80 | Select-Object -Last 1
            $last.Tcp.RelativeSeq + $last.Tcp.Length | Should -Be 2001 -Because 'the last segment ends after the 2000 bytes sent (and the SYN)'
            $last.Info | Should -Match "Seq=$($last.Tcp.RelativeSeq) Ack=1 "
        }
        finally { $a, $b | Stop-Stack -Confirm:$false -ErrorAction SilentlyContinue }
    }
}

Describe 'The sender''s internals: -Trace and the graph''s second panel' {
    It 'draws cwnd, ssthresh, bytes in flight, SRTT and RTO under the graph of a traced, lossy upload' {
        $n = New-TestName 'trace'
        $a = Start-Stack -VirtualNetwork $n -IPAddress 192.0.2.1/24 -Name (New-TestName 'traceA')
        $b = Start-Stack -VirtualNetwork $n -IPAddress 192.0.2.2/24 -Name (New-TestName 'traceB')
        try {
            $listener = Start-StackListener 9 -Stack $a -Trace
            $up = Connect-StackSocket 192.0.2.1 9 -Stack $b -Trace -TimeoutSec 30
            $up.TraceInternals | Should -BeTrue
            $taken = $listener | Wait-StackConnection -TimeoutSec 30
            $taken.TraceInternals | Should -BeTrue -Because 'a traced listener traces what it accepts'
            Set-StackNetwork $n -Simulate @{ Loss = 0.05; DelayMs = 5 }
            $up | Send-StackData ([byte[]]::new(200KB)) -TimeoutSec 60
            $null = $taken | Receive-StackData -Count 200KB -TimeoutSec 60
            Wait-Until { (Get-StackConnection -Stack $b -Id $up.Id).SendQ -eq 0 } -Because 'everything sent to be acknowledged (no timeout can follow)'
            $tcp = Get-StackStatistics -Stack $b -Layer Tcp -All
            ($tcp | Where-Object Name -eq SegmentsRetransmitted).Value | Should -BeGreaterThan 0 -Because '5% loss each way'
            $f = Export-StackSequenceGraph (Join-Path $dir 'traced.svg') -Socket $up -PassThru
            $svg = Get-Content -Raw $f.FullName
            $svg | Should -Match 'Sender internals of 192\.0\.2\.2:'
            foreach ($label in 'window (bytes)', 'time (ms)', 'cwnd', 'ssthresh', 'bytes in flight', 'SRTT (ms)', 'RTO (ms)') { $svg | Should -Match ([regex]::Escape(">$label</text>")) }
            $lossEvents = ($tcp | Where-Object Name -eq FastRetransmits).Value + ($tcp | Where-Object Name -eq Timeouts).Value
            ([regex]::Matches($svg, '<g class="(recovery|timeout)"><title>')).Count | Should -Be $lossEvents -Because 'one mark per loss event the counters report'
        }
        finally { $a, $b | Stop-Stack -Confirm:$false -ErrorAction SilentlyContinue }
    }

    It 'draws no panel for a socket that is not traced, and -Verbose says why' {
        $plain = Export-StackSequenceGraph (Join-Path $dir 'plain.svg') -Socket $c -Sender 192.0.2.2 -PassThru -Verbose 4>&1
        ($plain | Where-Object { $_ -is [System.Management.Automation.VerboseRecord] }).Message | Should -Match 'not traced.*-Trace'
        Get-Content -Raw (Join-Path $dir 'plain.svg') | Should -Not -Match 'Sender internals'
        $c.TraceInternals | Should -BeFalse
        (New-StackSocket Tcp -Stack $client -Trace).TraceInternals | Should -BeTrue
    }
}
