#!/usr/bin/env pwsh
<#
.SYNOPSIS
    Builds and tests NetStack.
.DESCRIPTION
    -Task Build   builds the stack and the module (Release) and lays the module out under out/NetStack.
    -Task Test    installs what the tests need (as root), builds, runs the xunit suite (unit, simulation and,
                  as root, the Linux-kernel interop tests in network namespaces), then the Pester suite (tests/Pester,
                  in a separate pwsh; NUnit XML in out/test-results/pester.xml).
                  Ends with one summary line per suite: "<suite>: N passed, N failed, N skipped".
    -Task Quickstart  builds the module if it is missing or older than the sources, then runs examples/Quickstart.ps1:
                  a stack on the embedded lab pings the service host, resolves a name, uses TCP echo and HTTP, shows
                  its connections and ARP cache, and stops. No root, no adapter.
    -Task Bench   builds the benchmark suite (Release) and runs it as root: our stack against the kernel in its
                  place on a veth pair; table in out/bench/results.md (+ results.json). Not part of -Task Test.
                  Pass suite options with -BenchArgs, e.g. -BenchArgs '--quick --scenarios recv,rr'.
    -Task Pictures  builds, then regenerates the example pictures in docs/images (build/New-Pictures.ps1): the ladder
                  of a small exchange on a virtual network and the time-sequence graph of a seeded lossy transfer.
    Run it through the pinned pwsh:  dotnet tool restore && dotnet pwsh ./build.ps1 -Task Test
#>
[CmdletBinding()]
param(
    [ValidateSet('Build', 'Test', 'Bench', 'Prerequisites', 'Quickstart', 'Pictures')]
    [string] $Task = 'Build',
    [ValidateSet('Debug', 'Release')]
    [string] $Configuration = 'Release',
    # Extra filter for the xunit suite (dotnet test --filter syntax).
    [string] $Filter,
    # Arguments for the benchmark suite (-Task Bench): --quick, --runs N, --scenarios recv,send,connect,rr,ping,idle.
    [string] $BenchArgs = ''
)

$ErrorActionPreference = 'Stop'
Set-StrictMode -Version 3.0
$root = $PSScriptRoot
$results = Join-Path $root 'out/test-results'

function Invoke-Native {
    param([string] $File, [string[]] $Arguments)
    & $File @Arguments
    if ($LASTEXITCODE -ne 0) { throw "$File $($Arguments -join ' ') failed with exit code $LASTEXITCODE" }
}

function Test-IsRoot { (& id -u) -eq '0' }

# Debian packages the interop tests use: libpcap for capture, iproute2/ethtool for the lab, real peers, rsvg-convert
# (librsvg2-bin) that renders our SVG pictures in the tests.
$script:AptPackages = @('libpcap0.8', 'iproute2', 'ethtool', 'socat', 'dnsmasq-base', 'iputils-ping', 'netcat-openbsd', 'python3', 'nftables', 'curl', 'openssl', 'bind9-dnsutils', 'librsvg2-bin', 'tcpdump')

function Test-AptPackage([string] $Name) {
    if (-not (Get-Command dpkg-query -ErrorAction Ignore)) { return $false }
    $status = & dpkg-query -W -f '${Status}' $Name 2>$null
    return ($LASTEXITCODE -eq 0 -and "$status" -eq 'install ok installed')
}

function Install-Prerequisites {
    $missing = @($script:AptPackages | Where-Object { -not (Test-AptPackage $_) })
    if ($missing.Count -eq 0) { Write-Host 'Prerequisites: all present.'; return }
    if (-not (Test-IsRoot)) {
        Write-Warning ("Missing Debian packages: {0}. Install them as root (apt-get install -y {0}); " +
            'until then the kernel-interop tests are reported as skipped.' -f ($missing -join ' '))
        return
    }
    Write-Host "Installing: $($missing -join ' ')"
    $env:DEBIAN_FRONTEND = 'noninteractive'
    Invoke-Native apt-get @('update', '-qq')
    Invoke-Native apt-get (@('install', '-y', '-qq', '--no-install-recommends') + $missing)
}

# The module folder Import-Module ./NetStack.psd1 loads (the manifest's NestedModules and FormatsToProcess point here).
$moduleOut = Join-Path $root 'out/NetStack'

