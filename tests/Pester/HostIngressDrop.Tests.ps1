# Start-Stack -HostIngressDrop against the kernel lab (docs/lab.md): the nftables rule exists while the stack runs,
# the kernel in K still gets its answers, the kernel in U no longer takes the frames in, Stop-Stack removes the rule,
# a killed session's rule is removed by the next start, and without CAP_NET_ADMIN the error says what to do.
# Needs root, iproute2, ethtool, libpcap and nftables; otherwise skipped with the reason.
BeforeAll {
    . $PSScriptRoot/Common.ps1
    . $PSScriptRoot/KernelLab.ps1

    $WhyNoLab = Get-WhyNoLab
    if (-not $WhyNoLab -and -not (Get-Command nft -ErrorAction Ignore) -and -not (Test-Path /usr/sbin/nft)) { $WhyNoLab = 'the test needs nftables (apt-get install nftables)' }
    if (-not $WhyNoLab) { $lab = New-KernelLab 'hd' }
    $Table = 'netstack_u0_192.0.2.2'

    # IPv4 datagrams the kernel in U took in (Ip: InReceives of /proc/net/snmp there).
    function Get-UInReceives {
        $lines = @(& ip netns exec $lab.U cat /proc/net/snmp | Where-Object { $_ -like 'Ip: *' })
        $names = $lines[0] -split ' '
        [long](($lines[1] -split ' ')[[array]::IndexOf($names, 'InReceives')])
    }
    function Get-UTables { (& ip netns exec $lab.U nft list tables netdev) -join "`n" }
}

AfterAll {
    if (-not $WhyNoLab) {
        Get-Stack | Where-Object Adapter -eq 'u0' | Stop-Stack -Confirm:$false -ErrorAction SilentlyContinue
        Remove-KernelLab $lab
    }
}

Describe 'Start-Stack -HostIngressDrop' {
    BeforeEach {
        if ($WhyNoLab) { Set-ItResult -Skipped -Because $WhyNoLab }
    }

    It 'drops our frames for the host kernel while the stack runs, and Stop-Stack removes the rule' {
        if ($WhyNoLab) { return }
        $s = Start-Stack -Adapter u0 -NetworkNamespace $lab.U -IPAddress 192.0.2.2/24 -HostIngressDrop -Name (New-TestName 'hd')
        try {
            $s.HostIngressDrop | Should -Be $Table
            $rule = (& ip netns exec $lab.U nft list table netdev $Table) -join "`n"
            $rule | Should -Match 'hook ingress device "u0"'
            $rule | Should -Match 'ip daddr 192\.0\.2\.2 counter packets \d+ bytes \d+ drop'
            $rule | Should -Match "owner pid $PID "
            $before = Get-UInReceives
            $out = & ip netns exec $lab.K ping -c 5 -i 0.05 -W 5 192.0.2.2 2>&1
            $LASTEXITCODE | Should -Be 0 -Because ($out -join "`n")   # the stack still gets the frames and answers
            (Get-UInReceives) - $before | Should -Be 0                # the host kernel took none of them in
            $rule = (& ip netns exec $lab.U nft list table netdev $Table) -join "`n"
            [long]([regex]::Match($rule, 'counter packets (\d+)').Groups[1].Value) | Should -BeGreaterOrEqual 5
            $s | Format-List | Out-String | Should -Match "HostIngressDrop\s*:\s*$([regex]::Escape($Table))"
        }
        finally {
            $s | Stop-Stack -Confirm:$false
        }
        Get-UTables | Should -Not -Match $Table
        $s.HostIngressDrop | Should -BeNullOrEmpty
    }

    It 'removes the rule of a killed session when the next one starts' {
        if ($WhyNoLab) { return }
        $out = Join-Path ([IO.Path]::GetTempPath()) "netstack-hd-$PID.txt"
        $script = "Import-Module '$Manifest'; `$s = Start-Stack -Adapter u0 -NetworkNamespace $($lab.U) -IPAddress 192.0.2.2/24 -HostIngressDrop -Name victim; " +
            "'started ' + [Environment]::ProcessId; Start-Sleep 600"
        $child = Start-Process dotnet -ArgumentList 'pwsh', '-NoProfile', '-NonInteractive', '-Command', $script -WorkingDirectory $RepoRoot -RedirectStandardOutput $out -PassThru
        try {
            Wait-Until { (Test-Path $out) -and (Get-Content -Raw $out) -match 'started (\d+)' } -TimeoutMs 120000 -Because 'the child session to start its stack'
            $victim = [int]([regex]::Match((Get-Content -Raw $out), 'started (\d+)').Groups[1].Value)
            (& ip netns exec $lab.U nft list table netdev $Table) -join "`n" | Should -Match "owner pid $victim "
            & kill -9 $victim      # no Stop-Stack, no exit handler: the rule stays behind
            Wait-Until { -not (Test-Path "/proc/$victim") } -Because 'the killed session to be gone'
            Get-UTables | Should -Match $Table

            $s = Start-Stack -Adapter u0 -NetworkNamespace $lab.U -IPAddress 192.0.2.2/24 -HostIngressDrop -Name (New-TestName 'hd')
            try {
                (& ip netns exec $lab.U nft list table netdev $Table) -join "`n" | Should -Match "owner pid $PID "
                (Test-StackConnection 192.0.2.1 -Count 1 -Stack $s).Status | Should -Be 'Success'
            }
            finally { $s | Stop-Stack -Confirm:$false }
            Get-UTables | Should -Not -Match $Table
        }
        finally {
            if (-not $child.HasExited) { $child.Kill($true) }
            Remove-Item $out -ErrorAction Ignore
        }
    }

    It 'fails with HostIngressDropDenied, naming the fix, when nft may not change the rules' {
        if ($WhyNoLab) { return }
        if (-not (Get-Command capsh -ErrorAction Ignore)) { Set-ItResult -Skipped -Because 'dropping capabilities needs capsh (libcap2-bin)'; return }
        # Root without CAP_NET_ADMIN (capsh), in a child pwsh: capture still works, nft may not.
        $script = "Import-Module ./NetStack.psd1; try { Start-Stack -Adapter u0 -NetworkNamespace $($lab.U) -IPAddress 192.0.2.2/24 -HostIngressDrop -Name p } " +
            'catch { $_.FullyQualifiedErrorId; [string]$_.CategoryInfo.Category; $_.Exception.Message }'
        Push-Location $RepoRoot
        try { $out = & capsh --drop=cap_net_admin -- -c "dotnet pwsh -NoProfile -NonInteractive -Command '$($script -replace "'", "''")'" 2>&1 | ForEach-Object ToString }
        finally { Pop-Location }
        $out[0] | Should -Be 'HostIngressDropDenied,NetStack.PowerShell.StartStackCommand'
        $out[1] | Should -Be 'PermissionDenied'
        $out[2] | Should -Match '-HostIngressDrop.*root'
        Get-UTables | Should -Not -Match $Table
    }
}
