BeforeAll {
    . $PSScriptRoot/Common.ps1
    $net = New-TestName 'sock'
    $srv = Start-Stack -VirtualNetwork $net -IPAddress 192.0.2.1/24 -Name (New-TestName 'sockS')
    $cli = Start-Stack -VirtualNetwork $net -IPAddress 192.0.2.2/24 -Name (New-TestName 'sockC')
}
AfterAll {
    $srv, $cli | Stop-Stack -Confirm:$false -ErrorAction SilentlyContinue
}

Describe 'UDP sockets' {
    BeforeAll {
        $server = New-StackSocket -Protocol Udp -LocalPort 7007 -Stack $srv
        $client = New-StackSocket Udp -Stack $cli
    }
    AfterAll {
        $server, $client | Close-StackSocket -ErrorAction SilentlyContinue
    }

    It 'opens a socket whose Id is its descriptor, bound to the port asked for' {
        $server.Id | Should -BeGreaterOrEqual 3
        $server.LocalPort | Should -Be 7007
        $server.Protocol | Should -Be 'Udp'
        $client.LocalPort | Should -BeGreaterOrEqual 49152
        (Get-StackConnection -Stack $srv -Protocol Udp -LocalPort 7007).Id | Should -Be $server.Id
    }

    It 'sends a datagram and receives it as one byte[], a string, or a datagram with its sender' {
        Send-StackData 'hello' -Socket $client -RemoteAddress 192.0.2.1 -RemotePort 7007
        $bytes = Receive-StackData -Socket $server -TimeoutSec 30
        , $bytes | Should -BeOfType [byte[]]
        [Text.Encoding]::UTF8.GetString($bytes) | Should -Be 'hello'

        $client | Send-StackData ([byte[]](1, 2, 3)) -RemoteAddress 192.0.2.1 -RemotePort 7007
        $d = $server | Receive-StackData -AsDatagram -TimeoutSec 30
        $d.Data | Should -Be @(1, 2, 3)
        $d.RemoteAddress | Should -Be '192.0.2.2'
        $d.RemotePort | Should -Be $client.LocalPort

        # Reply to the sender, connected socket on the other side.
        $null = Connect-StackSocket -Socket $client -RemoteAddress 192.0.2.1 -RemotePort 7007
        $client | Send-StackData 'ping'
        $d = Receive-StackData $server -AsDatagram -TimeoutSec 30
        Send-StackData 'pong' -Socket $server -RemoteAddress $d.RemoteAddress -RemotePort $d.RemotePort
        Receive-StackData $client -AsString -TimeoutSec 30 | Should -Be 'pong'
    }

    It 'binds -Socket by property name from Get-StackConnection rows (Id and Stack)' {
        $client | Send-StackData 'by-name'
        $row = Get-StackConnection -Stack $srv -LocalPort 7007
        $row | Receive-StackData -AsString -TimeoutSec 30 | Should -Be 'by-name'
        [pscustomobject]@{ Id = $server.Id; Stack = $srv.Name } | Receive-StackData -TimeoutSec 0 -ErrorAction SilentlyContinue -ErrorVariable e
        $e[0].FullyQualifiedErrorId | Should -BeLike 'TimedOut,*'
    }

    It 'times out a receive with OperationTimeout, and the socket stays usable' {
        Receive-StackData $server -TimeoutSec 0 -ErrorVariable e -ErrorAction SilentlyContinue | Should -BeNullOrEmpty
        $e[0].FullyQualifiedErrorId | Should -BeLike 'TimedOut,*'
        $e[0].CategoryInfo.Category | Should -Be 'OperationTimeout'
        $client | Send-StackData 'after'
        Receive-StackData $server -AsString -TimeoutSec 30 | Should -Be 'after'
    }

    It 'refuses a port in use with ResourceExists' {
        New-StackSocket Udp -LocalPort 7007 -Stack $srv -ErrorVariable e -ErrorAction SilentlyContinue | Should -BeNullOrEmpty
        $e[0].FullyQualifiedErrorId | Should -BeLike 'AddressInUse,*'
        $e[0].CategoryInfo.Category | Should -Be 'ResourceExists'
    }

    It 'shows UDP endpoints in the netstat table' {
        $text = Get-StackConnection -Stack $srv | Out-String -Width 200
        $text | Should -Match 'Proto\s+Local Address\s+Foreign Address\s+State\s+Recv-Q\s+Send-Q'
        $text | Should -Match 'udp\s+0\.0\.0\.0:7007\s+\*:\*'
    }

    It 'renders sockets as a table' {
        $server | Out-String -Width 200 | Should -Match 'Id\s+Protocol\s+LocalEndPoint\s+RemoteEndPoint'
    }

    It 'completes socket ids' {
        $r = TabExpansion2 -inputScript ($s = "Receive-StackData -Stack $($srv.Name) -Socket ") -cursorColumn $s.Length
        $r.CompletionMatches.CompletionText | Should -Contain ([string]$server.Id)
    }

    It 'filters the packet log by socket' {
        $p = Get-StackPacket -Stack $srv -Socket $server.Id
        $p | Should -Not -BeNullOrEmpty
        $p | ForEach-Object { $_.Protocol | Should -Be 'UDP'; ($_.SourcePort -eq 7007 -or $_.DestinationPort -eq 7007) | Should -BeTrue }
    }

    It 'cancels a waiting receive when the pipeline is stopped, and the cancelled receive takes nothing' {
        $ps = New-ModulePowerShell
        try {
            # Several rounds: the stop can land at any point of the call, and in none may the receive stay armed.
            foreach ($round in 1..5) {
                Assert-StopsPromptly $ps Receive-StackData @{ Socket = $server.Id; Stack = $srv.Name; TimeoutSec = 60 }
                $client | Send-StackData "after-cancel-$round"
                Receive-StackData $server -AsString -TimeoutSec 30 | Should -Be "after-cancel-$round"
            }
        }
        finally { $ps.Dispose() }
    }

    It 'closes with -WhatIf support; a closed socket is reported' {
        $tmp = New-StackSocket Udp -Stack $cli
        $tmp | Close-StackSocket -WhatIf
        (Get-StackConnection -Stack $cli).Id | Should -Contain $tmp.Id
        $tmp | Close-StackSocket
        Wait-Until { (Get-StackConnection -Stack $cli).Id -notcontains $tmp.Id } -Because 'the socket to be released'
        $err = { $tmp | Send-StackData 'x' -RemoteAddress 192.0.2.1 -RemotePort 9 } | Should -Throw -PassThru
        $err.FullyQualifiedErrorId | Should -BeLike 'SocketClosed,*'
        $tmp | Close-StackSocket   # closing again is not an error
        $err = { Send-StackData -Socket 999 -Data 'x' -Stack $cli } | Should -Throw -PassThru
        $err.FullyQualifiedErrorId | Should -BeLike 'SocketNotFound,*'
        $err.CategoryInfo.Category | Should -Be 'ObjectNotFound'
    }

    It 'closes every UDP socket from the pipeline' {
        $a1 = New-StackSocket Udp -Stack $cli; $a2 = New-StackSocket Udp -Stack $cli
        Get-StackConnection -Stack $cli -Protocol Udp | Where-Object Id -in $a1.Id, $a2.Id | Close-StackSocket
        Wait-Until { -not (Get-StackConnection -Stack $cli | Where-Object Id -in $a1.Id, $a2.Id) } -Because 'both sockets to close'
    }
}
