# Get-Help for every exported cmdlet comes from the MAML that build.ps1 -Task Build generates (build/New-MamlHelp.ps1)
# from src/NetStack.PowerShell/help/NetStack.help.psd1 and the built cmdlets. These tests fail when a cmdlet or a
# parameter has no text, when the help source names a parameter the cmdlet lacks (a rename), and when the generated
# help lists other parameters than the code has (a stale build).
BeforeDiscovery {
    $repo = (Resolve-Path (Join-Path $PSScriptRoot '../..')).Path
    $cmdlets = @((Import-PowerShellDataFile (Join-Path $repo 'NetStack.psd1')).CmdletsToExport | ForEach-Object { @{ Name = $_ } })
}

BeforeAll {
    . $PSScriptRoot/Common.ps1
    $script:HelpSourcePath = Join-Path $RepoRoot 'src/NetStack.PowerShell/help/NetStack.help.psd1'
    $script:HelpSource = Import-PowerShellDataFile $HelpSourcePath
    $script:Common = [System.Management.Automation.Cmdlet]::CommonParameters

    function Get-Text($Items) { (@($Items | ForEach-Object { if ($_ -is [string]) { $_ } else { $_.Text } }) -join "`n").Trim() }
    function Get-DeclaredParameters([string] $Name) { @((Get-Command $Name).Parameters.Keys | Where-Object { $_ -notin $Common } | Sort-Object) }
}

Describe 'Get-Help <Name>' -ForEach $cmdlets {
    BeforeAll {
        $help = Get-Help $Name -Full
    }

    It 'comes from the help file: a synopsis and a description' {
        $synopsis = Get-Text $help.Synopsis
        $synopsis | Should -Not -BeNullOrEmpty
        # Without a help file, PowerShell makes the synopsis from the syntax.
        $synopsis | Should -Not -Match "^$([regex]::Escape($Name))\s"
        Get-Text $help.description | Should -Not -BeNullOrEmpty
    }

    It 'has at least one example with code and remarks' {
        $examples = @($help.examples.example)
        $examples.Count | Should -BeGreaterOrEqual 1
        foreach ($e in $examples) {
            $e.code | Should -Not -BeNullOrEmpty
            Get-Text $e.remarks | Should -Not -BeNullOrEmpty
        }
    }

    It 'describes every parameter the cmdlet declares, and no other' {
        $documented = @($help.parameters.parameter)
        @($documented.name | Sort-Object) | Should -Be (Get-DeclaredParameters $Name) -Because 'the help file is generated from the built cmdlets'
        foreach ($p in $documented) {
            Get-Text $p.description | Should -Not -BeNullOrEmpty -Because "-$($p.name) needs a description in the help source"
        }
    }

    It 'help source names only parameters the cmdlet has' {
        $text = $HelpSource.Commands[$Name]
        $text | Should -Not -BeNullOrEmpty -Because "$Name needs an entry in $HelpSourcePath"
        $declared = Get-DeclaredParameters $Name
        foreach ($p in @($text.Parameters.Keys)) {
            $p | Should -BeIn $declared -Because "$HelpSourcePath describes -$p, which $Name does not have (renamed?)"
        }
    }

    It 'shows the syntax of every parameter set' {
        @($help.syntax.syntaxItem).Count | Should -Be @((Get-Command $Name).ParameterSets).Count
    }
}

Describe 'Help source' {
    It 'describes only cmdlets the module exports, and its links name them too' {
        $exported = @((Get-Command -Module NetStack -CommandType Cmdlet).Name)
        foreach ($name in $HelpSource.Commands.Keys) {
            $name | Should -BeIn $exported
            foreach ($link in @($HelpSource.Commands[$name].Links)) { $link | Should -BeIn $exported }
        }
    }

    It 'the generator warns about a parameter the cmdlet lacks' {
        $doctored = Join-Path $TestDrive 'help.psd1'
        (Get-Content -Raw $HelpSourcePath) -replace "(?m)^(\s+)RemotePort(\s+)= 'The peer", '$1RemotePortNumber$2= ''The peer' | Set-Content $doctored
        $out = Join-Path $TestDrive 'help.xml'
        Push-Location $RepoRoot
        try {
            $log = & dotnet pwsh -NoProfile -NonInteractive -File (Join-Path $RepoRoot 'build/New-MamlHelp.ps1') `
                -AssemblyPath (Join-Path $RepoRoot 'out/NetStack/NetStack.PowerShell.dll') -SourcePath $doctored -OutputPath $out 2>&1 |
                ForEach-Object ToString
        }
        finally { Pop-Location }
        $log -join "`n" | Should -Match 'describes -RemotePortNumber, which Connect-StackSocket does not have'
        $log -join "`n" | Should -Match 'Connect-StackSocket -RemotePort has no description'
        @(([xml](Get-Content -Raw $out)).helpItems.ChildNodes | Where-Object LocalName -eq 'command').Count | Should -Be @((Import-PowerShellDataFile (Join-Path $RepoRoot 'NetStack.psd1')).CmdletsToExport).Count
    }
}
