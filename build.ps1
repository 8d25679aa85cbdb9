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
    -Task Quickstart  builds the module if it is missing or older than any of its inputs (src/, en-US/, the root
                  manifest, the build settings and scripts: build/Test-BuildCurrent.ps1), then runs examples/Quickstart.ps1:
                  a stack on the embedded lab pings the service host, resolves a name, uses TCP echo and HTTP, shows
                  its connections, the echo connection as a ladder and its ARP cache, and stops. No root, no adapter.
    -Task Install builds, then copies the module into the user's module folder (on Linux and macOS
                  $XDG_DATA_HOME/powershell/Modules, by default ~/.local/share/powershell/Modules; on Windows
                  Documents/PowerShell/Modules) as NetStack/<version>, so Import-Module NetStack and autoloading work in
                  any pwsh, thread job or runspace. -InstallPath puts it under another folder instead; -NoBuild installs
                  what the last -Task Build laid out.
    -Task Package builds, then writes out/packages/NetStack.<version>.nupkg, the package a PowerShell repository
                  takes (Publish-PSResource -NupkgPath, or any NuGet feed); made by PSResourceGet in a scratch folder.
    -Task Bench   builds the benchmark suite (Release) and runs it as root: our stack against the kernel in its
                  place on a veth pair; table in out/bench/results.md (+ results.json). Not part of -Task Test.
                  Pass suite options with -BenchArgs, e.g. -BenchArgs '--quick --scenarios recv,rr'; '--full' adds the long
                  scenarios (100,000 connections, lossy transfers: 20-25 min).
    -Task Pictures  builds, then regenerates the example pictures in docs/images (build/New-Pictures.ps1): the ladder
                  of a small exchange on a virtual network and the time-sequence graph of a seeded lossy transfer.
    Run it through the pinned pwsh:  dotnet tool restore && dotnet pwsh ./build.ps1 -Task Test
