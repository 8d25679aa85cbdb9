# The default tables (every *.Format.ps1xml) keep their netstat/tshark headers (No., Dir, Recv-Q, Local Address), and every header is also a
# member of the objects it shows (a property, or an alias in NetStack.Types.ps1xml), so Format-Table No,Dir,
# Select-Object 'Recv-Q' and Sort-Object 'Local Address' work as the headers read.
BeforeDiscovery {
    $repo = (Resolve-Path (Join-Path $PSScriptRoot '../..')).Path
    $formats = Get-ChildItem (Join-Path $repo 'src/NetStack.PowerShell') -Filter '*.Format.ps1xml' | ForEach-Object { [xml](Get-Content -Raw $_.FullName) }
    $views = foreach ($view in $formats.Configuration.ViewDefinitions.View) {
        if (-not $view.TableControl) { continue }
        foreach ($type in @($view.ViewSelectedBy.TypeName)) {
            @{ View = $view.Name; Type = $type; Labels = @($view.TableControl.TableHeaders.TableColumnHeader.Label) }
        }
    }
}

BeforeAll {
    . $PSScriptRoot/Common.ps1
}

Describe 'The table of <Type>' -ForEach $views {
    It 'has headers that are members of the objects it shows' {
        # A view for 'Name#Detailed' shows objects of Name with that extra type name.
        $t = ($Type -replace '#.*$') -as [type]
        $t | Should -Not -BeNullOrEmpty -Because "$Type is a type of the module"
        $members = @($t.GetProperties().Name) + @((Get-TypeData $t.FullName).Members.Keys) + @((Get-TypeData $Type).Members.Keys)
        foreach ($label in $Labels) { $members | Should -Contain $label -Because "Format-Table $label should pick the column the header names" }
    }
}

Describe 'Selecting columns by their headers' {
    BeforeAll {
        $net = New-TestName 'fmt'
        $srv = Start-Stack -VirtualNetwork $net -IPAddress 192.0.2.1/24 -Name (New-TestName 'fmtS')
        $cli = Start-Stack -VirtualNetwork $net -IPAddress 192.0.2.2/24 -Name (New-TestName 'fmtC')
        $l = Start-StackListener 80 -Stack $srv
        $c = Connect-StackSocket 192.0.2.1 80 -Stack $cli
        $s = $l | Wait-StackConnection
    }
    AfterAll { $srv, $cli | Stop-Stack -Confirm:$false }

    It 'Format-Table No,Dir on packets shows their numbers and directions' {
        $p = @(Get-StackPacket -Stack $cli)
        $text = $p | Format-Table No, Dir | Out-String
        $text | Should -Match 'No\s+Dir'
        $text | Should -Match "(?m)^\s*$($p[0].Number)\s+$($p[0].Direction)\s*$"
        ($p | Select-Object -First 1 'No.').'No.' | Should -Be $p[0].Number
    }

    It 'Format-Table Proto, ''Local Address'', ''Recv-Q'' on connections shows those columns' {
        $c | Send-StackData 'abc'
        Wait-Until { (Get-StackConnection -Stack $srv -Id $s.Id).RecvQ -eq 3 } -Because 'the data to arrive'
        $row = Get-StackConnection -Stack $srv -Id $s.Id
        $text = $row | Format-Table Proto, 'Local Address', 'Foreign Address', 'Recv-Q', 'Send-Q' | Out-String
        $text | Should -Match 'Proto\s+Local Address\s+Foreign Address\s+Recv-Q\s+Send-Q'
        $text | Should -Match "Tcp\s+192\.0\.2\.1:80\s+192\.0\.2\.2:$($c.LocalEndPoint.Port)\s+3\s+0"
        $row.'Recv-Q' | Should -Be 3
    }
}
