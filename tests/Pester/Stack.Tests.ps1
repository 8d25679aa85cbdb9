BeforeAll {
    . $PSScriptRoot/Common.ps1
}

Describe 'Module manifest' {
    It 'exports exactly the cmdlets the assembly defines' {
        $module = Get-Module NetStack
        $defined = [NetStack.PowerShell.StartStackCommand].Assembly.GetTypes() |
            ForEach-Object { $_.GetCustomAttributes([System.Management.Automation.CmdletAttribute], $false) } |
            ForEach-Object { '{0}-{1}' -f $_.VerbName, $_.NounName } | Sort-Object
        @($module.ExportedCmdlets.Keys | Sort-Object) | Should -Be @($defined)
        $module.ExportedFunctions.Count | Should -Be 0
        $module.ExportedAliases.Count | Should -Be 0
    }

    It 'declares PowerShell 7.4, Core and the format file' {
        $m = Import-PowerShellDataFile $Manifest
        $m.PowerShellVersion | Should -Be '7.4'
        $m.CompatiblePSEditions | Should -Be @('Core')
        $m.FormatsToProcess | ForEach-Object { Join-Path $RepoRoot $_ | Should -Exist }
    }

    It 'ships the module without PowerShell''s own assembly' {
        Join-Path $RepoRoot 'out/NetStack/System.Management.Automation.dll' | Should -Not -Exist
        foreach ($dll in 'NetStack.dll', 'SharpPcap.dll', 'PacketDotNet.dll') { Join-Path $RepoRoot "out/NetStack/$dll" | Should -Exist }
    }
}

