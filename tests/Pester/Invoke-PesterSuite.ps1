<#
.SYNOPSIS
    Runs the module's Pester suite (called by build.ps1 -Task Test in its own pwsh process).
.DESCRIPTION
    Imports Pester by path, runs every *.Tests.ps1 here, writes NUnit XML to -ResultPath and the counts as JSON to
    -SummaryPath (build.ps1 prints "Pester: N passed, N failed, N skipped" from it) and exits 1 on any failure.
#>
param(
    [Parameter(Mandatory)] [string] $PesterPath,
    [Parameter(Mandatory)] [string] $ResultPath,
    [Parameter(Mandatory)] [string] $SummaryPath
)
$ErrorActionPreference = 'Stop'
Import-Module $PesterPath -Force

$config = New-PesterConfiguration
# The example check file runs with the suite: it must stay green against the embedded lab.
$config.Run.Path = @($PSScriptRoot, (Join-Path $PSScriptRoot '../../examples/NetworkChecks.Tests.ps1'))
$config.Run.Exit = $false
$config.Run.PassThru = $true
$config.Output.Verbosity = 'Detailed'
$config.TestResult.Enabled = $true
$config.TestResult.OutputFormat = 'NUnitXml'
$config.TestResult.OutputPath = $ResultPath

$result = Invoke-Pester -Configuration $config
# A failure outside an It (BeforeAll, a file that does not parse) is a failure too.
$failed = $result.FailedCount + $result.FailedBlocksCount + $result.FailedContainersCount
$summary = [ordered]@{ Passed = $result.PassedCount; Failed = $failed; Skipped = $result.SkippedCount + $result.NotRunCount }
$summary | ConvertTo-Json | Set-Content -Path $SummaryPath   # build.ps1 prints the summary line from this
exit ([int]($failed -gt 0))
