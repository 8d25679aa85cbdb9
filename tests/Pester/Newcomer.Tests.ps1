# What a newcomer tripped over (issue 15): stopping a stack leaves no half-open peer, the views say which stack a row
# is from, a missing prefix is refused, messages speak the user's words, closed things fail alike, the counters fit
# on a screen, and the table headers are names Format-Table takes.
BeforeAll {
    . $PSScriptRoot/Common.ps1
    $net = New-TestName 'new'
    $srv = Start-Stack -VirtualNetwork $net -IPAddress 192.0.2.1/24 -Name (New-TestName 'newS')
    $cli = Start-Stack -VirtualNetwork $net -IPAddress 192.0.2.2/24 -Name (New-TestName 'newC')
    $listener = Start-StackListener 80 -Stack $srv
}
AfterAll {
    $listener | Close-StackSocket -ErrorAction SilentlyContinue
    $srv, $cli | Stop-Stack -Confirm:$false -ErrorAction SilentlyContinue
}

Describe 'Stop-Stack and the peers of its connections' {
    It 'resets every connection still open, so the peer is not left half-open, and the capture shows the RST' {
        $capture = Join-Path $TestDrive 'stop.pcap'
        $gone = Start-Stack -VirtualNetwork $net -IPAddress 192.0.2.9/24 -Name (New-TestName 'gone') -CaptureFile $capture
        $c = Connect-StackSocket 192.0.2.1 80 -Stack $gone
        $s = $listener | Wait-StackConnection
        $port = $c.LocalEndPoint.Port
        (Get-StackConnection -Stack $srv -Id $s.Id).State | Should -Be 'Established'

        $gone | Stop-Stack -Confirm:$false

        Wait-Until { -not (Get-StackConnection -Stack $srv -Id $s.Id) } -Because 'the peer to take the reset and drop the connection'
        (Get-StackStatistics -Stack $srv -Layer Tcp -Name ResetsReceived).Value | Should -BeGreaterOrEqual 1
        Get-StackPacket -Stack $srv -Protocol TCP -Direction In | Where-Object { $_.SourcePort -eq $port -and $_.Info -match '\[RST' } |
            Should -Not -BeNullOrEmpty
        # The peer's user learns it as from recv(): ConnectionReset, not "closed" (they closed nothing).
        $err = { $s | Receive-StackData -TimeoutSec 5 -ErrorAction Stop } | Should -Throw -PassThru
        $err.FullyQualifiedErrorId | Should -BeLike 'ConnectionReset,*'
        $rst = @(Read-PcapTcpSegments $capture | Where-Object { $_.SourcePort -eq $port -and $_.Flags -match 'R' })
        $rst.Count | Should -Be 1 -Because 'the stopping stack wrote its RST to its capture before closing it'
    }
}

Describe 'Which stack' {
    It 'shows every running stack in Get-StackConnection, Get-StackArpCache and Get-StackStatistics without -Stack' {
        $c = Connect-StackSocket 192.0.2.1 80 -Stack $cli
        $s = $listener | Wait-StackConnection
        try {
            $rows = Get-StackConnection
            $rows.Stack | Should -Contain $srv.Name
            $rows.Stack | Should -Contain $cli.Name
            ($rows | Out-String) | Should -Match "Stack\s*\r?\n"
            ($rows | Out-String) | Should -Match ([regex]::Escape($cli.Name))
            (Get-StackArpCache).Stack | Should -Contain $srv.Name
            (Get-StackArpCache).Stack | Should -Contain $cli.Name
            (Get-StackStatistics -Layer Tcp).Stack | Select-Object -Unique | Should -Contain $cli.Name
            (Get-StackStatistics -Layer Tcp).Stack | Select-Object -Unique | Should -Contain $srv.Name
        }
        finally { $c, $s | Close-StackSocket -Abort }
    }

    It 'names the stack in the output of a test and of a connect' {
        Test-StackConnection 192.0.2.1 -Count 1 -Stack $cli | Out-String | Should -Match ([regex]::Escape($cli.Name))
        Test-StackConnection 192.0.2.1 -TcpPort 80 -Stack $cli | Out-String | Should -Match ([regex]::Escape($cli.Name))
        $c = Connect-StackSocket 192.0.2.1 80 -Stack $cli
        try { $c | Out-String | Should -Match ([regex]::Escape($cli.Name)) }
        finally {
            $c | Close-StackSocket -Abort
            # Both connections (the -TcpPort probe's and $c) wait in the accept queue: take them, so later tests get their own.
            1..2 | ForEach-Object { $listener | Wait-StackConnection | Close-StackSocket -Abort }
        }
    }

    It 'Get-StackConnection -Id gives just that socket' {
        $u1 = New-StackSocket Udp -Stack $cli; $u2 = New-StackSocket Udp -Stack $cli
        try {
            $row = Get-StackConnection -Stack $cli -Id $u2.Id
            @($row).Count | Should -Be 1
            $row.Id | Should -Be $u2.Id
            (Get-StackConnection $u1.Id, $u2.Id -Stack $cli).Id | Should -Be @($u1.Id, $u2.Id)
        }
        finally { $u1, $u2 | Close-StackSocket }
    }
}

