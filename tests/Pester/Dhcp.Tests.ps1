# Start-Stack -Dhcp: on the embedded lab (its service host serves DHCP), on a named network with and without a
# DHCP server, the errors, and in the kernel lab against dnsmasq (root; skipped with the reason otherwise).
BeforeAll {
    . $PSScriptRoot/Common.ps1
    . $PSScriptRoot/KernelLab.ps1
    function Reset-Lab { Get-Stack | Where-Object VirtualNetwork -in 'lab', 'dhcptest', 'lonely' | Stop-Stack -Confirm:$false }
}

Describe 'Start-Stack -Dhcp on the embedded lab' {
    BeforeEach { Reset-Lab }
    AfterAll { Reset-Lab }

    It 'leases an address from the service host, narrates the exchange with -Verbose, and shows the lease in Get-Stack' {
        $verbose = Start-Stack -Dhcp -Verbose 4>&1
        $s = $verbose | Where-Object { $_ -is [NetStack.PowerShell.StackInstance] }
        $text = ($verbose | Where-Object { $_ -is [System.Management.Automation.VerboseRecord] }) -join "`n"
        $text | Should -Match 'DHCPDISCOVER'
        $text | Should -Match 'DHCPOFFER of 192\.0\.2\.100'
        $text | Should -Match 'DHCPREQUEST'
        $text | Should -Match 'probe 3/3'
        $text | Should -Match 'bound: 192\.0\.2\.100/24 from 192\.0\.2\.1'

        $s.Name | Should -Be 'dhcp-1'
        $s.MacAddress | Should -Be '02-00-DC-00-00-01'
        $s.Address | Should -Be '192.0.2.100/24'
        $s.Gateway | Should -Be '192.0.2.1'
        $s.DnsServer | Should -Be @('192.0.2.1')
        $lease = (Get-Stack -Name dhcp-1).Dhcp
        $lease.State | Should -Be 'Bound'
        $lease.Address | Should -Be '192.0.2.100'
        $lease.Server | Should -Be '192.0.2.1'
        $lease.Domain | Should -Be 'lab.test'
        $lease.LeaseTime | Should -Be ([timespan]::FromMinutes(2))
        ($lease.RenewAt - $lease.Obtained).TotalSeconds | Should -Be 60
        ($lease.RebindAt - $lease.Obtained).TotalSeconds | Should -Be 105
        ($lease.ExpiresAt - $lease.Obtained).TotalSeconds | Should -Be 120
        Get-Stack -Name dhcp-1 | Format-List | Out-String | Should -Match 'Dhcp\s+: Bound 192\.0\.2\.100/24 from 192\.0\.2\.1'
        (Get-StackStatistics -Layer Dhcp -Name LeasesObtained -Stack $s).Value | Should -Be 1
        Get-StackConnection -Stack $s | Where-Object LocalPort -eq 68 | Should -Not -BeNullOrEmpty

        # The leased address works: names through the leased DNS server, TCP to the host.
        (Resolve-StackDnsName www.lab.test -Stack $s).IPAddress | Should -Contain '192.0.2.1'
        (Test-StackConnection 192.0.2.1 -TcpPort 80 -Stack $s).Status | Should -Be 'Open'
    }

    It 'gives each DHCP stack its own address, and Stop-Stack releases the lease' {
        $a = Start-Stack -Dhcp
        $b = Start-Stack -Dhcp
        $a.Address | Should -Be '192.0.2.100/24'
        $b.Address | Should -Be '192.0.2.101/24'
        $b.Name | Should -Be 'dhcp-2'
        $plain = Start-Stack   # plain Start-Stack keeps choosing the next free address below the pool
        $plain.Address | Should -Be '192.0.2.2/24'
        (Get-StackNetwork lab).DhcpPool | Should -Be '192.0.2.100-192.0.2.199'
        (Get-StackNetwork lab).DhcpLeases | Where-Object State -eq 'Bound' | ForEach-Object ClientMac | Should -Be @($a.MacAddress, $b.MacAddress)
        $stopped = Stop-Stack $a -Verbose 4>&1
        ($stopped -join "`n") | Should -Match 'DHCP lease on 192\.0\.2\.100 released to 192\.0\.2\.1'
        Wait-Until { (Get-StackNetwork lab).DhcpLeases | Where-Object { $_.Address -eq '192.0.2.100' -and $_.State -eq 'Released' } } -Because 'the RELEASE to reach the server'
    }

    It 'leases on a named network whose service host serves DHCP, with the lease time it was given' {
        $null = Start-StackServiceHost -VirtualNetwork dhcptest -DhcpLeaseSec 30
        $s = Start-Stack -VirtualNetwork dhcptest -Dhcp
        $s.Address | Should -Be '192.0.2.100/24'
        $s.Dhcp.LeaseTime | Should -Be ([timespan]::FromSeconds(30))
        # Renewal at T1 (15 s): the lease's expiry moves on.
        $first = $s.Dhcp.ExpiresAt
        Wait-Until { $s.Dhcp.ExpiresAt -gt $first.AddSeconds(10) } -TimeoutMs 60000 -Because 'the renewal at T1'
        $s.Dhcp.State | Should -BeIn 'Bound', 'Renewing'
        (Get-StackStatistics -Layer Dhcp -Name Renewals -Stack $s).Value | Should -BeGreaterOrEqual 1
    }

    It 'fails with DhcpTimedOut when no server answers, and leaves no stack behind' {
        $err = { Start-Stack -VirtualNetwork lonely -Dhcp -TimeoutSec 3 } | Should -Throw -PassThru
        $err.FullyQualifiedErrorId | Should -BeLike 'DhcpTimedOut,*'
        $err.CategoryInfo.Category | Should -Be 'OperationTimeout'
        $err.Exception.Message | Should -Match 'no DHCP lease on virtual network ''lonely'' within 3 s: no DHCP server answered'
        $err.Exception.Message | Should -Match 'The stack was stopped'
        Get-Stack | Where-Object VirtualNetwork -eq 'lonely' | Should -BeNullOrEmpty
    }

    It 'refuses -Dhcp with -IPAddress, an adapter with neither, -TimeoutSec without -Dhcp, and -Dhcp with -HostIngressDrop' {
        foreach ($case in @(
                @{ Run = { Start-Stack -Dhcp -IPAddress 192.0.2.9/24 }; Says = 'exclude each other' }
                @{ Run = { Start-Stack -Adapter nosuch0 }; Says = 'with -IPAddress .* or -Dhcp' }
                @{ Run = { Start-Stack -TimeoutSec 5 }; Says = '-TimeoutSec is how long -Dhcp waits' }
                @{ Run = { Start-Stack -Adapter nosuch0 -Dhcp -HostIngressDrop }; Says = '-HostIngressDrop names the stack''s address' })) {
            $err = $case.Run | Should -Throw -PassThru
            $err.FullyQualifiedErrorId | Should -BeLike 'InvalidAddressChoice,*'
            $err.CategoryInfo.Category | Should -Be 'InvalidArgument'
            $err.Exception.Message | Should -Match $case.Says
        }
        Get-Stack | Where-Object Name -like 'dhcp-*' | Should -BeNullOrEmpty
    }
}

