BeforeAll {
    . $PSScriptRoot/Common.ps1
    . $PSScriptRoot/TestServers.ps1
    $net = New-TestName 'dns'
    $srv = Start-Stack -VirtualNetwork $net -IPAddress 192.0.2.1/24 -Name (New-TestName 'dnsS')
    $cli = Start-Stack -VirtualNetwork $net -IPAddress 192.0.2.2/24 -Name (New-TestName 'dnsC') -DnsServer 192.0.2.1
    # Every name in .test resolves to 192.0.2.80 with TTL 300, anything else is NXDOMAIN (TestServers.ps1).
    $server = Start-TestDnsServer $srv

    # A network of its own with a service host: authoritative for lab.test over UDP and TCP, every record type.
    $labNet = New-TestName 'dnslab'
    $svc = Start-StackServiceHost -VirtualNetwork $labNet
    $me = Start-Stack -VirtualNetwork $labNet -Name (New-TestName 'dnsMe') -DnsSearch lab.test
}
AfterAll {
    Stop-TestServer $server
    $srv, $cli | Stop-Stack -Confirm:$false -ErrorAction SilentlyContinue
    Get-Stack | Where-Object VirtualNetwork -eq $labNet | Stop-Stack -Confirm:$false
}

Describe 'Resolve-StackDnsName' {
    It 'resolves A records through the stack''s DNS server' {
        $r = Resolve-StackDnsName www.example.test -Stack $cli
        $r | Should -BeOfType NetStack.PowerShell.StackDnsRecord
        $r | Should -BeOfType NetStack.PowerShell.StackDnsRecordA
        $r.IPAddress | Should -Be '192.0.2.80'
        $r.IP4Address | Should -Be '192.0.2.80'
        $r.TTL | Should -BeGreaterThan 0
        $r.Type | Should -Be 'A'
        $r.Section | Should -Be 'Answer'
        $r.Server | Should -Be '192.0.2.1'
        Resolve-StackDnsName www.example.test -Stack $cli | Out-String | Should -Match 'Name\s+Type\s+TTL\s+Section\s+Data\s+-+.*\s+www\.example\.test\s+A\s+\d+\s+Answer\s+192\.0\.2\.80'
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

Describe 'Resolve-StackDnsName -Type against the service host' {
    It 'shows the CNAME chain, then the address at its end, in one table' {
        $r = Resolve-StackDnsName alias.lab.test -Stack $me
        $r.Type | Should -Be @('CNAME', 'CNAME', 'A')
        $r[0] | Should -BeOfType NetStack.PowerShell.StackDnsRecordNameHost
        ($r[0].Name, $r[0].NameHost) | Should -Be @('alias.lab.test', 'www.lab.test')
        ($r[1].Name, $r[1].NameHost) | Should -Be @('www.lab.test', 'host.lab.test')
        ($r[2].Name, $r[2].IPAddress) | Should -Be @('host.lab.test', '192.0.2.1')
        $text = $r | Out-String
        ([regex]::Matches($text, 'Name\s+Type\s+TTL\s+Section\s+Data')).Count | Should -Be 1 -Because 'one table, not a table then a list'
        $text | Should -Match 'www\.lab\.test\s+CNAME\s+60 Answer\s+host\.lab\.test'
    }

    It 'gives each type its fields: <Type>' -ForEach @(
        @{ Name = 'host.lab.test'; Type = 'AAAA'; Shape = 'StackDnsRecordAAAA'; Check = { $_.IP6Address | Should -Be '2001:db8::1'; $_.IPAddress | Should -Be '2001:db8::1' } }
        @{ Name = 'lab.test'; Type = 'MX'; Shape = 'StackDnsRecordMX'; Check = { $_.NameExchange | Should -Be 'mail.lab.test'; $_.Preference | Should -Be 10 } }
        @{ Name = 'lab.test'; Type = 'TXT'; Shape = 'StackDnsRecordTXT'; Check = { $_.Strings[0] | Should -Match '^NetStack embedded lab' } }
        @{ Name = 'lab.test'; Type = 'NS'; Shape = 'StackDnsRecordNameHost'; Check = { $_.NameHost | Should -Be 'ns.lab.test' } }
        @{ Name = 'www.lab.test'; Type = 'CNAME'; Shape = 'StackDnsRecordNameHost'; Check = { $_.NameHost | Should -Be 'host.lab.test' } }
        @{ Name = 'lab.test'; Type = 'SOA'; Shape = 'StackDnsRecordSOA'; Check = { $_.PrimaryServer | Should -Be 'ns.lab.test'; $_.NameAdministrator | Should -Be 'hostmaster.ns.lab.test'; $_.SerialNumber | Should -Be 1; $_.DefaultTTL | Should -Be 60 } }
        @{ Name = '_http._tcp.lab.test'; Type = 'SRV'; Shape = 'StackDnsRecordSRV'; Check = { $_.NameTarget | Should -Be 'host.lab.test'; $_.Port | Should -Be 80; $_.Priority | Should -Be 0 } }
        @{ Name = '1.2.0.192.in-addr.arpa'; Type = 'PTR'; Shape = 'StackDnsRecordNameHost'; Check = { $_.NameHost | Should -Be 'host.lab.test' } }
    ) {
        $r = Resolve-StackDnsName $Name -Type $Type -Stack $me
        $r.Type | Should -Be $Type
        $r | Should -BeOfType "NetStack.PowerShell.$Shape"
        $r | ForEach-Object $Check
    }

    It 'asks PTR for an address''s reverse name' {
        $r = Resolve-StackDnsName 192.0.2.1 -Stack $me
        ($r.Name, $r.Type, $r.NameHost) | Should -Be @('1.2.0.192.in-addr.arpa', 'PTR', 'host.lab.test')
    }

    It 'answers ANY with every record of the name' {
        $types = (Resolve-StackDnsName lab.test -Type ANY -Stack $me).Type
        foreach ($t in 'SOA', 'NS', 'A', 'MX', 'TXT') { $types | Should -Contain $t }
    }

    It 'takes a too large answer over TCP, and a larger one than 512 bytes over UDP with EDNS' {
        $big = Resolve-StackDnsName big.lab.test -Type TXT -Stack $me -NoCache
        $big.Count | Should -Be 30
        $big.OverTcp | Should -Not -Contain $false
        $many = Resolve-StackDnsName many.lab.test -Stack $me -NoCache
        $many.Count | Should -Be 40
        $many.OverTcp | Should -Not -Contain $true
    }

    It 'answers from the cache, unless -NoCache' {
        Resolve-StackDnsName mail.lab.test -Stack $me -NoCache | ForEach-Object FromCache | Should -Be $false
        Resolve-StackDnsName mail.lab.test -Stack $me | ForEach-Object FromCache | Should -Be $true
        Resolve-StackDnsName mail.lab.test -Stack $me -NoCache | ForEach-Object FromCache | Should -Be $false
        Resolve-StackDnsName mail.lab.test -Stack $me -Server 192.0.2.1 | ForEach-Object FromCache | Should -Be $false
    }

    It 'tries a short name with the -DnsSearch domains, and shows them in Get-Stack' {
        $me.DnsSearch | Should -Be @('lab.test')
        (Resolve-StackDnsName host -Stack $me).Name | Should -Be 'host.lab.test'
        Get-Stack -Name $me.Name | Format-List | Out-String | Should -Match 'DnsSearch\s+:\s+\{lab\.test\}'
    }

    It 'reports NXDOMAIN and NODATA as NameNotFound, REFUSED as ServerFailure' {
        Resolve-StackDnsName nope.lab.test -Stack $me -ErrorVariable e -ErrorAction SilentlyContinue | Should -BeNullOrEmpty
        $e[0].FullyQualifiedErrorId | Should -BeLike 'NameNotFound,*'
        $e[0].CategoryInfo.Category | Should -Be 'ObjectNotFound'
        $e[0].Exception.Message | Should -Match "'nope\.lab\.test' does not exist \(NXDOMAIN\)"
        Resolve-StackDnsName host.lab.test -Type MX -Stack $me -ErrorVariable e -ErrorAction SilentlyContinue | Should -BeNullOrEmpty
        $e[0].FullyQualifiedErrorId | Should -BeLike 'NameNotFound,*'
        $e[0].Exception.Message | Should -Match 'has no MX record'
        Resolve-StackDnsName www.example.com -Stack $me -ErrorVariable e -ErrorAction SilentlyContinue | Should -BeNullOrEmpty
        $e[0].FullyQualifiedErrorId | Should -BeLike 'ServerFailure,*'
        $e[0].CategoryInfo.Category | Should -Be 'ConnectionError'
        $e[0].Exception.Message | Should -Match 'REFUSED'
    }

    It 'refuses a -DnsSearch entry that is not a domain name' {
        $err = { Start-Stack -VirtualNetwork $labNet -Name (New-TestName bad) -DnsSearch 'bad..name' } | Should -Throw -PassThru
        $err.FullyQualifiedErrorId | Should -BeLike 'InvalidConfiguration,*'
        $err.Exception.Message | Should -Match "Search domain 'bad\.\.name'"
    }
}