#>
[CmdletBinding()]
param(
    [ValidateSet('Build', 'Test', 'Install', 'Package', 'Bench', 'Prerequisites', 'Quickstart', 'Pictures')]
    [string] $Task = 'Build',
    [ValidateSet('Debug', 'Release')]
    [string] $Configuration = 'Release',
    # Extra filter for the xunit suite (dotnet test --filter syntax).
    [string] $Filter,
    # Arguments for the benchmark suite (-Task Bench): --quick, --full, --list, --runs N, --scenarios recv,rr-in-2ms,lossy,... (docs/benchmarks.md).
    [string] $BenchArgs = '',
    # The Pester the module's suite runs on (-Task Test), restored from NuGet: 5.7.1 (the default) or e.g. 6.2.0.
    # Left out, an installed Pester 5.5 or later is used if there is one.
    [string] $PesterVersion,
    # -Task Install: the folder to install into (NetStack/<version> goes under it) instead of the user's module folder.
    [string] $InstallPath,
    # -Task Install/Package: use the module -Task Build laid out in out/NetStack as it is.
    [switch] $NoBuild
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
# (librsvg2-bin) that renders our SVG pictures in the tests, capsh (libcap2-bin) for the test without capture rights.
$script:AptPackages = @('libpcap0.8', 'iproute2', 'ethtool', 'socat', 'dnsmasq-base', 'iputils-ping', 'netcat-openbsd', 'python3', 'nftables', 'curl', 'openssl', 'bind9-dnsutils', 'librsvg2-bin', 'tcpdump', 'libcap2-bin')

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

function Invoke-Build([switch] $ModuleOnly) {
    # The quickstart needs only the module (the stack and the cmdlets), not the tests and the benchmark.
    $project = if ($ModuleOnly) { 'src/NetStack.PowerShell/NetStack.PowerShell.csproj' } else { 'NetStack.slnx' }
    Invoke-Native dotnet @('build', (Join-Path $root $project), '-c', $Configuration, '--nologo', '-v', 'minimal')
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
    Write-ModuleManifest
    Write-Host "Module laid out in $moduleOut; load it with: Import-Module ./NetStack.psd1"
}

. (Join-Path $PSScriptRoot 'build/Test-BuildCurrent.ps1')   # Test-BuildCurrent: is out/NetStack as new as its inputs?

function Invoke-Quickstart {
    if (Test-BuildCurrent -Root $root -ModuleOut $moduleOut) { Write-Host "Module in $moduleOut is current; not rebuilding." }
    else { Invoke-Build -ModuleOnly }
    # A separate pwsh, as for the tests: this process never loads the module's DLLs.
    Push-Location $root
    try { Invoke-Native dotnet @('pwsh', '-NoProfile', '-File', (Join-Path $root 'examples/Quickstart.ps1')) }
    finally { Pop-Location }
}

# One manifest: the root NetStack.psd1 (what Import-Module ./NetStack.psd1 loads; new cmdlets are added there). The
# module folder gets a copy whose paths point beside it, which makes out/NetStack a module that can be installed.
function Write-ModuleManifest {
    $lines = Get-Content (Join-Path $root 'NetStack.psd1')
    # The leading comments are about the repository; the data is copied with its paths made relative.
    $start = [array]::FindIndex([string[]]$lines, [Predicate[string]] { param($l) $l -notmatch '^\s*(#|$)' })
    $data = @($lines[$start..($lines.Count - 1)] | ForEach-Object { $_ -replace "'out/NetStack/", "'" })
    if ($data -match "^[^#]*out/NetStack") { throw "NetStack.psd1 names out/NetStack in a way the module folder's copy cannot rewrite: paths must start 'out/NetStack/." }
    $header = @('# Generated by build.ps1 from the repository''s NetStack.psd1 (edit that one); paths are relative to this folder.')
    Set-Content -Path (Join-Path $moduleOut 'NetStack.psd1') -Value ($header + $data)
}

function Get-ModuleVersion { (Import-PowerShellDataFile (Join-Path $root 'NetStack.psd1')).ModuleVersion }

# Where pwsh looks for the current user's modules (the first entry of its default PSModulePath).
function Get-UserModulePath {
    if ($IsWindows) { return Join-Path ([Environment]::GetFolderPath('MyDocuments')) 'PowerShell/Modules' }
    $data = if ($env:XDG_DATA_HOME) { $env:XDG_DATA_HOME } else { Join-Path $HOME '.local/share' }
    Join-Path $data 'powershell/Modules'
}

function Assert-ModuleLaidOut {
    if (-not (Test-Path (Join-Path $moduleOut 'NetStack.psd1'))) { throw "No module in ${moduleOut}: run build.ps1 -Task Build first (or leave out -NoBuild)." }
}

function Install-NetStack {
    Assert-ModuleLaidOut
    $modules = if ($InstallPath) { $InstallPath } else { Get-UserModulePath }
    $target = Join-Path $modules "NetStack/$(Get-ModuleVersion)"
    # Replace, not overwrite: a pwsh that has the old DLLs loaded keeps them undisturbed (on Linux).
    Remove-Item -Recurse -Force -ErrorAction Ignore $target
    New-Item -ItemType Directory -Force $target | Out-Null
    Copy-Item -Recurse -Path (Join-Path $moduleOut '*') -Destination $target
    Write-Host "Installed NetStack $(Get-ModuleVersion) in $target"
    $onPath = @($env:PSModulePath -split [IO.Path]::PathSeparator | ForEach-Object { $_.TrimEnd('/', '\') }) -contains $modules.TrimEnd('/', '\')
    if ($onPath) { Write-Host 'Load it from any pwsh with: Import-Module NetStack (or just run one of its commands)' }
    else { Write-Warning "$modules is not on PSModulePath; add it there, or Import-Module $target/NetStack.psd1" }
}

# The .nupkg comes from PSResourceGet (shipped with pwsh 7.4+) publishing the module folder to a scratch folder
# repository, so it is exactly what Publish-PSResource would put on a gallery.
function New-NetStackPackage {
    Assert-ModuleLaidOut
    $packages = Join-Path $root 'out/packages'
    $scratch = Join-Path ([IO.Path]::GetTempPath()) "netstack-package-$PID"
    New-Item -ItemType Directory -Force $packages, $scratch | Out-Null
    try {
        $repository = Join-Path $scratch 'repository'
        $data = Join-Path $scratch 'data'   # must exist: .NET reads an XDG_DATA_HOME that does not as "no folder"
        New-Item -ItemType Directory -Force $repository, $data | Out-Null
        # A child pwsh (publishing loads the module's manifest to check it) whose XDG_DATA_HOME is the scratch folder,
        # so the repository it registers never reaches the user's PSResourceGet settings.
        $script = "`$ErrorActionPreference = 'Stop'; Register-PSResourceRepository -Name NetStackPackage -Uri '$repository' -Trusted -ApiVersion Local; " +
            "Publish-PSResource -Path '$moduleOut' -Repository NetStackPackage -SkipDependenciesCheck"
        $saved = $env:XDG_DATA_HOME
        $env:XDG_DATA_HOME = $data
        Push-Location $root
        try { Invoke-Native dotnet @('pwsh', '-NoProfile', '-NonInteractive', '-Command', $script) }
        finally { Pop-Location; $env:XDG_DATA_HOME = $saved }
        $nupkg = Get-ChildItem $repository -Filter 'NetStack.*.nupkg' | Select-Object -First 1
        if (-not $nupkg) { throw "Publish-PSResource wrote no package to $scratch." }
        Copy-Item $nupkg.FullName $packages -Force
        Write-Host "Package: $(Join-Path $packages $nupkg.Name)"
    }
    finally { Remove-Item -Recurse -Force -ErrorAction Ignore $scratch }
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

# Pester: with -PesterVersion, that version; without, any installed 5.5 or later, else 5.7.1. A version not installed is
# restored with the dotnet client (build/pester/pester.proj) from the machine's configured NuGet feed; the package
# keeps the module under tools/.
$script:DefaultPesterVersion = '5.7.1'

function Get-PesterManifest {
    $installed = Get-Module -ListAvailable -Name Pester | Where-Object { if ($PesterVersion) { $_.Version -eq [version]$PesterVersion } else { $_.Version -ge [version]'5.5' } } |
        Sort-Object Version -Descending | Select-Object -First 1
    if ($installed) { return $installed.Path }
    $version = if ($PesterVersion) { $PesterVersion } else { $script:DefaultPesterVersion }
    Invoke-Native dotnet @('restore', (Join-Path $root 'build/pester/pester.proj'), "-p:PesterVersion=$version", '--nologo', '-v', 'quiet') | Out-Host
    $packages = $env:NUGET_PACKAGES
    if (-not $packages) { $packages = ((& dotnet nuget locals global-packages --list) -replace '^global-packages:\s*', '').Trim() }
    $manifest = Join-Path $packages "pester/$version/tools/Pester.psd1"
    if (-not (Test-Path $manifest)) { throw "Pester $version was restored but $manifest is missing." }
    $manifest
}

function Invoke-PesterTests {
    New-Item -ItemType Directory -Force $results | Out-Null
    $pester = Get-PesterManifest
    Write-Host "Pester $((Import-PowerShellDataFile $pester).ModuleVersion) from $pester"
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
    'Install' { if (-not $NoBuild) { Invoke-Build }; Install-NetStack }
    'Package' { if (-not $NoBuild) { Invoke-Build }; New-NetStackPackage }
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
