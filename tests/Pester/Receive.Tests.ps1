# One byte stream per socket: what Receive-StackData reads past a delimiter or count, or had gathered when it was
# stopped or timed out, stays in the socket, where the next receive of any kind (the cmdlet, ReceiveAsync,
# GetStream()) finds it and Get-StackConnection's Recv-Q counts it.
BeforeAll {
    . $PSScriptRoot/Common.ps1
    $net = New-TestName 'recv'
    $srv = Start-Stack -VirtualNetwork $net -IPAddress 192.0.2.1/24 -Name (New-TestName 'recvS')
    $cli = Start-Stack -VirtualNetwork $net -IPAddress 192.0.2.2/24 -Name (New-TestName 'recvC')

    # A connection to a fresh listener: the client and server sockets.
    function New-Connection([int] $Port) {
        $l = Start-StackListener $Port -Stack $srv
        $c = New-StackSocket Tcp -NoDelay -Stack $cli | Connect-StackSocket 192.0.2.1 $Port -TimeoutSec 30
        $s = Wait-StackConnection $l -TimeoutSec 30
        $l | Close-StackSocket
        $c, $s
    }

    function Get-RecvQ($Socket) { $Socket.GetInfoAsync().GetAwaiter().GetResult().RecvQ }

    function Text([byte[]] $Bytes) { [Text.Encoding]::UTF8.GetString($Bytes) }
}
AfterAll {
    $srv, $cli | Stop-Stack -Confirm:$false -ErrorAction SilentlyContinue
}

Describe 'Receive-StackData and the .NET API share one stream' {
    It 'mixes -Until with ReceiveAsync and GetStream(): every byte once, in order, and Recv-Q counts what -Until read past' {
        $c, $s = New-Connection 8500
        try {
            $c | Send-StackData "first line`nsecond line`nthird`n"
            Wait-Until { (Get-RecvQ $s) -eq 29 } -Because 'the data to arrive'

            $s | Receive-StackData -Until "`n" -AsString -TimeoutSec 30 | Should -Be "first line`n"
            # -Until took everything buffered and kept what follows its delimiter in the socket.
            (Get-StackConnection -Stack $srv -LocalPort 8500 -State Established).RecvQ | Should -Be 18

            $buf = [byte[]]::new(6)
            $s.ReceiveAsync($buf).GetAwaiter().GetResult() | Should -Be 6
            Text $buf | Should -Be 'second'
            $stream = $s.GetStream($false)
            $stream.Read($buf, 0, 6) | Should -Be 6
            Text $buf | Should -Be " line`n"
            $s | Receive-StackData -Until "`n" -AsString -TimeoutSec 30 | Should -Be "third`n"
            Get-RecvQ $s | Should -Be 0
        }
        finally { $c, $s | Close-StackSocket -Abort }
    }

    It 'mixes -Count with ReceiveAsync over large data, crossing chunk boundaries' {
        $c, $s = New-Connection 8501
        try {
            $data = [byte[]]::new(300000)
            (New-Object Random 5).NextBytes($data)
            $c | Send-StackData $data
            $got = [Collections.Generic.List[byte]]::new()
            $got.AddRange([byte[]]($s | Receive-StackData -Count 70000 -TimeoutSec 30))
            $buf = [byte[]]::new(1000)
            $n = $s.ReceiveAsync($buf).GetAwaiter().GetResult()
            $got.AddRange([byte[]]$buf[0..($n - 1)])
            $got.AddRange([byte[]]($s | Receive-StackData -Count (300000 - $got.Count) -TimeoutSec 30))
            [Linq.Enumerable]::SequenceEqual([byte[]]$got.ToArray(), $data) | Should -BeTrue
        }
        finally { $c, $s | Close-StackSocket -Abort }
    }

    It 'reads each option right after setting it, through the cmdlets and the object' {
        $t = New-StackSocket Tcp -NoDelay -ReceiveBufferSize 4096 -SendBufferSize 8192 -Stack $cli
        try {
            $t.NoDelay | Should -BeTrue
            $t.ReceiveBufferSize | Should -Be 4096
            $t.SendBufferSize | Should -Be 8192
            $t.Keepalive = $true
            $t.Keepalive | Should -BeTrue
            $t.NoDelay = $false
            $t.NoDelay | Should -BeFalse
            $t.IsClosed | Should -BeFalse
        }
        finally { $t | Close-StackSocket }
        $t.IsClosed | Should -BeTrue
        { $t.NoDelay = $true } | Should -Throw '*closed*'
    }
}

