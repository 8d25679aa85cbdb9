BeforeAll {
    . $PSScriptRoot/Common.ps1
}

Describe 'Module state across runspaces' {
    It 'runs stacks from two runspaces at once; they see each other and ping each other' {
        $net = New-TestName 'rs'
        $n1 = New-TestName 'rs1'; $n2 = New-TestName 'rs2'
        $ps1 = New-ModulePowerShell; $ps2 = New-ModulePowerShell
        try {
            $null = $ps1.AddCommand('Start-Stack').AddParameters(@{ VirtualNetwork = $net; IPAddress = '192.0.2.21/24'; Name = $n1 }).Invoke()
            $null = $ps2.AddCommand('Start-Stack').AddParameters(@{ VirtualNetwork = $net; IPAddress = '192.0.2.22/24'; Name = $n2 }).Invoke()
            $ps1.Commands.Clear(); $ps2.Commands.Clear()
            (Get-Stack -Name $n1, $n2).Count | Should -Be 2   # one registry for the whole process

            $null = $ps1.AddCommand('Test-StackConnection').AddParameters(@{ ComputerName = '192.0.2.22'; Count = 3; Delay = 0; Stack = $n1 })
            $null = $ps2.AddCommand('Test-StackConnection').AddParameters(@{ ComputerName = '192.0.2.21'; Count = 3; Delay = 0; Stack = $n2 })
            $h1 = $ps1.BeginInvoke(); $h2 = $ps2.BeginInvoke()
            $r1 = $ps1.EndInvoke($h1); $r2 = $ps2.EndInvoke($h2)
            @($r1 | Where-Object Status -eq 'Success').Count | Should -Be 3
            @($r2 | Where-Object Status -eq 'Success').Count | Should -Be 3
        }
        finally {
            # Remove-Module in a runspace stops the stacks that runspace started (others still use the module).
            foreach ($ps in $ps1, $ps2) {
                $ps.Commands.Clear()
                $null = $ps.AddCommand('Remove-Module').AddParameter('Name', 'NetStack').Invoke()
                $ps.Dispose()
            }
        }
        Get-Stack -Name $n1, $n2 -ErrorAction SilentlyContinue | Should -BeNullOrEmpty
    }

    It 'Remove-Module in the last runspace stops every stack; no stack means StackNotStarted' {
        $script = @'
Import-Module ./NetStack.psd1
try { Get-StackArpCache } catch { 'error:' + $_.FullyQualifiedErrorId + ':' + $_.CategoryInfo.Category }
$a = Start-Stack -VirtualNetwork rm -IPAddress 192.0.2.31/24 -Name a
$b = Start-Stack -VirtualNetwork rm -IPAddress 192.0.2.32/24 -Name b
'running:' + ($a.IsRunning -and $b.IsRunning)
Remove-Module NetStack
'after:' + ($a.IsRunning -or $b.IsRunning) + ':' + $a.NetworkStack.IsRunning
'@
        Push-Location $RepoRoot
        try { $out = & dotnet pwsh -NoProfile -NonInteractive -Command $script 2>&1 | ForEach-Object ToString }
        finally { Pop-Location }
        $out | Should -Contain 'error:StackNotStarted,NetStack.PowerShell.GetStackArpCacheCommand:InvalidOperation'
        $out | Should -Contain 'running:True'
        $out | Should -Contain 'after:False:False'
    }
}
