# The embedded lab: Start-Stack alone, the service host, and network faults (-Simulate, Set-StackNetwork, Get-StackNetwork).
BeforeAll {
    . $PSScriptRoot/Common.ps1
    # The embedded network is one per process: start every test here from a lab nobody else is on.
    function Reset-Lab { Get-Stack | Where-Object VirtualNetwork -eq 'lab' | Stop-Stack -Confirm:$false }

    # One HTTP/1.1 exchange with the socket cmdlets: the raw response as text.
    function Invoke-RawHttp([string] $Address, [string] $Path, $Stack) {
        $c = Connect-StackSocket $Address 80 -Stack $Stack
        Send-StackData -Socket $c -Text "GET $Path HTTP/1.1`r`nHost: lab.test`r`nConnection: close`r`n`r`n"
        $r = Receive-StackData -Socket $c -ToEnd -AsString -TimeoutSec 60
        Close-StackSocket -Socket $c
        $r
    }
}

Describe 'Start-Stack alone: the embedded lab' {
    BeforeEach { Reset-Lab }
    AfterAll { Reset-Lab }

    It 'joins the lab with the next free address, the service host as gateway and DNS server' {
        $a = Start-Stack
        $a.VirtualNetwork | Should -Be 'lab'
        $a.Address | Should -Be '192.0.2.2/24'
        $a.Gateway | Should -Be '192.0.2.1'
        $a.DnsServer | Should -Be @('192.0.2.1')
        $host1 = Get-Stack -Name lab-services
        $host1.Address | Should -Be '192.0.2.1/24'
        (Start-Stack).Address | Should -Be '192.0.2.3/24'
        # The default -Stack is still the user's latest stack, not the host started after it; Get-Stack lists the host first.
        $u = New-StackSocket Udp
        $u.Stack.Name | Should -Be '192.0.2.3'
        Close-StackSocket -Socket $u
        (Get-Stack | Where-Object VirtualNetwork -eq 'lab').Name | Should -Be @('lab-services', '192.0.2.2', '192.0.2.3')
    }

    It 'stops the service host with the last other stack of the lab' {
        $a = Start-Stack
        $b = Start-Stack
        $a | Stop-Stack -Confirm:$false
        (Get-Stack -Name lab-services).IsRunning | Should -BeTrue
        $b | Stop-Stack -Confirm:$false
        Get-Stack -Name lab-services -ErrorAction SilentlyContinue | Should -BeNullOrEmpty
        Get-StackNetwork lab -ErrorVariable e -ErrorAction SilentlyContinue | Should -BeNullOrEmpty
        $e[0].FullyQualifiedErrorId | Should -BeLike 'NetworkNotFound,*'
    }

    It 'takes a chosen address, and refuses one that is taken on the network' {
        (Start-Stack -IPAddress 192.0.2.50/24).Address | Should -Be '192.0.2.50/24'
        $err = { Start-Stack -IPAddress 192.0.2.1/24 -Name (New-TestName taken) } | Should -Throw -PassThru
        $err.FullyQualifiedErrorId | Should -BeLike 'AddressInUse,*'
        $err.CategoryInfo.Category | Should -Be 'ResourceExists'
        $err.Exception.Message | Should -Match "lab-services.*Leave out -IPAddress"
    }

    It 'searches the service host''s domain, so short names resolve, unless -DnsServer or -DnsSearch says otherwise' {
        $a = Start-Stack
        $a.DnsSearch | Should -Be @('lab.test')
        (Test-StackConnection www -Count 1 -Stack $a).Status | Should -Be 'Success'
        (Resolve-StackDnsName mail -Stack $a | Where-Object Type -eq A).Name | Should -Be 'mail.lab.test'
        (Start-Stack -DnsSearch corp.test).DnsSearch | Should -Be @('corp.test')
        (Start-Stack -DnsServer 192.0.2.53).DnsSearch | Should -BeNullOrEmpty -Because 'another DNS server knows nothing of lab.test'
    }

    It 'starts no service host when the first stack takes its address (two stacks of their own)' {
        $server = Start-Stack -VirtualNetwork lab -IPAddress 192.0.2.1/24 -Name (New-TestName server)
        $client = Start-Stack -VirtualNetwork lab
        $client.Address | Should -Be '192.0.2.2/24'
        $client.Gateway | Should -BeNullOrEmpty
        Get-Stack -Name lab-services -ErrorAction SilentlyContinue | Should -BeNullOrEmpty
        (Test-StackConnection 192.0.2.1 -Count 1 -Stack $client).Status | Should -Be 'Success'
    }
}

