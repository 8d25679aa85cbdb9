BeforeAll {
    . $PSScriptRoot/Common.ps1
    $net = New-TestName 'tcp'
    $srv = Start-Stack -VirtualNetwork $net -IPAddress 192.0.2.1/24 -Name (New-TestName 'tcpS')
    $cli = Start-Stack -VirtualNetwork $net -IPAddress 192.0.2.2/24 -Name (New-TestName 'tcpC')
}
AfterAll {
    $srv, $cli | Stop-Stack -Confirm:$false -ErrorAction SilentlyContinue
}

Describe 'TCP: listen, connect, send, receive, close' {
    BeforeAll {
        $listener = Start-StackListener 8080 -Stack $srv
        $client = New-StackSocket Tcp -NoDelay -Stack $cli | Connect-StackSocket 192.0.2.1 8080 -TimeoutSec 30
        $server = Wait-StackConnection -Listener $listener -TimeoutSec 30
    }
    AfterAll {
        $client, $server, $listener | Where-Object { $_ } | Close-StackSocket -Abort -ErrorAction SilentlyContinue
    }

    It 'establishes a connection both ways' {
        $listener.Port | Should -Be 8080
        $listener | Out-String -Width 200 | Should -Match '192\.0\.2\.1:8080\s+\*:\*\s+Listen'
        $client.State | Should -Be 'Established'
        $server.State | Should -Be 'Established'
        $server.RemoteEndPoint.Port | Should -Be $client.LocalEndPoint.Port
        (Get-StackConnection -Stack $srv -State Listen).LocalPort | Should -Be 8080
        $row = Get-StackConnection -Stack $cli -RemotePort 8080
        $row.State | Should -Be 'Established'
        $row.Protocol | Should -Be 'Tcp'
        $row.SndUna | Should -Not -BeNullOrEmpty
        $row.Mss | Should -BeGreaterThan 0
    }

    It 'receives like recv(), exactly -Count bytes, and -Until a delimiter without losing what follows' {
        $client | Send-StackData "hello`nworld`nrest"
        $server | Receive-StackData -Until "`n" -AsString -TimeoutSec 30 | Should -Be "hello`n"
        $server | Receive-StackData -Count 5 -AsString -TimeoutSec 30 | Should -Be 'world'
        $server | Receive-StackData -Count 1 -AsString -TimeoutSec 30 | Should -Be "`n"
        $bytes = $server | Receive-StackData -TimeoutSec 30
        , $bytes | Should -BeOfType [byte[]]
        [Text.Encoding]::UTF8.GetString($bytes) | Should -Be 'rest'
    }

    It 'shows TCP internals in the list view and netstat columns in the table' {
        $text = Get-StackConnection -Stack $cli -RemotePort 8080 | Out-String -Width 200
        $text | Should -Match 'Proto\s+Local Address\s+Foreign Address\s+State\s+Recv-Q\s+Send-Q'
        $text | Should -Match 'tcp\s+192\.0\.2\.2:\d+\s+192\.0\.2\.1:8080\s+Established'
        $list = Get-StackConnection -Stack $cli -RemotePort 8080 | Format-List | Out-String -Width 200
        foreach ($p in 'SndUna', 'RcvNxt', 'Srtt', 'Rto', 'Cwnd', 'RcvBuf', 'SndBuf') { $list | Should -Match $p }
    }

    It 'decodes the handshake in Get-StackPacket with relative numbers' {
        $p = Get-StackPacket -Stack $cli -Socket $client.Id -Protocol TCP
        $p[0].Info | Should -Match '\[SYN\] Seq=0 Win=\d+ Len=0 MSS=\d+'
        $p[1].Info | Should -Match '\[SYN, ACK\] Seq=0 Ack=1'
        $p[2].Info | Should -Match '\[ACK\] Seq=1 Ack=1'
    }

    It 'times out a receive with OperationTimeout and keeps the connection' {
        $server | Receive-StackData -TimeoutSec 0 -ErrorVariable e -ErrorAction SilentlyContinue | Should -BeNullOrEmpty
        $e[0].FullyQualifiedErrorId | Should -BeLike 'TimedOut,*'
        $e[0].CategoryInfo.Category | Should -Be 'OperationTimeout'
        $client | Send-StackData 'still here'
        $server | Receive-StackData -AsString -TimeoutSec 30 | Should -Be 'still here'
    }

    It 'narrates the TCP events with -Verbose' {
        $l2 = Start-StackListener 8081 -Stack $srv
        try {
            $v = New-StackSocket Tcp -Stack $cli | Connect-StackSocket 192.0.2.1 8081 -Verbose 4>&1
            ($v | Where-Object { $_ -is [System.Management.Automation.VerboseRecord] }).Message -join "`n" | Should -Match 'Tcp'
            $c2 = $v | Where-Object { $_ -isnot [System.Management.Automation.VerboseRecord] }
            $c2 | Close-StackSocket -Abort
        }
        finally { $l2 | Close-StackSocket }
    }

    It 'reads to the end after the peer closes, then returns nothing' {
        $l3 = Start-StackListener 8082 -Stack $srv
        try {
            $c3 = New-StackSocket Tcp -Stack $cli | Connect-StackSocket 192.0.2.1 8082
            $s3 = $l3 | Wait-StackConnection -TimeoutSec 30
            $c3 | Send-StackData ('x' * 3000)
            $c3 | Close-StackSocket
            ($s3 | Receive-StackData -ToEnd -AsString -TimeoutSec 30).Length | Should -Be 3000
            $s3 | Receive-StackData -TimeoutSec 30 | Should -BeNullOrEmpty
            $s3 | Close-StackSocket
        }
        finally { $l3 | Close-StackSocket -ErrorAction SilentlyContinue }
    }
}

