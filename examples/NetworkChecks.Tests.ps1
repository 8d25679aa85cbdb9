<#
.SYNOPSIS
    Operational checks of the kind you keep next to a network: for each endpoint, the gateway answers ARP, the name
    resolves, the port accepts a connection and the page says what it should.
.DESCRIPTION
    As written it checks the embedded lab (its service host at 192.0.2.1), so it passes anywhere:
        Invoke-Pester ./examples/NetworkChecks.Tests.ps1
    Point it at your own network by passing a stack and endpoints (as root, on an adapter):
        $stack = Start-Stack -Adapter eth0 -IPAddress 192.0.2.77/24 -Gateway 192.0.2.1 -DnsServer 192.0.2.53
        $c = New-PesterContainer -Path ./examples/NetworkChecks.Tests.ps1 -Data @{ Stack = $stack.Name; Endpoints = @(
            @{ Name = 'intranet'; Gateway = '192.0.2.1'; HostName = 'intranet.example'; Port = 80; Path = '/'; Expect = 'Welcome' }) }
        Invoke-Pester -Container $c
#>
param(
    # The stack to check from (a name); none: a stack on the embedded lab, started and stopped here.
    [string] $Stack,
    # What to check: Name, Gateway (answers ARP), HostName (resolves), Port (accepts), Path and Expect (the page has it).
    [hashtable[]] $Endpoints = @(
        @{ Name = 'lab service host'; Gateway = '192.0.2.1'; HostName = 'host.lab.test'; Port = 80; Path = '/'; Expect = 'NetStack lab service host' }
        @{ Name = 'lab web site (a CNAME)'; Gateway = '192.0.2.1'; HostName = 'www.lab.test'; Port = 80; Path = '/hello'; Expect = 'Hello from' }
    )
)

BeforeAll {
    if (-not (Get-Module NetStack)) {
        # From a clone: the manifest at the repository root; installed: by name.
        $manifest = Join-Path $PSScriptRoot '../NetStack.psd1'
        if (Test-Path $manifest) { Import-Module $manifest } else { Import-Module NetStack }
    }
    $script:OwnStack = $null
    if (-not $Stack) {
        $script:OwnStack = Start-Stack
        $Stack = $script:OwnStack.Name
    }

    # GET a path over the stack's TCP with the socket cmdlets; the response as text.
    function Get-Page([string] $Address, [int] $Port, [string] $Path, [string] $HostName) {
        $c = Connect-StackSocket $Address $Port -Stack $Stack -TimeoutSec 10
        try {
            Send-StackData -Socket $c -Text "GET $Path HTTP/1.1`r`nHost: $HostName`r`nConnection: close`r`n`r`n"
            Receive-StackData -Socket $c -ToEnd -AsString -TimeoutSec 30
        }
        finally { Close-StackSocket -Socket $c }
    }
}

AfterAll {
    if ($script:OwnStack) { Stop-Stack -Stack $script:OwnStack }
}

Describe 'Endpoint <Name>' -ForEach $Endpoints {
    It 'the gateway <Gateway> answers ARP' {
        (Resolve-StackArpEntry -IPAddress $Gateway -Stack $Stack).State | Should -Be 'Reachable'
    }

    It '<HostName> resolves' {
        $script:Address = (Resolve-StackDnsName $HostName -Stack $Stack -ErrorAction Stop | Where-Object Type -eq A | Select-Object -First 1).IPAddress
        $script:Address | Should -Match '^\d+\.\d+\.\d+\.\d+$'
    }

    It 'port <Port> accepts a connection' {
        (Test-StackConnection $HostName -TcpPort $Port -Stack $Stack).Succeeded | Should -BeTrue
    }

    It 'the page <Path> answers 200 and contains "<Expect>"' {
        $page = Get-Page $script:Address $Port $Path $HostName
        $page | Should -Match '^HTTP/1\.[01] 200 '
        $page | Should -BeLike "*$Expect*"
    }
}
