# build.ps1 -Task Quickstart rebuilds only when the module in out/NetStack is older than one of its inputs
# (build/Test-BuildCurrent.ps1): checked on a scratch tree shaped like the repository.
BeforeAll {
    . $PSScriptRoot/Common.ps1
    . (Join-Path $RepoRoot 'build/Test-BuildCurrent.ps1')
    $tree = New-Item -ItemType Directory -Path (Join-Path ([System.IO.Path]::GetTempPath()) (New-TestName 'buildtree'))
    $out = Join-Path $tree 'out/NetStack'
    $old = [DateTime]::UtcNow.AddHours(-2)
    foreach ($f in 'src/Stack/Tcp/TcpLayer.cs', 'src/NetStack.PowerShell/help/NetStack.help.psd1', 'src/Stack/obj/Release/x.cs', 'en-US/about_NetStack.help.txt',
        'NetStack.psd1', 'NetStack.slnx', 'Directory.Build.props', 'build.ps1', 'build/New-MamlHelp.ps1', 'docs/README-only.md') {
        $p = Join-Path $tree $f
        New-Item -ItemType Directory -Force -Path (Split-Path $p) | Out-Null
        Set-Content -Path $p -Value 'x'
        (Get-Item $p).LastWriteTimeUtc = $old
    }
    function Set-LaidOut {
        foreach ($f in 'NetStack.PowerShell.dll', 'NetStack.psd1', 'en-US/about_NetStack.help.txt', 'en-US/NetStack.PowerShell.dll-Help.xml') {
            $p = Join-Path $out $f
            New-Item -ItemType Directory -Force -Path (Split-Path $p) | Out-Null
            Set-Content -Path $p -Value 'built'
            (Get-Item $p).LastWriteTimeUtc = $old.AddHours(1)
        }
        # The build writes the manifest's copy after the help file (the stamp): it must not count as an input.
        (Get-Item (Join-Path $out 'NetStack.psd1')).LastWriteTimeUtc = $old.AddHours(1.2)
    }
    function Set-Touched([string] $File) { (Get-Item (Join-Path $tree $File)).LastWriteTimeUtc = $old.AddHours(1.5) }
    function Set-Untouched([string] $File) { (Get-Item (Join-Path $tree $File)).LastWriteTimeUtc = $old }
}
AfterAll { Remove-Item -Recurse -Force $tree -ErrorAction SilentlyContinue }

Describe 'Test-BuildCurrent' {
    BeforeEach { Set-LaidOut }

    It 'is current when nothing changed since the build, and ignores bin/obj and files outside the layout' {
        Test-BuildCurrent -Root $tree -ModuleOut $out | Should -BeTrue
        Set-Touched 'src/Stack/obj/Release/x.cs'
        Set-Touched 'docs/README-only.md'
        Test-BuildCurrent -Root $tree -ModuleOut $out | Should -BeTrue
    }

    It 'is stale when <File> is newer than the build' -ForEach @(
        @{ File = 'src/Stack/Tcp/TcpLayer.cs' }, @{ File = 'src/NetStack.PowerShell/help/NetStack.help.psd1' }, @{ File = 'en-US/about_NetStack.help.txt' },
        @{ File = 'NetStack.psd1' }, @{ File = 'Directory.Build.props' }, @{ File = 'build/New-MamlHelp.ps1' }, @{ File = 'build.ps1' }) {
        Set-Touched $File
        try { Test-BuildCurrent -Root $tree -ModuleOut $out | Should -BeFalse }
        finally { Set-Untouched $File }
    }

    It 'is stale when part of the layout is missing: <Missing>' -ForEach @(@{ Missing = 'NetStack.psd1' }, @{ Missing = 'en-US/about_NetStack.help.txt' }, @{ Missing = 'NetStack.PowerShell.dll' }) {
        Remove-Item (Join-Path $out $Missing)
        Test-BuildCurrent -Root $tree -ModuleOut $out | Should -BeFalse
    }
}