Describe 'Start-Stack -Adapter -Dhcp against dnsmasq in the kernel lab' {
    BeforeAll {
        $WhyNoLab = Get-WhyNoLab
        if (-not $WhyNoLab -and -not (Get-Command dnsmasq -ErrorAction Ignore) -and -not (Test-Path /usr/sbin/dnsmasq)) { $WhyNoLab = "the test needs dnsmasq (apt-get install dnsmasq-base)" }
        if (-not $WhyNoLab) {
            $lab = New-KernelLab 'dhcp'
            $dir = (New-Item -ItemType Directory (Join-Path ([IO.Path]::GetTempPath()) "netstack-dhcp$PID") -Force).FullName
            $dnsmasq = Start-Process -FilePath ip -PassThru -RedirectStandardOutput "$dir/out.log" -RedirectStandardError "$dir/dnsmasq.log" -ArgumentList @(
                'netns', 'exec', $lab.K, 'dnsmasq', '--no-daemon', '--port=0', '--log-facility=-', '--log-dhcp', '--pid-file=', '--user=root',
                '--interface=k0', '--bind-interfaces', '--dhcp-range=192.0.2.100,192.0.2.199,255.255.255.0,2m', "--dhcp-leasefile=$dir/leases",
                '--dhcp-option=option:router,192.0.2.1', '--domain=lab.test')
            Wait-Until { (Get-Content "$dir/dnsmasq.log" -Raw -ErrorAction Ignore) -match 'DHCP, IP range' } -Because 'dnsmasq to start'
        }
    }
    AfterAll {
        if (-not $WhyNoLab) {
            Get-Stack | Where-Object Adapter -eq 'u0' | Stop-Stack -Confirm:$false
            $dnsmasq.Kill($true); $dnsmasq.WaitForExit(5000) | Out-Null
            Remove-KernelLab $lab
            Remove-Item -Recurse -Force $dir -ErrorAction SilentlyContinue
        }
    }
    BeforeEach {
        if ($WhyNoLab) { Set-ItResult -Skipped -Because $WhyNoLab }
    }

    It 'leases an address from dnsmasq, shows it, and releases it on Stop-Stack' {
        if ($WhyNoLab) { return }
        $s = Start-Stack -Adapter u0 -NetworkNamespace $lab.U -Dhcp -Name (New-TestName kdhcp)
        $s.Dhcp.State | Should -Be 'Bound'
        [ipaddress]::Parse($s.IPAddress).GetAddressBytes()[3] | Should -BeIn (100..199)
        $s.Dhcp.Server | Should -Be '192.0.2.1'
        $s.Gateway | Should -Be '192.0.2.1'
        $s.Dhcp.Domain | Should -Be 'lab.test'
        & ip netns exec $lab.K ping -c 1 -W 5 $s.IPAddress | Out-Null
        $LASTEXITCODE | Should -Be 0
        $mac = $s.MacAddress.Replace('-', ':').ToLowerInvariant()
        Get-Content "$dir/leases" -Raw | Should -Match $mac
        $s | Stop-Stack -Confirm:$false
        Wait-Until { (Get-Content "$dir/dnsmasq.log" -Raw) -match 'DHCPRELEASE\(k0\)' } -Because 'dnsmasq to log the RELEASE'
        Wait-Until { -not ((Get-Content "$dir/leases" -Raw) -match $mac) } -Because 'dnsmasq to drop the released lease'
    }
}
