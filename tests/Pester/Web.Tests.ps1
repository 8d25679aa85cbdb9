# Invoke-StackWebRequest on a virtual network: a web server and a DNS server written with the module's own cmdlets
# (TestServers.ps1) on one stack, the client on another. The kernel lab (python's http.server, TLS) is WebKernel.Tests.ps1.
BeforeAll {
    . $PSScriptRoot/Common.ps1
    . $PSScriptRoot/TestServers.ps1
    $net = New-TestName 'web'
    $srv = Start-Stack -VirtualNetwork $net -IPAddress 192.0.2.1/24 -Name (New-TestName 'webS')
    $cli = Start-Stack -VirtualNetwork $net -IPAddress 192.0.2.2/24 -Name (New-TestName 'webC') -DnsServer 192.0.2.1
    $dns = Start-TestDnsServer $srv -Address 192.0.2.1   # every name in .test is the server
    $web = Start-TestWebServer $srv
    $PSDefaultParameterValues['Invoke-StackWebRequest:TimeoutSec'] = 30
}
AfterAll {
    Stop-TestServer $web; Stop-TestServer $dns
    $srv, $cli | Stop-Stack -Confirm:$false -ErrorAction SilentlyContinue
}

Describe 'Invoke-StackWebRequest' {
    It 'fetches a page by name and shows the connection and the timing' {
        $r = Invoke-StackWebRequest http://web.test/hello -Stack $cli
        $r | Should -BeOfType NetStack.PowerShell.StackWebResponse
        $r.StatusCode | Should -Be 200
        $r.StatusDescription | Should -Be 'OK'
        $r.Content | Should -BeExactly 'hello from the stack'
        $r.RawContentLength | Should -Be 20
        $r.Headers['Content-Type'] | Should -Be 'text/plain; charset=utf-8'
        $r.RawContent | Should -Match '^HTTP/1\.1 200 OK\r\n(.+\r\n)*\r\nhello from the stack$'
        $r.RemoteName | Should -Be 'web.test'
        $r.RemoteAddress | Should -Be '192.0.2.1'
        $r.RemoteEndPoint | Should -Be '192.0.2.1:80'
        $r.LocalEndPoint | Should -BeLike '192.0.2.2:*'
        $r.ConnectionReused | Should -BeFalse
        $r.Retransmits | Should -Be 0
        $r.Timing.NameLookup | Should -BeGreaterThan 0
        $r.Timing.TcpHandshake | Should -BeGreaterThan 0
        $r.Timing.Total | Should -BeGreaterOrEqual ($r.Timing.NameLookup + $r.Timing.TcpHandshake + $r.Timing.FirstByte)
        $text = $r | Out-String -Width 200
        $text | Should -Match 'StatusCode\s+: 200'
        $text | Should -Match 'Connection\s+: 192\.0\.2\.2:\d+ -> 192\.0\.2\.1:80 \(web\.test\), new, 0 retransmitted'
        $text | Should -Match 'Timing\s+: dns [\d.]+, arp [\d.]+, tcp [\d.]+, tls 0, first byte [\d.]+'
    }

    It 'takes an address without a scheme and follows redirects on one connection' {
        $r = Invoke-StackWebRequest 192.0.2.1/redirect/2 -Stack $cli
        $r.Content | Should -Be 'redirects done'
        $r.Uri | Should -Be 'http://192.0.2.1/redirect/0'
        @($r.Redirects).Count | Should -Be 2
        $r.Redirects[0].StatusCode | Should -Be 302
        $r.ConnectionReused | Should -BeTrue
        $r.Timing.Redirect | Should -BeGreaterThan 0
    }

    It 'outputs the redirect and writes MaximumRedirectExceeded when the limit is reached' {
        $r = Invoke-StackWebRequest http://192.0.2.1/redirect/2 -MaximumRedirection 0 -Stack $cli -ErrorVariable e -ErrorAction SilentlyContinue
        $r.StatusCode | Should -Be 302
        $r.Headers['Location'] | Should -Be '/redirect/1'
        $e[0].FullyQualifiedErrorId | Should -BeLike 'MaximumRedirectExceeded,*'
    }

    It 'fails a non-success status with the response attached, unless -SkipHttpErrorCheck' {
        $err = { Invoke-StackWebRequest http://192.0.2.1/status/404 -Stack $cli } | Should -Throw -PassThru
        $err.FullyQualifiedErrorId | Should -BeLike 'HttpStatusError,*'
        $err.Exception.Response.StatusCode | Should -Be 404
        $err.Exception.Response.Content | Should -Be 'status 404'
        $err.ErrorDetails.Message | Should -Be 'status 404'
        (Invoke-StackWebRequest http://192.0.2.1/status/503 -SkipHttpErrorCheck -Stack $cli).StatusCode | Should -Be 503
    }

    It 'posts a string, bytes and form fields, and sends PUT, DELETE and HEAD' {
        $r = Invoke-StackWebRequest http://192.0.2.1/echo -Method Post -Body '{"a":"ü"}' -ContentType 'application/json; charset=utf-8' -Stack $cli
        $r.Content | Should -BeExactly '{"a":"ü"}'
        $r.Headers['X-Method'] | Should -Be 'POST'
        $bin = Invoke-StackWebRequest http://192.0.2.1/echo -Method Put -Body ([byte[]](0, 1, 255)) -Stack $cli
        $bin.Content | Should -Be @(0, 1, 255)
        $bin.Content.GetType() | Should -Be ([byte[]])
        (Invoke-StackWebRequest http://192.0.2.1/echo -Method Post -Body @{ name = 'a b'; n = 1 } -Stack $cli).Content -split '&' | Sort-Object | Should -Be @('n=1', 'name=a+b')
        (Invoke-StackWebRequest http://192.0.2.1/echo -Method Delete -Stack $cli).Headers['X-Method'] | Should -Be 'DELETE'
        $head = Invoke-StackWebRequest http://192.0.2.1/hello -Method Head -Stack $cli
        $head.Content | Should -BeNullOrEmpty
        $head.Headers['Content-Length'] | Should -Be '20'
        $err = { Invoke-StackWebRequest http://192.0.2.1/echo -Body 'x' -Stack $cli } | Should -Throw -PassThru
        $err.FullyQualifiedErrorId | Should -BeLike 'BodyNotAllowed,*'
    }

    It 'sends the headers given' {
        (Invoke-StackWebRequest http://192.0.2.1/echo -Method Post -Body 'x' -Headers @{ 'Content-Type' = 'text/x-test' } -Stack $cli).Headers['Content-Type'] | Should -Be 'text/x-test'
    }

    It 'writes -OutFile (nothing output unless -PassThru)' {
        $file = Join-Path $TestDrive 'out.bin'
        Invoke-StackWebRequest http://192.0.2.1/bytes/3000000 -OutFile $file -Stack $cli | Should -BeNullOrEmpty
        (Get-Item $file).Length | Should -Be 3000000
        Test-Path "$file.partial" | Should -BeFalse
        $r = Invoke-StackWebRequest http://192.0.2.1/bytes/1000 -OutFile "$file.2" -PassThru -Stack $cli
        $r.RawContentLength | Should -Be 1000
        $r.OutFile | Should -Be "$file.2"
        $r.Content | Should -BeNullOrEmpty
        (Get-Item "$file.2").Length | Should -Be 1000
    }

    It 'shows download progress, and keeps the partial file of a download that times out' {
        $file = Join-Path $TestDrive 'stalled.bin'
        $ps = New-ModulePowerShell
        try {
            # /stall sends 2 MiB of the 10 MB it announces, then nothing: progress shows while the rest is awaited.
            $null = $ps.AddCommand('Invoke-StackWebRequest').AddParameters(@{ Uri = 'http://192.0.2.1/stall'; OutFile = $file; Stack = $cli.Name; TimeoutSec = 2 })
            $thrown = $null
            try { $ps.Invoke() } catch { $thrown = $_.Exception }
            $thrown.InnerException.ErrorRecord.FullyQualifiedErrorId | Should -BeLike 'TimedOut,*'
            $thrown.Message | Should -Match ([regex]::Escape("$file.partial"))
            $records = @($ps.Streams.Progress | Where-Object Activity -eq 'Invoke-StackWebRequest')
            $records.Count | Should -BeGreaterThan 1
            $records[0].StatusDescription | Should -Match 'of 10,000,000 bytes'
            $records[-1].RecordType | Should -Be 'Completed'
            (Get-Item "$file.partial").Length | Should -Be 2MB
            Test-Path $file | Should -BeFalse
        }
        finally { $ps.Dispose() }
    }

    It 'keeps a failed download''s -OutFile away' {
        $file = Join-Path $TestDrive 'missing.bin'
        { Invoke-StackWebRequest http://192.0.2.1/status/404 -OutFile $file -Stack $cli } | Should -Throw
        Test-Path $file | Should -BeFalse
        Test-Path "$file.partial" | Should -BeFalse
    }

    It 'reuses the connection of a -SessionVariable session' {
        $first = Invoke-StackWebRequest http://192.0.2.1/peer -SessionVariable session -Stack $cli
        $session | Should -BeOfType NetStack.PowerShell.StackWebSession
        $session.Stack | Should -Be $cli.Name
        $second = Invoke-StackWebRequest http://192.0.2.1/peer -WebSession $session
        $second.Content | Should -Be $first.Content -Because 'the server saw the same client port'
        $second.ConnectionReused | Should -BeTrue
        $second.SocketId | Should -Be $first.SocketId
        $second.Timing.TcpHandshake | Should -Be 0
        $err = { Invoke-StackWebRequest http://192.0.2.1/peer -WebSession $session -Stack $srv } | Should -Throw -PassThru
        $err.FullyQualifiedErrorId | Should -BeLike 'SessionStackMismatch,*'
    }

    It 'closes its connection when the call ends' {
        $r = Invoke-StackWebRequest http://192.0.2.1/hello -Stack $cli
        Wait-Until { -not (Get-StackConnection -Stack $cli -Protocol Tcp -LocalPort ($r.LocalEndPoint -split ':')[1] -State Established) } -Because 'the per-call connection to close'
    }

    It 'names a host that does not resolve, and a stack without DNS' {
        $err = { Invoke-StackWebRequest http://nosuch.invalid/ -Stack $cli } | Should -Throw -PassThru
        $err.FullyQualifiedErrorId | Should -BeLike 'NameNotFound,*'
        $err.CategoryInfo.Category | Should -Be 'ObjectNotFound'
        $err.Exception.Message | Should -Match 'nosuch\.invalid'
        $err = { Invoke-StackWebRequest http://web.test/ -Stack $srv } | Should -Throw -PassThru
        $err.FullyQualifiedErrorId | Should -BeLike 'NoDnsServer,*'
    }

    It 'reports a refused connection, a bad address and a timeout with their ids' {
        ({ Invoke-StackWebRequest http://192.0.2.1:81/ -Stack $cli } | Should -Throw -PassThru).FullyQualifiedErrorId | Should -BeLike 'ConnectionRefused,*'
        ({ Invoke-StackWebRequest ftp://192.0.2.1/ -Stack $cli } | Should -Throw -PassThru).FullyQualifiedErrorId | Should -BeLike 'InvalidUri,*'
        $err = { Invoke-StackWebRequest http://192.0.2.1/stall -TimeoutSec 1 -Stack $cli } | Should -Throw -PassThru
        $err.FullyQualifiedErrorId | Should -BeLike 'TimedOut,*'
        $err.CategoryInfo.Category | Should -Be 'OperationTimeout'
        $err.Exception.Message | Should -Match '2,097,152 bytes'
    }

    It 'stops promptly on Ctrl+C and closes the connection' {
        $ps = New-ModulePowerShell
        try {
            Assert-StopsPromptly $ps 'Invoke-StackWebRequest' @{ Uri = 'http://192.0.2.1/stall'; Stack = $cli.Name; TimeoutSec = 60 } -Until {
                Get-StackConnection -Stack $cli -Protocol Tcp -RemotePort 80 -State Established
            }
            Wait-Until { -not (Get-StackConnection -Stack $cli -Protocol Tcp -RemotePort 80 -State Established) } -Because 'the stopped request to close its connection'
        }
        finally { $ps.Dispose() }
    }
}