Describe 'TCP errors' {
    It 'connects from a chosen local port, and refuses it while in use' {
        $l = Start-StackListener 8400 -Stack $srv
        try {
            $c = New-StackSocket Tcp -LocalPort 40123 -Stack $cli | Connect-StackSocket 192.0.2.1 8400
            $c.LocalEndPoint.Port | Should -Be 40123
            $s = $l | Wait-StackConnection -TimeoutSec 30
            $s.RemoteEndPoint.Port | Should -Be 40123
            New-StackSocket Tcp -LocalPort 40123 -Stack $cli | Connect-StackSocket 192.0.2.1 8400 -ErrorVariable e -ErrorAction SilentlyContinue | Should -BeNullOrEmpty
            $e[0].FullyQualifiedErrorId | Should -BeLike 'AddressInUse,*'
            $e[0].CategoryInfo.Category | Should -Be 'ResourceExists'
            $c, $s | Close-StackSocket -Abort
        }
        finally { $l | Close-StackSocket }
    }

    It 'reports a refused connection as ConnectionRefused (ConnectionError)' {
        $s = New-StackSocket Tcp -Stack $cli
        $s | Connect-StackSocket 192.0.2.1 9 -TimeoutSec 30 -ErrorVariable e -ErrorAction SilentlyContinue | Should -BeNullOrEmpty
        $e[0].FullyQualifiedErrorId | Should -BeLike 'ConnectionRefused,*'
        $e[0].CategoryInfo.Category | Should -Be 'ConnectionError'
    }

    It 'makes and connects a socket when none is given, like connect() without socket()' {
        $l = Start-StackListener 8095 -Stack $srv
        try {
            $c = Connect-StackSocket 192.0.2.1 8095 -NoDelay -Stack $cli -TimeoutSec 30
            $c | Should -Not -BeNullOrEmpty
            $c.State | Should -Be 'Established'
            $c.RemoteEndPoint.Port | Should -Be 8095
            $s = Wait-StackConnection -Listener $l -TimeoutSec 30
            Send-StackData -Socket $c -Text 'made for you'
            $s | Receive-StackData -Count 12 -AsString -TimeoutSec 30 | Should -Be 'made for you'
            $c, $s | Close-StackSocket -Abort
        }
        finally { $l | Close-StackSocket }
        # A refused connect leaves no socket of its own behind.
        $before = @(Get-StackConnection -Stack $cli).Count
        Connect-StackSocket 192.0.2.1 9 -Stack $cli -TimeoutSec 30 -ErrorVariable e -ErrorAction SilentlyContinue | Should -BeNullOrEmpty
        $e[0].FullyQualifiedErrorId | Should -BeLike 'ConnectionRefused,*'
        Wait-Until { @(Get-StackConnection -Stack $cli).Count -le $before } -Because 'the failed socket to be released'
    }

    It 'sends -Text with -Encoding, and a string or bytes as -Data' {
        $l = Start-StackListener 8096 -Stack $srv
        try {
            $c = Connect-StackSocket 192.0.2.1 8096 -Stack $cli -TimeoutSec 30
            $s = Wait-StackConnection -Listener $l -TimeoutSec 30
            Send-StackData -Socket $c -Text 'é' -Encoding latin1
            Send-StackData -Socket $c -Text 'é'
            $c | Send-StackData ([byte[]](65, 66))
            ($s | Receive-StackData -Count 5 -TimeoutSec 30) -join ',' | Should -Be '233,195,169,65,66'
            (Get-Command Send-StackData).ParameterSets.Name | Should -Be @('Data', 'Text')
            $c, $s | Close-StackSocket -Abort
        }
        finally { $l | Close-StackSocket }
    }

    It 'finds a delimiter and counts bytes across large receives, keeping what follows' {
        $l = Start-StackListener 8097 -Stack $srv
        try {
            $c = Connect-StackSocket 192.0.2.1 8097 -Stack $cli -TimeoutSec 30
            $s = Wait-StackConnection -Listener $l -TimeoutSec 30
            $big = [byte[]]::new(300000)
            for ($i = 0; $i -lt $big.Length; $i++) { $big[$i] = 97 + $i % 26 }
            $c | Send-StackData $big
            Send-StackData -Socket $c -Text "|END|tail"
            $got = $s | Receive-StackData -Until '|END|' -TimeoutSec 30
            $got.Length | Should -Be 300005
            [System.Text.Encoding]::ASCII.GetString($got, 299990, 15) | Should -Be ([System.Text.Encoding]::ASCII.GetString($big, 299990, 10) + '|END|')
            $s | Receive-StackData -Count 4 -AsString -TimeoutSec 30 | Should -Be 'tail'
            $c | Send-StackData $big
            ($s | Receive-StackData -Count 200000 -TimeoutSec 30).Length | Should -Be 200000
            ($s | Receive-StackData -Count 100000 -TimeoutSec 30)[-1] | Should -Be $big[-1]
            $c, $s | Close-StackSocket -Abort
        }
        finally { $l | Close-StackSocket }
    }

    It 'refuses a TCP local address the stack does not have, and -Quiet hides resolution errors' {
        New-StackSocket Tcp -LocalAddress 192.0.2.77 -Stack $cli -ErrorVariable err -ErrorAction SilentlyContinue | Should -BeNullOrEmpty
        $err[0].FullyQualifiedErrorId | Should -BeLike 'AddressNotAvailable,*'
        $err[0].CategoryInfo.Category | Should -Be 'InvalidArgument'
        Start-StackListener 8099 -LocalAddress 192.0.2.77 -Stack $srv -ErrorVariable err2 -ErrorAction SilentlyContinue | Should -BeNullOrEmpty
        $err2[0].FullyQualifiedErrorId | Should -BeLike 'AddressNotAvailable,*'
        (New-StackSocket Tcp -LocalAddress 192.0.2.2 -Stack $cli) | Close-StackSocket
        Test-StackConnection no-such-host.test -Quiet -Stack $cli -ErrorVariable e | Should -BeFalse
        $e | Should -BeNullOrEmpty
        Test-StackConnection no-such-host.test -Stack $cli -ErrorVariable e2 -ErrorAction SilentlyContinue
        $e2 | Should -Not -BeNullOrEmpty
    }

    It 'reports a port already listened on as AddressInUse (ResourceExists)' {
        $l = Start-StackListener 8090 -Stack $srv
        try {
            Start-StackListener 8090 -Stack $srv -ErrorVariable e -ErrorAction SilentlyContinue | Should -BeNullOrEmpty
            $e[0].FullyQualifiedErrorId | Should -BeLike 'AddressInUse,*'
            $e[0].CategoryInfo.Category | Should -Be 'ResourceExists'
        }
        finally { $l | Close-StackSocket }
    }

    It 'shows progress while a long wait lasts, and completes it' {
        $l = Start-StackListener 8098 -Stack $srv
        $ps = New-ModulePowerShell
        try {
            $null = $ps.AddCommand('Wait-StackConnection').AddParameters(@{ Socket = $l.Id; Stack = $srv.Name; TimeoutSec = 2 })
            $null = $ps.Invoke()
            $records = @($ps.Streams.Progress | Where-Object ActivityId -eq 9)
            $records.Count | Should -BeGreaterThan 0
            $records[0].Activity | Should -BeLike '*connection*'
            $records[0].StatusDescription | Should -BeLike 'Waiting: * s of 2 s'
            $records[-1].RecordType | Should -Be 'Completed'
            $ps.Streams.Error[0].CategoryInfo.Category | Should -Be 'OperationTimeout'
        }
        finally { $ps.Dispose(); $l | Close-StackSocket }
    }

    It 'times out a wait for a connection, and Ctrl+C cancels one promptly' {
        $l = Start-StackListener 8091 -Stack $srv
        try {
            $l | Wait-StackConnection -TimeoutSec 0 -ErrorVariable e -ErrorAction SilentlyContinue | Should -BeNullOrEmpty
            $e[0].CategoryInfo.Category | Should -Be 'OperationTimeout'

            $ps = New-ModulePowerShell
            try {
                Assert-StopsPromptly $ps Wait-StackConnection @{ Socket = $l.Id; Stack = $srv.Name; TimeoutSec = 60 }
            }
            finally { $ps.Dispose() }
        }
        finally { $l | Close-StackSocket }
    }

    It 'refuses stream operations on a listener and waits on a connection' {
        $l = Start-StackListener 8092 -Stack $srv
        try {
            $err = { $l | Receive-StackData -TimeoutSec 1 } | Should -Throw -PassThru
            $err.FullyQualifiedErrorId | Should -BeLike 'WrongSocketType,*'
            $err.CategoryInfo.Category | Should -Be 'InvalidOperation'
        }
        finally { $l | Close-StackSocket }
    }
}

