# Whether out/NetStack holds a build at least as new as every input of the module's layout, so the quickstart can skip
# a build (build.ps1 dot-sources this; tests/Pester/Build.Tests.ps1 checks it on a scratch tree).
# The inputs: the sources and help text (src/, bin and obj left out), the about topic (en-US/), the root manifest that
# is copied beside the DLLs (NetStack.psd1), the shared build settings and solution, and the scripts that lay the
# module out (build.ps1 writes the manifest copy, build/New-MamlHelp.ps1 the MAML help).
$script:ModuleLayoutInputs = @('src', 'en-US', 'NetStack.psd1', 'NetStack.slnx', 'Directory.Build.props', 'build.ps1', 'build/New-MamlHelp.ps1')

function Test-BuildCurrent([Parameter(Mandatory)] [string] $Root, [Parameter(Mandatory)] [string] $ModuleOut) {
    # The help file is written last by every build (the DLL keeps its compile time when only other files changed).
    $stamp = Join-Path $ModuleOut 'en-US/NetStack.PowerShell.dll-Help.xml'
    foreach ($laidOut in 'NetStack.PowerShell.dll', 'NetStack.psd1', 'en-US/about_NetStack.help.txt', 'en-US/NetStack.PowerShell.dll-Help.xml') {
        if (-not (Test-Path (Join-Path $ModuleOut $laidOut))) { return $false }
    }
    $built = (Get-Item $stamp).LastWriteTimeUtc
    foreach ($name in $script:ModuleLayoutInputs) {
        $path = Join-Path $Root $name
        if (-not (Test-Path $path)) { continue }
        # A folder's files, or the file itself (Get-ChildItem -Recurse on a file would also find its namesakes below,
        # such as out/NetStack/NetStack.psd1, which the build writes after the stamp).
        $files = if (Test-Path $path -PathType Container) { Get-ChildItem $path -Recurse -File } else { Get-Item $path }
        $newer = $files |
            Where-Object { $_.FullName -notmatch '[\\/](obj|bin)[\\/]' -and $_.LastWriteTimeUtc -gt $built } | Select-Object -First 1
        if ($newer) { Write-Verbose "Newer than the build: $($newer.FullName)"; return $false }
    }
    return $true
}
