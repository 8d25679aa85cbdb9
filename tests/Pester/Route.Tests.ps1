# Test-StackConnection -Traceroute, -MtuSize and -DontFragment on a virtual network (no router there: a neighbour is
# one hop, and a gateway that does not forward leaves probes unanswered). Through a real router: RouteKernel.Tests.ps1.
BeforeAll {
    . $PSScriptRoot/Common.ps1
    $net = New-TestName 'route'
    $a = Start-Stack -VirtualNetwork $net -IPAddress 192.0.2.1/24 -Name (New-TestName 'routeA')
    # $b's gateway is $a, a host that forwards nothing: off-subnet probes leave and meet silence.
    $b = Start-Stack -VirtualNetwork $net -IPAddress 192.0.2.2/24 -Gateway 192.0.2.1 -Name (New-TestName 'routeB')
}
AfterAll {
    $a, $b | Stop-Stack -Confirm:$false -ErrorAction SilentlyContinue
}

Describe 'Test-StackConnection -Traceroute' {
    It 'writes three probes for a neighbour, one hop away, shaped like Test-Connection''s' {
        $r = Test-StackConnection 192.0.2.1 -Traceroute -Stack $b
        $r.Count | Should -Be 3
        $r | Should -BeOfType NetStack.PowerShell.StackTraceHop
        $r.Hop | Should -Be @(1, 1, 1)
        $r.Ping | Should -Be @(1, 2, 3)
        $r | ForEach-Object {
            $_.Status | Should -Be 'Success'
            $_.Hostname | Should -Be '192.0.2.1'
            $_.HopAddress | Should -Be '192.0.2.1'
            $_.Latency | Should -BeGreaterOrEqual 0
            $_.Source | Should -Be '192.0.2.2'
            $_.Target | Should -Be '192.0.2.1'
            $_.TargetAddress | Should -Be '192.0.2.1'
        }
    }

    It 'renders the Test-Connection -Traceroute table, grouped by target, * for silence' {
        $text = Test-StackConnection 192.0.2.1 -Traceroute -Stack $b | Out-String
        $text | Should -Match 'Target: 192\.0\.2\.1'
        $text | Should -Match 'Hop\s+Hostname\s+Ping\s+Latency\(ms\)\s+Status\s+TargetAddress'
        $text = Test-StackConnection 198.51.100.7 -Traceroute -MaxHops 1 -TimeoutSeconds 1 -Stack $b | Out-String
        $text | Should -Match '(?m)^\s*1\s+\*\s+1\s+\*\s+TimedOut'
    }

    It 'shows unanswered hops as TimedOut rows and goes on to -MaxHops' {
        $r = Test-StackConnection 198.51.100.7 -Traceroute -MaxHops 2 -TimeoutSeconds 1 -Stack $b
        $r.Count | Should -Be 6
        $r.Hop | Should -Be @(1, 1, 1, 2, 2, 2)
        $r | ForEach-Object { $_.Status | Should -Be 'TimedOut'; $_.Hostname | Should -BeNullOrEmpty; $_.Latency | Should -Be 0 }
    }

    It 'stops at the hop that says the target cannot be reached' {
        $r = Test-StackConnection 192.0.2.204 -Traceroute -TimeoutSeconds 10 -Stack $b
        $r.Count | Should -Be 3
        $r.Status | Should -Be @('HostUnreachable', 'HostUnreachable', 'HostUnreachable')
    }

    It 'returns whether the target answered with -Quiet' {
        Test-StackConnection 192.0.2.1 -Traceroute -Quiet -Stack $b | Should -BeExactly $true
        Test-StackConnection 198.51.100.7 -Traceroute -MaxHops 1 -TimeoutSeconds 1 -Quiet -Stack $b | Should -BeExactly $false
    }

    It 'is stopped promptly from another thread while a probe waits' {
        $ps = New-ModulePowerShell
        try {
            Assert-StopsPromptly $ps Test-StackConnection @{ ComputerName = '198.51.100.7'; Traceroute = $true; TimeoutSeconds = 60; Stack = $b.Name } `
                -Until { $ps.Streams.Progress.Count -gt 0 }
            ($ps.Streams.Progress | Select-Object -First 1).StatusDescription | Should -Be 'Hop 1 of at most 30, probe 1'
        }
        finally { $ps.Dispose() }
    }
}

Describe 'Test-StackConnection -MtuSize' {
    It 'finds the MTU of the virtual network in one probe' {
        $r = Test-StackConnection 192.0.2.1 -MtuSize -Stack $b
        $r | Should -BeOfType NetStack.PowerShell.StackMtuResult
        $r.MtuSize | Should -Be 1500
        $r.Status | Should -Be 'Success'
        $r.Destination | Should -Be '192.0.2.1'
        $r.Source | Should -Be '192.0.2.2'
        $r.Probes | Should -Be @('1500 Success')
        $r.ReportedBy | Should -BeNullOrEmpty
        $r | Out-String | Should -Match 'Source\s+Destination\s+Address\s+Latency\(ms\)\s+Status\s+MtuSize\(B\)'
    }

    It 'returns just the size with -Quiet, and 0 when nothing got through' {
        Test-StackConnection 192.0.2.1 -MtuSizeDetect -Quiet -Stack $b | Should -BeExactly 1500
        Test-StackConnection 198.51.100.7 -MtuSize -TimeoutSeconds 1 -Quiet -Stack $b | Should -BeExactly 0
    }

    It 'reports a target that answers no probe as a non-terminating error naming the probes' {
        $r = Test-StackConnection 198.51.100.7 -MtuSize -TimeoutSeconds 1 -Stack $b -ErrorVariable e -ErrorAction SilentlyContinue
        $r | Should -BeNullOrEmpty
        $e.Count | Should -Be 1
        $e[0].FullyQualifiedErrorId | Should -BeLike 'TimedOut,*'
        $e[0].Exception.Message | Should -Match '1500 TimedOut, 68 TimedOut'
    }
}

Describe 'Test-StackConnection -DontFragment' {
    It 'sends a full-size echo with DF, and one too big for the link fails with PacketTooBig' {
        (Test-StackConnection 192.0.2.1 -BufferSize 1472 -DontFragment -Count 1 -Stack $b).Status | Should -Be 'Success'
        $r = Test-StackConnection 192.0.2.1 -BufferSize 1473 -DontFragment -Count 1 -Stack $b -ErrorVariable e -ErrorAction SilentlyContinue
        $r | Should -BeNullOrEmpty
        $e[0].FullyQualifiedErrorId | Should -BeLike 'PacketTooBig,*'
        $e[0].Exception.Message | Should -Match 'next-hop MTU 1500.*-BufferSize up to 1472'
        # Without DF the same size travels in fragments.
        (Test-StackConnection 192.0.2.1 -BufferSize 1473 -Count 1 -Stack $b).Status | Should -Be 'Success'
    }
}

Describe 'Test-StackConnection path parameters at binding' {
    It 'refuses bad values and mixed parameter sets' {
        { Test-StackConnection 192.0.2.1 -Traceroute -MaxHops 0 -Stack $b } | Should -Throw -ErrorId 'ParameterArgumentValidationError*'
        { Test-StackConnection 192.0.2.1 -Traceroute -MaxHops 256 -Stack $b } | Should -Throw -ErrorId 'ParameterArgumentValidationError*'
        { Test-StackConnection 192.0.2.1 -Traceroute -MtuSize -Stack $b } | Should -Throw -ErrorId 'AmbiguousParameterSet*'
        { Test-StackConnection 192.0.2.1 -Traceroute -Count 2 -Stack $b } | Should -Throw -ErrorId 'AmbiguousParameterSet*'
        { Test-StackConnection 192.0.2.1 -MtuSize -MaxHops 3 -Stack $b } | Should -Throw -ErrorId 'AmbiguousParameterSet*'
        { Test-StackConnection 192.0.2.1 -MtuSize -TcpPort 80 -Stack $b } | Should -Throw -ErrorId 'AmbiguousParameterSet*'
    }

    It 'declares the trace and MTU output types' {
        $types = (Get-Command Test-StackConnection).OutputType.Type
        $types | Should -Contain ([NetStack.PowerShell.StackTraceHop])
        $types | Should -Contain ([NetStack.PowerShell.StackMtuResult])
        $types | Should -Contain ([int])
    }
}