Describe 'Start-Stack, Get-Stack, Stop-Stack' {
    BeforeAll {
        $net = New-TestName 'net'
        $name = New-TestName 'st'
    }
    AfterAll {
        Get-Stack | Where-Object VirtualNetwork -eq $net | Stop-Stack -Confirm:$false
    }

    It 'starts a stack on a virtual network and outputs it' {
        $s = Start-Stack -VirtualNetwork $net -IPAddress 192.0.2.10/24 -Name $name -Gateway 192.0.2.254 -DnsServer 192.0.2.53 -Mtu 1400 -PacketLogSize 64
        $s | Should -BeOfType NetStack.PowerShell.StackInstance
        $s.Name | Should -Be $name
        $s.IPAddress | Should -Be '192.0.2.10'
        $s.PrefixLength | Should -Be 24
        $s.Gateway | Should -Be '192.0.2.254'
        $s.DnsServer | Should -Be @('192.0.2.53')
        $s.Mtu | Should -Be 1400
        $s.PacketLogSize | Should -Be 64
        $s.VirtualNetwork | Should -Be $net
        $s.IsRunning | Should -BeTrue
        $s.MacAddress | Should -Be '02-00-C0-00-02-0A'
    }

    It 'declares its output type per command' {
        (Get-Command Start-Stack).OutputType.Type | Should -Be ([NetStack.PowerShell.StackInstance])
        (Get-Command Get-Stack).OutputType.Type | Should -Be ([NetStack.PowerShell.StackInstance])
    }

    It 'has the Adapter and VirtualNetwork parameter sets' {
        (Get-Command Start-Stack).ParameterSets.Name | Sort-Object | Should -Be @('Adapter', 'VirtualNetwork')
        { Start-Stack -Adapter lo -VirtualNetwork x -IPAddress 192.0.2.9/24 } | Should -Throw -ErrorId 'AmbiguousParameterSet*'
    }

    It 'lists stacks with settings and uptime, by name and wildcard' {
        $s = Get-Stack -Name $name
        $s.Name | Should -Be $name
        $s.Uptime | Should -BeGreaterThan ([TimeSpan]::Zero)
        (Get-Stack -Name ($name.Substring(0, 5) + '*')).Name | Should -Contain $name
        $text = Get-Stack -Name $name | Out-String -Width 250
        foreach ($h in 'Name', 'Address', 'MacAddress', 'Mtu', 'Link', 'Uptime', 'IsRunning') { $text | Should -Match $h }
        $text | Should -Match ([regex]::Escape("virtual:$net"))
    }

    It 'reports an unknown stack name as ObjectNotFound' {
        Get-Stack -Name 'no-such-stack' -ErrorVariable e -ErrorAction SilentlyContinue | Should -BeNullOrEmpty
        $e[0].FullyQualifiedErrorId | Should -BeLike 'StackNotFound,*'
        $e[0].CategoryInfo.Category | Should -Be 'ObjectNotFound'
        $err = { Get-StackArpCache -Stack 'no-such-stack' } | Should -Throw -PassThru
        $err.FullyQualifiedErrorId | Should -BeLike 'StackNotFound,*'
        $err.CategoryInfo.Category | Should -Be 'ObjectNotFound'
    }

    It 'refuses a name in use with ResourceExists' {
        $err = { Start-Stack -VirtualNetwork $net -IPAddress 192.0.2.11/24 -Name $name } | Should -Throw -PassThru
        $err.FullyQualifiedErrorId | Should -BeLike 'StackNameInUse,*'
        $err.CategoryInfo.Category | Should -Be 'ResourceExists'
    }

    It 'fails at binding for an address that is not address/prefix, saying how to write it' -TestCases @(
        @{ Value = '192.0.2.300/24' }, @{ Value = '192.0.2.2/33' }, @{ Value = 'lab' }, @{ Value = '192.0.2/24' }
    ) {
        $err = { Start-Stack -VirtualNetwork $net -IPAddress $Value } | Should -Throw -PassThru
        $err.FullyQualifiedErrorId | Should -BeLike 'ParameterArgumentTransformationError,*'
        $err.Exception.Message | Should -Match '192\.0\.2\.2/24'
    }

    It 'fails at binding for a bad MAC, gateway or MTU' {
        { Start-Stack -VirtualNetwork $net -IPAddress 192.0.2.12/24 -MacAddress 'zz-zz' } | Should -Throw -ErrorId 'ParameterArgumentTransformationError*'
        { Start-Stack -VirtualNetwork $net -IPAddress 192.0.2.12/24 -Gateway 'gw' } | Should -Throw -ErrorId 'ParameterArgumentTransformationError*'
        { Start-Stack -VirtualNetwork $net -IPAddress 192.0.2.12/24 -Mtu 100 } | Should -Throw -ErrorId 'ParameterArgumentValidationError*'
    }

    It 'reports settings that cannot work as InvalidArgument naming the setting' {
        $err = { Start-Stack -VirtualNetwork $net -IPAddress 192.0.2.12/24 -Gateway 198.51.100.1 -Name (New-TestName x) } | Should -Throw -PassThru
        $err.FullyQualifiedErrorId | Should -BeLike 'InvalidConfiguration,*'
        $err.CategoryInfo.Category | Should -Be 'InvalidArgument'
        $err.Exception.Message | Should -Match 'Gateway'
    }

    It 'refuses a busy-poll window out of range with the range and what to choose, and with one in range the caller spins on its ping' {
        $err = { Start-Stack -VirtualNetwork $net -IPAddress 192.0.2.12/24 -BusyPollMicroseconds -5 -Name (New-TestName bp) } | Should -Throw -PassThru
        $err.FullyQualifiedErrorId | Should -BeLike 'InvalidConfiguration,*'
        $err.CategoryInfo.Category | Should -Be 'InvalidArgument'
        $err.Exception.Message | Should -Match 'BusyPollMicroseconds -5 must be between 0'
        $name = New-TestName 'busy'
        $pinger = New-TestName 'pinger'
        $started = Start-Stack -VirtualNetwork $net -IPAddress 192.0.2.14/24 -BusyPollMicroseconds 2500 -Name $name
        $started.BusyPollMicroseconds | Should -Be 2500
        $started.LoopProcessor | Should -BeNullOrEmpty
        try {
            Start-Stack -VirtualNetwork $net -IPAddress 192.0.2.15/24 -Name $pinger | Out-Null
            (Test-StackConnection -Stack $pinger 192.0.2.14 -Count 3 -Delay 0).Status | Should -Be @('Success', 'Success', 'Success')
            # The mode took effect: the pings from the busy-polling stack were spun on by their callers (done by the spin,
            # or parked after the window); a stack without the mode counts none. (Not every one: a caller descheduled
            # between sending and spinning on a loaded machine finds its reply already in, and does not spin.)
            (Test-StackConnection -Stack $name 192.0.2.15 -Count 3 -Delay 0).Status | Should -Be @('Success', 'Success', 'Success')
            $spun = Get-StackStatistics -Stack $name -Layer Stack -Name BusyPollCalls* -All | Measure-Object Value -Sum
            $spun.Sum | Should -BeGreaterOrEqual 1
            (Get-StackStatistics -Stack $pinger -Layer Stack -Name BusyPollCalls* -All | Measure-Object Value -Sum).Sum | Should -Be 0
        }
        finally { Get-Stack | Where-Object Name -in $name, $pinger | Stop-Stack -Confirm:$false }
    }

    It 'refuses a caller-wait window out of range with the range, and with one in range the caller waits on the link for its ping' {
        $err = { Start-Stack -VirtualNetwork $net -IPAddress 192.0.2.12/24 -CallerWaitMicroseconds -5 -Name (New-TestName cw) } | Should -Throw -PassThru
        $err.FullyQualifiedErrorId | Should -BeLike 'InvalidConfiguration,*'
        $err.Exception.Message | Should -Match 'CallerWaitMicroseconds -5 must be between 0'
        $name = New-TestName 'waits'
        $pinger = New-TestName 'pinger'
        (Start-Stack -VirtualNetwork $net -IPAddress 192.0.2.19/24 -CallerWaitMicroseconds 1000000 -Name $name).CallerWaitMicroseconds | Should -Be 1000000
        try {
            Start-Stack -VirtualNetwork $net -IPAddress 192.0.2.20/24 -Name $pinger | Out-Null
            # The pings' callers wait on the link for their replies (done there, or parked after the window); a stack
            # without the mode counts none. (Not every one: a reply already in when the call returns needs no wait.)
            (Test-StackConnection -Stack $name 192.0.2.20 -Count 3 -Delay 0).Status | Should -Be @('Success', 'Success', 'Success')
            (Get-StackStatistics -Stack $name -Layer Stack -Name CallerWaitCalls* -All | Measure-Object Value -Sum).Sum | Should -BeGreaterOrEqual 1
            (Get-StackStatistics -Stack $pinger -Layer Stack -Name CallerWaitCalls* -All | Measure-Object Value -Sum).Sum | Should -Be 0
        }
        finally { Get-Stack | Where-Object Name -in $name, $pinger | Stop-Stack -Confirm:$false }
    }

    It 'runs the loop on the processor -LoopProcessor names, and refuses one the system does not have, leaving no stack' {
        $name = New-TestName 'pinned'
        $err = { Start-Stack -VirtualNetwork $net -IPAddress 192.0.2.21/24 -LoopProcessor 1023 -Name $name } | Should -Throw -PassThru
        $err.FullyQualifiedErrorId | Should -BeLike 'InvalidConfiguration,*'
        $err.Exception.Message | Should -Match 'LoopProcessor 1023 cannot be used here'
        Get-Stack | Where-Object Name -eq $name | Should -BeNullOrEmpty
        $pinger = New-TestName 'pinger'
        (Start-Stack -VirtualNetwork $net -IPAddress 192.0.2.21/24 -LoopProcessor 0 -Name $name).LoopProcessor | Should -Be 0
        try {
            Start-Stack -VirtualNetwork $net -IPAddress 192.0.2.22/24 -Name $pinger | Out-Null
            (Test-StackConnection -Stack $pinger 192.0.2.21 -Count 2 -Delay 0).Status | Should -Be @('Success', 'Success')
            # The loop thread's affinity, as the kernel lists it.
            $loop = Get-ChildItem /proc/$PID/task | Where-Object { (Get-Content "$($_.FullName)/comm") -like 'NetStack loop*' } |
                Where-Object { (Get-Content "$($_.FullName)/status" | Select-String '^Cpus_allowed_list:\s*0$') }
            $loop | Should -Not -BeNullOrEmpty
        }
        finally { Get-Stack | Where-Object Name -in $name, $pinger | Stop-Stack -Confirm:$false }
    }

    It 'supports -WhatIf on Start-Stack and Stop-Stack' {
        $other = New-TestName 'whatif'
        Start-Stack -VirtualNetwork $net -IPAddress 192.0.2.13/24 -Name $other -WhatIf | Should -BeNullOrEmpty
        Get-Stack -Name $other -ErrorAction SilentlyContinue | Should -BeNullOrEmpty
        Stop-Stack -Stack $name -WhatIf
        (Get-Stack -Name $name).IsRunning | Should -BeTrue
    }

    It 'stops several stacks named at once, and says so' {
        $one, $two = (New-TestName 'one'), (New-TestName 'two')
        $null = Start-Stack -VirtualNetwork $net -IPAddress 192.0.2.15/24 -Name $one
        $null = Start-Stack -VirtualNetwork $net -IPAddress 192.0.2.16/24 -Name $two
        $said = Stop-Stack $one, $two -Verbose 4>&1
        ($said -join "`n") | Should -Match "Stack '$one' stopped" -Because 'each stack stopped is narrated'
        ($said -join "`n") | Should -Match "Stack '$two' stopped"
        Get-Stack -Name $one, $two -ErrorAction SilentlyContinue | Should -BeNullOrEmpty
        { Stop-Stack $one, 'no-such-stack' -ErrorAction Stop } | Should -Throw -ErrorId 'StackNotFound*' -Because 'a name that matches nothing is an error naming it'
    }

    It 'defaults -Stack to the most recently started stack' {
        $latest = New-TestName 'latest'
        $null = Start-Stack -VirtualNetwork $net -IPAddress 192.0.2.14/24 -Name $latest
        $u = New-StackSocket Udp -Verbose 4>&1
        $verbose, $socket = @($u | Where-Object { $_ -is [System.Management.Automation.VerboseRecord] }), @($u | Where-Object { $_ -isnot [System.Management.Automation.VerboseRecord] })
        $socket[0].Stack.Name | Should -Be $latest
        ($verbose -join "`n") | Should -Match "Using stack '$latest', the most recently started"
        $socket | Close-StackSocket
        Stop-Stack -Confirm:$false
        Get-Stack -Name $latest -ErrorAction SilentlyContinue | Should -BeNullOrEmpty
        ($u = New-StackSocket Udp).Stack.Name | Should -Not -Be $latest
        $u | Close-StackSocket
    }

    It 'stops stacks from the pipeline, and a stopped stack object is refused' {
        $s2 = Start-Stack -VirtualNetwork $net -IPAddress 192.0.2.15/24 -Name (New-TestName pipe)
        $s2 | Stop-Stack -Confirm:$false
        $s2.IsRunning | Should -BeFalse
        $s2 | Stop-Stack -Confirm:$false   # idempotent
        $err = { Get-StackArpCache -Stack $s2 } | Should -Throw -PassThru
        $err.FullyQualifiedErrorId | Should -BeLike 'StackStopped,*'
        $err.CategoryInfo.Category | Should -Be 'InvalidOperation'
    }

    It 'gives a virtual link the MTU asked for (jumbo frames unfragmented)' {
        $jnet = New-TestName 'jumbo'
        $j1 = Start-Stack -VirtualNetwork $jnet -IPAddress 192.0.2.1/24 -Mtu 9000 -Name (New-TestName j1)
        $j2 = Start-Stack -VirtualNetwork $jnet -IPAddress 192.0.2.2/24 -Mtu 9000 -Name (New-TestName j2)
        try {
            (Test-StackConnection 192.0.2.1 -BufferSize 8000 -Count 1 -Stack $j2).Status | Should -Be 'Success'
            (Get-StackPacket -Stack $j2 -Protocol ICMP -Direction Out).Length | Should -Be 8042
        }
        finally { $j1, $j2 | Stop-Stack -Confirm:$false }
    }

    It 'writes a capture file that is complete once the stack stops' {
        $pcap = Join-Path ([IO.Path]::GetTempPath()) "$(New-TestName cap).pcap"
        try {
            $peer = Start-Stack -VirtualNetwork $net -IPAddress 192.0.2.16/24 -Name (New-TestName cappeer)
            $cap = Start-Stack -VirtualNetwork $net -IPAddress 192.0.2.17/24 -Name (New-TestName cap) -CaptureFile $pcap
            $cap.CaptureFile | Should -Be $pcap
            $null = Test-StackConnection 192.0.2.16 -Count 1 -Stack $cap
            $cap, $peer | Stop-Stack -Confirm:$false
            $bytes = [IO.File]::ReadAllBytes($pcap)
            # pcap global header (24 bytes), then per frame a 16-byte record header: ARP request and reply, echo and reply at least.
            [BitConverter]::ToUInt32($bytes, 0) | Should -BeIn @(0xa1b2c3d4u, 0xa1b23c4du)
            $bytes.Length | Should -BeGreaterThan (24 + 4 * 16 + 2 * 42 + 2 * 74 - 1)
        }
        finally { Remove-Item $pcap -ErrorAction SilentlyContinue }
    }

    It 'reports a capture file that cannot be written as WriteError' {
        $err = { Start-Stack -VirtualNetwork $net -IPAddress 192.0.2.18/24 -Name (New-TestName capbad) -CaptureFile '/nonexistent-dir/x.pcap' } | Should -Throw -PassThru
        $err.FullyQualifiedErrorId | Should -BeLike 'CaptureFileFailed,*'
        $err.CategoryInfo.Category | Should -Be 'WriteError'
    }

    It 'completes stack names and virtual network names' {
        $r = TabExpansion2 -inputScript ($s = "Get-StackArpCache -Stack $($name.Substring(0, 5))") -cursorColumn $s.Length
        $r.CompletionMatches.CompletionText | Should -Contain $name
        $r = TabExpansion2 -inputScript ($s = "Start-Stack -VirtualNetwork $($net.Substring(0, 5))") -cursorColumn $s.Length
        $r.CompletionMatches.CompletionText | Should -Contain $net
    }
}