Describe 'Start-Stack -IPAddress' {
    It 'refuses an address without a prefix length and says how to write it' {
        $err = { Start-Stack -VirtualNetwork $net -IPAddress 192.0.2.7 -Name (New-TestName 'noprefix') } | Should -Throw -PassThru
        $err.FullyQualifiedErrorId | Should -BeLike 'ParameterArgumentTransformationError,*'
        $err.Exception.Message | Should -Match "'192\.0\.2\.7' has no prefix length"
        $err.Exception.Message | Should -Match "192\.0\.2\.7/24"
    }
}

Describe 'Messages in the user''s words' {
    It 'names a missing adapter without the .NET parameter name' {
        $err = { Start-Stack -Adapter nsk-nosuch9 -IPAddress 192.0.2.7/24 -Name (New-TestName 'noadapter') } | Should -Throw -PassThru
        if ($err.FullyQualifiedErrorId -like 'PcapNotInstalled,*') { Set-ItResult -Skipped -Because 'libpcap is not installed, so adapters cannot be looked up'; return }
        $err.FullyQualifiedErrorId | Should -BeLike 'AdapterNotFound,*'
        $err.Exception.Message | Should -Match "'nsk-nosuch9'"
        $err.Exception.Message | Should -Not -Match '\(Parameter '
        $err.Exception.Message | Should -Match 'Get-StackAdapter'
    }

    It 'says a connect to an address nobody has failed for want of an ARP reply, as ping does' {
        $err = { Connect-StackSocket 192.0.2.99 80 -Stack $cli -ErrorAction Stop } | Should -Throw -PassThru
        $err.FullyQualifiedErrorId | Should -BeLike 'HostUnreachable,*'
        $err.Exception.Message | Should -Match 'host unreachable \(no ARP reply\)'
        $err.Exception.Message | Should -Not -Match 'reported by'
        Test-StackConnection 192.0.2.99 -Count 1 -Stack $cli -ErrorVariable e -ErrorAction SilentlyContinue
        $e[0].Exception.Message | Should -Match 'host unreachable \(no ARP reply\)'
    }

    It 'says the time limit the user gave' {
        $c = Connect-StackSocket 192.0.2.1 80 -Stack $cli
        $s = $listener | Wait-StackConnection
        try {
            $err = { $c | Receive-StackData -TimeoutSec 1 -ErrorAction Stop } | Should -Throw -PassThru
            $err.FullyQualifiedErrorId | Should -BeLike 'TimedOut,*'
            $err.Exception.Message | Should -Match 'timed out after 1 s\.'
            $err = { $c | Receive-StackData -Count 10 -TimeoutSec 1 -ErrorAction Stop } | Should -Throw -PassThru
            $err.Exception.Message | Should -Match 'timed out after 1 s\.'
        }
        finally { $c, $s | Close-StackSocket -Abort }
    }
}

