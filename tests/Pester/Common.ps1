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

# The TCP frames of a pcap file (Ethernet, IPv4): direction-free source/destination ports and flag letters, read
# byte by byte (the file format: a 24-byte header, then per frame a 16-byte record header and the frame).
function Read-PcapTcpSegments([string] $Path) {
    $b = [IO.File]::ReadAllBytes($Path)
    $at = 24
    while ($at + 16 -le $b.Length) {
        $len = [BitConverter]::ToInt32($b, $at + 8)
        $f = $at + 16
        $at = $f + $len
        if ($len -lt 54 -or $b[$f + 12] -ne 0x08 -or $b[$f + 13] -ne 0x00 -or $b[$f + 23] -ne 6) { continue }
        $ip = $f + 14; $tcp = $ip + 4 * ($b[$ip] -band 0x0F)
        $flags = $b[$tcp + 13]
        [pscustomobject]@{
            SourcePort = $b[$tcp] * 256 + $b[$tcp + 1]
            DestinationPort = $b[$tcp + 2] * 256 + $b[$tcp + 3]
            Flags = -join @(foreach ($p in @(@(2, 'S'), @(16, 'A'), @(1, 'F'), @(4, 'R'), @(8, 'P'))) { if ($flags -band $p[0]) { $p[1] } })
        }
    }
}
