BeforeAll {
    . $PSScriptRoot/Common.ps1
    $net = New-TestName 'arp'
    $a = Start-Stack -VirtualNetwork $net -IPAddress 192.0.2.1/24 -Name (New-TestName 'arpA')
    $b = Start-Stack -VirtualNetwork $net -IPAddress 192.0.2.2/24 -Name (New-TestName 'arpB')
}
AfterAll {
    $a, $b | Stop-Stack -Confirm:$false -ErrorAction SilentlyContinue
}

Describe 'Resolve-StackArpEntry and Get-StackArpCache' {
    It 'ARPs now and returns the entry, which then is in the cache' {
        $e = Resolve-StackArpEntry 192.0.2.1 -Stack $b
        $e | Should -BeOfType NetStack.PowerShell.StackArpEntry
        $e.IPAddress | Should -Be '192.0.2.1'
        $e.LinkLayerAddress | Should -Be '02-00-C0-00-02-01'
        $e.State | Should -Be 'Reachable'
        (Get-StackArpCache -Stack $b -IPAddress 192.0.2.1).LinkLayerAddress | Should -Be '02-00-C0-00-02-01'
        (Get-StackArpCache -Stack $b -State Reachable).IPAddress | Should -Contain '192.0.2.1'
        Get-StackArpCache -Stack $b -State Permanent | Where-Object IPAddress -eq '192.0.2.1' | Should -BeNullOrEmpty
    }

    It 'takes the address from the pipeline' {
        ('192.0.2.1' | Resolve-StackArpEntry -Stack $b).State | Should -Be 'Reachable'
    }

    It 'renders a Get-NetNeighbor-like table' {
        $text = Get-StackArpCache -Stack $b | Out-String
        $text | Should -Match 'IPAddress\s+LinkLayerAddress\s+State\s+Age'
    }

    It 'reports no answer as HostUnreachable (ConnectionError)' {
        Resolve-StackArpEntry 192.0.2.200 -Stack $b -ErrorVariable e -ErrorAction SilentlyContinue | Should -BeNullOrEmpty
        $e[0].FullyQualifiedErrorId | Should -BeLike 'HostUnreachable,*'
        $e[0].CategoryInfo.Category | Should -Be 'ConnectionError'
    }

    It 'refuses an off-link address as InvalidArgument' {
        Resolve-StackArpEntry 198.51.100.1 -Stack $b -ErrorVariable e -ErrorAction SilentlyContinue
        $e[0].CategoryInfo.Category | Should -Be 'InvalidArgument'
    }

    It 'narrates the resolution with -Verbose' {
        Remove-StackArpEntry 192.0.2.1 -Stack $b -Confirm:$false -ErrorAction SilentlyContinue
        $verbose = Resolve-StackArpEntry 192.0.2.1 -Stack $b -Verbose 4>&1 | Where-Object { $_ -is [System.Management.Automation.VerboseRecord] }
        ($verbose.Message -join "`n") | Should -Match 'Arp'
    }
}

Describe 'Add-, Remove-StackArpEntry and Clear-StackArpCache' {
    It 'adds a static entry' {
        $e = Add-StackArpEntry -IPAddress 192.0.2.50 -LinkLayerAddress 00-15-5d-25-05-1d -Stack $b -PassThru
        $e.State | Should -Be 'Permanent'
        $e.LinkLayerAddress | Should -Be '00-15-5D-25-05-1D'
    }

    It 'removes by property name from Get-StackArpCache, honouring -WhatIf' {
        Get-StackArpCache -Stack $b -IPAddress 192.0.2.50 | Remove-StackArpEntry -WhatIf
        Get-StackArpCache -Stack $b -IPAddress 192.0.2.50 | Should -Not -BeNullOrEmpty
        # The entry carries IPAddress and Stack: both bind by property name.
        Get-StackArpCache -Stack $b -IPAddress 192.0.2.50 | Remove-StackArpEntry -Confirm:$false
        Get-StackArpCache -Stack $b -IPAddress 192.0.2.50 | Should -BeNullOrEmpty
    }

    It 'reports removing a missing entry as ObjectNotFound' {
        Remove-StackArpEntry 192.0.2.51 -Stack $b -Confirm:$false -ErrorVariable e -ErrorAction SilentlyContinue
        $e[0].FullyQualifiedErrorId | Should -BeLike 'ArpEntryNotFound,*'
        $e[0].CategoryInfo.Category | Should -Be 'ObjectNotFound'
    }

    It 'fails at binding for a bad MAC' {
        { Add-StackArpEntry 192.0.2.52 'not-a-mac' -Stack $b } | Should -Throw -ErrorId 'ParameterArgumentTransformationError*'
    }

    It 'clears learned entries, static ones only with -IncludeStatic, honouring -WhatIf' {
        Add-StackArpEntry 192.0.2.60 02-00-00-00-00-60 -Stack $b
        $null = Resolve-StackArpEntry 192.0.2.1 -Stack $b
        Clear-StackArpCache -Stack $b -WhatIf
        (Get-StackArpCache -Stack $b).IPAddress | Should -Contain '192.0.2.1'
        Clear-StackArpCache -Stack $b -Confirm:$false
        (Get-StackArpCache -Stack $b).IPAddress | Should -Be @('192.0.2.60')
        Clear-StackArpCache -Stack $b -IncludeStatic -Confirm:$false
        Get-StackArpCache -Stack $b | Should -BeNullOrEmpty
    }
}
