# Host names wherever an address is taken (Connect-StackSocket, Send-StackData -RemoteAddress, Test-StackConnection),
# and Test-StackConnection's port probes, on a virtual network with a DNS server written with the module's cmdlets.
BeforeAll {
    . $PSScriptRoot/Common.ps1
    . $PSScriptRoot/TestServers.ps1
    $net = New-TestName 'names'
    $srv = Start-Stack -VirtualNetwork $net -IPAddress 192.0.2.1/24 -Name (New-TestName 'namesS')
    $cli = Start-Stack -VirtualNetwork $net -IPAddress 192.0.2.2/24 -Name (New-TestName 'namesC') -DnsServer 192.0.2.1
    $dns = Start-TestDnsServer $srv -Address 192.0.2.1   # every name in .test is the server
    $listener = Start-StackListener 80 -Stack $srv
}
AfterAll {
    Stop-TestServer $dns
    $srv, $cli | Stop-Stack -Confirm:$false -ErrorAction SilentlyContinue
}

Describe 'Names wherever an address is taken' {
    It 'Connect-StackSocket resolves a name and shows it beside the address' {
        $c = Connect-StackSocket web.test 80 -Stack $cli
        try {
            $c.RemoteEndPoint.ToString() | Should -Be '192.0.2.1:80'
            $c.RemoteName | Should -Be 'web.test'
            $c | Out-String -Width 200 | Should -Match '192\.0\.2\.1:80 \(web\.test\)'
            $s = $listener | Wait-StackConnection
            $s.RemoteEndPoint.Address.ToString() | Should -Be '192.0.2.2'
            $s | Close-StackSocket
        }
        finally { $c | Close-StackSocket }
    }

    It 'Connect-StackSocket names a host that does not resolve and leaves no socket behind' {
        # The ids, not the count: the previous test's connection may still be finishing its close in the background.
        $before = @(Get-StackConnection -Stack $cli -Protocol Tcp | ForEach-Object Id)
        $c = Connect-StackSocket nosuch.invalid 80 -Stack $cli -ErrorVariable e -ErrorAction SilentlyContinue
        $c | Should -BeNullOrEmpty
        $e[0].FullyQualifiedErrorId | Should -BeLike 'NameNotFound,*'
        $e[0].CategoryInfo.Category | Should -Be 'ObjectNotFound'
        $e[0].Exception.Message | Should -Match 'nosuch\.invalid'
        @(Get-StackConnection -Stack $cli -Protocol Tcp | Where-Object Id -notin $before).Count | Should -Be 0
    }

    It 'Connect-StackSocket sets a UDP socket''s peer by name' {
        $u = New-StackSocket Udp -Stack $cli | Connect-StackSocket web.test 7001
        try {
            $u.RemoteEndPoint.ToString() | Should -Be '192.0.2.1:7001'
            $u.RemoteName | Should -Be 'web.test'
        }
        finally { $u | Close-StackSocket }
    }

    It 'Send-StackData -RemoteAddress takes a name and says which address it used' {
        $server = New-StackSocket Udp -LocalPort 7002 -Stack $srv
        $client = New-StackSocket Udp -Stack $cli
        try {
            $verbose = Send-StackData -Socket $client -Text 'by name' -RemoteAddress echo.test -RemotePort 7002 -Verbose 4>&1
            "$verbose" | Should -Match 'to echo\.test \(192\.0\.2\.1\):7002'
            (Receive-StackData $server -AsDatagram -TimeoutSec 30).Text | Should -Be 'by name'
            Send-StackData -Socket $client -Text 'x' -RemoteAddress nosuch.invalid -RemotePort 7002 -ErrorVariable e -ErrorAction SilentlyContinue
            $e[0].FullyQualifiedErrorId | Should -BeLike 'NameNotFound,*'
        }
        finally { $server, $client | Close-StackSocket }
    }
}

