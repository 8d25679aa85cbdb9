BeforeAll {
    . $PSScriptRoot/Common.ps1
    . $PSScriptRoot/TestServers.ps1
    $net = New-TestName 'dns'
    $srv = Start-Stack -VirtualNetwork $net -IPAddress 192.0.2.1/24 -Name (New-TestName 'dnsS')
    $cli = Start-Stack -VirtualNetwork $net -IPAddress 192.0.2.2/24 -Name (New-TestName 'dnsC') -DnsServer 192.0.2.1
    # Every name in .test resolves to 192.0.2.80 with TTL 300, anything else is NXDOMAIN (TestServers.ps1).
    $server = Start-TestDnsServer $srv
}
AfterAll {
    Stop-TestServer $server
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