Describe 'Closing from the netstat view' {
    It 'aborts connections piped from Get-StackConnection by state, with -WhatIf support' {
        $l = Start-StackListener 8100 -Stack $srv
        $c = New-StackSocket Tcp -Stack $cli | Connect-StackSocket 192.0.2.1 8100
        $s = $l | Wait-StackConnection -TimeoutSec 30
        Get-StackConnection -Stack $cli -State Established -RemotePort 8100 | Close-StackSocket -Abort -WhatIf
        (Get-StackConnection -Stack $cli -RemotePort 8100).State | Should -Be 'Established'
        Get-StackConnection -Stack $cli -State Established -RemotePort 8100 | Close-StackSocket -Abort
        Wait-Until { -not (Get-StackConnection -Stack $cli -RemotePort 8100) } -Because 'the aborted connection to go'
        Wait-Until { -not (Get-StackConnection -Stack $srv -LocalPort 8100 -State Established) } -Because 'the RST to reach the server'
        $l | Close-StackSocket
    }
}

Describe 'TimeWait' {
    It 'clears a TimeWait connection with Get-StackConnection -State TimeWait | Close-StackSocket -Abort' {
        $l = Start-StackListener 8300 -Stack $srv
        try {
            $c = New-StackSocket Tcp -Stack $cli | Connect-StackSocket 192.0.2.1 8300
            $s = $l | Wait-StackConnection -TimeoutSec 30
            $c | Close-StackSocket                                   # we close first, so we end in TimeWait
            $s | Receive-StackData -TimeoutSec 30 | Should -BeNullOrEmpty   # the FIN arrived
            $s | Close-StackSocket
            Wait-Until { Get-StackConnection -Stack $cli -RemotePort 8300 -State TimeWait } -Because 'the client to reach TimeWait'
            Get-StackConnection -Stack $cli -State TimeWait -RemotePort 8300 | Close-StackSocket -Abort
            Wait-Until { -not (Get-StackConnection -Stack $cli -RemotePort 8300) } -Because 'the TimeWait entry to go'
        }
        finally { $l | Close-StackSocket }
    }
}