Describe 'Test-StackConnection port probes' {
    It 'tests several TCP ports of a name: the address used, status and latency' {
        $r = Test-StackConnection web.test -TcpPort 80, 81, 82 -Stack $cli
        $r.Count | Should -Be 3
        $r | ForEach-Object { $_ | Should -BeOfType NetStack.PowerShell.StackTcpTestResult }
        $r.Destination | Select-Object -Unique | Should -Be 'web.test'
        $r | ForEach-Object Address | Select-Object -Unique | Should -Be '192.0.2.1'   # ($r.Address is the array's own Address method)
        $r.TcpPort | Should -Be @(80, 81, 82)
        $r.Status | Should -Be @('Open', 'Closed', 'Closed')
        $r.Succeeded | Should -Be @($true, $false, $false)
        $r[0].Latency | Should -BeGreaterThan 0
        $r[1].Error | Should -Match 'refused|reset'
        $r | Out-String -Width 200 | Should -Match 'Destination\s+Address\s+TcpPort\s+Status\s+Latency\(ms\)'
        while ($s = $listener | Wait-StackConnection -TimeoutSec 1 -ErrorAction SilentlyContinue) { $s | Close-StackSocket }
    }

    It '-Quiet gives one bool per port, -Detailed the source and error' {
        Test-StackConnection 192.0.2.1 -TcpPort 80, 81 -Quiet -Stack $cli | Should -Be @($true, $false)
        $d = Test-StackConnection 192.0.2.1 -TcpPort 81 -Detailed -Stack $cli
        $d.Source | Should -BeLike '192.0.2.2:*'
        $d | Out-String -Width 250 | Should -Match 'Status\s+Latency\(ms\)\s+Source\s+Error'
        Test-StackConnection nosuch.invalid -TcpPort 80, 81 -Quiet -Stack $cli | Should -Be @($false, $false)
        while ($s = $listener | Wait-StackConnection -TimeoutSec 1 -ErrorAction SilentlyContinue) { $s | Close-StackSocket }
    }

    It 'probes UDP: port unreachable is Closed, silence OpenOrFiltered, an answer Open' {
        $closed = Test-StackConnection 192.0.2.1 -UdpPort 9 -TimeoutSeconds 10 -Stack $cli
        $closed | Should -BeOfType NetStack.PowerShell.StackUdpTestResult
        $closed.Status | Should -Be 'Closed'
        $closed.Error | Should -Match 'port unreachable'
        $quiet = New-StackSocket Udp -LocalPort 7003 -Stack $srv
        $answering = New-StackSocket Udp -LocalPort 7004 -Stack $srv
        $ps = New-ModulePowerShell
        try {
            (Test-StackConnection 192.0.2.1 -UdpPort 7003 -TimeoutSeconds 1 -Stack $cli).Status | Should -Be 'OpenOrFiltered'
            $handle = $ps.AddCommand('Test-StackConnection').AddParameters(@{ ComputerName = 'web.test'; UdpPort = 7004; Stack = $cli.Name; TimeoutSeconds = 30 }).BeginInvoke()
            $probe = Receive-StackData $answering -AsDatagram -TimeoutSec 30
            $probe.Length | Should -Be 0
            Send-StackData -Socket $answering -Text 'here' -RemoteAddress $probe.RemoteAddress -RemotePort $probe.RemotePort
            $open = $ps.EndInvoke($handle)
            $open[0].Status | Should -Be 'Open'
            $open[0].Address | Should -Be '192.0.2.1'
            [Text.Encoding]::ASCII.GetString($open[0].Reply) | Should -Be 'here'
            $open[0].Source | Should -Be "192.0.2.2:$($probe.RemotePort)"
            Test-StackConnection 192.0.2.1 -UdpPort 9 -Quiet -TimeoutSeconds 10 -Stack $cli | Should -BeExactly $false
        }
        finally { $ps.Dispose(); $quiet, $answering | Close-StackSocket }
    }
}
