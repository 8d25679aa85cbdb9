BeforeAll {
    . $PSScriptRoot/Common.ps1
    $net = New-TestName 'diag'
    $a = Start-Stack -VirtualNetwork $net -IPAddress 192.0.2.1/24 -Name (New-TestName 'diagA')
    $b = Start-Stack -VirtualNetwork $net -IPAddress 192.0.2.2/24 -Name (New-TestName 'diagB') -PacketLogSize 256
}
AfterAll {
    $a, $b | Stop-Stack -Confirm:$false -ErrorAction SilentlyContinue
}

Describe 'Test-StackConnection (ICMP echo)' {
    It 'writes one reply per echo with latency and TTL' {
        $r = Test-StackConnection 192.0.2.1 -Count 3 -Delay 0 -Stack $b
        $r.Count | Should -Be 3
        $r | Should -BeOfType NetStack.PowerShell.StackPingReply
        $r.Ping | Should -Be @(1, 2, 3)
        $r | ForEach-Object { $_.Status | Should -Be 'Success'; $_.Ttl | Should -Be 64; $_.Address | Should -Be '192.0.2.1'; $_.Latency | Should -BeGreaterOrEqual 0 }
        $r[0].BufferSize | Should -Be 32
    }

    It 'renders a table with latency' {
        Test-StackConnection 192.0.2.1 -Count 1 -Stack $b | Out-String | Should -Match 'Ping\s+Source\s+Address\s+Latency\(ms\)\s+Ttl\s+BufferSize\s+Status'
    }

    It 'takes targets from the pipeline and by property name (IPAddress)' {
        ('192.0.2.1' | Test-StackConnection -Count 1 -Stack $b).Status | Should -Be 'Success'
        ([pscustomobject]@{ IPAddress = '192.0.2.1' } | Test-StackConnection -Count 1 -Stack $b).Status | Should -Be 'Success'
    }

    It 'returns a bool with -Quiet' {
        Test-StackConnection 192.0.2.1 -Count 1 -Quiet -Stack $b | Should -BeExactly $true
        Test-StackConnection 192.0.2.201 -Count 1 -TimeoutSeconds 1 -Quiet -Stack $b | Should -BeExactly $false
    }

    It 'declares its output types per parameter set' {
        $types = (Get-Command Test-StackConnection).OutputType
        ($types | Where-Object { $_.Type -eq [NetStack.PowerShell.StackPingReply] }) | Should -Not -BeNullOrEmpty
        ($types | Where-Object { $_.Type -eq [bool] }) | Should -Not -BeNullOrEmpty
    }

    It 'reports a silent host as a non-terminating error with a stable id' {
        $r = Test-StackConnection 192.0.2.202 -Count 1 -TimeoutSeconds 1 -Stack $b -ErrorVariable e -ErrorAction SilentlyContinue
        $r | Should -BeNullOrEmpty
        $e.Count | Should -Be 1
        $e[0].FullyQualifiedErrorId | Should -BeIn @('TimedOut,NetStack.PowerShell.TestStackConnectionCommand', 'HostUnreachable,NetStack.PowerShell.TestStackConnectionCommand')
        $e[0].CategoryInfo.Category | Should -BeIn @('OperationTimeout', 'ConnectionError')
    }

    It 'reports an off-subnet target with no gateway as NetworkUnreachable' {
        Test-StackConnection 198.51.100.7 -Count 1 -Stack $b -ErrorVariable e -ErrorAction SilentlyContinue
        $e[0].FullyQualifiedErrorId | Should -BeLike 'NetworkUnreachable,*'
        $e[0].CategoryInfo.Category | Should -Be 'ConnectionError'
    }

    It 'fails at binding for bad values' {
        { Test-StackConnection 192.0.2.1 -Count 0 -Stack $b } | Should -Throw -ErrorId 'ParameterArgumentValidationError*'
        { Test-StackConnection 192.0.2.1 -MaxHops 300 -Stack $b } | Should -Throw -ErrorId 'ParameterArgumentValidationError*'
    }

    It 'is cancelled promptly when its pipeline is stopped from another thread' {
        $ps = New-ModulePowerShell
        try {
            # An address nobody has, with a long timeout: the cmdlet waits for the echo reply; the ARP narration
            # shows the wait is under way.
            Assert-StopsPromptly $ps Test-StackConnection @{ ComputerName = '192.0.2.203'; Count = 1; TimeoutSeconds = 60; Stack = $b.Name; Verbose = $true } `
                -Until { $ps.Streams.Verbose.Count -gt 0 }
        }
        finally { $ps.Dispose() }
    }

    It 'reports progress while it pings several times' {
        $ps = New-ModulePowerShell
        try {
            $null = $ps.AddCommand('Test-StackConnection').AddParameters(@{ ComputerName = '192.0.2.1'; Count = 3; Delay = 0; TimeoutSeconds = 30; Stack = $b.Name })
            $replies = $ps.Invoke()
            $replies.Count | Should -Be 3
            $progress = $ps.Streams.Progress
            ($progress | Where-Object RecordType -eq 'Processing').StatusDescription | Should -Be @('Echo 1 of 3', 'Echo 2 of 3', 'Echo 3 of 3')
            $progress[-1].RecordType | Should -Be 'Completed'
        }
        finally { $ps.Dispose() }
    }

    It 'narrates protocol events with -Verbose' {
        $null = Remove-StackArpEntry 192.0.2.1 -Stack $b -Confirm:$false -ErrorAction SilentlyContinue
        $v = Test-StackConnection 192.0.2.1 -Count 1 -Stack $b -Verbose 4>&1 | Where-Object { $_ -is [System.Management.Automation.VerboseRecord] }
        ($v.Message -join "`n") | Should -Match 'resolving'
    }

    It 'reports a name it cannot resolve as ObjectNotFound' {
        Test-StackConnection 'no-such-host.invalid' -Count 1 -Stack $b -ErrorVariable e -ErrorAction SilentlyContinue
        $e[0].FullyQualifiedErrorId | Should -BeLike 'NoDnsServer,*'
        $e[0].CategoryInfo.Category | Should -Be 'ObjectNotFound'
    }
}

Describe 'Get-StackStatistics' {
    It 'gives counters per layer, filtered by layer and name; those that moved unless -All' {
        $null = Test-StackConnection 192.0.2.1 -Count 1 -Stack $b
        $all = Get-StackStatistics -Stack $b -All
        $all | Should -BeOfType NetStack.PowerShell.StackStatistic
        $all.Layer | Select-Object -Unique | Should -Contain 'Icmp'
        $icmp = Get-StackStatistics Icmp -Name EchoRe* -Stack $b
        $icmp.Name | Should -Contain 'EchoRepliesReceived'
        ($icmp | Where-Object Name -eq 'EchoRepliesReceived').Value | Should -BeGreaterThan 0
        $moved = @(Get-StackStatistics -Stack $b)
        $moved | ForEach-Object { $_.Value | Should -Not -Be 0 }
        $moved.Count | Should -BeLessThan @($all).Count
        @($all | Where-Object Value -eq 0).Count | Should -BeGreaterThan 0
        # Asked for by its exact name, a counter shows at zero too.
        (Get-StackStatistics -Stack $b -Layer Tcp -Name DroppedBadChecksum).Value | Should -Be 0
    }

    It 'renders a table grouped by layer, naming the stack' {
        $text = Get-StackStatistics Icmp -Stack $b | Out-String
        $text | Should -Match "Layer: Icmp  \(stack $([regex]::Escape($b.Name))\)"
        $text | Should -Match 'Name\s+Value'
    }

    It 'completes layer names' {
        $r = TabExpansion2 -inputScript ($s = 'Get-StackStatistics -Layer Ic') -cursorColumn $s.Length
        $r.CompletionMatches.CompletionText | Should -Contain 'Icmp'
    }
}

Describe 'Get-StackPacket' {
    BeforeAll {
        $null = Clear-StackArpCache -Stack $b -Confirm:$false
        $null = Test-StackConnection 192.0.2.1 -Count 2 -Delay 0 -Stack $b
    }

    It 'decodes recent frames both ways, like tshark' {
        $p = Get-StackPacket -Stack $b
        $p | Should -BeOfType NetStack.PowerShell.StackPacket
        $p.Direction | Should -Contain 'In'
        $p.Direction | Should -Contain 'Out'
        $arp = $p | Where-Object Protocol -eq 'ARP'
        $arp.Info | Should -Contain 'Who has 192.0.2.1? Tell 192.0.2.2'
        $arp.Info | Should -Contain '192.0.2.1 is at 02-00-C0-00-02-01'
        $echo = $p | Where-Object { $_.Protocol -eq 'ICMP' -and $_.Direction -eq 'Out' } | Select-Object -Last 1
        $echo.Source | Should -Be '192.0.2.2'
        $echo.Destination | Should -Be '192.0.2.1'
        $echo.Info | Should -Match '^Echo \(ping\) request'
        $echo.Length | Should -Be 74
    }

    It 'filters by protocol, direction and -Last' {
        $icmp = Get-StackPacket -Stack $b -Protocol ICMP
        $icmp.Protocol | Select-Object -Unique | Should -Be 'ICMP'
        (Get-StackPacket -Stack $b -Protocol ICMP -Direction In).Info | ForEach-Object { $_ | Should -Match 'reply' }
        $last = Get-StackPacket -Stack $b -Last 2
        $last.Count | Should -Be 2
        $last[-1].Number | Should -Be (Get-StackPacket -Stack $b)[-1].Number
    }

    It 'renders No., Time, Source, Destination, Protocol, Info' {
        Get-StackPacket -Stack $b -Last 3 | Out-String -Width 200 | Should -Match 'No\.\s+Time\s+Dir\s+Source\s+Destination\s+Protocol\s+Length\s+Info'
    }

    It 'reports an unknown socket as ObjectNotFound' {
        $err = { Get-StackPacket -Stack $b -Socket 999 } | Should -Throw -PassThru
        $err.FullyQualifiedErrorId | Should -BeLike 'SocketNotFound,*'
        $err.CategoryInfo.Category | Should -Be 'ObjectNotFound'
    }
}

Describe 'The views take several stacks' {
    BeforeAll {
        $gapC = Start-Stack -VirtualNetwork $net -IPAddress 192.0.2.3/24 -Name (New-TestName 'diagC')   # running, never named
        $null = Test-StackConnection 192.0.2.1 -Count 1 -Stack $b   # each of a and b learns the other's MAC
        $ua = New-StackSocket Udp -LocalPort 4001 -Stack $a
        $ub = New-StackSocket Udp -LocalPort 4002 -Stack $b
        $uc = New-StackSocket Udp -LocalPort 4003 -Stack $gapC
    }
    AfterAll {
        $ua, $ub, $uc | Close-StackSocket -ErrorAction SilentlyContinue
        $gapC | Stop-Stack -Confirm:$false -ErrorAction SilentlyContinue
    }

    It 'shows the ARP caches of the stacks named, each row naming its stack' {
        $rows = Get-StackArpCache -Stack $a.Name, $b.Name -IPAddress 192.0.2.1, 192.0.2.2
        ($rows | Where-Object Stack -eq $a.Name).IPAddress | Should -Be '192.0.2.2'
        ($rows | Where-Object Stack -eq $b.Name).IPAddress | Should -Be '192.0.2.1'
        $rows.Stack | Should -Not -Contain $gapC.Name -Because 'a stack not named is not shown'
    }

    It 'takes stacks piped from Get-Stack, a group per stack' {
        $groups = Get-Stack -Name $a.Name, $b.Name | Get-StackStatistics Icmp -Name EchoRequestsSent -All | Group-Object Stack
        ($groups.Name | Sort-Object) | Should -Be (@($a.Name, $b.Name) | Sort-Object)
        ($groups | Where-Object Name -eq $b.Name).Group.Value | Should -BeGreaterOrEqual 1
        ($groups | Where-Object Name -eq $a.Name).Group.Value | Should -Be 0
    }

    It 'lists the connections of stack objects given together, and a socket piped in still picks its own stack' {
        $rows = Get-StackConnection -Stack $a, $b -Protocol Udp
        ($rows | Where-Object LocalPort -eq 4001).Stack | Should -Be $a.Name
        ($rows | Where-Object LocalPort -eq 4002).Stack | Should -Be $b.Name
        $rows.LocalPort | Should -Not -Contain 4003
        ($ub | Get-StackConnection -Protocol Udp).Stack | Sort-Object -Unique | Should -Be $b.Name
    }

    It 'Get-StackPacket shows the logs of the stacks named, the default stack without -Stack, and one stack with -Socket' {
        $rows = Get-StackPacket -Stack $a, $b -Protocol ICMP
        ($rows.Stack | Sort-Object -Unique) | Should -Be (@($a.Name, $b.Name) | Sort-Object)
        ($rows | Where-Object Stack -eq $a.Name).Direction | Should -Contain 'In' -Because "a answered b's pings"
        (Get-StackPacket).Stack | Sort-Object -Unique | Should -Be $gapC.Name -Because 'the most recently started stack is the default'
        Send-StackData -Socket $ub -Text hi -RemoteAddress 192.0.2.1 -RemotePort 4001
        $null = Receive-StackData -Socket $ua -TimeoutSec 30   # the datagram is in a's log once a has it
        $mine = $ua | Get-StackPacket
        $mine.Stack | Sort-Object -Unique | Should -Be $a.Name -Because 'a piped socket names its own stack, not the default one'
        $mine.Info | Should -Match '4002 → 4001'
        { Get-StackPacket -Socket $ua.Id -Stack $a, $b } | Should -Throw -ErrorId 'SocketOfOneStack,*'
    }

    It 'shows the stacks before an unknown name, then stops with StackNotFound naming it' {
        $script:rows = @()
        $err = { Get-StackConnection -Stack $a.Name, 'no-such-gap-stack' -Protocol Udp | ForEach-Object { $script:rows += $_ } } | Should -Throw -PassThru
        $err.FullyQualifiedErrorId | Should -BeLike 'StackNotFound,*'
        $err.Exception.Message | Should -Match 'no-such-gap-stack'
        $script:rows.Stack | Sort-Object -Unique | Should -Be $a.Name
    }
}

Describe 'Get-StackConnection' {
    It 'has the netstat filters and completes TCP state names' {
        $c = Get-Command Get-StackConnection
        foreach ($p in 'Protocol', 'State', 'LocalPort', 'RemoteAddress', 'RemotePort', 'Stack') { $c.Parameters.Keys | Should -Contain $p }
        $r = TabExpansion2 -inputScript ($s = 'Get-StackConnection -State TimeW') -cursorColumn $s.Length
        $r.CompletionMatches.CompletionText | Should -Be @('TimeWait')
    }
}
