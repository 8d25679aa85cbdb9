# Shared by the test files: import the module from the repository root's manifest (built by build.ps1 -Task Build),
# and helpers for unique names (the module's registry is process-wide, and all test files share one process).
$script:RepoRoot = (Resolve-Path (Join-Path $PSScriptRoot '../..')).Path
$script:Manifest = Join-Path $script:RepoRoot 'NetStack.psd1'
Import-Module $script:Manifest -Force

# Echoes that should succeed get a generous limit on a loaded machine; tests of timeouts pass their own.
$PSDefaultParameterValues['Test-StackConnection:TimeoutSeconds'] = 30

function New-TestName([string] $Prefix) { '{0}-{1}' -f $Prefix, ([guid]::NewGuid().ToString('N').Substring(0, 8)) }

# A PowerShell in its own runspace with the module imported (for cancellation and several-runspaces tests).
function New-ModulePowerShell {
    $ps = [powershell]::Create([System.Management.Automation.RunspaceMode]::NewRunspace)
    $null = $ps.AddCommand('Import-Module').AddParameter('Name', $script:Manifest).Invoke()
    $ps.Commands.Clear()
    $ps
}

# Waits (polling, bounded) until the condition holds; fails the test when it never does.
function Wait-Until([scriptblock] $Condition, [int] $TimeoutMs = 30000, [string] $Because = 'the condition to hold') {
    $sw = [System.Diagnostics.Stopwatch]::StartNew()
    while (-not (& $Condition)) {
        if ($sw.ElapsedMilliseconds -gt $TimeoutMs) { throw "Timed out after $TimeoutMs ms waiting for $Because." }
        Start-Sleep -Milliseconds 10
    }
}

# Runs $Command in $PowerShell (another runspace), waits until it is under way ($Until; default: running), stops it
# from this thread as Ctrl+C would, and asserts that the stop was prompt.
function Assert-StopsPromptly {
    param(
        [powershell] $PowerShell,
        [string] $Command,
        [hashtable] $Parameters,
        [scriptblock] $Until = { $PowerShell.InvocationStateInfo.State -eq 'Running' }
    )
    $PowerShell.Commands.Clear()
    $null = $PowerShell.AddCommand($Command).AddParameters($Parameters)
    $handle = $PowerShell.BeginInvoke()
    Wait-Until $Until -Because "$Command to be under way"
    $sw = [System.Diagnostics.Stopwatch]::StartNew()
    $PowerShell.Stop()
    # Prompt means at once, not after the command's own 60 s wait; the margin is for a loaded CI machine.
    $sw.Elapsed.TotalSeconds | Should -BeLessThan 5
    $handle.IsCompleted | Should -BeTrue
    $PowerShell.InvocationStateInfo.State | Should -Be 'Stopped'
}