Describe 'Test-StackConnection -TcpPort' {
    It 'reports success for a listening port and failure for a closed one' {
        $l = Start-StackListener 8200 -Stack $srv
        try {
            $ok = Test-StackConnection 192.0.2.1 -TcpPort 8200 -Stack $cli
            $ok | Should -BeOfType NetStack.PowerShell.StackTcpTestResult
            $ok.Succeeded | Should -BeTrue
            Test-StackConnection 192.0.2.1 -TcpPort 8201 -Stack $cli -Quiet | Should -BeExactly $false
            (Test-StackConnection 192.0.2.1 -TcpPort 8201 -Stack $cli).Error | Should -Match 'refused|reset'
            Test-StackConnection 192.0.2.1 -TcpPort 8200 -Stack $cli | Out-String | Should -Match 'Destination\s+Address\s+TcpPort\s+Status'
        }
        finally { $l | Close-StackSocket }
    }
}

Describe 'BBR congestion control' {
    It 'is the default, -CongestionControl cubic chooses CUBIC, and BBR shows its model in Get-StackConnection | Format-List' {
        $bnet = New-TestName 'bbr'
        $bs = Start-Stack -VirtualNetwork $bnet -IPAddress 192.0.2.1/24 -Name (New-TestName 'bbrS') -CongestionControl cubic
        $bc = Start-Stack -VirtualNetwork $bnet -IPAddress 192.0.2.2/24 -Name (New-TestName 'bbrC')
        try {
            $l = Start-StackListener 9100 -Stack $bs
            $c = New-StackSocket Tcp -Stack $bc | Connect-StackSocket 192.0.2.1 9100 -TimeoutSec 30
            $s = Wait-StackConnection -Listener $l -TimeoutSec 30
            $c | Send-StackData ([byte[]]::new(200KB))   # within the send buffer: the send completes before the reads
            $got = 0
            while ($got -lt 200KB) { $got += ($s | Receive-StackData -TimeoutSec 30).Length }
            $row = Get-StackConnection -Stack $bc -RemotePort 9100
            $row.CongestionControl | Should -Be 'bbr'
            $row.BbrState | Should -BeIn 'Startup', 'Drain', 'ProbeBw', 'ProbeRtt'
            $row.BbrBandwidth | Should -BeGreaterThan 0
            $row.PacingRate | Should -BeGreaterThan 0
            $row.BbrMinRtt | Should -BeGreaterThan ([TimeSpan]::Zero)
            $list = $row | Format-List | Out-String -Width 200
            foreach ($p in 'BbrState', 'BbrBandwidth', 'BbrMinRtt', 'PacingRate') { $list | Should -Match $p }
            (Get-StackConnection -Stack $bs -LocalPort 9100 | Where-Object State -eq 'Established').CongestionControl | Should -Be 'cubic'
        }
        finally {
            $bs, $bc | Stop-Stack -Confirm:$false -ErrorAction SilentlyContinue
        }
    }
}
