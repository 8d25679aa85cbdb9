# Peers written with the module's own cmdlets, each in a runspace of its own (New-ModulePowerShell, Common.ps1), for
# tests on a virtual network: no root, no kernel. Each returns the [powershell] running it; Stop-TestServer ends it.

# A tiny DNS server on UDP port 53 of -Stack: every name in .test (in -Domain; '' for every name) resolves to -Address
# with TTL 300, anything else is NXDOMAIN.
function Start-TestDnsServer([NetStack.PowerShell.StackInstance] $Stack, [string] $Address = '192.0.2.80', [string] $Domain = 'test') {
    $socket = New-StackSocket Udp -LocalPort 53 -Stack $Stack
    $server = New-ModulePowerShell
    $null = $server.AddScript({
        param($StackName, $SocketId, [byte[]] $AddressBytes, [string] $Domain)
        while ($true) {
            $d = Receive-StackData -Socket $SocketId -Stack $StackName -AsDatagram -TimeoutSec 60 -ErrorAction Stop
            $q = $d.Data
            $labels = @(); $i = 12
            while ($q[$i] -ne 0) { $labels += [Text.Encoding]::ASCII.GetString($q, $i + 1, $q[$i]); $i += $q[$i] + 1 }
            $question = $q[12..($i + 4)]
            $known = $Domain -eq '' -or $labels[-1] -eq $Domain
            $header = @($q[0], $q[1], 0x81, $(if ($known) { 0x80 } else { 0x83 }), 0, 1, 0, $(if ($known) { 1 } else { 0 }), 0, 0, 0, 0)
            $answer = if ($known) { @(0xC0, 0x0C, 0, 1, 0, 1, 0, 0, 1, 44, 0, 4) + $AddressBytes } else { @() }
            Send-StackData ([byte[]]($header + $question + $answer)) -Socket $SocketId -Stack $StackName -RemoteAddress $d.RemoteAddress -RemotePort $d.RemotePort
        }
    }).AddArgument($Stack.Name).AddArgument($socket.Id).AddArgument([byte[]]([ipaddress]$Address).GetAddressBytes()).AddArgument($Domain)
    $null = $server.BeginInvoke()
    $server
}

# A small HTTP/1.1 server on TCP -Port of -Stack, one connection at a time, closing a connection idle for 2 s (as a
# server's keep-alive timeout does). Routes: /hello (text), /status/<n>, /redirect/<n> (302 to /redirect/<n-1>, 200 at
# 0), /echo (the request body and Content-Type back), /bytes/<n> (n bytes), /peer (the client's address:port),
# /stall (announces 10 MB, sends 2 MiB, then waits for the client to go); for the help examples also / (a page),
# /api (a JSON answer) and /<name>.iso (64 KiB).
function Start-TestWebServer([NetStack.PowerShell.StackInstance] $Stack, [int] $Port = 80) {
    $listener = Start-StackListener $Port -Stack $Stack
    $server = New-ModulePowerShell
    $null = $server.AddScript({
        param($StackName, $ListenerId)
        $ascii = [Text.Encoding]::ASCII
        function Reply($Socket, [string] $Status, [byte[]] $Body, [string] $Type = 'text/plain; charset=utf-8', [string] $Extra = '', [long] $Length = -1) {
            if ($Length -lt 0) { $Length = $Body.Length }
            $head = $ascii.GetBytes("HTTP/1.1 $Status`r`nContent-Type: $Type`r`nContent-Length: $Length`r`n$Extra`r`n")
            # Two sends: joining byte arrays with + in PowerShell boxes every byte (seconds for a few MB).
            Send-StackData -Socket $Socket -Data $head -TimeoutSec 30 -ErrorAction Stop
            if ($Body.Length) { Send-StackData -Socket $Socket -Data $Body -TimeoutSec 30 -ErrorAction Stop }
        }
        while ($true) {
            $s = Wait-StackConnection -Socket $ListenerId -Stack $StackName -TimeoutSec 600 -ErrorAction Stop
            try {
                while ($true) {
                    $head = Receive-StackData -Socket $s -Until "`r`n`r`n" -AsString -TimeoutSec 2 -ErrorAction SilentlyContinue
                    if (-not $head) { break }
                    $path = ($head -split ' ')[1]
                    $length = if ($head -match '(?im)^Content-Length:\s*(\d+)') { [int]$Matches[1] } else { 0 }
                    $type = if ($head -match '(?im)^Content-Type:\s*(.+?)\r?$') { $Matches[1] } else { 'application/octet-stream' }
                    [byte[]] $body = if ($length) { Receive-StackData -Socket $s -Count $length -TimeoutSec 30 -ErrorAction Stop } else { @() }
                    switch -Regex ($path) {
                        '^/hello' { Reply $s '200 OK' ([Text.Encoding]::UTF8.GetBytes('hello from the stack')) }
                        '^/status/(\d+)' { Reply $s "$($Matches[1]) Status" ($ascii.GetBytes("status $($Matches[1])")) }
                        '^/redirect/0' { Reply $s '200 OK' ($ascii.GetBytes('redirects done')) }
                        '^/redirect/(\d+)' { Reply $s '302 Found' ($ascii.GetBytes('moved')) -Extra "Location: /redirect/$([int]$Matches[1] - 1)`r`n" }
                        '^/echo' { Reply $s '200 OK' $body $type -Extra "X-Method: $(($head -split ' ')[0])`r`n" }
                        '^/bytes/(\d+)' { Reply $s '200 OK' ([byte[]]::new([int]$Matches[1])) 'application/octet-stream' }
                        '^/peer' { Reply $s '200 OK' ($ascii.GetBytes($s.RemoteEndPoint.ToString())) }
                        '^/stall' {
                            Reply $s '200 OK' ([byte[]]::new(2MB)) 'application/octet-stream' -Length 10000000
                            while (Receive-StackData -Socket $s -TimeoutSec 60 -ErrorAction SilentlyContinue) { }
                            break
                        }
                        '^/$' { Reply $s '200 OK' ($ascii.GetBytes('<html><body>the test web server</body></html>')) 'text/html' }
                        '^/api' { Reply $s '200 OK' ($ascii.GetBytes('{"ok":true}')) 'application/json' }
                        '^/[^/]+\.iso$' { Reply $s '200 OK' ([byte[]]::new(64KB)) 'application/octet-stream' }
                        default { Reply $s '404 Not Found' ($ascii.GetBytes('no such page')) }
                    }
                }
            }
            catch { }
            finally { Close-StackSocket -Socket $s -ErrorAction SilentlyContinue }
        }
    }).AddArgument($Stack.Name).AddArgument($listener.Id)
    $null = $server.BeginInvoke()
    $server
}

function Stop-TestServer([powershell] $Server) {
    if ($Server) { $Server.Stop(); $Server.Dispose() }
}