Describe 'A stopped or timed-out Receive-StackData keeps what had arrived' {
    BeforeAll {
        $ps = New-ModulePowerShell
    }
    AfterAll {
        $ps.Dispose()
    }

    It 'gives the next receive what a receive stopped with <Name> had gathered' -ForEach @(
        @{ Name = '-Count'; Port = 8510; Parameters = @{ Count = 1000 } }
        @{ Name = '-Until'; Port = 8511; Parameters = @{ Until = '|END|' } }
        @{ Name = '-ToEnd'; Port = 8512; Parameters = @{ ToEnd = $true } }
    ) {
        $c, $s = New-Connection $Port
        try {
            $c | Send-StackData 'part one;'
            Wait-Until { (Get-RecvQ $s) -eq 9 } -Because 'the first part to arrive'
            $ps.Commands.Clear()
            $null = $ps.AddCommand('Receive-StackData').AddParameters(@{ Socket = $s.Id; Stack = $srv.Name; TimeoutSec = 60 } + $Parameters)
            $handle = $ps.BeginInvoke()
            Wait-Until { $ps.InvocationStateInfo.State -eq 'Running' -and (Get-RecvQ $s) -eq 0 } -Because 'the receive to take the first part'
            $c | Send-StackData 'part two;'
            Wait-Until { $s.GetInfoAsync().GetAwaiter().GetResult().Tcp.BytesReceived -eq 18 -and (Get-RecvQ $s) -eq 0 } -Because 'the receive to take the second part as it arrives'

            $ps.Stop() # as Ctrl+C would
            $handle.IsCompleted | Should -BeTrue
            $ps.InvocationStateInfo.State | Should -Be 'Stopped'
            # Both parts are back in the socket, in order, for whoever receives next.
            Get-RecvQ $s | Should -Be 18
            $s | Receive-StackData -Count 18 -AsString -TimeoutSec 30 | Should -Be 'part one;part two;'
        }
        finally { $c, $s | Close-StackSocket -Abort }
    }

    It 'keeps the bytes of a timed-out -Count and -Until receive, and the socket stays usable' {
        $c, $s = New-Connection 8520
        try {
            $c | Send-StackData 'abc'
            Wait-Until { (Get-RecvQ $s) -eq 3 } -Because 'the data to arrive'
            $s | Receive-StackData -Count 10 -TimeoutSec 1 -ErrorVariable e1 -ErrorAction SilentlyContinue | Should -BeNullOrEmpty
            $e1[0].FullyQualifiedErrorId | Should -BeLike 'TimedOut,*'
            Get-RecvQ $s | Should -Be 3
            $s | Receive-StackData -Until 'X' -TimeoutSec 1 -ErrorVariable e2 -ErrorAction SilentlyContinue | Should -BeNullOrEmpty
            $e2[0].CategoryInfo.Category | Should -Be 'OperationTimeout'
            Get-RecvQ $s | Should -Be 3
            $c | Send-StackData 'defXghij'
            $s | Receive-StackData -Until 'X' -AsString -TimeoutSec 30 | Should -Be 'abcdefX'
            $s | Receive-StackData -Count 4 -AsString -TimeoutSec 30 | Should -Be 'ghij'
        }
        finally { $c, $s | Close-StackSocket -Abort }
    }
}