function Invoke-Build {
    Invoke-Native dotnet @('build', (Join-Path $root 'NetStack.slnx'), '-c', $Configuration, '--nologo', '-v', 'minimal')
    # Lay the module out fresh: removing first (rather than copying over) leaves a pwsh that still has the old
    # DLLs mapped undisturbed, since on Linux the old files live on until that process lets go of them.
    Remove-Item -Recurse -Force -ErrorAction Ignore $moduleOut
    Invoke-Native dotnet @('publish', (Join-Path $root 'src/NetStack.PowerShell/NetStack.PowerShell.csproj'), '-c', $Configuration,
        '--no-build', '--nologo', '-v', 'minimal', '-o', $moduleOut)
    Get-ChildItem $moduleOut -Filter 'System.Management.Automation.dll' | ForEach-Object { throw "PowerShell's own assembly must not ship in the module: $($_.FullName)" }
    # Get-Help's MAML: text from the help source, syntax and parameters from the built cmdlets. A child pwsh loads
    # the DLL, so this process never maps it (a rebuild stays possible).
    Push-Location $root   # where the pinned pwsh tool is known
    try {
        Invoke-Native dotnet @('pwsh', '-NoProfile', '-NonInteractive', '-File', (Join-Path $root 'build/New-MamlHelp.ps1'),
            '-AssemblyPath', (Join-Path $moduleOut 'NetStack.PowerShell.dll'),
            '-SourcePath', (Join-Path $root 'src/NetStack.PowerShell/help/NetStack.help.psd1'),
            '-OutputPath', (Join-Path $moduleOut 'en-US/NetStack.PowerShell.dll-Help.xml'))
    }
    finally { Pop-Location }
    Write-Host "Module laid out in $moduleOut; load it with: Import-Module ./NetStack.psd1"
}

# True when out/NetStack holds a build at least as new as every source of the module (so the quickstart can skip a build).
function Test-BuildCurrent {
    # The help file is written last by every build (the DLL keeps its compile time when only other files changed).
    $stamp = Join-Path $moduleOut 'en-US/NetStack.PowerShell.dll-Help.xml'
    if (-not (Test-Path (Join-Path $moduleOut 'NetStack.PowerShell.dll')) -or -not (Test-Path $stamp)) { return $false }
    $built = (Get-Item $stamp).LastWriteTimeUtc
    $newer = Get-ChildItem (Join-Path $root 'src') -Recurse -File -Include '*.cs', '*.csproj', '*.ps1xml', '*.psd1' |
        Where-Object { $_.FullName -notmatch '[\\/](obj|bin)[\\/]' -and $_.LastWriteTimeUtc -gt $built } | Select-Object -First 1
    return $null -eq $newer
}

function Invoke-Quickstart {
    if (Test-BuildCurrent) { Write-Host "Module in $moduleOut is current; not rebuilding." }
    else { Invoke-Build }
    # A separate pwsh, as for the tests: this process never loads the module's DLLs.
    Push-Location $root
    try { Invoke-Native dotnet @('pwsh', '-NoProfile', '-File', (Join-Path $root 'examples/Quickstart.ps1')) }
    finally { Pop-Location }
}

function Read-TrxCounts([string] $Path) {
    [xml] $trx = Get-Content -Raw $Path
    $c = $trx.TestRun.ResultSummary.Counters
    [pscustomobject]@{
        Passed  = [int]$c.passed
        Failed  = [int]$c.failed + [int]$c.error + [int]$c.timeout + [int]$c.aborted
        Skipped = [int]$c.total - [int]$c.passed - [int]$c.failed - [int]$c.error - [int]$c.timeout - [int]$c.aborted
    }
}

function Invoke-UnitTests {
    New-Item -ItemType Directory -Force $results | Out-Null
    $trxName = 'stack-tests.trx'
    Remove-Item -Force -ErrorAction Ignore (Join-Path $results $trxName)
    $testArgs = @('test', (Join-Path $root 'tests/Stack.Tests/Stack.Tests.csproj'), '-c', $Configuration, '--no-build', '--nologo',
        '--logger', "trx;LogFileName=$trxName", '--results-directory', $results, '--logger', 'console;verbosity=normal',
        '--blame-hang-timeout', '5m')
    if ($Filter) { $testArgs += @('--filter', $Filter) }
    & dotnet @testArgs | Out-Host
    $exit = $LASTEXITCODE
    $trx = Join-Path $results $trxName
    if (-not (Test-Path $trx)) { throw "The xunit run wrote no results (exit code $exit)." }
    $counts = Read-TrxCounts $trx
    [pscustomobject]@{ Suite = 'xunit'; Passed = $counts.Passed; Failed = $counts.Failed; Skipped = $counts.Skipped; ExitCode = $exit }
}

# Pester: any installed 5.5 or later, else the pinned one restored with the dotnet client (build/pester/pester.proj)
# from the machine's configured NuGet feed; the package keeps the module under tools/.
$script:PesterVersion = '5.7.1'

