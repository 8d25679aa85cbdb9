# Installing and packaging (build.ps1 -Task Install / -Task Package), proven in fresh pwsh processes. Every child runs
# with XDG_DATA_HOME in this test's scratch folder, which is where pwsh looks for the user's modules and where
# PSResourceGet keeps its repositories: nothing reaches the real user module folder or PSResourceGet settings.
BeforeAll {
    . $PSScriptRoot/Common.ps1
    $script:Version = (Import-PowerShellDataFile $Manifest).ModuleVersion

    # Runs $Script in a fresh pwsh (from the repository, where the pinned pwsh is known) with its own XDG_DATA_HOME and
    # working folder; returns its output lines (errors included) and fails on a non-zero exit.
    function Invoke-FreshPwsh([string] $Script, [string] $DataHome, [string] $WorkingFolder = $TestDrive, [string[]] $Arguments = @()) {
        New-Item -ItemType Directory -Force $DataHome | Out-Null   # .NET ignores an XDG_DATA_HOME that does not exist
        $saved = $env:XDG_DATA_HOME
        $env:XDG_DATA_HOME = $DataHome
        Push-Location $RepoRoot
        try {
            $full = "`$ErrorActionPreference = 'Stop'; Set-Location -LiteralPath '$WorkingFolder'`n" + $Script
            $out = & dotnet pwsh -NoProfile -NonInteractive -Command $full @Arguments 2>&1 | ForEach-Object ToString
            if ($LASTEXITCODE -ne 0) { throw "pwsh exited with $LASTEXITCODE`n$($out -join "`n")" }
            $out
        }
        finally { Pop-Location; $env:XDG_DATA_HOME = $saved }
    }

    # In a fresh pwsh whose module path has NetStack: it loads without a path, by autoloading, in a thread job and in a
    # new runspace, and works (two stacks ping each other); Get-Help about_NetStack reads the installed topic.
    $script:UseInstalled = @'
'module:' + (Get-Module -ListAvailable NetStack | Select-Object -First 1).ModuleBase
$a = Start-Stack -VirtualNetwork inst -IPAddress 192.0.2.1/24 -Name insta   # autoloads the module
$null = Start-Stack -VirtualNetwork inst -IPAddress 192.0.2.2/24 -Name instb
'ping:' + (Test-StackConnection 192.0.2.1 -Count 1 -Quiet -Stack instb -TimeoutSeconds 30)
'loaded:' + (Get-Module NetStack).ModuleBase
$job = Start-ThreadJob { (Get-Stack | ForEach-Object Name) -join ',' }
'threadjob:' + (Receive-Job $job -Wait -AutoRemoveJob)
$ps = [powershell]::Create([System.Management.Automation.RunspaceMode]::NewRunspace)
'runspace:' + ($ps.AddScript('(Get-Stack).Count').Invoke() | Select-Object -First 1)
$ps.Dispose()
'about:' + [bool](Get-Help about_NetStack | Out-String | Select-String 'recv\(\)')
Get-Stack | Stop-Stack
'@
}

Describe 'build.ps1 -Task Install' {
    It 'puts the module in the user''s module folder, where Import-Module NetStack and autoloading find it' {
        $data = Join-Path $TestDrive 'install-data'
        $log = Invoke-FreshPwsh "& '$RepoRoot/build.ps1' -Task Install -NoBuild" -DataHome $data
        $target = Join-Path $data "powershell/Modules/NetStack/$Version"
        ($log -join "`n") | Should -Match ([regex]::Escape("Installed NetStack $Version in $target"))
        Test-Path (Join-Path $target 'NetStack.psd1') | Should -BeTrue
        Test-Path (Join-Path $target 'en-US/about_NetStack.help.txt') | Should -BeTrue

        $out = Invoke-FreshPwsh $UseInstalled -DataHome $data
        $out | Should -Contain "module:$target"
        $out | Should -Contain 'ping:True'
        $out | Should -Contain "loaded:$target"
        $out | Should -Contain 'threadjob:insta,instb'
        $out | Should -Contain 'runspace:2'
        $out | Should -Contain 'about:True'
    }

    It 'installs into -InstallPath instead when given one' {
        $modules = Join-Path $TestDrive 'elsewhere'
        $data = Join-Path $TestDrive 'elsewhere-data'
        $null = Invoke-FreshPwsh "& '$RepoRoot/build.ps1' -Task Install -NoBuild -InstallPath '$modules'" -DataHome $data
        Test-Path (Join-Path $modules "NetStack/$Version/NetStack.PowerShell.dll") | Should -BeTrue
        Test-Path (Join-Path $data 'powershell/Modules/NetStack') | Should -BeFalse
    }
}

Describe 'The module folder''s manifest' {
    It 'is the repository''s manifest with paths relative to the folder, and valid' {
        $root = Import-PowerShellDataFile $Manifest
        $copy = Import-PowerShellDataFile (Join-Path $RepoRoot 'out/NetStack/NetStack.psd1')
        foreach ($key in $root.Keys) {
            $expected = $root[$key] | ForEach-Object { if ($_ -is [string]) { $_ -replace '^out/NetStack/', '' } else { $_ } }
            if ($key -eq 'PrivateData') { continue }
            @($copy[$key]) | Should -Be @($expected) -Because "$key comes from the one manifest"
        }
        $copy.CmdletsToExport | Should -Be $root.CmdletsToExport
        (Test-ModuleManifest (Join-Path $RepoRoot 'out/NetStack/NetStack.psd1')).Name | Should -Be 'NetStack'
    }
}

Describe 'build.ps1 -Task Package' {
    It 'makes a .nupkg that PSResourceGet publishes to a folder repository and installs from it; the install works' {
        $data = Join-Path $TestDrive 'package-data'
        $log = Invoke-FreshPwsh "& '$RepoRoot/build.ps1' -Task Package -NoBuild" -DataHome $data
        $nupkg = Join-Path $RepoRoot "out/packages/NetStack.$Version.nupkg"
        ($log -join "`n") | Should -Match ([regex]::Escape($nupkg))
        Test-Path $nupkg | Should -BeTrue

        $repository = Join-Path $TestDrive 'repository'
        New-Item -ItemType Directory -Force $repository | Out-Null
        # Install-PSResource -Scope CurrentUser would write to the real ~/.local/share/powershell/Modules whatever
        # XDG_DATA_HOME says; Save-PSResource -Path installs into the scratch module folder instead.
        $modules = Join-Path $TestDrive 'package-modules'
        New-Item -ItemType Directory -Force $modules | Out-Null
        $publish = @"
Register-PSResourceRepository -Name scratch -Uri '$repository' -Trusted -ApiVersion Local
Publish-PSResource -NupkgPath '$nupkg' -Repository scratch
'found:' + (Find-PSResource NetStack -Repository scratch).Version
Save-PSResource NetStack -Repository scratch -Path '$modules' -TrustRepository -IncludeXml
'installed:' + (Get-InstalledPSResource NetStack -Path '$modules').Version
"@
        $out = Invoke-FreshPwsh $publish -DataHome $data
        $out | Should -Contain "found:$Version"
        $out | Should -Contain "installed:$Version"
        Test-Path (Join-Path $repository "NetStack.$Version.nupkg") | Should -BeTrue

        $out = Invoke-FreshPwsh ("`$env:PSModulePath = '$modules' + [IO.Path]::PathSeparator + `$env:PSModulePath`n" + $UseInstalled) -DataHome $data
        $out | Should -Contain "module:$(Join-Path $modules "NetStack/$Version")"
        $out | Should -Contain 'ping:True'
        $out | Should -Contain 'threadjob:insta,instb'
    }
}