Describe 'Get-StackAdapter' {
    It 'lists the loopback adapter without special rights' {
        $lo = Get-StackAdapter -Name lo
        $lo.Name | Should -Be 'lo'
        $lo.IsUp | Should -BeTrue
        $lo.Addresses | Should -Contain '127.0.0.1'
        Get-StackAdapter | Out-String | Should -Match 'Name\s+MacAddress\s+IsUp\s+Addresses'
    }

    It 'reports an adapter that does not exist as ObjectNotFound' {
        Get-StackAdapter -Name 'nosuchif0' -ErrorVariable e -ErrorAction SilentlyContinue
        $e[0].FullyQualifiedErrorId | Should -BeLike 'AdapterNotFound,*'
        $e[0].CategoryInfo.Category | Should -Be 'ObjectNotFound'
    }

    It 'completes adapter names' {
        $r = TabExpansion2 -inputScript ($s = 'Start-Stack -Adapter l') -cursorColumn $s.Length
        $r.CompletionMatches.CompletionText | Should -Contain 'lo'
    }
}

Describe 'Start-Stack on an adapter without the right to capture' {
    It 'fails with PermissionDenied saying what to do' {
        # Root with CAP_NET_RAW and CAP_NET_ADMIN dropped (capsh), in a child pwsh: what an ordinary user sees.
        if ((& id -u) -ne '0' -or -not (Get-Command capsh -ErrorAction Ignore)) {
            Set-ItResult -Skipped -Because 'dropping capabilities needs root and capsh (libcap2-bin)'
            return
        }
        $script = 'Import-Module ./NetStack.psd1; try { Start-Stack -Adapter lo -IPAddress 192.0.2.2/24 -Name p } ' +
            'catch { $_.FullyQualifiedErrorId; [string]$_.CategoryInfo.Category; $_.Exception.Message }'
        Push-Location $RepoRoot
        try { $out = & capsh --drop=cap_net_raw,cap_net_admin -- -c "dotnet pwsh -NoProfile -NonInteractive -Command '$($script -replace "'", "''")'" 2>&1 | ForEach-Object ToString }
        finally { Pop-Location }
        $out[0] | Should -Be 'PermissionDenied,NetStack.PowerShell.StartStackCommand'
        $out[1] | Should -Be 'PermissionDenied'
        $out[2] | Should -Match 'root.*CAP_NET_RAW'
    }
}