function Get-PesterManifest {
    $installed = Get-Module -ListAvailable -Name Pester | Where-Object Version -ge ([version]'5.5') |
        Sort-Object Version -Descending | Select-Object -First 1
    if ($installed) { return $installed.Path }
    Invoke-Native dotnet @('restore', (Join-Path $root 'build/pester/pester.proj'), '--nologo', '-v', 'quiet') | Out-Host
    $packages = $env:NUGET_PACKAGES
    if (-not $packages) { $packages = ((& dotnet nuget locals global-packages --list) -replace '^global-packages:\s*', '').Trim() }
    $manifest = Join-Path $packages "pester/$script:PesterVersion/tools/Pester.psd1"
    if (-not (Test-Path $manifest)) { throw "Pester $script:PesterVersion was restored but $manifest is missing." }
    $manifest
}

function Invoke-PesterTests {
    New-Item -ItemType Directory -Force $results | Out-Null
    $pester = Get-PesterManifest
    $summaryPath = Join-Path $results 'pester-summary.json'
    Remove-Item -Force -ErrorAction Ignore $summaryPath
    # A separate pwsh: the module's DLLs get loaded there, never in this process (a rebuild stays possible), and a
    # hung test cannot hang the build past the limit below.
    $psi = [System.Diagnostics.ProcessStartInfo]::new('dotnet')
    foreach ($a in @('pwsh', '-NoProfile', '-NonInteractive', '-File', (Join-Path $root 'tests/Pester/Invoke-PesterSuite.ps1'),
            '-PesterPath', $pester, '-ResultPath', (Join-Path $results 'pester.xml'), '-SummaryPath', $summaryPath)) { $psi.ArgumentList.Add($a) }
    $psi.WorkingDirectory = $root
    $psi.UseShellExecute = $false
    $process = [System.Diagnostics.Process]::Start($psi)
    $limit = [TimeSpan]::FromMinutes(10)
    if (-not $process.WaitForExit([int]$limit.TotalMilliseconds)) {
        $process.Kill($true)
        Write-Warning "The Pester run did not finish within $limit and was stopped."
    }
    $process.WaitForExit()
    $exit = $process.ExitCode
    if (-not (Test-Path $summaryPath)) {
        return [pscustomobject]@{ Suite = 'Pester'; Passed = 0; Failed = 1; Skipped = 0; ExitCode = if ($exit) { $exit } else { 1 } }
    }
    $counts = Get-Content -Raw $summaryPath | ConvertFrom-Json
    [pscustomobject]@{ Suite = 'Pester'; Passed = [int]$counts.Passed; Failed = [int]$counts.Failed; Skipped = [int]$counts.Skipped; ExitCode = $exit }
}

function Invoke-Bench {
    if (-not (Test-IsRoot)) { throw 'The benchmark needs root (network namespaces, packet capture): run build.ps1 -Task Bench as root.' }
    $project = Join-Path $root 'bench/NetStack.Bench/NetStack.Bench.csproj'
    Invoke-Native dotnet @('build', $project, '-c', 'Release', '--nologo', '-v', 'minimal')
    Invoke-Native dotnet (@((Join-Path $root 'bench/NetStack.Bench/bin/Release/net10.0/NetStack.Bench.dll')) + @($BenchArgs -split '\s+' | Where-Object { $_ }))
}

switch ($Task) {
    'Bench' { Install-Prerequisites; Invoke-Bench }
    'Prerequisites' { Install-Prerequisites }
    'Build' { Invoke-Build }
    'Quickstart' { Invoke-Quickstart }
    'Pictures' {
        Invoke-Build
        Push-Location $root   # where the pinned pwsh tool is known; a child pwsh loads the built module
        try { Invoke-Native dotnet @('pwsh', '-NoProfile', '-NonInteractive', '-File', (Join-Path $root 'build/New-Pictures.ps1'), '-OutDir', (Join-Path $root 'docs/images')) }
        finally { Pop-Location }
    }
    'Test' {
        Install-Prerequisites
        Invoke-Build
        $summaries = @(Invoke-UnitTests) + @(Invoke-PesterTests)
        $failed = $false
        foreach ($s in $summaries) {
            Write-Host ('{0}: {1} passed, {2} failed, {3} skipped' -f $s.Suite, $s.Passed, $s.Failed, $s.Skipped)
            if ($s.Failed -gt 0 -or $s.ExitCode -ne 0) { $failed = $true }
        }
        $total = $summaries | Measure-Object -Property Passed, Failed, Skipped -Sum
        $p, $f, $k = $total | ForEach-Object Sum
        Write-Host ('{0} passed, {1} failed, {2} skipped' -f $p, $f, $k)
        if ($failed) { exit 1 }
    }
}
