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

            $null = $ps1.AddCommand('Test-StackConnection').AddParameters(@{ ComputerName = '192.0.2.22'; Count = 3; Delay = 0; TimeoutSeconds = 30; Stack = $n1 })
            $null = $ps2.AddCommand('Test-StackConnection').AddParameters(@{ ComputerName = '192.0.2.21'; Count = 3; Delay = 0; TimeoutSeconds = 30; Stack = $n2 })
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

    It 'Remove-Module in the last runspace stops every stack, also those of closed -Parallel runspaces; no stack means StackNotStarted' {
        $script = @'
Import-Module ./NetStack.psd1
try { Get-StackArpCache } catch { 'error:' + $_.FullyQualifiedErrorId + ':' + $_.CategoryInfo.Category; 'message:' + $_.Exception.Message }
$a = Start-Stack -VirtualNetwork rm -IPAddress 192.0.2.31/24 -Name a
$b = Start-Stack -VirtualNetwork rm -IPAddress 192.0.2.32/24 -Name b
# Stacks started by ForEach-Object -Parallel runspaces, which close without Remove-Module.
$m = (Resolve-Path ./NetStack.psd1).Path
1..2 | ForEach-Object -Parallel { Import-Module $using:m; $null = Start-Stack -VirtualNetwork rm -IPAddress "192.0.2.$($_ + 40)/24" -Name "par$_" }
$all = Get-Stack
'running:' + $all.Count + ':' + (@($all | Where-Object IsRunning).Count)
Remove-Module NetStack
'after:' + (@($all | Where-Object IsRunning).Count) + ':' + $a.NetworkStack.IsRunning
'@
        Push-Location $RepoRoot
        try { $out = & dotnet pwsh -NoProfile -NonInteractive -Command $script 2>&1 | ForEach-Object ToString }
        finally { Pop-Location }
        $out | Should -Contain 'error:StackNotStarted,NetStack.PowerShell.GetStackArpCacheCommand:InvalidOperation'
        ($out -match '^message:') | Should -Match '^message:No stack is running\. Start one with Start-Stack \(alone, it joins the embedded lab' -Because 'the plain Start-Stack comes first: it needs no adapter and no root'
        $out | Should -Contain 'running:4:4'
        $out | Should -Contain 'after:0:False'
    }
}