Describe 'The service host' {
    BeforeAll {
        $net = New-TestName 'svc'
        $svc = Start-StackServiceHost -VirtualNetwork $net
        $me = Start-Stack -VirtualNetwork $net -Name (New-TestName me)
    }
    AfterAll { Get-Stack | Where-Object VirtualNetwork -eq $net | Stop-Stack -Confirm:$false }

    It 'is a stack of its own named for its network, and the network knows it' {
        $svc.Name | Should -Be "$net-services"
        $svc.Address | Should -Be '192.0.2.1/24'
        $me.Gateway | Should -Be '192.0.2.1'
        $n = Get-StackNetwork $net
        $n.ServiceHost | Should -Be "$net-services"
        $n.ServiceDomain | Should -Be 'lab.test'
        $n.Stacks | Should -Be @("$net-services", $me.Name)
        Get-StackConnection -Stack $svc -State Listen | ForEach-Object LocalPort | Sort-Object | Should -Be @(7, 9, 13, 19, 53, 80)
    }

    It 'answers ping, and DNS with the lab names' {
        (Test-StackConnection host.lab.test -Count 1 -Stack $me).Status | Should -Be 'Success'
        (Resolve-StackDnsName alias.lab.test -Stack $me | Where-Object Type -eq A).IPAddress | Should -Be '192.0.2.1'
        Resolve-StackDnsName nope.lab.test -Stack $me -ErrorVariable e -ErrorAction SilentlyContinue | Should -BeNullOrEmpty
        $e[0].FullyQualifiedErrorId | Should -BeLike 'NameNotFound,*'
    }

    It 'serves echo, daytime, chargen and discard over TCP' {
        $c = Connect-StackSocket 192.0.2.1 7 -Stack $me
        Send-StackData -Socket $c -Text "echo me`n"
        Receive-StackData -Socket $c -Until "`n" -AsString | Should -Be "echo me`n"
        Close-StackSocket -Socket $c

        $d = Connect-StackSocket 192.0.2.1 13 -Stack $me
        Receive-StackData -Socket $d -ToEnd -AsString | Should -Match '^\w+day, \w+ \d{1,2}, \d{4} \d\d:\d\d:\d\d UTC\r\n$'

        $g = Connect-StackSocket 192.0.2.1 19 -Stack $me
        $lines = Receive-StackData -Socket $g -Count 148 -AsString
        $lines | Should -BeLike ' !"#$%&*'
        $lines.Substring(74, 3) | Should -Be '!"#'
        Close-StackSocket -Socket $g   # unread data: a reset, and chargen stops

        $x = Connect-StackSocket 192.0.2.1 9 -Stack $me
        Send-StackData -Socket $x -Data ([byte[]]::new(100000))
        Close-StackSocket -Socket $x
    }

    It 'serves echo and daytime over UDP' {
        $u = New-StackSocket Udp -Stack $me
        Send-StackData -Socket $u -Text 'datagram' -RemoteAddress 192.0.2.1 -RemotePort 7
        Receive-StackData -Socket $u -AsString | Should -Be 'datagram'
        Send-StackData -Socket $u -Text '' -RemoteAddress 192.0.2.1 -RemotePort 13
        Receive-StackData -Socket $u -AsString | Should -Match 'UTC'
        Close-StackSocket -Socket $u
    }

    It 'serves HTTP: a page, a redirect and a 404' {
        Invoke-RawHttp 192.0.2.1 / $me | Should -Match '(?s)^HTTP/1\.1 200 OK\r\n.*<title>NetStack lab service host</title>'
        Invoke-RawHttp 192.0.2.1 /redirect $me | Should -Match '(?s)^HTTP/1\.1 302 Found\r\n.*Location: /hello\r\n'
        Invoke-RawHttp 192.0.2.1 /nothing $me | Should -Match '^HTTP/1\.1 404 Not Found'
    }

    It 'refuses a second service host on the network' {
        $err = { Start-StackServiceHost -VirtualNetwork $net -Name (New-TestName second) -IPAddress 192.0.2.9/24 } | Should -Throw -PassThru
        $err.FullyQualifiedErrorId | Should -BeLike 'ServiceHostFailed,*'
        $err.Exception.Message | Should -Match 'already has a service host'
    }

    It 'supports -WhatIf' {
        $other = New-TestName 'whatif'
        Start-StackServiceHost -VirtualNetwork $other -WhatIf | Should -BeNullOrEmpty
        Get-StackNetwork $other -ErrorAction SilentlyContinue | Should -BeNullOrEmpty
    }
}

