# Invoke-StackWebRequest and Test-StackConnection's probes against real peers in the kernel lab (KernelLab.ps1):
# python's http.server (tests/lab/http_lab_server.py) over HTTP and HTTPS (an openssl self-signed certificate),
# dnsmasq answering web.lab, a python UDP echo, and nftables dropping what a filtered port should drop.
BeforeAll {
    . $PSScriptRoot/Common.ps1
    . $PSScriptRoot/KernelLab.ps1

    function Start-InKernel([string[]] $Arguments, [string] $Log) {
        Start-Process -FilePath ip -ArgumentList (@('netns', 'exec', $K) + $Arguments) -PassThru -RedirectStandardOutput $Log -RedirectStandardError "$Log.err"
    }

    $WhyNoLab = Get-WhyNoLab
    if (-not $WhyNoLab) {
        foreach ($p in 'python3', 'openssl', 'dnsmasq', 'nft') {
            if (-not (Get-Command $p -ErrorAction Ignore) -and -not (Test-Path "/usr/sbin/$p")) { $WhyNoLab = "the web lab needs '$p' (build.ps1 -Task Test installs it)" }
        }
    }
    if (-not $WhyNoLab) {
        $lab = New-KernelLab 'web'
        $K = $lab.K
        $dir = (New-Item -ItemType Directory (Join-Path ([IO.Path]::GetTempPath()) "netstack-web$PID") -Force).FullName
        $peers = @()
        try {
            $python = if (Test-Path /usr/bin/python3) { '/usr/bin/python3' } else { 'python3' }
            $script = Join-Path $RepoRoot 'tests/lab/http_lab_server.py'
            & openssl req -x509 -newkey rsa:2048 -nodes -days 1 -subj /CN=web.lab -addext 'subjectAltName=DNS:web.lab,IP:192.0.2.1' `
                -keyout "$dir/key.pem" -out "$dir/cert.pem" 2>&1 | Out-Null
            if ($LASTEXITCODE -ne 0) { throw 'openssl could not make the certificate' }
            $peers += Start-InKernel @($python, '-u', $script, '--address', '192.0.2.1', '--port', '8080', '--directory', $dir) "$dir/http.log"
            $peers += Start-InKernel @($python, '-u', $script, '--address', '192.0.2.1', '--port', '8443', '--directory', $dir, '--cert', "$dir/cert.pem", '--key', "$dir/key.pem") "$dir/https.log"
            $peers += Start-InKernel @('dnsmasq', '--no-daemon', '--no-resolv', '--no-hosts', '--address=/web.lab/192.0.2.1', '--listen-address=192.0.2.1',
                '--bind-interfaces', '--port=53', '--pid-file=', '--user=root') "$dir/dnsmasq.log"
            # (A file, not -c: Start-Process joins its arguments into one command line, which newlines do not survive.)
            Set-Content "$dir/udp_echo.py" "import socket`ns = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)`ns.bind(('192.0.2.1', 7007))`nprint('ready', flush=True)`nwhile True:`n    d, a = s.recvfrom(2048)`n    s.sendto(b'pong', a)"
            $peers += Start-InKernel @($python, '-u', "$dir/udp_echo.py") "$dir/udp.log"
            # A filtered TCP port and a silent UDP port: the kernel's input drops them.
            foreach ($rule in @('add table inet webtest', 'add chain inet webtest in { type filter hook input priority 0; }',
                    'add rule inet webtest in tcp dport 9999 drop', 'add rule inet webtest in udp dport 7008 drop')) {
                Invoke-Lab (@('ip', 'netns', 'exec', $K, 'nft') + ($rule -split ' '))
            }
            $stack = Start-Stack -Adapter u0 -NetworkNamespace $lab.U -IPAddress 192.0.2.2/24 -DnsServer 192.0.2.1 -Name (New-TestName 'webk')
            Wait-Until { Test-StackConnection 192.0.2.1 -TcpPort 8080 -TimeoutSeconds 1 -Quiet -Stack $stack } -Because 'python''s http.server to listen'
            Wait-Until { Test-StackConnection 192.0.2.1 -TcpPort 8443 -TimeoutSeconds 1 -Quiet -Stack $stack } -Because 'the https server to listen'
            Wait-Until { (Get-Content "$dir/udp.log" -Raw -ErrorAction Ignore) -match 'ready' } -Because 'the UDP echo to start'
        }
        catch {
            $peers | ForEach-Object { $_.Kill($true) }
            Remove-KernelLab $lab
            throw
        }
    }
    $PSDefaultParameterValues['Invoke-StackWebRequest:TimeoutSec'] = 60
}

AfterAll {
    if (-not $WhyNoLab) {
        $stack | Stop-Stack -Confirm:$false -ErrorAction SilentlyContinue
        foreach ($p in $peers) { $p.Kill($true); $p.WaitForExit(5000) | Out-Null }
        Remove-KernelLab $lab
        Remove-Item -Recurse -Force $dir -ErrorAction SilentlyContinue
    }
}

Describe 'Invoke-StackWebRequest against python''s http.server in the kernel lab' {
    BeforeEach {
        if ($WhyNoLab) { Set-ItResult -Skipped -Because $WhyNoLab }
    }

    It 'downloads 100 MiB to -OutFile with the same SHA-256 as the file served' {
        if ($WhyNoLab) { return }
        & head -c 100M /dev/urandom > "$dir/big.bin"
        $out = Join-Path $TestDrive 'big.bin'
        $r = Invoke-StackWebRequest http://192.0.2.1:8080/big.bin -OutFile $out -PassThru -Stack $stack
        $r.RawContentLength | Should -Be 100MB
        (Get-FileHash $out -Algorithm SHA256).Hash | Should -Be (Get-FileHash "$dir/big.bin" -Algorithm SHA256).Hash
        $r.Timing.Download | Should -BeGreaterThan 0
        $r.Retransmits | Should -BeGreaterOrEqual 0
        Write-Host "100 MiB: $($r.Timing); $([math]::Round(100 * 8 / ($r.Timing.Total / 1000) / 1000, 2)) Gbit/s"
        Remove-Item "$dir/big.bin", $out
    }

    It 'resolves web.lab through dnsmasq and reuses the kept-alive connection of a session' {
        if ($WhyNoLab) { return }
        $first = Invoke-StackWebRequest http://web.lab:8080/peer -SessionVariable session -Stack $stack
        $first.RemoteName | Should -Be 'web.lab'
        $first.RemoteAddress | Should -Be '192.0.2.1'
        $first.Content | Should -Be $first.LocalEndPoint -Because 'python saw our address and port'
        $first.Timing.NameLookup | Should -BeGreaterThan 0
        $second = Invoke-StackWebRequest http://web.lab:8080/peer -WebSession $session
        $second.Content | Should -Be $first.Content
        $second.ConnectionReused | Should -BeTrue
        $second.Timing.NameLookup | Should -Be 0
    }

    It 'gives status codes, chunked bodies and the POST echo' {
        if ($WhyNoLab) { return }
        $err = { Invoke-StackWebRequest http://192.0.2.1:8080/status/500 -Stack $stack } | Should -Throw -PassThru
        $err.Exception.Response.StatusCode | Should -Be 500
        $err.ErrorDetails.Message | Should -Match 'status 500'
        $chunked = Invoke-StackWebRequest http://192.0.2.1:8080/chunked/100000 -Stack $stack
        $chunked.Headers['Transfer-Encoding'] | Should -Be 'chunked'
        $chunked.Content.Length | Should -Be 100000
        $chunked.Content.Substring(0, 27) | Should -Be 'abcdefghijklmnopqrstuvwxyza'
        $echo = Invoke-StackWebRequest http://192.0.2.1:8080/echo -Method Post -Body '{"a":1}' -ContentType application/json -Stack $stack
        $echo.Content | Should -Be '{"a":1}'
        $echo.Headers['X-Method'] | Should -Be 'POST'
        (Invoke-StackWebRequest http://192.0.2.1:8080/redirect/3 -Stack $stack).Redirects.Count | Should -Be 3
    }

    It 'sends -InFile and -Form bodies, and -Resume rewrites the whole file when the server ignores Range' {
        if ($WhyNoLab) { return }
        $data = [byte[]]::new(1MB); (New-Object Random 16).NextBytes($data)
        [IO.File]::WriteAllBytes("$dir/resume.bin", $data)
        $echo = Invoke-StackWebRequest http://web.lab:8080/echo -Method Put -InFile "$dir/resume.bin" -Stack $stack
        $echo.Headers['X-Method'] | Should -Be 'PUT'
        [Convert]::ToBase64String($echo.Content) | Should -BeExactly ([Convert]::ToBase64String($data))
        Set-Content "$dir/note.txt" 'from a file' -NoNewline
        $form = Invoke-StackWebRequest http://web.lab:8080/echo -Method Post -Form @{ who = 'stack'; note = Get-Item "$dir/note.txt" } -Stack $stack
        $text = [Text.Encoding]::UTF8.GetString($form.Content)
        $text | Should -Match 'name=who\r\n(.+\r\n)*\r\nstack\r\n'
        $text | Should -Match 'name=note; filename=note\.txt.*\r\n(.+\r\n)*\r\nfrom a file\r\n'
        # python's http.server answers a Range request with 200 and the whole file: it is written again, not appended.
        $out = Join-Path $TestDrive 'resume.bin'
        [IO.File]::WriteAllBytes($out, $data[0..4095])
        $r = Invoke-StackWebRequest http://web.lab:8080/resume.bin -OutFile $out -Resume -PassThru -Stack $stack
        $r.StatusCode | Should -Be 200
        (Get-FileHash $out).Hash | Should -Be (Get-FileHash "$dir/resume.bin").Hash
    }

    It 'refuses a self-signed certificate unless -SkipCertificateCheck' {
        if ($WhyNoLab) { return }
        $err = { Invoke-StackWebRequest https://web.lab:8443/peer -Stack $stack } | Should -Throw -PassThru
        $err.FullyQualifiedErrorId | Should -BeLike 'TlsHandshakeFailed,*'
        $err.CategoryInfo.Category | Should -Be 'SecurityError'
        $err.Exception.Message | Should -Match 'SkipCertificateCheck'
        $r = Invoke-StackWebRequest https://web.lab:8443/bytes/5000 -SkipCertificateCheck -Stack $stack
        $r.StatusCode | Should -Be 200
        $r.RawContentLength | Should -Be 5000
        $r.TlsProtocol | Should -Match '^Tls1[23]$'
        $r.Timing.Tls | Should -BeGreaterThan 0
    }
}

Describe 'Test-StackConnection probes against the kernel' {
    BeforeEach {
        if ($WhyNoLab) { Set-ItResult -Skipped -Because $WhyNoLab }
    }

    It 'tells an open, a refused and a filtered TCP port apart' {
        if ($WhyNoLab) { return }
        $r = Test-StackConnection web.lab -TcpPort 8080, 8081, 9999 -TimeoutSeconds 2 -Stack $stack
        $r.Status | Should -Be @('Open', 'Closed', 'Filtered')
        $r | ForEach-Object Address | Select-Object -Unique | Should -Be '192.0.2.1'
    }

    It 'probes UDP: an answer, the kernel''s port unreachable, and silence' {
        if ($WhyNoLab) { return }
        $r = Test-StackConnection web.lab -UdpPort 7007, 9, 7008 -TimeoutSeconds 2 -Stack $stack
        $r.Status | Should -Be @('Open', 'Closed', 'OpenOrFiltered')
        [Text.Encoding]::ASCII.GetString($r[0].Reply) | Should -Be 'pong'
        $r[1].Error | Should -Match 'port unreachable from 192\.0\.2\.1'
    }
}
