# Every example in the help source runs, on the embedded network, without an error (Invoke-HelpExamples.ps1 runs them
# in a fresh pwsh, each in its own runspace and small world). Examples that need root or a real adapter say so with
# Needs in the help source and are skipped with that reason.
BeforeDiscovery {
    $repo = (Resolve-Path (Join-Path $PSScriptRoot '../..')).Path
    $source = Import-PowerShellDataFile (Join-Path $repo 'src/NetStack.PowerShell/help/NetStack.help.psd1')
    $examples = foreach ($command in $source.Commands.Keys | Sort-Object) {
        $n = 0
        foreach ($e in @($source.Commands[$command].Examples)) { $n++; @{ Command = $command; Number = $n; Code = $e.Code } }
    }
}

BeforeAll {
    . $PSScriptRoot/Common.ps1
    $resultPath = Join-Path $TestDrive 'examples.json'
    Push-Location $RepoRoot   # where the pinned pwsh is known
    try {
        $log = & dotnet pwsh -NoProfile -NonInteractive -File (Join-Path $PSScriptRoot 'Invoke-HelpExamples.ps1') `
            -HelpSourcePath (Join-Path $RepoRoot 'src/NetStack.PowerShell/help/NetStack.help.psd1') -ResultPath $resultPath -WorkingFolder $TestDrive 2>&1 | ForEach-Object ToString
    }
    finally { Pop-Location }
    $results = if (Test-Path $resultPath) { @(Get-Content -Raw $resultPath | ConvertFrom-Json) } else { @() }
    $runLog = $log -join "`n"
}

Describe '<Command> example <Number>' -ForEach $examples {
    It 'runs without an error: <Code>' {
        $r = $results | Where-Object { $_.Command -eq $Command -and $_.Number -eq $Number }
        $r | Should -Not -BeNullOrEmpty -Because "the example runner reported on it ($runLog)"
        if ($r.Status -eq 'Skipped') { Set-ItResult -Skipped -Because $r.Message; return }
        $r.Message | Should -BeNullOrEmpty
        $r.Status | Should -Be 'Passed'
    }
}

Describe 'Examples that cannot run here' {
    It 'are few: only those that need root or a real adapter' {
        $skipped = @((Import-PowerShellDataFile (Join-Path $RepoRoot 'src/NetStack.PowerShell/help/NetStack.help.psd1')).Commands.Values |
            ForEach-Object { @($_.Examples) } | Where-Object { $_['Needs'] })
        $skipped.Count | Should -BeLessOrEqual 5   # the adapter examples, HTTPS through the kernel lab, -HostIngressDrop (root and nft)
        foreach ($e in $skipped) { $e.Needs | Should -Match 'root|libpcap|adapter' }
    }
}
