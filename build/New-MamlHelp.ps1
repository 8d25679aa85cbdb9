#!/usr/bin/env pwsh
<#
.SYNOPSIS
    Generates the MAML help of the module's binary cmdlets (what Get-Help reads) from the built assembly and the
    help text in src/NetStack.PowerShell/help/NetStack.help.psd1.
.DESCRIPTION
    Syntax and parameter facts come from the cmdlets themselves (Get-Command on the built DLL): names, types,
    parameter sets, mandatory, position, pipeline input, aliases, wildcards, defaults (read from a fresh instance of
    the cmdlet class) and output types. Only prose comes from the help source, so help cannot drift from the code.
    Text the source lacks, or names the cmdlets lack, is reported as a warning; tests/Pester/Help.Tests.ps1 fails on
    both. build.ps1 -Task Build runs this in a child pwsh, so the DLL is never loaded in the build's own process.
.EXAMPLE
    dotnet pwsh -NoProfile -File build/New-MamlHelp.ps1 -AssemblyPath out/NetStack/NetStack.PowerShell.dll `
        -SourcePath src/NetStack.PowerShell/help/NetStack.help.psd1 -OutputPath out/NetStack/en-US/NetStack.PowerShell.dll-Help.xml
#>
[CmdletBinding()]
param(
    [Parameter(Mandatory)] [string] $AssemblyPath,
    [Parameter(Mandatory)] [string] $SourcePath,
    [Parameter(Mandatory)] [string] $OutputPath
)

$ErrorActionPreference = 'Stop'
Set-StrictMode -Version 3.0

$ns = @{
    maml    = 'http://schemas.microsoft.com/maml/2004/10'
    command = 'http://schemas.microsoft.com/maml/dev/command/2004/10'
    dev     = 'http://schemas.microsoft.com/maml/dev/2004/10'
}
# -Verbose, -ErrorAction...: Get-Help adds <CommonParameters> itself. -WhatIf/-Confirm are documented like the others.
$commonParameters = [System.Management.Automation.Cmdlet]::CommonParameters

function Get-TypeName([type] $Type) {
    $underlying = [Nullable]::GetUnderlyingType($Type)
    if ($underlying) { $Type = $underlying }
    $Type.Name
}

# The property's initial value on a fresh cmdlet object is its default when the parameter is omitted.
function Get-DefaultText([object] $Instance, [System.Management.Automation.CommandParameterInfo] $Parameter) {
    if ($Parameter.ParameterType -eq [System.Management.Automation.SwitchParameter]) { return 'False' }
    if ($null -eq $Instance) { return 'None' }
    # -WhatIf and -Confirm are the engine's, not properties of the class.
    $property = $Instance.GetType().GetProperties() | Where-Object Name -eq $Parameter.Name | Select-Object -First 1
    if ($Parameter.IsMandatory -or -not $property) { return 'None' }
    $value = $property.GetValue($Instance)
    if ($null -eq $value -or ($value -is [array] -and $value.Count -eq 0) -or "$value" -eq '') { return 'None' }
    "$value"
}

function Get-PipelineText([System.Management.Automation.CommandParameterInfo] $Parameter) {
    $kinds = @(if ($Parameter.ValueFromPipeline) { 'ByValue' }; if ($Parameter.ValueFromPipelineByPropertyName) { 'ByPropertyName' })
    if ($kinds.Count -eq 0) { return 'False' }
    'True ({0})' -f ($kinds -join ', ')
}

# Positional parameters by position, then mandatory named ones, then the rest in declaration order; -WhatIf/-Confirm last.
function Get-OrderedParameters([System.Management.Automation.CommandParameterSetInfo] $Set) {
    $i = 0
    $Set.Parameters | Where-Object { $_.Name -notin $commonParameters } | ForEach-Object {
        $rank = if ($_.Name -in 'WhatIf', 'Confirm') { 3 } elseif ($_.Position -ge 0) { 0 } elseif ($_.IsMandatory) { 1 } else { 2 }
        [pscustomobject]@{ Parameter = $_; Rank = $rank; Position = $_.Position; Index = $i++ }
    } | Sort-Object Rank, Position, Index | ForEach-Object Parameter
}

function Write-Paragraphs([System.Xml.XmlWriter] $Writer, [string] $Element, [string[]] $Text) {
    $Writer.WriteStartElement($Element.Split(':')[0], $Element.Split(':')[1], $ns[$Element.Split(':')[0]])
    foreach ($para in @($Text | Where-Object { $_ })) { $Writer.WriteElementString('maml', 'para', $ns.maml, $para.Trim()) }
    $Writer.WriteEndElement()
}

function Write-TypeElement([System.Xml.XmlWriter] $Writer, [string] $Name) {
    $Writer.WriteStartElement('dev', 'type', $ns.dev)
    $Writer.WriteElementString('maml', 'name', $ns.maml, $Name)
    $Writer.WriteEndElement()
}

function Write-Parameter([System.Xml.XmlWriter] $Writer, [System.Management.Automation.CommandParameterInfo] $Parameter,
    [string] $Description, [string] $Default) {
    $isSwitch = $Parameter.ParameterType -eq [System.Management.Automation.SwitchParameter]
    $globbing = [bool]($Parameter.Attributes | Where-Object { $_ -is [System.Management.Automation.SupportsWildcardsAttribute] })
    $Writer.WriteStartElement('command', 'parameter', $ns.command)
    $Writer.WriteAttributeString('required', $Parameter.IsMandatory.ToString().ToLowerInvariant())
    $Writer.WriteAttributeString('variableLength', $Parameter.ParameterType.IsArray.ToString().ToLowerInvariant())
    $Writer.WriteAttributeString('globbing', $globbing.ToString().ToLowerInvariant())
    $Writer.WriteAttributeString('pipelineInput', (Get-PipelineText $Parameter))
    $Writer.WriteAttributeString('position', $(if ($Parameter.Position -ge 0) { "$($Parameter.Position)" } else { 'named' }))
    $Writer.WriteAttributeString('aliases', $(if ($Parameter.Aliases.Count) { $Parameter.Aliases -join ', ' } else { 'none' }))
    $Writer.WriteElementString('maml', 'name', $ns.maml, $Parameter.Name)
    Write-Paragraphs $Writer 'maml:description' $Description
    if (-not $isSwitch) {
        $Writer.WriteStartElement('command', 'parameterValue', $ns.command)
        $Writer.WriteAttributeString('required', 'true')
        $Writer.WriteAttributeString('variableLength', $Parameter.ParameterType.IsArray.ToString().ToLowerInvariant())
        $Writer.WriteString((Get-TypeName $Parameter.ParameterType))
        $Writer.WriteEndElement()
    }
    Write-TypeElement $Writer (Get-TypeName $Parameter.ParameterType)
    $Writer.WriteElementString('dev', 'defaultValue', $ns.dev, $Default)
    $Writer.WriteEndElement()
}

function Write-Command([System.Xml.XmlWriter] $Writer, [System.Management.Automation.CmdletInfo] $Command, [hashtable] $Text, [hashtable] $Shared) {
    $instance = try { [Activator]::CreateInstance($Command.ImplementingType) } catch { $null }
    $described = @{}
    foreach ($name in $Command.Parameters.Keys) {
        $described[$name] = if ($Text.Parameters -and $Text.Parameters[$name]) { $Text.Parameters[$name] } else { $Shared[$name] }
        if ($name -notin $commonParameters -and -not $described[$name]) { Write-Warning "$($Command.Name) -$name has no description in $SourcePath." }
    }
    foreach ($name in @($Text.Parameters.Keys)) {
        if (-not $Command.Parameters.ContainsKey($name)) { Write-Warning "$SourcePath describes -$name, which $($Command.Name) does not have." }
    }

    $Writer.WriteStartElement('command', 'command', $ns.command)
    $Writer.WriteStartElement('command', 'details', $ns.command)
    $Writer.WriteElementString('command', 'name', $ns.command, $Command.Name)
    $Writer.WriteElementString('command', 'verb', $ns.command, $Command.Verb)
    $Writer.WriteElementString('command', 'noun', $ns.command, $Command.Noun)
    Write-Paragraphs $Writer 'maml:description' $Text.Synopsis
    $Writer.WriteEndElement()
    Write-Paragraphs $Writer 'maml:description' $Text.Description

    # The default set first, as PowerShell's own syntax lists it.
    $sets = @($Command.ParameterSets | Sort-Object { -not $_.IsDefault })
    $Writer.WriteStartElement('command', 'syntax', $ns.command)
    foreach ($set in $sets) {
        $Writer.WriteStartElement('command', 'syntaxItem', $ns.command)
        $Writer.WriteElementString('maml', 'name', $ns.maml, $Command.Name)
        foreach ($p in Get-OrderedParameters $set) { Write-Parameter $Writer $p $described[$p.Name] (Get-DefaultText $instance $p) }
        $Writer.WriteEndElement()
    }
    $Writer.WriteEndElement()

    # Each parameter once, with the facts of the first set that has it.
    $Writer.WriteStartElement('command', 'parameters', $ns.command)
    $seen = @{}
    foreach ($set in $sets) {
        foreach ($p in Get-OrderedParameters $set) {
            if ($seen.ContainsKey($p.Name)) { continue }
            $seen[$p.Name] = $true
            Write-Parameter $Writer $p $described[$p.Name] (Get-DefaultText $instance $p)
        }
    }
    $Writer.WriteEndElement()

    $Writer.WriteStartElement('command', 'inputTypes', $ns.command)
    $inputs = @($sets.Parameters | Where-Object ValueFromPipeline | ForEach-Object { Get-TypeName $_.ParameterType } | Sort-Object -Unique)
    foreach ($type in $(if ($inputs) { $inputs } else { 'None' })) {
        $Writer.WriteStartElement('command', 'inputType', $ns.command); Write-TypeElement $Writer $type; $Writer.WriteEndElement()
    }
    $Writer.WriteEndElement()
    $Writer.WriteStartElement('command', 'returnValues', $ns.command)
    $outputs = @($Command.OutputType.Name | Sort-Object -Unique)
    foreach ($type in $(if ($outputs) { $outputs } else { 'None' })) {
        $Writer.WriteStartElement('command', 'returnValue', $ns.command); Write-TypeElement $Writer $type; $Writer.WriteEndElement()
    }
    $Writer.WriteEndElement()

    $Writer.WriteStartElement('command', 'examples', $ns.command)
    $n = 0
    foreach ($example in @($Text.Examples)) {
        $n++
        $Writer.WriteStartElement('command', 'example', $ns.command)
        $Writer.WriteElementString('maml', 'title', $ns.maml, "--------------------------- Example $n ---------------------------")
        $Writer.WriteElementString('dev', 'code', $ns.dev, "PS> $($example.Code)")
        # The empty paragraph is the blank line Get-Help shows before the next example.
        Write-Paragraphs $Writer 'dev:remarks' (@($example.Remarks) + ' ')
        $Writer.WriteEndElement()
    }
    $Writer.WriteEndElement()

    $Writer.WriteStartElement('command', 'relatedLinks', $ns.command)
    foreach ($link in @($Text.Links | Where-Object { $_ })) {
        $Writer.WriteStartElement('maml', 'navigationLink', $ns.maml)
        $Writer.WriteElementString('maml', 'linkText', $ns.maml, $link)
        $Writer.WriteElementString('maml', 'uri', $ns.maml, '')
        $Writer.WriteEndElement()
    }
    $Writer.WriteEndElement()
    $Writer.WriteEndElement()
}

$source = Import-PowerShellDataFile -LiteralPath $SourcePath
$module = Import-Module -Name (Resolve-Path -LiteralPath $AssemblyPath).Path -PassThru
$commands = @(Get-Command -Module $module.Name -CommandType Cmdlet | Sort-Object Name)
foreach ($name in $source.Commands.Keys) {
    if ($name -notin $commands.Name) { Write-Warning "$SourcePath describes $name, which the module does not have." }
}

New-Item -ItemType Directory -Force (Split-Path -Parent $OutputPath) | Out-Null
$settings = [System.Xml.XmlWriterSettings]::new()
$settings.Indent = $true
$settings.Encoding = [System.Text.UTF8Encoding]::new($false)
$writer = [System.Xml.XmlWriter]::Create($OutputPath, $settings)
try {
    $writer.WriteStartDocument()
    $writer.WriteStartElement('helpItems', 'http://msh')
    $writer.WriteAttributeString('schema', 'maml')
    foreach ($prefix in 'maml', 'command', 'dev') { $writer.WriteAttributeString('xmlns', $prefix, $null, $ns[$prefix]) }
    foreach ($command in $commands) {
        $text = $source.Commands[$command.Name]
        if (-not $text) { Write-Warning "$SourcePath has no help for $($command.Name)."; $text = @{} }
        Write-Command $writer $command $text $source.Shared.Parameters
    }
    $writer.WriteEndElement()
    $writer.WriteEndDocument()
}
finally { $writer.Dispose() }
Write-Host "Help for $($commands.Count) cmdlets written to $OutputPath"