Describe 'Network faults: -Simulate, Set-StackNetwork, Get-StackNetwork' {
    BeforeAll { $net = New-TestName 'lossy' }
    AfterAll { Get-Stack | Where-Object VirtualNetwork -eq $net | Stop-Stack -Confirm:$false }

    It 'applies -Simulate to the network the stack joins' {
        $null = Start-StackServiceHost -VirtualNetwork $net
        $script:me = Start-Stack -VirtualNetwork $net -Simulate @{ Loss = 0.05; DelayMs = 2 }
        $n = Get-StackNetwork $net
        $n.Loss | Should -Be 0.05
        $n.DelayMs | Should -Be 2
        $n.Faults | Should -Be 'Loss 5%, DelayMs 2'
        (Get-StackNetwork $net | Out-String) | Should -Match 'Loss 5%, DelayMs 2'
    }

    It 'completes a transfer over the lossy network, with retransmissions to show for it' {
        $c = Connect-StackSocket 192.0.2.1 9 -Stack $me -TimeoutSec 60
        Send-StackData -Socket $c -Data ([byte[]]::new(2MB)) -TimeoutSec 120
        $row = Get-StackConnection -Stack $me -Protocol Tcp | Where-Object Id -eq $c.Id
        Close-StackSocket -Socket $c
        Wait-Until { (Get-StackStatistics -Stack $me -Layer Tcp | Where-Object Name -eq 'SegmentsRetransmitted').Value -gt 0 } -Because 'lost segments to be retransmitted'
        Wait-Until { Get-StackConnection -Stack $me -State TimeWait | Where-Object Id -eq $c.Id } -TimeoutMs 120000 -Because 'the connection to close through TimeWait'
        (Get-StackNetwork $net).FramesLost | Should -BeGreaterThan 0
        $row.SackPermitted | Should -BeTrue
        # RACK-TLP found the losses (RFC 8985); the connection's internals and the counters say so.
        $row.LossRecovery | Should -Be 'rack'
        ($row | Format-List | Out-String) | Should -Match 'LossRecovery\s+: rack'
        (Get-StackStatistics -Stack $me -Layer Tcp -Name RackLosses).Value | Should -BeGreaterThan 0
    }

    It 'changes only the settings given, -Clear removes them, -PassThru shows the result' {
        (Set-StackNetwork $net -Simulate @{ JitterMs = 3; RateMbps = 100 } -PassThru).Faults | Should -Be 'Loss 5%, DelayMs 2, JitterMs 3, RateMbps 100'
        (Set-StackNetwork $net -Clear -PassThru).Faults | Should -Be 'none'
        (Set-StackNetwork $net -Clear -Simulate @{ Duplicate = 0.5 } -PassThru).Simulate.Duplicate | Should -Be 0.5
        Set-StackNetwork $net -Simulate @{ Corrupt = 0.1 } -WhatIf
        (Get-StackNetwork $net).Corrupt | Should -Be 0
    }

    It 'refuses <Case> with InvalidSimulation naming the key and what is accepted' -TestCases @(
        @{ Case = 'an unknown key'; Settings = @{ Lost = 0.1 }; Says = "'Lost' is not a -Simulate setting\. Use Loss, DelayMs, JitterMs, Reorder, ReorderMs, Duplicate, Corrupt, RateMbps" }
        @{ Case = 'a probability over 1'; Settings = @{ Loss = 5 }; Says = 'Loss.*from 0 to 1.*0\.05 for 5%' }
        @{ Case = 'a negative delay'; Settings = @{ DelayMs = -1 }; Says = 'DelayMs.*from 0 to 10000' }
        @{ Case = 'a value that is not a number'; Settings = @{ RateMbps = 'fast' }; Says = 'RateMbps.*fast' }
        @{ Case = 'jitter with reordering'; Settings = @{ JitterMs = 2; Reorder = 0.1 }; Says = 'JitterMs and Reorder cannot both be set' }
    ) {
        $err = { Set-StackNetwork $net -Simulate $Settings } | Should -Throw -PassThru
        $err.FullyQualifiedErrorId | Should -BeLike 'InvalidSimulation,*'
        $err.CategoryInfo.Category | Should -Be 'InvalidArgument'
        $err.Exception.Message | Should -Match $Says
        $err = { Start-Stack -VirtualNetwork (New-TestName bad) -Simulate $Settings } | Should -Throw -PassThru
        $err.FullyQualifiedErrorId | Should -BeLike 'InvalidSimulation,*'
    }

    It 'takes -Simulate only for virtual networks, and says what to set when nothing is given' {
        { Start-Stack -Adapter lo -IPAddress 192.0.2.9/24 -Simulate @{ Loss = 0.1 } } | Should -Throw -ErrorId 'AmbiguousParameterSet*'
        { Set-StackNetwork $net } | Should -Throw -ErrorId 'NothingToSet*'
        Get-StackNetwork 'no-such-net' -ErrorVariable e -ErrorAction SilentlyContinue
        $e[0].FullyQualifiedErrorId | Should -BeLike 'NetworkNotFound,*'
        $e[0].Exception.Message | Should -Match ([regex]::Escape($net))
    }
}

