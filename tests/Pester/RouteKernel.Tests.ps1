# Test-StackConnection -Traceroute, -MtuSize and -DontFragment through a real Linux router: the kernel lab's K forwards
# (KernelLab.ps1 Add-KernelRouter) between our stack (192.0.2.2, gateway 192.0.2.1) and the target 198.51.100.2 in a
# third namespace, over a far link of MTU 1400. nftables in K silences its time exceeded for the unanswered-hop case.
BeforeAll {
    . $PSScriptRoot/Common.ps1
    . $PSScriptRoot/KernelLab.ps1

    $WhyNoLab = Get-WhyNoLab
    if (-not $WhyNoLab -and -not (Get-Command nft -ErrorAction Ignore) -and -not (Test-Path /usr/sbin/nft)) { $WhyNoLab = 'the route lab needs ''nft'' (build.ps1 -Task Test installs nftables)' }
    if (-not $WhyNoLab) {
        $lab = New-KernelLab 'route'
        try {
            Add-KernelRouter $lab -FarMtu 1400
            $stack = Start-Stack -Adapter u0 -NetworkNamespace $lab.U -IPAddress 192.0.2.2/24 -Gateway 192.0.2.1 -Name (New-TestName 'routek')
        }
        catch {
            Remove-KernelLab $lab
            throw
        }
    }
}

AfterAll {
    if (-not $WhyNoLab) {
        $stack | Stop-Stack -Confirm:$false -ErrorAction SilentlyContinue
        Remove-KernelLab $lab
    }
}

Describe 'Test-StackConnection through a Linux router' {
    BeforeEach {
        if ($WhyNoLab) { Set-ItResult -Skipped -Because $WhyNoLab }
    }

    It 'traces two hops: the router (TtlExpired) then the target (Success), three probes each' {
        if ($WhyNoLab) { return }
        $r = Test-StackConnection 198.51.100.2 -Traceroute -Stack $stack
        $r.Count | Should -Be 6
        $r.Hop | Should -Be @(1, 1, 1, 2, 2, 2)
        $r.Ping | Should -Be @(1, 2, 3, 1, 2, 3)
        $r[0..2] | ForEach-Object { $_.Status | Should -Be 'TtlExpired'; $_.HopAddress | Should -Be '192.0.2.1' }
        $r[3..5] | ForEach-Object { $_.Status | Should -Be 'Success'; $_.HopAddress | Should -Be '198.51.100.2' }
        $r | ForEach-Object { $_.Latency | Should -BeGreaterThan 0 }
        Test-StackConnection 198.51.100.2 -Traceroute -Quiet -Stack $stack | Should -BeExactly $true
    }

    It 'finds the path MTU of 1400 from the router''s fragmentation needed' {
        if ($WhyNoLab) { return }
        $r = Test-StackConnection 198.51.100.2 -MtuSize -Stack $stack
        $r.MtuSize | Should -Be 1400
        $r.Status | Should -Be 'Success'
        $r.ReportedBy | Should -Be '192.0.2.1'
        $r.Probes | Should -Be @('1500 PacketTooBig (next hop 1400)', '1400 Success')
        Test-StackConnection 198.51.100.2 -MtuSize -Quiet -Stack $stack | Should -BeExactly 1400
    }

    It 'fails a DF echo bigger than the far link with PacketTooBig naming the router and its MTU' {
        if ($WhyNoLab) { return }
        (Test-StackConnection 198.51.100.2 -BufferSize 1372 -DontFragment -Count 1 -Stack $stack).Status | Should -Be 'Success'
        Test-StackConnection 198.51.100.2 -BufferSize 1373 -DontFragment -Count 1 -Stack $stack -ErrorVariable e -ErrorAction SilentlyContinue
        $e[0].FullyQualifiedErrorId | Should -BeLike 'PacketTooBig,*'
        $e[0].Exception.Message | Should -Match 'next-hop MTU 1400 \(reported by 192\.0\.2\.1\)'
    }

    It 'streams a router that does not answer as timeout rows, and the trace goes on to the target' {
        if ($WhyNoLab) { return }
        foreach ($rule in @('add table inet routetest', 'add chain inet routetest out { type filter hook output priority 0; }',
                'add rule inet routetest out icmp type time-exceeded drop')) {
            Invoke-Lab (@('ip', 'netns', 'exec', $lab.K, 'nft') + ($rule -split ' '))
        }
        $ps = New-ModulePowerShell
        try {
            $out = [System.Management.Automation.PSDataCollection[psobject]]::new()
            $null = $ps.AddCommand('Test-StackConnection').AddParameters(@{ ComputerName = '198.51.100.2'; Traceroute = $true; TimeoutSeconds = 2; Stack = $stack.Name })
            $in = [System.Management.Automation.PSDataCollection[psobject]]::new()
            $in.Complete() # no pipeline input: the command runs at once
            $handle = $ps.BeginInvoke($in, $out)
            Wait-Until { $out.Count -ge 1 } -Because 'the first probe to time out'
            $ps.InvocationStateInfo.State | Should -Be 'Running' -Because 'rows come out as each probe ends, not at the end of the trace'
            $null = $ps.EndInvoke($handle)
            $out.Count | Should -Be 6
            $out[0..2] | ForEach-Object { $_.Status | Should -Be 'TimedOut'; $_.Hostname | Should -BeNullOrEmpty }
            $out[3..5] | ForEach-Object { $_.Status | Should -Be 'Success'; $_.Hop | Should -Be 2 }
            ($out | Out-String) | Should -Match '(?m)^\s*1\s+\*\s+1\s+\*\s+TimedOut'
        }
        finally {
            $ps.Dispose()
            Invoke-Lab ip, netns, exec, $lab.K, nft, delete, table, inet, routetest
        }
    }
}
