# The kernel lab for Pester tests (docs/lab.md): two fresh network namespaces joined by a veth pair, K holding the
# kernel's k0 = 192.0.2.1/24, U holding u0 (no kernel address) where a stack opens its pcap device. Dot-source it
# after Common.ps1. Tests that need the lab skip with Get-WhyNoLab's reason when it cannot run here.

function Get-WhyNoLab {
    if (-not $IsLinux) { return 'the kernel lab needs Linux network namespaces' }
    if ((& id -u) -ne '0') { return 'the kernel lab needs root (network namespaces and packet capture); run the tests as root' }
    foreach ($p in 'ip', 'ethtool') { if (-not (Get-Command $p -ErrorAction Ignore) -and -not (Test-Path "/usr/sbin/$p")) { return "the kernel lab needs '$p'" } }
    if (-not (Get-ChildItem /usr/lib/*/libpcap.so.* -ErrorAction Ignore)) { return 'the kernel lab needs libpcap (apt-get install libpcap0.8)' }
    $null
}

function Invoke-Lab([string[]] $Arguments) {
    $out = & $Arguments[0] $Arguments[1..($Arguments.Count - 1)] 2>&1
    if ($LASTEXITCODE -ne 0) { throw "$($Arguments -join ' ') failed ($LASTEXITCODE): $out" }
}

# Creates the namespaces nsk-<Tag><pid> (K) and nsu-<Tag><pid> (U) and the veth pair; returns @{ K; U }. On failure
# whatever was made is deleted again.
function New-KernelLab([string] $Tag) {
    $lab = @{ K = "nsk-$Tag$PID"; U = "nsu-$Tag$PID"; Tag = $Tag }
    foreach ($ns in $lab.K, $lab.U) { & ip netns del $ns 2>$null }  # leftovers of a crashed run with the same pid
    try {
        Invoke-Lab ip, netns, add, $lab.K
        Invoke-Lab ip, netns, add, $lab.U
        Invoke-Lab ip, link, add, k0, netns, $lab.K, type, veth, peer, name, u0, netns, $lab.U
        foreach ($pair in @(@($lab.K, 'k0'), @($lab.U, 'u0'))) {
            Invoke-Lab ip, netns, exec, $pair[0], sysctl, -q, -w, 'net.ipv6.conf.all.disable_ipv6=1', 'net.ipv6.conf.default.disable_ipv6=1', "net.ipv6.conf.$($pair[1]).disable_ipv6=1"
            Invoke-Lab ip, -n, $pair[0], link, set, lo, up
        }
        Invoke-Lab ip, -n, $lab.K, addr, add, 192.0.2.1/24, dev, k0
        Invoke-Lab ip, -n, $lab.K, link, set, k0, up
        Invoke-Lab ip, -n, $lab.U, link, set, u0, up
        Invoke-Lab ip, netns, exec, $lab.K, ethtool, -K, k0, tx, off
    }
    catch {
        Remove-KernelLab $lab
        throw
    }
    $lab
}

function Remove-KernelLab($Lab) {
    if ($Lab) { foreach ($ns in $Lab.K, $Lab.U, $Lab.T) { if ($ns) { & ip netns del $ns 2>$null } } }
}

# Makes the lab's K a router (ip_forward on, ICMP rate limit off) between 192.0.2.0/24 and 198.51.100.0/24: a third
# namespace T (nsk-<Tag>t<pid>) holds the target 198.51.100.2 on t0, behind r1 in K (198.51.100.1); both ends of that
# far link get -FarMtu. A stack in U with -Gateway 192.0.2.1 reaches T in two hops. Adds T to the lab's namespaces, so
# Remove-KernelLab deletes it too.
function Add-KernelRouter($Lab, [int] $FarMtu = 1500) {
    $Lab.T = "nsk-$($Lab.Tag)t$PID"
    & ip netns del $Lab.T 2>$null
    $k = $Lab.K
    $t = $Lab.T
    try {
        Invoke-Lab ip, netns, add, $t
        Invoke-Lab ip, link, add, r1, netns, $k, type, veth, peer, name, t0, netns, $t
        Invoke-Lab ip, netns, exec, $t, sysctl, -q, -w, 'net.ipv6.conf.all.disable_ipv6=1', 'net.ipv6.conf.default.disable_ipv6=1', 'net.ipv6.conf.t0.disable_ipv6=1'
        Invoke-Lab ip, netns, exec, $k, sysctl, -q, -w, 'net.ipv6.conf.r1.disable_ipv6=1', 'net.ipv4.ip_forward=1', 'net.ipv4.icmp_ratelimit=0'
        Invoke-Lab ip, -n, $k, addr, add, 198.51.100.1/24, dev, r1
        Invoke-Lab ip, -n, $k, link, set, r1, mtu, $FarMtu, up
        Invoke-Lab ip, -n, $t, addr, add, 198.51.100.2/24, dev, t0
        Invoke-Lab ip, -n, $t, link, set, t0, mtu, $FarMtu, up
        Invoke-Lab ip, -n, $t, link, set, lo, up
        Invoke-Lab ip, -n, $t, route, add, default, via, 198.51.100.1
    }
    catch {
        & ip netns del $t 2>$null
        throw
    }
}