Describe 'Closed and stopped things fail alike' {
    It 'refuses receive and send alike right after Close-StackSocket, as a closed descriptor does' {
        $c = Connect-StackSocket 192.0.2.1 80 -Stack $cli
        $s = $listener | Wait-StackConnection
        $s | Send-StackData 'unread'
        $c | Close-StackSocket
        foreach ($op in { $c | Receive-StackData -TimeoutSec 5 -ErrorAction Stop }, { $c | Send-StackData 'x' -ErrorAction Stop }) {
            $err = $op | Should -Throw -PassThru
            $err.FullyQualifiedErrorId | Should -BeLike 'SocketClosed,*'
        }
        foreach ($op in { Receive-StackData -Socket $c.Id -Stack $cli -TimeoutSec 5 -ErrorAction Stop }, { Send-StackData 'x' -Socket $c.Id -Stack $cli -ErrorAction Stop }) {
            $err = $op | Should -Throw -PassThru
            $err.FullyQualifiedErrorId | Should -BeLike 'SocketNotFound,*'
        }
        # The connection itself still finishes its close, and -Abort can still reset it.
        Get-StackConnection -Stack $cli -Id $c.Id | Close-StackSocket -Abort
        Get-StackConnection -Stack $cli -Id $c.Id | Should -BeNullOrEmpty
        $s | Close-StackSocket -Abort
    }

    It 'gives StackStopped for a stopped stack''s socket and name, and stops it again quietly either way' {
        $name = New-TestName 'stopped'
        $st = Start-Stack -VirtualNetwork $net -IPAddress 192.0.2.10/24 -Name $name
        $u = New-StackSocket Udp -Stack $st
        Stop-Stack $name -Confirm:$false
        foreach ($op in { $u | Send-StackData 'x' -RemoteAddress 192.0.2.1 -RemotePort 9 }, { Receive-StackData -Socket $u -TimeoutSec 1 }, { Get-StackArpCache -Stack $name }) {
            $err = $op | Should -Throw -PassThru
            $err.FullyQualifiedErrorId | Should -BeLike 'StackStopped,*'
        }
        { Stop-Stack $name -Confirm:$false -ErrorAction Stop } | Should -Not -Throw
        { $st | Stop-Stack -Confirm:$false -ErrorAction Stop } | Should -Not -Throw
        { Stop-Stack (New-TestName 'never') -ErrorAction Stop } | Should -Throw -ErrorId 'StackNotFound,NetStack.PowerShell.StopStackCommand'
    }
}

Describe 'Tab completion from the code''s own lists' {
    It 'completes -State with every TcpState name' {
        $r = TabExpansion2 -inputScript ($t = 'Get-StackConnection -State ') -cursorColumn $t.Length
        foreach ($state in [Enum]::GetNames([NetStack.Tcp.TcpState])) { $r.CompletionMatches.CompletionText | Should -Contain $state }
    }

    It 'completes counter names, narrowed by -Layer' {
        $r = TabExpansion2 -inputScript ($t = 'Get-StackStatistics -Layer Icmp -Name EchoRep') -cursorColumn $t.Length
        $r.CompletionMatches.CompletionText | Should -Contain 'EchoRepliesReceived'
        $r = TabExpansion2 -inputScript ($t = 'Get-StackStatistics -Layer Tcp -Name EchoRep') -cursorColumn $t.Length
        $r.CompletionMatches | Should -BeNullOrEmpty
        $r = TabExpansion2 -inputScript ($t = 'Get-StackStatistics -Layer ') -cursorColumn $t.Length
        # Every layer a stack counts in, Dhcp included (a stack started with -Dhcp has it), in Get-StackStatistics' order.
        $layers = @(Get-StackStatistics -Stack $cli -All | ForEach-Object Layer | Select-Object -Unique)
        $r.CompletionMatches.CompletionText | Should -Be (@($layers | Where-Object { $_ -ne 'Stack' }) + 'Dhcp' + 'Stack')
    }

    It 'completes -Protocol with the protocols in the packet log, and -Encoding with the codec''s names' {
        $null = Test-StackConnection 192.0.2.1 -Count 1 -Stack $cli
        $r = TabExpansion2 -inputScript ($t = "Get-StackPacket -Stack $($cli.Name) -Protocol ") -cursorColumn $t.Length
        $r.CompletionMatches.CompletionText | Should -Contain 'ICMP'
        $r.CompletionMatches.CompletionText | Should -Contain 'ARP'
        $r = TabExpansion2 -inputScript ($t = 'Send-StackData x -Encoding ') -cursorColumn $t.Length
        $r.CompletionMatches.CompletionText | Should -Be @('utf8', 'ascii', 'latin1', 'unicode')
    }
}

Describe 'Get-Help about_NetStack' {
    It 'explains the concepts after Import-Module' {
        $text = Get-Help about_NetStack | Out-String
        foreach ($section in 'STACKS', 'THE EMBEDDED LAB', 'THE DEFAULT STACK', 'SOCKETS AND RECV\(\) SEMANTICS', 'CAPTURE', 'ERRORS') {
            $text | Should -Match "(?m)^\s*$section\s*$"
        }
    }
}