Describe 'examples/Quickstart.ps1' {
    It 'runs to completion and shows each step' {
        Push-Location $RepoRoot
        try {
            $env:NO_COLOR = '1'
            $out = & dotnet pwsh -NoProfile -NonInteractive -File (Join-Path $RepoRoot 'examples/Quickstart.ps1') 2>&1 | ForEach-Object ToString
            $LASTEXITCODE | Should -Be 0 -Because ($out -join "`n")
        }
        finally { Pop-Location; Remove-Item Env:NO_COLOR }
        $text = $out -join "`n"
        $text | Should -Match '192\.0\.2\.2\s+192\.0\.2\.2/24\s+192\.0\.2\.1'        # the stack, with its gateway
        $text | Should -Match '2 192\.0\.2\.1 .* Success'                             # two echo replies
        $text | Should -Match 'host\.lab\.test\s+A\s+60 Answer\s+192\.0\.2\.1'            # the name, after its CNAME
        $text | Should -Match 'echoed: hello, echo'
        $text | Should -Match 'Hello from the NetStack lab service host!'
        $text | Should -Match 'tcp\s+192\.0\.2\.2:\d+\s+192\.0\.2\.1:7\s+TimeWait'
        $text | Should -Match 'SYN Seq=0 Len=0'                                       # the echo connection's ladder
        $text | Should -Match 'PSH,ACK Seq=1 Ack=1 Len=12'
        $text | Should -Match '\d\s+TIME-WAIT'
        $text | Should -Match '192\.0\.2\.1\s+02-00-C0-00-02-01\s+Reachable'
        $text | Should -Match 'stacks left: 0'
    }
}
