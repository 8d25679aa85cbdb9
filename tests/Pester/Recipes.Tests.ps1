# docs/recipes.md as a newcomer uses it: every PowerShell block in order, in a fresh pwsh on the embedded lab, with
# `Import-Module NetStack` finding the built module (as after build.ps1 -Task Install); then the Pester check it ends
# with, saved to a file and run with Invoke-Pester. A recipe that errors, or that leaves the lab unusable for the next
# one, fails here.
BeforeAll {
    . $PSScriptRoot/Common.ps1
    $text = Get-Content -Raw (Join-Path $RepoRoot 'docs/recipes.md')
    $blocks = @([regex]::Matches($text, '(?ms)^```powershell\r?\n(.*?)^```') | ForEach-Object { $_.Groups[1].Value })
    $work = New-Item -ItemType Directory -Path (Join-Path ([System.IO.Path]::GetTempPath()) (New-TestName 'recipes'))
    # `Import-Module NetStack` finds out/NetStack, the module build.ps1 lays out (and -Task Install copies).
    $modulePath = "$(Join-Path $RepoRoot 'out')$([System.IO.Path]::PathSeparator)$env:PSModulePath"

    function Invoke-ChildPwsh([string] $Script) {
        $path = Join-Path $work "run-$([guid]::NewGuid().ToString('N').Substring(0, 6)).ps1"
        Set-Content -Path $path -Value $Script
        Push-Location $RepoRoot   # where the pinned pwsh is known
        try {
            $env:NO_COLOR = '1'
            $saved = $env:PSModulePath
            $env:PSModulePath = $modulePath
            $out = & dotnet pwsh -NoProfile -NonInteractive -WorkingDirectory $work -File $path 2>&1 | ForEach-Object ToString
            [pscustomobject]@{ Exit = $LASTEXITCODE; Text = $out -join "`n" }
        }
        finally { $env:PSModulePath = $saved; Remove-Item Env:NO_COLOR; Pop-Location }
    }
}
AfterAll { Remove-Item -Recurse -Force $work -ErrorAction SilentlyContinue }

Describe 'docs/recipes.md' {
    It 'has the recipes the page promises' {
        $blocks.Count | Should -BeGreaterThan 8
        $blocks[0] | Should -Match '^Import-Module NetStack\b'
        ($blocks | Where-Object { $_ -match '\bDescribe\b' }).Count | Should -Be 1 -Because 'one block is a Pester check file, run below'
    }

    It 'runs every recipe in order on the embedded lab, as written' {
        $recipes = ($blocks | Where-Object { $_ -notmatch '\bDescribe\b' }) -join "`n"
        $r = Invoke-ChildPwsh ("`$ErrorActionPreference = 'Stop'`n" + $recipes + "`n'RECIPES DONE'")
        $r.Exit | Should -Be 0 -Because $r.Text
        $r.Text | Should -Match 'RECIPES DONE'
        $r.Text | Should -Match 'Hello from the NetStack lab service host!'   # a page fetched two ways
        $r.Text | Should -Match 'host\.lab\.test'                              # names resolved
        $r.Text | Should -Match 'SYN Seq=0 Len=0'                              # the echo connection's ladder
        $r.Text | Should -Match 'MtuSize\s*:\s*1500'                          # the path MTU
        $r.Text | Should -Match 'State\s*:\s*Bound'                            # a lease from the service host
        Join-Path $work 'trace.pcap' | Should -Exist
        Get-Content -Raw (Join-Path $work 'upload.svg') | Should -Match 'Sender internals of 192\.0\.2\.2:'
    }

    It 'ends with a Pester check that passes against the lab' {
        Set-Content -Path (Join-Path $work 'Lab.Tests.ps1') -Value ($blocks | Where-Object { $_ -match '\bDescribe\b' })
        $pester = (Get-Module Pester).Path
        $r = Invoke-ChildPwsh "Import-Module '$pester'; `$result = Invoke-Pester ./Lab.Tests.ps1 -PassThru -Output Detailed; 'CHECKS ' + `$result.PassedCount + ' ' + `$result.FailedCount; exit `$result.FailedCount"
        $r.Exit | Should -Be 0 -Because $r.Text
        $r.Text | Should -Match 'CHECKS 4 0'
    }
}
