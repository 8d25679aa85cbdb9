# End-to-end against the Linux kernel: two fresh network namespaces joined by a veth pair (docs/lab.md):
# K holds the kernel's k0 = 192.0.2.1/24, U holds u0 where the stack opens its pcap device as 192.0.2.2.
# Needs root, iproute2, ethtool and libpcap; otherwise every test is skipped with the reason.
BeforeAll {
    . $PSScriptRoot/Common.ps1
    . $PSScriptRoot/KernelLab.ps1

    $WhyNoLab = Get-WhyNoLab
    if (-not $WhyNoLab) {
        $lab = New-KernelLab 'ps'
        $K = $lab.K; $U = $lab.U
        try {
            $capture = Join-Path ([IO.Path]::GetTempPath()) "netstack-ps$PID.pcap"
            $stack = Start-Stack -Adapter u0 -NetworkNamespace $U -IPAddress 192.0.2.2/24 -Name (New-TestName 'kernel') -CaptureFile $capture
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
        Remove-Item $capture -ErrorAction SilentlyContinue
    }
}

Describe 'Kernel end-to-end (pcap on a veth in namespaces)' {
    BeforeEach {
        if ($WhyNoLab) { Set-ItResult -Skipped -Because $WhyNoLab }
    }

    It 'lists the adapters of a namespace' {
        if ($WhyNoLab) { return }
        (Get-StackAdapter -NetworkNamespace $U).Name | Should -Contain 'u0'
    }

    It 'completes namespace names and the adapters inside one' {
        if ($WhyNoLab) { return }
        $r = TabExpansion2 -inputScript ($s = "Start-Stack -NetworkNamespace $($U.Substring(0, 6))") -cursorColumn $s.Length
        $r.CompletionMatches.CompletionText | Should -Contain $U
        $r = TabExpansion2 -inputScript ($s = "Start-Stack -NetworkNamespace $U -Adapter u") -cursorColumn $s.Length
        $r.CompletionMatches.CompletionText | Should -Be @('u0')
    }

    It 'starts on the adapter and shows it' {
        if ($WhyNoLab) { return }
        $stack.Adapter | Should -Be 'u0'
        $stack.IsRunning | Should -BeTrue
        Get-Stack -Name $stack.Name | Out-String -Width 200 | Should -Match 'u0'
    }

    It 'resolves the kernel with ARP and pings it' {
        if ($WhyNoLab) { return }
        (Resolve-StackArpEntry 192.0.2.1 -Stack $stack).State | Should -Be 'Reachable'
        $r = Test-StackConnection 192.0.2.1 -Count 2 -Delay 0 -Stack $stack
        $r.Status | Should -Be @('Success', 'Success')
        $r[0].Ttl | Should -Be 64
    }

    It 'answers the kernel''s ping' {
        if ($WhyNoLab) { return }
        $out = & ip netns exec $K ping -c 2 -W 2 -i 0.2 192.0.2.2 2>&1
        $LASTEXITCODE | Should -Be 0 -Because ($out -join "`n")
    }

    It 'exchanges UDP datagrams with a kernel socket' {
        if ($WhyNoLab) { return }
        $sock = New-StackSocket Udp -LocalPort 40000 -Stack $stack
        try {
            # socat sends its stdin as one datagram from port 40001, then prints what comes back for a second.
            $job = Start-ThreadJob { 'from-kernel' | & ip netns exec $using:K socat -t 5 -T 30 - UDP:192.0.2.2:40000,sourceport=40001 2>&1 }
            $d = Receive-StackData $sock -AsDatagram -TimeoutSec 30
            $d.Text | Should -Match 'from-kernel'
            $d.RemoteAddress | Should -Be '192.0.2.1'
            $d.RemotePort | Should -Be 40001
            $sock | Send-StackData 'from-stack' -RemoteAddress $d.RemoteAddress -RemotePort $d.RemotePort
            ($job | Wait-Job -Timeout 30 | Receive-Job) -join "`n" | Should -Match 'from-stack'
        }
        finally {
            $sock | Close-StackSocket
            $job | Remove-Job -Force -ErrorAction SilentlyContinue
        }
    }

    It 'talks TCP to a kernel echo server' {
        if ($WhyNoLab) { return }
        # The echo server in K, started by this test and ended by its process id.
        $echo = Start-Process -FilePath ip -ArgumentList 'netns', 'exec', $K, 'socat', 'TCP-LISTEN:7777,reuseaddr,fork', 'EXEC:cat' -PassThru
        try {
            Wait-Until { Test-StackConnection 192.0.2.1 -TcpPort 7777 -TimeoutSeconds 1 -Quiet -Stack $stack } -Because 'socat to listen'
            $c = New-StackSocket Tcp -Stack $stack | Connect-StackSocket 192.0.2.1 7777 -TimeoutSec 30
            $c | Send-StackData "hello kernel`n"
            $c | Receive-StackData -Until "`n" -AsString -TimeoutSec 30 | Should -Be "hello kernel`n"
            (Get-StackConnection -Stack $stack -RemotePort 7777 -State Established).Mss | Should -BeGreaterThan 0
            $c | Close-StackSocket
        }
        finally { $echo.Kill($true); $echo.WaitForExit(5000) | Out-Null }
    }

    It 'accepts a TCP connection from the kernel' {
        if ($WhyNoLab) { return }
        $l = Start-StackListener 8080 -Stack $stack
        try {
            $job = Start-ThreadJob { 'hi' | & ip netns exec $using:K socat -t 5 -T 30 - TCP:192.0.2.2:8080 2>&1 }
            $s = $l | Wait-StackConnection -TimeoutSec 30
            $s.RemoteEndPoint.Address.ToString() | Should -Be '192.0.2.1'
            $s | Receive-StackData -Until "`n" -AsString -TimeoutSec 30 | Should -Be "hi`n"
            $s | Send-StackData "back`n"
            $s | Close-StackSocket
            ($job | Wait-Job -Timeout 30 | Receive-Job) -join "`n" | Should -Match 'back'
        }
        finally {
            $l | Close-StackSocket
            $job | Remove-Job -Force -ErrorAction SilentlyContinue
        }
    }

    It 'refuses to start a second stack on a missing adapter with ObjectNotFound' {
        if ($WhyNoLab) { return }
        $err = { Start-Stack -Adapter nosuch0 -NetworkNamespace $U -IPAddress 192.0.2.3/24 -Name (New-TestName x) } | Should -Throw -PassThru
        $err.FullyQualifiedErrorId | Should -BeLike 'AdapterNotFound,*'
        $err.CategoryInfo.Category | Should -Be 'ObjectNotFound'
    }

    It 'runs a second stack with its own MAC on the adapter, and completes its capture file when it stops' {
        if ($WhyNoLab) { return }
        # A second stack on the same adapter with its own MAC: the device's filter must let its unicast in.
        $other = Start-Stack -Adapter u0 -NetworkNamespace $U -IPAddress 192.0.2.4/24 -MacAddress 02-00-5E-10-00-04 -Name (New-TestName cap) -CaptureFile "$capture.2"
        try {
            $other.MacAddress | Should -Be '02-00-5E-10-00-04'
            (Test-StackConnection 192.0.2.1 -Count 1 -Stack $other).Status | Should -Be 'Success'
            (Get-StackArpCache -Stack $other -IPAddress 192.0.2.1).State | Should -Be 'Reachable'
            $out = & ip netns exec $K ip neigh show 192.0.2.4
            "$out" | Should -Match '02:00:5e:10:00:04'
            $other | Stop-Stack -Confirm:$false
            (Get-Item "$capture.2").Length | Should -BeGreaterThan 24   # pcap header plus frames
            if (Get-Command tshark -ErrorAction Ignore) { (& tshark -r "$capture.2" 2>$null) -join "`n" | Should -Match 'ICMP' }
        }
        finally {
            $other | Stop-Stack -Confirm:$false -ErrorAction SilentlyContinue
            Remove-Item "$capture.2" -ErrorAction SilentlyContinue
        }
    }
}
