BeforeAll {
    . $PSScriptRoot/Common.ps1
    $net = New-TestName 'dns'
    $srv = Start-Stack -VirtualNetwork $net -IPAddress 192.0.2.1/24 -Name (New-TestName 'dnsS')
    $cli = Start-Stack -VirtualNetwork $net -IPAddress 192.0.2.2/24 -Name (New-TestName 'dnsC') -DnsServer 192.0.2.1
    $dnsSocket = New-StackSocket Udp -LocalPort 53 -Stack $srv

    # A tiny DNS server built from the module's own cmdlets, in its own runspace: every name in .test resolves to
    # 192.0.2.80 with TTL 300, anything else is NXDOMAIN.
    $server = New-ModulePowerShell
    $null = $server.AddScript({
        param($StackName, $SocketId)
        while ($true) {
            $d = Receive-StackData -Socket $SocketId -Stack $StackName -AsDatagram -TimeoutSec 60 -ErrorAction Stop
            $q = $d.Data
            $labels = @(); $i = 12
            while ($q[$i] -ne 0) { $labels += [Text.Encoding]::ASCII.GetString($q, $i + 1, $q[$i]); $i += $q[$i] + 1 }
            $question = $q[12..($i + 4)]
            $known = $labels[-1] -eq 'test'
            $header = @($q[0], $q[1], 0x81, $(if ($known) { 0x80 } else { 0x83 }), 0, 1, 0, $(if ($known) { 1 } else { 0 }), 0, 0, 0, 0)
            $answer = if ($known) { @(0xC0, 0x0C, 0, 1, 0, 1, 0, 0, 1, 44, 0, 4, 192, 0, 2, 80) } else { @() }
            Send-StackData ([byte[]]($header + $question + $answer)) -Socket $SocketId -Stack $StackName -RemoteAddress $d.RemoteAddress -RemotePort $d.RemotePort
        }
    }).AddArgument($srv.Name).AddArgument($dnsSocket.Id)
    $serverRun = $server.BeginInvoke()
}
AfterAll {
    $server.Stop(); $server.Dispose()
    $srv, $cli | Stop-Stack -Confirm:$false -ErrorAction SilentlyContinue
}

Describe 'Resolve-StackDnsName' {
    It 'resolves A records through the stack''s DNS server' {
        $r = Resolve-StackDnsName www.example.test -Stack $cli
        $r | Should -BeOfType NetStack.PowerShell.StackDnsRecord
        $r.IPAddress | Should -Be '192.0.2.80'
        $r.TTL | Should -BeGreaterThan 0
        $r.Type | Should -Be 'A'
        $r.Server | Should -Be '192.0.2.1'
        Resolve-StackDnsName www.example.test -Stack $cli | Out-String | Should -Match 'Name\s+Type\s+TTL\s+IPAddress'
    }

    It 'asks -Server when given, and takes names from the pipeline' {
        ('a.test', 'b.test' | Resolve-StackDnsName -Server 192.0.2.1 -Stack $cli).IPAddress | Should -Be @('192.0.2.80', '192.0.2.80')
    }

    It 'reports NXDOMAIN as NameNotFound (ObjectNotFound)' {
        Resolve-StackDnsName nosuch.invalid -Stack $cli -ErrorVariable e -ErrorAction SilentlyContinue | Should -BeNullOrEmpty
        $e[0].FullyQualifiedErrorId | Should -BeLike 'NameNotFound,*'
        $e[0].CategoryInfo.Category | Should -Be 'ObjectNotFound'
    }

    It 'lets Test-StackConnection take a name' {
        Test-StackConnection web.test -Count 1 -TimeoutSeconds 1 -Stack $cli -ErrorVariable e -ErrorAction SilentlyContinue | Out-Null
        # 192.0.2.80 does not exist: the ping fails, but the name resolved (the error names the address).
        $e[0].Exception.Message | Should -Match '192\.0\.2\.80'
    }
}
