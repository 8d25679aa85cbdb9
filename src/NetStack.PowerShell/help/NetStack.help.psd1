# The human-written help text of the NetStack cmdlets: the only place it lives. build/New-MamlHelp.ps1 (run by
# `build.ps1 -Task Build`) joins it with the cmdlets' real metadata (syntax, parameter types, sets, position,
# pipeline input, defaults, output types, read from the built assembly) into
# out/NetStack/en-US/NetStack.PowerShell.dll-Help.xml, so Get-Help shows syntax from the code and text from here.
# tests/Pester/Help.Tests.ps1 fails when a cmdlet or parameter lacks text here, or when this file names a
# parameter the cmdlet does not have (a rename).
# Shape: Shared.Parameters gives text for parameters many cmdlets share (a cmdlet's own Parameters entry wins);
# Commands.<name> has Synopsis, Description (paragraphs), Parameters, Examples (Code, Remarks, and Needs for an example
# that cannot run on the embedded network: 'libpcap', or what else it needs, e.g. root; tests/Pester/HelpExamples.Tests.ps1
# runs every other example and skips these with the reason), Links.
@{
    Shared   = @{
        Parameters = @{
            Stack   = 'The stack to act on: a stack object (from Start-Stack or Get-Stack) or its name. Binds by property name from any object with a Stack property (every NetStack output object has one). Omitted, the most recently started stack that is still running (the default stack; -Verbose names it when several run); a socket given to the cmdlet already knows its stack. The views Get-StackConnection, Get-StackArpCache and Get-StackStatistics take several stacks (also piped from Get-Stack) and show every running stack when it is omitted; Get-StackPacket takes several too (the default stack when omitted). A stack stopped lately gives StackStopped, a name that never was one StackNotFound.'
            WhatIf  = 'Shows what would happen if the cmdlet ran; the cmdlet does not run.'
            Confirm = 'Asks for confirmation before running the cmdlet.'
        }
    }

    Commands = @{
        'Get-StackAdapter'      = @{
            Synopsis    = 'Lists the network adapters libpcap can open, for Start-Stack -Adapter.'
            Description = @(
                'Lists the adapters libpcap can open (Name, Description, MacAddress, Addresses, IsUp). Listing needs no root; listing inside a network namespace does.'
                'Fails with PcapNotInstalled when libpcap is missing (apt-get install libpcap0.8) and NetworkNamespaceNotFound when -NetworkNamespace names no namespace.'
            )
            Parameters  = @{
                Name             = 'Only adapters whose name matches one of these patterns (wildcards allowed).'
                NetworkNamespace = 'List the adapters inside this network namespace (a name under /var/run/netns, or a path); needs root.'
            }
            Examples    = @(
                @{ Code = 'Get-StackAdapter'; Needs = 'libpcap'; Remarks = 'Lists every adapter of the current network namespace.' }
                @{ Code = 'Get-StackAdapter veth* -NetworkNamespace U'; Needs = 'root and a network namespace U'; Remarks = 'Lists the veth adapters inside the network namespace U (as root).' }
            )
            Links       = @('Start-Stack')
        }

        'Start-Stack'           = @{
            Synopsis    = 'Starts a stack on the embedded lab, a named virtual network, or a pcap adapter.'
            Description = @(
                'Starts a user-space TCP/IP stack with its own loop thread and outputs it. With no -Adapter and no -VirtualNetwork it joins the embedded lab: the in-process virtual network "lab", 192.0.2.0/24, where a service host at 192.0.2.1 (started with the first stack) answers ARP and ping and serves echo (TCP and UDP 7), discard (9), daytime (13), chargen (19), HTTP (80) and DNS (53, names under lab.test); the stack gets the next free address (192.0.2.2, .3, ...) and the service host as gateway and DNS server. No adapter and no root are needed.'
                'With -VirtualNetwork the stack attaches to a named in-process network (created on first use; Start-StackServiceHost gives it a service host too); without -IPAddress it takes the next free address of the network''s subnet. With -Adapter it opens a pcap adapter, which needs root or CAP_NET_RAW and CAP_NET_ADMIN; -NetworkNamespace opens the adapter inside a network namespace while the process stays where it is.'
                '-HostIngressDrop keeps the host''s own kernel from also processing every frame meant for the stack: on an adapter the host also uses, the kernel takes each frame to the stack''s address, routes it, finds the address is not its own and drops it, which the benchmark measured at 24% of the stack loop''s CPU per frame in bulk receive. The switch installs an nftables rule at the adapter''s ingress (table netdev netstack_<adapter>_<address>, shown in the stack''s HostIngressDrop property) that drops IPv4 to the stack''s address for the host after the capture has copied the frame to the stack; the host keeps its own traffic, ARP and broadcasts. Stop-Stack and the end of the process remove it; a rule left by a killed session (its table names the owning process) is removed by the next Start-Stack -HostIngressDrop in that namespace. Needs nftables (nft) and root. A stack given a MAC of its own with -MacAddress, on a link that carries it (a veth, a bridge; not Wi-Fi or most VM and cloud adapters), spares the host about as much without the switch: the kernel drops frames for another MAC before routing them (the rule still matches them, and then spares little more).'
                'With -Dhcp the stack leases its address, prefix, gateway, DNS servers and MTU from the link''s DHCP server (RFC 2131: DISCOVER, OFFER, REQUEST, ACK, then three ARP probes of the address, RFC 5227, before it is used; an address that answers is declined) and Start-Stack returns once the lease is bound, or fails after -TimeoutSec with DhcpTimedOut, the stack stopped. On the embedded lab the service host serves DHCP (192.0.2.100 to .199, 2-minute leases). The stack renews at T1, rebinds at T2, loses the address when the lease expires, and gives it back (DHCPRELEASE) on Stop-Stack; Get-Stack shows the lease (the Dhcp property). A DHCP stack is named dhcp-1, dhcp-2... and on a virtual network gets the MAC 02-00-DC-00-00-01, -02...; -Gateway, -DnsServer and -Mtu, when given, win over the lease''s.'
                'The MAC address of a virtual stack is derived from its address (192.0.2.2 gives 02-00-C0-00-02-02) unless -MacAddress is given. Errors: StackNameInUse, AddressInUse (the address is taken on that virtual network), InvalidAddressChoice (-Dhcp with -IPAddress, an adapter with neither, -TimeoutSec without -Dhcp, -Dhcp with -HostIngressDrop), DhcpTimedOut, InvalidSimulation, InvalidConfiguration, AdapterNotFound, PermissionDenied, PcapNotInstalled, NetworkNamespaceNotFound, AdapterOpenFailed, CaptureFileFailed; with -HostIngressDrop also NftablesNotInstalled, HostIngressDropDenied (not root), HostIngressDropInUse (another running process holds the rule for that adapter and address) and HostIngressDropFailed.'
            )
            Parameters  = @{
                Adapter          = 'The pcap adapter to open (see Get-StackAdapter).'
                NetworkNamespace = 'Open the adapter inside this network namespace (a name under /var/run/netns, or a path). The stack''s thread stays where it is; the capture socket lives there.'
                VirtualNetwork   = 'The in-process virtual network to attach to; created on first use and dropped when its last stack stops. Omitted (and no -Adapter): the embedded lab, "lab".'
                IPAddress        = 'The stack''s address with its prefix length, e.g. 192.0.2.2/24: an address without one is refused (no length is guessed: a wrong one makes hosts on the link look unreachable; ip -4 addr on the host shows the network''s). With -Adapter, give it or -Dhcp; on a virtual network, omitted means the next free address of the network''s subnet (192.0.2.2, .3, ... on the lab).'
                Dhcp             = 'Lease the address, prefix, gateway, DNS servers and MTU from a DHCP server on the link instead of giving -IPAddress; Start-Stack waits for the lease (-Verbose narrates the exchange).'
                TimeoutSec       = 'With -Dhcp: how long to wait for the lease, in seconds (default 30). When it passes, the stack is stopped and the command fails with DhcpTimedOut.'
                Gateway          = 'The default gateway; it must be on the stack''s subnet. On a network with a service host, that host by default.'
                MacAddress       = 'The stack''s MAC address (02-00-5E-10-00-01, 02:00:5e:10:00:01 or 0200.5e10.0001). Default: the adapter''s, or for a virtual stack one derived from its address.'
                DnsServer        = 'DNS servers used by Resolve-StackDnsName and by cmdlets that accept host names. On a network with a service host, that host by default.'
                DnsSearch        = 'Search domains for names without a trailing dot, tried in order as resolv.conf does (ndots 1): a name without a dot is asked with each domain appended, then as it is; a dotted name as it is first, then with each domain it does not already end in. The next name is asked only when the last one does not exist. Default: none, except on a virtual network with a service host (the embedded lab) when -DnsServer is not given: the host''s domain (lab.test), so www means www.lab.test.'
                Mtu              = 'The link MTU, 576 to 9000 (default 1500).'
                HostIngressDrop  = 'With -Adapter: drop IPv4 to the stack''s address for the host''s kernel at the adapter''s ingress (an nftables rule, after the capture), so the host does not also route and drop every frame meant for the stack. Removed by Stop-Stack and at exit; needs nft and root.'
                CaptureFile      = 'Records every frame in and out to this pcap file (tshark and Wireshark read it); completed on Stop-Stack.'
                Name             = 'The stack''s name (default: its IP address, or dhcp-1, dhcp-2... with -Dhcp). Names are unique in the process, case-insensitive.'
                PacketLogSize    = 'Frames kept in memory for Get-StackPacket (0 turns the log off).'
                CongestionControl = 'The TCP congestion control of the stack''s connections: bbr (BBR, the default, as in the Linux kernels that choose it: paced at its estimate of the bottleneck bandwidth, cwnd from the bandwidth-delay product; random loss is not read as congestion), cubic (CUBIC, RFC 9438) or newreno (RFC 5681). Get-StackConnection | Format-List shows the choice (CongestionControl) and, under BBR, BbrState, BbrBandwidth, BbrMinRtt and PacingRate.'
                BusyPollMicroseconds = 'Low-latency mode, as Linux''s busy_poll does (0 to 1,000,000 microseconds): after traffic the stack''s loop keeps polling the link this long instead of sleeping, so a packet that comes within them is answered without a wake-up; and a call that has to wait (a receive before its data, a ping before its reply) spins on its caller''s thread up to this long and, when the reply comes within it, returns completed with no wake-up or thread hand-off (Get-StackStatistics Stack -Name BusyPoll* counts them). It costs CPU: a busy core for that long after every packet, and a waiting call holds its thread that long (start a receive after the send it waits for). 0 (the default) sleeps at once. Choose it above the gap you wait for: 2500 for a request every 2 ms; for back-to-back exchanges above the peer''s reply time (docs/module.md).'
                CallerWaitMicroseconds = 'The caller''s wait on the link (0 to 1,000,000 microseconds; 0, off, by default): a call that has to wait (a server''s receive before its request comes, a ping before its reply) sleeps on the link on its caller''s thread for up to this long, as a blocking read in the kernel does, and takes the packet itself when it comes: one thread woken per packet instead of two (the stack''s loop, then a thread for the caller''s continuation), and no CPU spent while it waits. One call at a time waits so; others wait as usual. It holds the caller''s thread up to this long; choose it above the gap you wait for (2500 for a request every 2 ms). After -BusyPollMicroseconds''s spin when both are set. Get-StackStatistics Stack -Name CallerWait* counts the calls done so and those that waited as usual after it (docs/module.md).'
                LoopProcessor    = 'The processor the stack''s loop thread runs on (Linux; by default any). Choose the one where the adapter''s packets arrive: the processor that takes its interrupts (/proc/interrupts; for a veth, the one the sending program runs on). A packet then wakes the sleeping loop on that processor instead of another, idle one (an interprocessor interrupt; in a virtual machine the wake-up of a halted vCPU), so a ping or a request that comes after a pause is answered sooner. It costs no CPU, but the loop shares that processor with whatever else runs there. A processor this process may not use fails Start-Stack with an error that says so (docs/module.md, docs/benchmarks.md).'
                Simulate         = 'Faults of the virtual network the stack joins, as a hashtable: Loss, Duplicate, Corrupt, Reorder (probabilities 0 to 1), DelayMs, JitterMs, ReorderMs (milliseconds), RateMbps. They apply to every frame on that network and merge over its current settings; change them later with Set-StackNetwork.'
            }
            Examples    = @(
                @{ Code = 'Start-Stack'; Remarks = 'Joins the embedded lab with the next free address (192.0.2.2 for the first stack); the service host at 192.0.2.1 starts with it and is its gateway and DNS server.' }
                @{ Code = 'Start-Stack -Simulate @{ Loss = 0.05; DelayMs = 20 }'; Remarks = 'Joins the embedded lab and makes it lossy (5% of frames lost) and slow (20 ms one way), to watch retransmissions in Get-StackConnection and Get-StackPacket.' }
                @{ Code = 'Start-Stack; Test-StackConnection www -Count 1'; Remarks = 'Joins the embedded lab, whose domain lab.test is the stack''s DNS search list: the short name www is asked as www.lab.test (a CNAME to host.lab.test, 192.0.2.1) and pinged.' }
                @{ Code = 'Start-Stack -VirtualNetwork office -IPAddress 192.0.2.20/24 -DnsServer 192.0.2.53 -DnsSearch corp.test, example.test'; Remarks = 'Short names such as www are asked as www.corp.test, then www.example.test, then www.' }
                @{ Code = 'Start-Stack -Simulate @{ Loss = 0.03; DelayMs = 10 } -CongestionControl bbr; $c = Connect-StackSocket 192.0.2.1 9; $c | Send-StackData ([byte[]]::new(500KB)); Get-StackConnection | Format-List CongestionControl, BbrState, BbrBandwidth, BbrMinRtt, PacingRate'; Remarks = 'Uses BBR on a lossy link (sending 500 KB to the discard service): its connections pace at the estimated bottleneck bandwidth, and Format-List shows the estimate, the min RTT, the pacing rate and the state (Startup, Drain, ProbeBw, ProbeRtt).' }
                @{ Code = 'Start-Stack -VirtualNetwork bench -IPAddress 198.51.100.1/24 -Name server'; Remarks = 'Starts a stack named server on the in-process network bench with a chosen address; no adapter or root needed.' }
                @{ Code = 'Start-Stack -Adapter u0 -NetworkNamespace U -IPAddress 192.0.2.2/24 -Gateway 192.0.2.1 -CaptureFile ./u0.pcap'; Needs = 'root and a network namespace U with the adapter u0'; Remarks = 'Starts a stack on the adapter u0 inside the network namespace U (as root) and records its frames to u0.pcap.' }
                @{ Code = '$s = Start-Stack -Adapter eth1 -IPAddress 192.0.2.2/24 -Gateway 192.0.2.1 -HostIngressDrop; nft list table netdev $s.HostIngressDrop'; Needs = 'root, nftables and an adapter eth1'; Remarks = 'Starts a stack on eth1 and keeps the host''s kernel from also processing the frames sent to 192.0.2.2 (the host''s own addresses on eth1 work as before), then shows the rule: ip daddr 192.0.2.2 counter drop at eth1''s ingress, its counter the frames the host no longer had to process, its comment the owning process. Stop-Stack removes it.' }
                @{ Code = 'Start-Stack -BusyPollMicroseconds 2500'; Remarks = 'Joins the embedded lab in low-latency mode: a ping or request that comes within 2.5 ms of the last packet is answered without waking the stack''s loop, at the price of a busy core while traffic lasts (on an adapter: Start-Stack -Adapter eth1 -IPAddress 192.0.2.2/24 -BusyPollMicroseconds 2500). docs/benchmarks.md gives the round trips and the CPU it costs.' }
                @{ Code = '$s = Start-Stack -BusyPollMicroseconds 100 -Name fast; Test-StackConnection -Stack fast 192.0.2.1 -Count 5 -Delay 0; Get-StackStatistics -Stack fast -Layer Stack -Name BusyPoll* -All'; Remarks = 'A short window for back-to-back pings on the embedded lab: each ping''s caller spins up to 100 µs for its reply and takes it itself; BusyPollCallsDone counts the calls the spin finished, BusyPollCallsParked those that waited longer and completed from the loop as usual.' }
                @{ Code = 'Start-Stack -Dhcp -Verbose | Select-Object -ExpandProperty Dhcp'; Remarks = 'Joins the embedded lab and leases an address from its service host (192.0.2.100 for the first such stack); -Verbose narrates DISCOVER, OFFER, REQUEST, ACK and the ARP probes, and the lease shows its server, lease time and renewal (T1), rebinding (T2) and expiry times.' }
                @{ Code = 'Start-Stack -Dhcp -TimeoutSec 10 -CaptureFile ./dhcp.pcap; Stop-Stack'; Remarks = 'Leases an address on the embedded lab, waiting at most 10 seconds, then gives it back: dhcp.pcap holds the whole story (DISCOVER, OFFER, REQUEST, ACK, the ARP probes and announcement, the RELEASE) for Wireshark or Read-StackCapture. On a real link the same is Start-Stack -Adapter eth0 -Dhcp, as root.' }
            )
            Links       = @('Get-Stack', 'Stop-Stack', 'Get-StackAdapter', 'Start-StackServiceHost', 'Set-StackNetwork')
        }

        'Get-Stack'             = @{
            Synopsis    = 'Gets the running stacks with their settings and uptime.'
            Description = @('Outputs the running stacks of this process (every runspace shares them). Format-List adds Gateway, DnsServer, DnsSearch, CaptureFile, HostIngressDrop (the nftables table of Start-Stack -HostIngressDrop), LinkFault, Dhcp and more; address, gateway, DNS servers, search domains and MTU are those in force (a DHCP lease sets them). Dhcp, for a stack started with -Dhcp, is its lease: State (Selecting, Requesting, Probing, Bound, Renewing, Rebinding, Released), Address, Server, Router, DnsServer, Domain, Mtu, LeaseTime and the deadlines RenewAt (T1), RebindAt (T2) and ExpiresAt as local times. Fails with StackNotFound for a name without wildcards that matches no running stack.')
            Parameters  = @{
                Name = 'Only stacks whose name matches one of these patterns (wildcards allowed); binds by property name.'
            }
            Examples    = @(
                @{ Code = 'Get-Stack'; Remarks = 'Lists every running stack.' }
                @{ Code = 'Get-Stack -Name client | Format-List'; Remarks = 'Shows every setting of the stack named client.' }
                @{ Code = 'Get-Stack | Format-Table Name, Adapter, HostIngressDrop'; Remarks = 'Shows which stacks run on an adapter and which of them keep the host''s kernel out of their traffic (the nftables table of Start-Stack -HostIngressDrop; empty on a virtual network or without the switch).' }
                @{ Code = 'Start-Stack -Dhcp | Out-Null; (Get-Stack -Name dhcp-*).Dhcp | Format-Table Stack, State, Address, Server, LeaseTime, RenewAt, ExpiresAt'; Remarks = 'Leases an address on the embedded lab, then shows the lease of every DHCP stack.' }
            )
            Links       = @('Start-Stack', 'Stop-Stack')
        }

        'Stop-Stack'            = @{
            Synopsis    = 'Stops a stack: closes its sockets, releases its adapter, completes its capture file.'
            Description = @('Stops the stack given (or the most recently started one): every TCP connection still open is reset (RST to the peer, as the kernel does for a process that exits, so no peer stays half-open), a DHCP lease is given back (DHCPRELEASE to the server), every socket is closed, the adapter is released and the capture file completed. A stack already stopped is left as is, named or given as an object. Supports -WhatIf and -Confirm.')
            Parameters  = @{
                Stack = 'The stacks to stop: stack objects from the pipeline, or their names (Stop-Stack client, server). Omitted, the most recently started stack that is still running.'
            }
            Examples    = @(
                @{ Code = 'Get-Stack | Stop-Stack'; Remarks = 'Stops every running stack.' }
                @{ Code = 'Stop-Stack client'; Remarks = 'Stops the stack named client.' }
                @{ Code = 'Start-Stack -VirtualNetwork pair -IPAddress 192.0.2.11/24 -Name left | Out-Null; Start-Stack -VirtualNetwork pair -IPAddress 192.0.2.12/24 -Name right | Out-Null; Stop-Stack left, right -Verbose'; Remarks = 'Starts two stacks on a network of their own and stops both, saying how long each ran.' }
            )
            Links       = @('Start-Stack', 'Get-Stack')
        }

        'Get-StackArpCache'     = @{
            Synopsis    = 'Gets the stack''s ARP (neighbour) cache, like Get-NetNeighbor.'
            Description = @('Outputs the entries of the neighbour cache: IPAddress, LinkLayerAddress (00-15-5D-25-05-1D), State and Age. The objects pipe into Remove-StackArpEntry.')
            Parameters  = @{
                IPAddress = 'Only entries whose address matches one of these patterns (wildcards allowed, e.g. 192.0.2.*).'
                State     = 'Only entries in one of these states (Incomplete, Reachable, Stale, Permanent...).'
                Stack     = 'The stacks to show: stack objects (also piped from Get-Stack) or names (-Stack client, server). Omitted, every running stack. Every row names its stack (the Stack property): Group-Object Stack separates them. An unknown or stopped stack ends the command with StackNotFound or StackStopped.'
            }
            Examples    = @(
                @{ Code = 'Get-StackArpCache -Stack client'; Remarks = 'Lists the ARP cache of the stack named client.' }
                @{ Code = 'Get-StackArpCache 192.0.2.* -State Permanent'; Remarks = 'Lists the static entries in 192.0.2.0/24.' }
                @{ Code = 'Get-StackArpCache -Stack client, server | Format-Table -GroupBy Stack'; Remarks = 'Lists the ARP caches of the stacks client and server, one table each.' }
            )
            Links       = @('Add-StackArpEntry', 'Remove-StackArpEntry', 'Clear-StackArpCache', 'Resolve-StackArpEntry')
        }

        'Add-StackArpEntry'     = @{
            Synopsis    = 'Adds a static (Permanent) ARP entry.'
            Description = @('Adds a static entry, replacing what the cache knew for that address. Static entries never expire and survive Clear-StackArpCache unless -IncludeStatic is given.')
            Parameters  = @{
                IPAddress        = 'The IPv4 address of the neighbour.'
                LinkLayerAddress = 'Its MAC address (02-00-5E-10-00-01, 02:00:5e:10:00:01 or 0200.5e10.0001).'
                PassThru         = 'Outputs the new entry.'
            }
            Examples    = @(
                @{ Code = 'Add-StackArpEntry 192.0.2.9 02-00-5E-10-00-09 -PassThru'; Remarks = 'Adds a static entry for 192.0.2.9 and shows it.' }
                @{ Code = 'Get-StackArpCache -Stack client -State Reachable | ForEach-Object { Add-StackArpEntry $_.IPAddress $_.LinkLayerAddress -Stack client -PassThru }'; Remarks = 'Pins what ARP has learned: every reachable neighbour becomes a static (Permanent) entry, which never expires.' }
            )
            Links       = @('Get-StackArpCache', 'Remove-StackArpEntry')
        }

        'Remove-StackArpEntry'  = @{
            Synopsis    = 'Removes an entry from the stack''s ARP cache.'
            Description = @('Forgets the entry for an address, static ones too; a resolution in progress for it fails as unreachable. Fails with ArpEntryNotFound for an address not in the cache. Supports -WhatIf and -Confirm.')
            Parameters  = @{
                IPAddress = 'The address whose entry to remove; binds by property name (from Get-StackArpCache).'
            }
            Examples    = @(
                @{ Code = 'Remove-StackArpEntry 192.0.2.9'; Remarks = 'Forgets the entry for 192.0.2.9.' }
                @{ Code = 'Get-StackArpCache -State Stale | Remove-StackArpEntry'; Remarks = 'Forgets every stale entry.' }
            )
            Links       = @('Get-StackArpCache', 'Clear-StackArpCache')
        }

        'Clear-StackArpCache'   = @{
            Synopsis    = 'Forgets every learned ARP entry.'
            Description = @('Removes every learned entry from the cache; static entries stay unless -IncludeStatic is given. Supports -WhatIf and -Confirm.')
            Parameters  = @{
                IncludeStatic = 'Removes the static (Permanent) entries too.'
            }
            Examples    = @(
                @{ Code = 'Clear-StackArpCache -Stack client'; Remarks = 'Forgets what the stack client has learned.' }
                @{ Code = 'Clear-StackArpCache -IncludeStatic -Stack client -Confirm:$false; Get-StackArpCache -Stack client'; Remarks = 'Forgets every entry, the static ones too, without asking; the cache is then empty until the next packet needs ARP.' }
            )
            Links       = @('Get-StackArpCache', 'Remove-StackArpEntry')
        }

        'Resolve-StackArpEntry' = @{
            Synopsis    = 'Resolves an address with ARP now (like arping) and returns the entry.'
            Description = @('Sends ARP requests for the address and waits for the answer, then outputs the cache entry. Fails with HostUnreachable when nobody answers.')
            Parameters  = @{
                IPAddress = 'The IPv4 address to resolve; from the pipeline by value or by property name.'
            }
            Examples    = @(
                @{ Code = 'Resolve-StackArpEntry 192.0.2.1'; Remarks = 'ARPs for 192.0.2.1 and shows its MAC address.' }
                @{ Code = '''192.0.2.1'', ''192.0.2.53'' | Resolve-StackArpEntry -Stack client'; Remarks = 'ARPs for each address from the pipeline, like arping for several hosts.' }
            )
            Links       = @('Get-StackArpCache')
        }

        'Test-StackConnection'  = @{
            Synopsis    = 'Pings a host from the stack (ICMP echo), traces the route to it, finds the path MTU, or tests TCP and UDP ports.'
            Description = @(
                'Sends ICMP echo requests from the stack and outputs one reply object per echo as it arrives (Latency in ms, Ttl). A failed echo is a non-terminating error (TimedOut, HostUnreachable, NetworkUnreachable, TtlExpired, DestinationUnreachable). With -Quiet the cmdlet outputs one true or false per target.'
                'With -TcpPort (one port or several) it tries a TCP connect to each instead and outputs one result per port: Destination, the Address tested, TcpPort, Status (Open; Closed: refused; Filtered: no answer within -TimeoutSeconds; Unreachable: no ARP answer or no route) and Latency. With -UdpPort it sends one empty datagram to each port and waits: an answer is Open, ICMP port unreachable is Closed, silence is OpenOrFiltered (nmap''s open|filtered). -Detailed adds our source endpoint and the error to the table; -Quiet outputs one bool per port (true only for Open).'
                'With -Traceroute it sends echo requests with TTL 1, 2, 3... (three per hop, up to -MaxHops, default 30, each waiting -TimeoutSeconds) and outputs one object per probe as it comes, shaped like Test-Connection -Traceroute''s: Hop, Hostname (the address that answered; no reverse lookup), Ping (1 to 3), Latency (the probe''s own round trip in ms), Status (TtlExpired from a router on the way, Success from the target, TimedOut for a hop that did not answer: the trace goes on), Source, Target and TargetAddress. The trace ends at the hop where the target answered, where a router said it is unreachable, or at -MaxHops. Ctrl+C stops it. -Quiet outputs one bool per target: whether the target answered.'
                'With -MtuSize it finds the path MTU with echo requests that carry DF (RFC 1191), as Test-Connection -MtuSize does: it starts at the stack''s MTU; a router''s "fragmentation needed" names the MTU of its next hop, which is tried next; without one (or when a probe meets silence) it searches between the largest size that got through and the smallest that did not. The result shows MtuSize (the largest datagram, IP header included, that got an answer), Latency, ReportedBy (the router that said "fragmentation needed") and Probes (every size tried and its outcome). -Quiet outputs just the size (0 when nothing got through); a target that answers no probe at all is a non-terminating error.'
                'Host names are resolved through the stack''s DNS servers; the results show the name as Destination (Target for a trace) and what it resolved to as Address (TargetAddress).'
            )
            Parameters  = @{
                ComputerName   = 'The targets: IPv4 addresses or names resolved through the stack''s DNS. From the pipeline by value or by property name (aliases IPAddress, RemoteAddress).'
                Count          = 'Echo requests to send to each target (default 4).'
                Delay          = 'Seconds between echoes (default 1; 0 sends the next as soon as the reply arrives).'
                BufferSize     = 'Bytes of echo payload (default 32).'
                MaxHops        = 'The echo request''s TTL (default 64); with -Traceroute, the highest TTL tried (default 30).'
                DontFragment   = 'Sets DF on the echo requests: one too big for a link on the way fails with PacketTooBig (naming the next-hop MTU a router reported) instead of travelling in fragments.'
                Traceroute     = 'Traces the route: echo requests with rising TTL, three per hop, one result per probe as it comes (Hop, Hostname, Ping, Latency, Status).'
                MtuSize        = 'Finds the path MTU to each target with DF echo requests (RFC 1191) and outputs it (alias MtuSizeDetect).'
                TimeoutSeconds = 'Seconds to wait for each reply (each traceroute or MTU probe too), for each TCP connect, or for an answer to each UDP probe (default 4).'
                TcpPort        = 'Test a TCP connect to these ports instead of pinging, one result per port.'
                UdpPort        = 'Probe these UDP ports instead of pinging: one empty datagram each, then an answer (Open), ICMP port unreachable (Closed) or silence (OpenOrFiltered).'
                Detailed       = 'Port probes: shows the detailed table, with our source endpoint and the error of each probe.'
                Quiet          = 'Outputs only true or false: per target whether any echo was answered (with -Traceroute: whether the target answered); per port whether it is Open. With -MtuSize, the path MTU as a number (0 when nothing got through).'
            }
            Examples    = @(
                @{ Code = 'Test-StackConnection 192.0.2.1 -Count 2 -Stack client'; Remarks = 'Pings 192.0.2.1 twice from the stack client.' }
                @{ Code = 'Test-StackConnection 192.0.2.1 -TcpPort 80 -Quiet'; Remarks = 'Returns true when a TCP connection to port 80 can be made.' }
                @{ Code = 'Test-StackConnection host.lab.test -TcpPort 22,80,443 -Detailed'; Remarks = 'On the embedded lab: resolves host.lab.test through the stack''s DNS and tests three TCP ports of the service host: Open (80), Closed (22 and 443, refused) or Filtered (timed out) each, with latency, source endpoint and error.' }
                @{ Code = 'Test-StackConnection 192.0.2.1 -UdpPort 53,9999 -TimeoutSeconds 2'; Remarks = 'Probes two UDP ports: an answering DNS server is Open, a port the host refuses with ICMP is Closed, silence is OpenOrFiltered.' }
                @{ Code = 'Test-StackConnection 192.0.2.1 -Traceroute -Stack client'; Remarks = 'Traces the route to 192.0.2.1: three rows per hop as they come; each router on the way answers TtlExpired, the target Success (here a neighbour: one hop), and a router that does not answer shows as TimedOut rows with * for its name and latency.' }
                @{ Code = 'Test-StackConnection www.example -Traceroute -MaxHops 5 -TimeoutSeconds 1 | Where-Object Ping -eq 1 | Select-Object Hop, HopAddress, Latency'; Remarks = 'Resolves www.example through the stack''s DNS, traces at most five hops waiting a second per probe, and lists one address and round trip per hop.' }
                @{ Code = 'Test-StackConnection 192.0.2.1 -MtuSize'; Remarks = 'Finds the largest datagram that reaches 192.0.2.1 unfragmented: 1500 on one Ethernet, 1400 behind a router with a 1400-byte link that says so with "fragmentation needed" (ReportedBy names it); Probes shows each size tried.' }
                @{ Code = '$mtu = Test-StackConnection 192.0.2.1 -MtuSize -Quiet; Send-StackData -Socket $u -Data ([byte[]]::new($mtu - 28)) -RemoteAddress 192.0.2.1 -RemotePort 9'; Remarks = 'Stores the path MTU as a number and sends, from the UDP socket in $u, the largest datagram that crosses the path in one piece (28 bytes of IP and UDP header).' }
                @{ Code = 'Test-StackConnection 192.0.2.1 -BufferSize 1472 -DontFragment -Count 1'; Remarks = 'Sends one echo of a full 1500-byte datagram with DF set: Success when every link carries 1500 bytes, otherwise a PacketTooBig error naming the next-hop MTU.' }
            )
            Links       = @('Resolve-StackDnsName', 'Get-StackPacket')
        }

        'Get-StackStatistics'   = @{
            Synopsis    = 'Gets the counters of every layer of the stack, in one snapshot: those that moved, or all with -All.'
            Description = @(
                'Outputs one object per counter (Layer, Name, Value, Stack), all of a stack read in one consistent snapshot on its loop; the table groups them by layer and names the stack. By default only counters that are not zero; -All shows every counter, and a counter asked for by its exact -Name shows even at zero. Counters include what each layer dropped and why.'
                'Without -Stack, the counters of every running stack.'
            )
            Parameters  = @{
                Layer = 'Only counters of these layers (Link, Ethernet, Arp, Ipv4, Icmp, Udp, Tcp, Dns, Stack; Tab completes them); wildcards allowed.'
                Name  = 'Only counters whose name matches one of these patterns (wildcards allowed; Tab completes the names).'
                All   = 'Counters that are zero too.'
                Stack = 'The stacks to show: stack objects (also piped from Get-Stack) or names (-Stack client, server). Omitted, every running stack. Every row names its stack (the Stack property): Group-Object Stack separates them. An unknown or stopped stack ends the command with StackNotFound or StackStopped.'
            }
            Examples    = @(
                @{ Code = 'Get-StackStatistics'; Remarks = 'Shows every counter that has moved, of every running stack, grouped by layer.' }
                @{ Code = 'Get-StackStatistics Tcp -Name *Retrans* -All'; Remarks = 'Shows the TCP retransmission counters, zero or not.' }
                @{ Code = 'Get-Stack client, server | Get-StackStatistics Tcp -Name SegmentsSent -All'; Remarks = 'Shows how many TCP segments each of the two stacks sent, a row per stack.' }
            )
            Links       = @('Get-StackPacket', 'Get-StackConnection')
        }

        'Get-StackPacket'       = @{
            Synopsis    = 'Gets the recent frames in and out from the stack''s packet log, decoded like tshark.'
            Description = @('Decodes the packet log (the first 128 bytes and the real length of the last -PacketLogSize frames) one line each: for TCP the flags, relative Seq and Ack, Win, Len and options. Decoding happens in the cmdlet on a snapshot, never on the stack''s loop. The table''s headers are property names too (Format-Table No, Dir, Info).')
            Parameters  = @{
                Socket    = 'Only frames of this socket''s connection (its local port, and its peer once connected): the socket object, a row with its Id, or the Id.'
                Protocol  = 'Only frames of these protocols (ARP, ICMP, UDP, DNS, TCP, IPv4, IPv6, Ethernet); wildcards allowed.'
                Direction = 'Only frames going this way: In or Out.'
                Last      = 'Only the last n frames (after filtering).'
                Stack     = 'The stacks whose logs to show: stack objects (also piped from Get-Stack) or names (-Stack client, server), each log in turn, every row naming its stack (the Stack property). Omitted, the default stack (the most recently started that still runs), or the stack of a socket piped in. With -Socket, one stack only (SocketOfOneStack otherwise). An unknown or stopped stack ends the command with StackNotFound or StackStopped.'
            }
            Examples    = @(
                @{ Code = 'Get-StackPacket -Stack client -Protocol TCP'; Remarks = 'Shows the TCP frames of the stack client.' }
                @{ Code = '$c | Get-StackPacket -Last 10'; Remarks = 'Shows the last ten frames of the connection of the socket in $c.' }
                @{ Code = 'Get-StackPacket -Stack client, server -Protocol ARP | Format-Table -GroupBy Stack'; Remarks = 'Shows the ARP frames each of the stacks client and server sent and received, one table per stack.' }
            )
            Links       = @('Get-StackConnection', 'Start-Stack')
        }

        'Read-StackCapture'     = @{
            Synopsis    = 'Reads a pcap or pcapng capture file into the packet objects Get-StackPacket writes.'
            Description = @(
                'Reads the file through libpcap (SharpPcap''s offline reader), so tcpdump''s, Wireshark''s and Start-Stack -CaptureFile''s captures all work, pcapng included; non-Ethernet link types (tcpdump -i any, raw IP) are parsed with PacketDotNet. Each frame is decoded like Get-StackPacket does (TCP numbers relative to each side''s first sequence number); Direction is Unknown and Stack holds the file''s path. Pipe the packets to Show-StackLadder, Export-StackLadder or Export-StackSequenceGraph to draw any TCP conversation, also one between two other hosts.'
                'Fails with CaptureFileNotFound, NotACaptureFile, or PcapNotInstalled (apt-get install libpcap0.8).'
            )
            Parameters  = @{
                Path     = 'The capture files to read.'
                Protocol = 'Only frames of these protocols (ARP, ICMP, UDP, DNS, TCP, IPv4...); wildcards allowed.'
            }
            Examples    = @(
                @{ Code = 'Read-StackCapture trace.pcap -Protocol TCP'; Remarks = 'Lists the TCP segments of trace.pcap, decoded like Get-StackPacket.' }
                @{ Code = 'Read-StackCapture trace.pcapng | Show-StackLadder'; Remarks = 'Draws the conversations in trace.pcapng as a ladder in the console.' }
            )
            Links       = @('Get-StackPacket', 'Show-StackLadder')
        }

        'Show-StackLadder'      = @{
            Synopsis    = 'Draws a ladder diagram of the packets in the console: a column per host, an arrow per segment, TCP states beside the columns.'
            Description = @(
                'Time (ms from the first frame) runs down the left; each frame is an arrow between its hosts'' columns labelled with the flags, relative Seq and Ack, Len and Win (and the options of SYNs); retransmissions, duplicate ACKs, zero windows, probes and resets are marked in the label and by the arrow''s line. Each side''s TCP state is written beside its column where it changes: for our stacks (the stack the packets came from and the stacks on its virtual network) the transitions the stack recorded; for other hosts, states inferred from the segments, shown with a leading ~.'
                'Writes the diagram as lines of text (Unicode box drawing, or ASCII with -Ascii or when the console cannot show Unicode), so it reads the same in a transcript or a Pester failure message.'
            )
            Parameters  = @{
                InputObject = 'Packets to draw, from Get-StackPacket or Read-StackCapture (by pipeline).'
                CaptureFile = 'A pcap or pcapng file to draw (tcpdump, Wireshark or Start-Stack -CaptureFile wrote it); states are then inferred from the segments.'
                Socket      = 'Only this socket''s connection: the socket object, a Get-StackConnection row, or its Id (with -Stack).'
                Protocol    = 'Only frames of these protocols (TCP, UDP, DNS, ICMP, ARP...); wildcards allowed.'
                Width       = 'The width to fit, in columns (default: the console''s width).'
                Ascii       = 'Draw with plain ASCII characters instead of Unicode box drawing.'
            }
            Examples    = @(
                @{ Code = 'Get-StackPacket -Protocol TCP | Show-StackLadder'; Remarks = 'Draws the TCP segments of the most recent stack''s packet log.' }
                @{ Code = 'Show-StackLadder -Socket $c -Width 100 -Ascii'; Remarks = 'Draws the connection of the socket in $c in ASCII, 100 columns wide.' }
            )
            Links       = @('Export-StackLadder', 'Get-StackPacket', 'Read-StackCapture')
        }

        'Export-StackLadder'    = @{
            Synopsis    = 'Writes the ladder diagram of the packets as an SVG file or a self-contained HTML page.'
            Description = @('The same diagram as Show-StackLadder, drawn as SVG (colour and dash by what a segment is, a legend, recorded states in solid boxes and inferred ones dashed) or as one HTML page that needs no network access: hovering a segment shows its decoded fields. The format follows the file''s extension (.svg, .html) unless -Format says.')
            Parameters  = @{
                InputObject = 'Packets to draw, from Get-StackPacket or Read-StackCapture (by pipeline).'
                CaptureFile = 'A pcap or pcapng file to draw (tcpdump, Wireshark or Start-Stack -CaptureFile wrote it); states are then inferred from the segments.'
                Socket      = 'Only this socket''s connection: the socket object, a Get-StackConnection row, or its Id (with -Stack).'
                Protocol    = 'Only frames of these protocols (TCP, UDP, DNS, ICMP, ARP...); wildcards allowed.'
                Path        = 'The file to write (.svg or .html).'
                Format      = 'Svg or Html, when the file''s extension does not say.'
                PassThru    = 'Write the file''s FileInfo to the pipeline.'
            }
            Examples    = @(
                @{ Code = 'Get-StackPacket -Protocol TCP | Export-StackLadder ladder.svg'; Remarks = 'Writes the ladder of the TCP segments to ladder.svg.' }
                @{ Code = 'Export-StackLadder ladder.html -CaptureFile trace.pcap -PassThru'; Remarks = 'Writes the ladder of a capture file as an HTML page and outputs the file.' }
            )
            Links       = @('Show-StackLadder', 'Export-StackSequenceGraph')
        }

        'Export-StackSequenceGraph' = @{
            Synopsis    = 'Writes a time-sequence graph (tcptrace style) of one direction of a TCP connection as SVG or HTML.'
            Description = @('Sequence number (relative, bytes) against time (ms): each data segment of the sender as a bar over the bytes it carried, the receiver''s cumulative ACK and its window''s right edge as step lines, its SACK blocks, retransmissions in red with an R and window probes or keep-alives as diamonds, with a legend and labelled axes. The sender is the side that sent the most data unless -Sender names it. Works on a stack''s log, Get-StackPacket output or a capture file (the kernel''s side too). The HTML page shows a segment''s or an ACK''s decoded fields on hover.'
                'With -Socket, when that socket was traced (Connect-StackSocket -Trace, New-StackSocket -Trace, Start-StackListener -Trace, or its TraceInternals property) and is the sender drawn, a second panel under the graph, on the same time axis, shows its congestion window, slow-start threshold and bytes in flight (bytes, left axis), its smoothed RTT and retransmission timeout (ms, right axis), and marks each loss event (fast recovery begun, a retransmission timeout) on the cwnd line. The stack samples them on its loop whenever one changes; -Verbose says why there is no panel when there is none.'
            )
            Parameters  = @{
                InputObject = 'Packets to draw, from Get-StackPacket or Read-StackCapture (by pipeline).'
                CaptureFile = 'A pcap or pcapng file to draw (tcpdump, Wireshark or Start-Stack -CaptureFile wrote it); states are then inferred from the segments.'
                Socket      = 'Only this socket''s connection: the socket object, a Get-StackConnection row, or its Id (with -Stack).'
                Protocol    = 'Only frames of these protocols (TCP, UDP, DNS, ICMP, ARP...); wildcards allowed.'
                Path        = 'The file to write (.svg or .html).'
                Format      = 'Svg or Html, when the file''s extension does not say.'
                Sender      = 'The data sender to draw, as an address or address:port (default: the side that sent the most data).'
                PassThru    = 'Write the file''s FileInfo to the pipeline.'
            }
            Examples    = @(
                @{ Code = 'Export-StackSequenceGraph transfer.svg -Socket $c'; Remarks = 'Draws the data the busier side of the connection of $c sent.' }
                @{ Code = '$c = Connect-StackSocket 192.0.2.1 9 -Trace; Set-StackNetwork -Simulate @{ Loss = 0.02; DelayMs = 10 }; $c | Send-StackData ([byte[]]::new(300KB)); $c | Close-StackSocket; Export-StackSequenceGraph lossy.html -Socket $c'; Remarks = 'On the embedded lab: a traced upload of 300 KB to the discard service over 2% loss and 10 ms delay, drawn as an HTML page: the retransmissions in the graph, and under it cwnd falling at each loss event the counters (Get-StackStatistics -Layer Tcp: FastRetransmits, Timeouts) report.' }
                @{ Code = 'Read-StackCapture trace.pcap | Export-StackSequenceGraph graph.html -Sender 192.0.2.1'; Remarks = 'Draws what 192.0.2.1 sent in a capture, as an HTML page.' }
            )
            Links       = @('Export-StackLadder', 'Get-StackStatistics')
        }

        'Get-StackConnection'   = @{
            Synopsis    = 'Gets every TCP connection and UDP endpoint of the stack: the netstat view.'
            Description = @('Outputs one row per socket: Proto, Local Address, Foreign Address, State, Recv-Q, Send-Q, Id (its descriptor) and Stack; without -Stack, the rows of every running stack. The headers are property names too (Format-Table Proto, ''Local Address'', ''Recv-Q''). TCP internals (SndUna, RcvNxt, Srtt, Rto, Cwnd, the receive and send buffers RcvBuf and SndBuf as auto-tuning grows them..., and the loss recovery: LossRecovery, RecoveryState, MinRtt, ReorderWindow, TlpProbes, RackLosses, SpuriousRetransmits, Undos, DeliveryRate; the pacing rate PacingRate, and under BBR its BbrState, BbrBandwidth estimate and BbrMinRtt) are properties and show in Format-List. The rows pipe into the socket cmdlets by their Id.')
            Parameters  = @{
                Id            = 'Only these sockets, by descriptor (the Id column).'
                Protocol      = 'Only these protocols: Tcp, Udp.'
                State         = 'Only these states, named as Get-NetTCPConnection names them (Listen, SynSent, Established, TimeWait...); UDP endpoints are Bound. Wildcards allowed.'
                LocalPort     = 'Only sockets on these local ports.'
                RemoteAddress = 'Only sockets whose peer address matches one of these patterns (wildcards allowed).'
                RemotePort    = 'Only sockets whose peer port is one of these.'
                Stack         = 'The stacks to show: stack objects (also piped from Get-Stack) or names (-Stack client, server). Omitted, every running stack. Every row names its stack (the Stack property): Group-Object Stack separates them. An unknown or stopped stack ends the command with StackNotFound or StackStopped.'
            }
            Examples    = @(
                @{ Code = 'Get-StackConnection -Stack client'; Remarks = 'Lists the connections of the stack client.' }
                @{ Code = 'Get-StackConnection 3 -Stack client | Format-List'; Remarks = 'Shows socket 3 of the stack client with its TCP internals.' }
                @{ Code = 'Get-StackConnection -Stack client, server -Protocol Tcp | Group-Object Stack'; Remarks = 'Counts the TCP sockets of the stacks client and server, a group per stack.' }
                @{ Code = 'Get-StackConnection -State TimeWait | Close-StackSocket -Abort'; Remarks = 'Aborts every connection in TimeWait.' }
            )
            Links       = @('Get-StackPacket', 'Close-StackSocket')
        }

        'New-StackSocket'       = @{
            Synopsis    = 'Opens a TCP or UDP socket on the stack.'
            Description = @('Opens a socket and outputs it; its Id is its descriptor in the stack. A UDP socket binds at once (port 0 or omitted: an ephemeral port); a TCP socket claims its port (given or ephemeral) when it connects. Fails with AddressInUse when the port is taken.')
            Parameters  = @{
                Protocol          = 'The kind of socket: Tcp or Udp.'
                LocalPort         = 'The local port (0 or omitted: an ephemeral one). TCP claims it when the socket connects.'
                LocalAddress      = 'The local address: the stack''s own or 0.0.0.0 (any, the default).'
                NoDelay           = 'TCP: sends small segments at once (no Nagle delay).'
                ReceiveBufferSize = 'TCP: the receive buffer in bytes (2048 to 64 MiB), which bounds the window the stack advertises. Left out, the buffer starts at Tcp.ReceiveBufferSize (256 KiB) and grows with what the application reads per round trip, up to Tcp.ReceiveBufferMax (6 MiB); given, it stays that size (as SO_RCVBUF on Linux).'
                SendBufferSize    = 'TCP: the send buffer in bytes (2048 to 64 MiB): how much Send-StackData can queue before it waits. Left out, it grows with what may be in flight, up to Tcp.SendBufferMax (4 MiB); given, it stays that size.'
                Trace             = 'TCP: traces the connection''s sender internals (cwnd, ssthresh, bytes in flight, SRTT, RTO, loss events), sampled by the stack on its loop whenever one changes, in a ring of the last 4096 samples; Export-StackSequenceGraph -Socket draws them as a second panel. Off by default (it costs about 160 KB per connection); the socket''s TraceInternals property says whether it is on and turns it on or off later.'
            }
            Examples    = @(
                @{ Code = '$c = New-StackSocket Tcp -Stack client | Connect-StackSocket 192.0.2.1 80'; Remarks = 'Opens a TCP socket on the stack client and connects it.' }
                @{ Code = '$c = New-StackSocket Tcp -Trace -SendBufferSize 1MB | Connect-StackSocket 192.0.2.1 80'; Remarks = 'Opens a traced TCP socket with a 1 MiB send buffer and connects it; its internals are sampled from the SYN on.' }
                @{ Code = '$u = New-StackSocket Udp -LocalPort 5353'; Remarks = 'Opens a UDP socket bound to port 5353.' }
            )
            Links       = @('Connect-StackSocket', 'Send-StackData', 'Receive-StackData', 'Close-StackSocket')
        }

        'Connect-StackSocket'   = @{
            Synopsis    = 'Connects a socket: the TCP handshake, or a UDP default peer.'
            Description = @(
                'TCP: performs the three-way handshake, waiting up to -TimeoutSec (a timeout or Ctrl+C aborts it). UDP: sets the default peer and from then on accepts datagrams only from it; no packet is sent. Outputs the socket.'
                'Without -Socket the cmdlet makes a TCP socket (with -LocalPort and -NoDelay) and connects it, like connect() without socket(); a failed connect leaves nothing behind. Errors: ConnectionRefused, TimedOut, HostUnreachable, AddressInUse.'
            )
            Parameters  = @{
                Socket        = 'The socket to connect, named or from the pipeline ($s | Connect-StackSocket 192.0.2.1 80); not positional. Omitted, a new TCP socket is made and connected.'
                RemoteAddress = 'The peer: an IPv4 address, or a host name resolved through the stack''s DNS servers (a name that does not resolve is a NameNotFound or NoDnsServer error naming it). The socket output then carries the name as RemoteName, shown beside its remote endpoint. Alias: ComputerName.'
                RemotePort    = 'The peer''s port.'
                LocalPort     = 'For the socket made when -Socket is omitted: its local port (0 or omitted: an ephemeral one).'
                NoDelay       = 'For the socket made when -Socket is omitted: send small segments at once (no Nagle delay).'
                TimeoutSec    = 'TCP: seconds to wait for the handshake (default 30); the connect is aborted when they run out.'
                Trace         = 'TCP: traces the connection''s sender internals from the SYN on (cwnd, ssthresh, bytes in flight, SRTT, RTO, loss events; the last 4096 changes), for Export-StackSequenceGraph -Socket''s second panel. Given with -Socket, tracing starts now.'
            }
            Examples    = @(
                @{ Code = '$c = Connect-StackSocket 192.0.2.1 80 -Stack client'; Remarks = 'Makes a TCP socket on the stack client and connects it to 192.0.2.1:80.' }
                @{ Code = '$u = New-StackSocket Udp | Connect-StackSocket 192.0.2.1 53'; Remarks = 'Sets 192.0.2.1:53 as the default peer of a new UDP socket.' }
                @{ Code = 'Connect-StackSocket www.lab.test 80 -Stack client'; Remarks = 'On the embedded lab: resolves www.lab.test through the stack''s DNS server (the service host) and connects to its web server; the socket shows the name beside the address it connected to.' }
                @{ Code = '$c = Connect-StackSocket 192.0.2.1 9 -Trace; $c | Send-StackData ([byte[]]::new(200KB)); Export-StackSequenceGraph upload.svg -Socket $c'; Remarks = 'On the embedded lab: sends 200 KB to the service host''s discard port on a traced connection and draws its time-sequence graph with the sender''s internals (cwnd, ssthresh, bytes in flight, SRTT, RTO) under it.' }
            )
            Links       = @('New-StackSocket', 'Send-StackData', 'Receive-StackData')
        }

        'Send-StackData'        = @{
            Synopsis    = 'Sends bytes or text on a socket.'
            Description = @('Sends a string (encoded with -Encoding, UTF-8 by default) or bytes. TCP: the data is queued on the stream, waiting up to -TimeoutSec for room in the send buffer. UDP: one datagram, to -RemoteAddress/-RemotePort or to the connected peer. The socket comes by name or from the pipeline only, so $s | Send-StackData ''hi'' sends hi.')
            Parameters  = @{
                Socket        = 'The socket, named or from the pipeline (by value, or by property name from anything with its Id). Not positional: a positional argument binds before pipeline input, so the data could otherwise be taken for the socket.'
                Data          = 'What to send: bytes (a byte[]) or a string, encoded with -Encoding.'
                Text          = 'Text to send, encoded with -Encoding.'
                Encoding      = 'The text encoding for a string: utf8 (the default), ascii, latin1, unicode, or any name .NET knows.'
                RemoteAddress = 'UDP: the destination of this datagram (an unconnected socket needs one): an IPv4 address or a host name resolved through the stack''s DNS servers.'
                RemotePort    = 'UDP: the destination port of this datagram.'
                TimeoutSec    = 'TCP: seconds to wait for room in the send buffer (default 30).'
                PassThru      = 'Outputs the socket, for a pipeline that goes on to receive.'
            }
            Examples    = @(
                @{ Code = '$c | Send-StackData "hello`n"'; Remarks = 'Sends the line hello on the socket in $c.' }
                @{ Code = 'Send-StackData -Socket $u -Data ([byte[]](1,2,3)) -RemoteAddress 192.0.2.1 -RemotePort 9'; Remarks = 'Sends three bytes in one UDP datagram to 192.0.2.1:9.' }
                @{ Code = '$u = New-StackSocket Udp; Send-StackData -Socket $u -Text ''ping'' -RemoteAddress host.lab.test -RemotePort 7 -Verbose; Receive-StackData $u -AsString'; Remarks = 'On the embedded lab: resolves host.lab.test through the stack''s DNS and sends one datagram to its UDP echo service (the verbose message names the address used), then reads the echo.' }
            )
            Links       = @('Receive-StackData', 'Connect-StackSocket')
        }

        'Receive-StackData'     = @{
            Synopsis    = 'Receives data from a socket, like recv().'
            Description = @(
                'Waits up to -TimeoutSec for data and returns what is there as one byte[] (for UDP, one datagram). Returns nothing once the peer has closed and nothing is left. A timeout (TimedOut), Ctrl+C or an error leaves every byte the command had not output in the socket, in order, for the next receive; the socket stays usable.'
                'TCP: -Count waits for exactly that many bytes, -Until reads up to and including a delimiter (with -Count too: or that many bytes, if the delimiter has not come within them), -ToEnd reads until the peer closes. Bytes read past the delimiter or count stay in the socket: the next receive of any kind (Receive-StackData, the socket''s ReceiveAsync or GetStream()) gets them first, and Get-StackConnection counts them in Recv-Q. UDP: one datagram per call, -Count n datagrams; -AsDatagram outputs each with its sender.'
            )
            Parameters  = @{
                Socket     = 'The socket: its object, anything carrying its descriptor Id (a Get-StackConnection row), or the Id.'
                Count      = 'TCP: wait for exactly this many bytes. UDP: receive this many datagrams.'
                Until      = 'TCP: read up to and including this text (e.g. "`n"), encoded with -Encoding; what follows it stays in the socket.'
                ToEnd      = 'TCP: read until the peer closes.'
                TimeoutSec = 'Seconds to wait (default 30).'
                AsString   = 'Decodes the data as text with -Encoding.'
                Encoding   = 'The text encoding for -AsString and -Until: utf8 (the default), ascii, latin1, unicode, or any name .NET knows.'
                AsDatagram = 'UDP: outputs each datagram as an object with its sender (RemoteAddress, RemotePort, Data).'
            }
            Examples    = @(
                @{ Code = '$s | Receive-StackData -Until "`n" -AsString'; Remarks = 'Reads one line from the socket in $s.' }
                @{ Code = 'Receive-StackData $u -AsDatagram -TimeoutSec 5'; Remarks = 'Waits up to five seconds for a UDP datagram and shows its sender.' }
            )
            Links       = @('Send-StackData', 'Close-StackSocket')
        }

        'Start-StackListener'   = @{
            Synopsis    = 'Starts a TCP listener on a local port (a passive open).'
            Description = @('Listens on a TCP port and outputs the listener (its Id is a descriptor too). Take its connections with Wait-StackConnection; stop it with Close-StackSocket. Fails with AddressInUse when the port is taken.')
            Parameters  = @{
                LocalPort    = 'The port to listen on.'
                LocalAddress = 'The local address: the stack''s own or 0.0.0.0 (any, the default).'
                Backlog      = 'Connections completed and not yet taken by Wait-StackConnection before new SYNs are refused (default 128).'
                Trace        = 'Traces every connection the listener takes, from its SYN on (the sender internals Export-StackSequenceGraph -Socket draws as a second panel; see New-StackSocket -Trace).'
            }
            Examples    = @(
                @{ Code = '$listener = Start-StackListener 80 -Stack server; $s = $listener | Wait-StackConnection'; Remarks = 'Listens on port 80 of the stack server and waits for the first connection.' }
                @{ Code = '$web = Start-StackListener 8000 -Backlog 4 -Trace -Stack server; Get-StackConnection -Stack server -State Listen'; Remarks = 'Listens on port 8000 with room for four connections not yet taken, tracing the sender internals of every connection it takes; the netstat view lists it in Listen.' }
            )
            Links       = @('Wait-StackConnection', 'Close-StackSocket')
        }

        'Wait-StackConnection'  = @{
            Synopsis    = 'Waits for a listener''s next connection and outputs its socket.'
            Description = @('Waits up to -TimeoutSec for the next connection accepted by the listener and outputs its TCP socket. Fails with TimedOut when none comes, and with WrongSocketType when given a connection instead of a listener.')
            Parameters  = @{
                Socket     = 'The listener (from Start-StackListener): by value, by its Id, or named (aliases Listener, Id).'
                TimeoutSec = 'Seconds to wait for a connection (default 30).'
            }
            Examples    = @(
                @{ Code = '$s = $listener | Wait-StackConnection -TimeoutSec 10'; Remarks = 'Takes the next connection of the listener in $listener.' }
                @{ Code = 'Get-StackConnection -Stack server -State Listen -LocalPort 80 | Wait-StackConnection -TimeoutSec 10'; Remarks = 'Takes the next connection of the listener on port 80, found by the netstat view (its rows bind by Id).' }
            )
            Links       = @('Start-StackListener', 'Receive-StackData')
        }

        'Close-StackSocket'     = @{
            Synopsis    = 'Closes a socket (TCP: FIN, or RST with -Abort) and frees its descriptor.'
            Description = @('UDP: releases the port. TCP: sends FIN and finishes the close in the background, as a kernel close does; with -Abort sends RST instead (no TimeWait). A listener stops listening. Once closed, the socket is closed to the cmdlets at once, as a closed descriptor is: Receive-StackData and Send-StackData both fail with SocketClosed (given the socket object) or SocketNotFound (given its Id), while the connection finishes in the background; -Abort still resets it. A socket object already closed (a reset got there first) is left as is. Supports -WhatIf and -Confirm.')
            Parameters  = @{
                Socket = 'The socket: its object, anything carrying its descriptor Id (a Get-StackConnection row), or the Id.'
                Abort  = 'TCP: resets the connection instead of closing it gracefully (no TimeWait).'
            }
            Examples    = @(
                @{ Code = '$c | Close-StackSocket'; Remarks = 'Closes the connection in $c gracefully.' }
                @{ Code = 'Get-StackConnection -State TimeWait | Close-StackSocket -Abort'; Remarks = 'Resets every connection in TimeWait.' }
            )
            Links       = @('New-StackSocket', 'Get-StackConnection')
        }

        'Resolve-StackDnsName'  = @{
            Synopsis    = 'Resolves a name to its DNS records (A, AAAA, CNAME, MX, TXT, PTR, NS, SOA, SRV, ANY) over the stack''s own UDP and TCP, like Resolve-DnsName.'
            Description = @(
                'Asks the -Server given, or the stack''s DNS servers (Start-Stack -DnsServer) in order, through the stack''s own UDP, with EDNS (a 1232-byte answer fits; a server that answers FORMERR is asked again without it). A truncated answer is asked again over the stack''s own TCP (RFC 7766). CNAMEs are followed, also when the server left the target to the client; names without a trailing dot are tried along the stack''s -DnsSearch domains. Answers are cached for their TTL, and NXDOMAIN and NODATA for the SOA''s minimum (RFC 2308).'
                'The output is shaped like Resolve-DnsName''s: the CNAME records followed come first, then the records of the response in their sections (Answer, Authority, Additional). Every record has Name, Type, TTL, Section, Data (the value in zone-file form), IPAddress (A and AAAA; otherwise empty), Server, FromCache, OverTcp and Stack, and its type''s own fields: IP4Address (A), IP6Address (AAAA, shown though the stack speaks IPv4 only), NameHost (CNAME, PTR, NS), NameExchange and Preference (MX), Strings (TXT), PrimaryServer, NameAdministrator, SerialNumber, TimeToZoneRefresh, TimeToZoneFailureRetry, TimeToExpiration and DefaultTTL (SOA), NameTarget, Priority, Weight and Port (SRV). The table shows Name, Type, TTL, Section and Data; Format-List * shows the rest.'
                'Errors: NameNotFound (ObjectNotFound: NXDOMAIN, or no record of the type), NoDnsServer, ServerFailure (SERVFAIL, REFUSED, a CNAME loop, TCP refused), TimedOut, InvalidArgument (a name that cannot be one).'
            )
            Parameters  = @{
                Name    = 'The names to resolve; from the pipeline by value or by property name. An IPv4 address asks for its reverse name (192.0.2.1: 1.2.0.192.in-addr.arpa), PTR unless -Type says otherwise. A trailing dot makes a name absolute (no search domains).'
                Type    = 'The record type to ask for: A (the default), AAAA, CNAME, MX, TXT, PTR, NS, SOA, SRV or ANY (whatever the server holds for the name; many servers answer it briefly, RFC 8482).'
                Server  = 'Ask this DNS server instead of the stack''s -DnsServer list. Such a question neither reads nor fills the stack''s cache.'
                NoCache = 'Ask the server even when the stack''s cache holds an answer (or a negative answer); the new answer replaces the cached one.'
            }
            Examples    = @(
                @{ Code = 'Resolve-StackDnsName www.lab.test'; Remarks = 'On the embedded lab: the CNAME www.lab.test -> host.lab.test, then host.lab.test''s A record, answered by the service host.' }
                @{ Code = 'Resolve-StackDnsName mail.lab.test -Server 192.0.2.1'; Remarks = 'Asks 192.0.2.1 (on the embedded lab, the service host) for the A records of mail.lab.test, whatever DNS servers the stack has, past the cache.' }
                @{ Code = 'Resolve-StackDnsName lab.test -Type MX'; Remarks = 'The mail exchangers of lab.test: NameExchange and Preference.' }
                @{ Code = 'Resolve-StackDnsName big.lab.test -Type TXT | Format-Table Name, Type, OverTcp, Strings'; Remarks = 'Thirty TXT records, too many for one UDP answer: the stack asks again over TCP (OverTcp is True).' }
                @{ Code = 'Resolve-StackDnsName 192.0.2.1    # on the embedded lab: host.lab.test'; Remarks = 'A reverse lookup: asks PTR for 1.2.0.192.in-addr.arpa.' }
                @{ Code = 'Resolve-StackDnsName mail.lab.test -NoCache'; Remarks = 'Asks the DNS server again even though the cache still holds the answer (FromCache is False), and caches the fresh one.' }
                @{ Code = 'Resolve-StackDnsName www.lab.test -NoCache | Format-List *'; Remarks = 'Every field of every record of a fresh answer, with the server that gave it.' }
            )
            Links       = @('Test-StackConnection', 'Start-Stack', 'Get-StackStatistics')
        }

        'Invoke-StackWebRequest' = @{
            Synopsis    = 'Sends an HTTP or HTTPS request over the stack, like Invoke-WebRequest, and shows the connection and where the time went.'
            Description = @(
                'Sends one HTTP/1.1 request (GET, HEAD, POST, PUT, DELETE, PATCH, OPTIONS) with .NET''s own HttpClient over the stack: the host name is resolved through the stack''s DNS servers, the next hop is resolved with ARP, and the connection is one of the stack''s TCP connections; TLS (https) is .NET''s SslStream on top. Redirects are followed up to -MaximumRedirection (303, and 301/302 after a POST, continue as GET; 307/308 keep the method and body; https to http is refused).'
                'The result is shaped like Invoke-WebRequest''s: StatusCode, StatusDescription, Content (a string for text types, decoded by their charset; bytes otherwise), RawContent, RawContentLength and Headers. It also shows what only the stack can: RemoteName and RemoteAddress, LocalEndPoint and RemoteEndPoint, ConnectionReused, SocketId, Retransmits and Srtt of the connection, TlsProtocol, the Redirects followed, and Timing: NameLookup, Arp, TcpHandshake, Tls, FirstByte (request sent to first response byte), Download, Redirect and Total in milliseconds, like curl -w.'
                'Like Invoke-WebRequest, a status other than 2xx is a terminating error (HttpStatusError) whose Exception.Response is the result and whose ErrorDetails hold a text body; -SkipHttpErrorCheck outputs the result instead. Reaching -MaximumRedirection outputs the redirect and writes MaximumRedirectExceeded. Other errors: NameNotFound, NoDnsServer, ConnectionRefused, HostUnreachable, TimedOut, TlsHandshakeFailed (a certificate that is not trusted: -SkipCertificateCheck accepts it), InsecureRedirect, HttpRequestFailed.'
                'Each call opens its own connection and closes it at the end; redirects to the same host reuse it. -SessionVariable saves a session (kept-alive connections, cookies) that later calls take with -WebSession, so they reuse the connection: ConnectionReused is then true and the name lookup, ARP, handshake and TLS times are zero. Large downloads show progress; Ctrl+C stops the request and closes its connection.'
            )
            Parameters  = @{
                Uri                  = 'The address: http:// or https://, then a host name or IPv4 address, optional port and path. Without a scheme, http:// is assumed.'
                Method               = 'The HTTP method (default Get).'
                Headers              = 'Request headers as a hashtable (a Content-Type here is the body''s type).'
                Body                 = 'The request body: a string (encoded by the charset of -ContentType, UTF-8 if none), bytes, or a hashtable of form fields (sent form-encoded; for GET and HEAD appended to the query). GET and HEAD take only a hashtable.'
                ContentType          = 'The body''s Content-Type. Default: text/plain; charset=utf-8 for a string, application/octet-stream for bytes, application/x-www-form-urlencoded for a hashtable.'
                OutFile              = 'Writes the body to this file instead of keeping it in the result (streamed; large downloads need no memory). It is written as <file>.partial and renamed when the response is a success; after a timeout the partial file stays.'
                InFile               = 'Sends this file as the body, streamed from the disk (Content-Type application/octet-stream unless -ContentType says otherwise). Not with -Body or -Form; not for GET or HEAD. A missing file is InFileNotFound.'
                Form                 = 'Sends a hashtable as multipart/form-data (.NET''s MultipartFormDataContent), as Invoke-WebRequest -Form: a FileInfo value (Get-Item <path>) is a file part with its file name, an array gives one field per element, anything else is a text field. Not with -Body or -InFile (BodyConflict); not for GET or HEAD; a missing file is FormFileNotFound.'
                Resume               = 'With -OutFile: continues the file with a Range request for the bytes it lacks (written in place, no .partial). A server that ignores Range sends the whole file, which is written again from the start; a file that is already complete (416) is left as it is and is no error. -Resume without -OutFile is ResumeWithoutOutFile; an answer for another range is ResumeMismatch and leaves the file as it was.'
                PassThru             = 'With -OutFile, outputs the result too.'
                MaximumRedirection   = 'Redirects to follow before the redirect itself is the answer (default 5; 0 follows none).'
                TimeoutSec           = 'Seconds to wait for the connection and the response headers, and then for each further piece of the body (default 100).'
                SkipCertificateCheck = 'Accepts any server certificate (self-signed, expired, for another name). For labs only.'
                SkipHttpErrorCheck   = 'Outputs the result of a non-success status instead of failing.'
                SessionVariable      = 'Saves a web session (kept-alive connections and cookies, on this stack) in a variable of this name, for -WebSession.'
                WebSession           = 'A session saved by -SessionVariable: the request reuses its kept-alive connection and cookies. Implies its stack.'
            }
            Examples    = @(
                @{ Code = 'Invoke-StackWebRequest http://www.lab.test/hello -Stack client'; Remarks = 'On the embedded lab: resolves www.lab.test through the stack''s DNS (the service host), fetches its /hello page over the stack''s TCP and shows status, content, headers, the connection (local and remote endpoint, new or reused, retransmissions) and the timing.' }
                @{ Code = '(Invoke-StackWebRequest https://192.0.2.1:8443/ -SkipCertificateCheck).Timing'; Needs = 'root: an HTTPS server, which only the kernel lab has (openssl)'; Remarks = 'Fetches a page from a lab server with a self-signed certificate and shows where the time went: name lookup, ARP, TCP handshake, TLS, first byte, download, total.' }
                @{ Code = 'Invoke-StackWebRequest http://192.0.2.1/download -OutFile download.bin -PassThru | Select-Object RawContentLength, Retransmits, Timing'; Remarks = 'On the embedded lab: downloads the service host''s 4 MiB /download to download.bin with progress, and shows its size, the retransmissions of the connection and the timing.' }
                @{ Code = 'Invoke-StackWebRequest 192.0.2.1/echo -Method Post -Body ''{"a":1}'' -ContentType application/json -SessionVariable s; Invoke-StackWebRequest 192.0.2.1/hello -WebSession $s'; Remarks = 'On the embedded lab: posts JSON to the service host''s /echo, which sends the body back, keeping the connection in the session $s; the second request (GET /hello) reuses it (ConnectionReused is true).' }
                @{ Code = 'Set-Content note.txt ''hello from a file''; (Invoke-StackWebRequest 192.0.2.1/echo -Method Post -InFile note.txt -ContentType text/plain).Content'; Remarks = 'On the embedded lab: sends note.txt as the body of a POST, streamed from the disk; the service host''s /echo sends it back.' }
                @{ Code = 'Set-Content photo.txt ''pretend picture''; (Invoke-StackWebRequest 192.0.2.1/echo -Method Post -Form @{ title = ''holiday''; file = Get-Item photo.txt }).RawContent'; Remarks = 'On the embedded lab: posts a multipart/form-data form with a text field and a file part (its file name photo.txt); /echo sends the body back, and RawContent shows the parts as they went over the wire (Content holds them as bytes: multipart is not a text type).' }
                @{ Code = 'Invoke-StackWebRequest 192.0.2.1/bytes/1000 -OutFile part.bin; Invoke-StackWebRequest 192.0.2.1/download -OutFile part.bin -Resume -Verbose; (Get-Item part.bin).Length'; Remarks = 'On the embedded lab: part.bin holds 1,000 bytes; -Resume asks /download for the rest with Range: bytes=1000- and appends it (the service host''s pattern continues), giving the 4 MiB file (4194304). Against a server that ignores Range, the whole file is written again.' }
            )
            Links       = @('Test-StackConnection', 'Resolve-StackDnsName', 'Get-StackConnection')
        }

        'Start-StackServiceHost' = @{
            Synopsis    = 'Starts the lab''s service host (echo, discard, daytime, chargen, HTTP, DNS, DHCP) on a virtual network.'
            Description = @(
                'Starts a service host: a stack of its own (named <network>-services, default address 192.0.2.1/24) that answers ARP and ping and serves echo (TCP and UDP 7, RFC 862), discard (9), daytime (13), chargen (19; TCP sends the pattern until the client closes or 1 MiB has gone), an HTTP/1.1 server on 80 (/ index, /hello, /bytes/N, /download 4 MiB, /chunked, /slow and /slow/N, /redirect, POST /echo; keep-alive) and authoritative DNS on UDP 53 for -Domain (A, CNAME, MX, TXT, NS, PTR; NXDOMAIN for unknown names, REFUSED outside the domain), and DHCP on UDP 67 (RFC 2131): addresses .100 to .199 of its /24 (the upper half of a smaller subnet), leases of -DhcpLeaseSec, itself as router and DNS server, -Domain as the domain name, so that Start-Stack -Dhcp works on its network. It is written with the stack''s public socket API, like any application.'
                'The embedded lab starts one by itself with its first stack; this cmdlet gives any virtual network one. Stacks that join a network with a service host take it as gateway and DNS server. It stops when the last other stack on its network stops, or with Stop-Stack. Outputs the host''s stack. Errors: ServiceHostFailed (the network has one already, the name or address is taken).'
            )
            Parameters  = @{
                VirtualNetwork = 'The virtual network to serve (default: lab, the embedded one); created on first use.'
                IPAddress      = 'The host''s address with its prefix (default 192.0.2.1/24).'
                Name           = 'The host''s stack name (default: <network>-services).'
                Domain         = 'The DNS domain the host answers for (default lab.test; .test is reserved by RFC 2606, so lab names never leak).'
                DhcpLeaseSec   = 'How long the host''s DHCP leases last, in seconds (default 120, so a client renews after a minute; 10 to a year).'
            }
            Examples    = @(
                @{ Code = 'Start-StackServiceHost -VirtualNetwork bench; Start-Stack -VirtualNetwork bench'; Remarks = 'Gives the network bench a service host at 192.0.2.1, then starts a stack there at 192.0.2.2 with that host as gateway and DNS server.' }
                @{ Code = 'Start-StackServiceHost -VirtualNetwork corp -IPAddress 198.51.100.1/24 -Domain corp.test'; Remarks = 'Starts a service host at 198.51.100.1 answering DNS for corp.test.' }
                @{ Code = 'Start-StackServiceHost -VirtualNetwork office -DhcpLeaseSec 30; Start-Stack -VirtualNetwork office -Dhcp'; Remarks = 'Gives the network office a service host whose DHCP leases last 30 seconds, then starts a stack there that leases 192.0.2.100 and renews it every 15 seconds (Get-Stack shows the times).' }
            )
            Links       = @('Start-Stack', 'Get-StackNetwork', 'Stop-Stack')
        }

        'Get-StackNetwork'      = @{
            Synopsis    = 'Gets the virtual networks with their stacks, service host, faults and wire counters.'
            Description = @('Outputs each in-process virtual network: Name, Stacks, ServiceHost (name, address, DNS domain), Faults (the settings that differ from a clean network, e.g. "Loss 5%, DelayMs 20"), each setting as a property (Loss, DelayMs, JitterMs, Reorder, ReorderMs, Duplicate, Corrupt, RateMbps), a Simulate hashtable of them, and what the wire did (FramesCarried, FramesLost, FramesDuplicated, FramesReordered, FramesCorrupted, FramesOverflowed). Fails with NetworkNotFound for a name without wildcards that matches no network.')
            Parameters  = @{
                Name = 'Only networks whose name matches one of these patterns (wildcards allowed); binds by property name.'
            }
            Examples    = @(
                @{ Code = 'Get-StackNetwork'; Remarks = 'Lists every virtual network of this process.' }
                @{ Code = 'Get-StackNetwork lab | Format-List'; Remarks = 'Shows the embedded lab''s settings and how many frames it carried, lost, duplicated, reordered and corrupted.' }
            )
            Links       = @('Set-StackNetwork', 'Start-Stack', 'Start-StackServiceHost')
        }

        'Set-StackNetwork'      = @{
            Synopsis    = 'Changes the faults of a virtual network: loss, delay, jitter, reordering, duplication, corruption, rate.'
            Description = @(
                'Sets faults the virtual network applies to every frame it delivers, drawn from its seeded random source: Loss, Duplicate, Corrupt and Reorder are probabilities from 0 to 1; DelayMs adds one-way latency, JitterMs a further random 0 to JitterMs per frame (frames may overtake each other), ReorderMs is how long Reorder holds a frame back (default 5); RateMbps limits the rate (0: unlimited). Settings not named keep their values; -Clear returns the network to none first.'
                'Watch the effect with Get-StackConnection (Retransmits, Cwnd, Srtt, TimeWait), Get-StackPacket and Get-StackStatistics. A wrong key or value fails with InvalidSimulation naming it and what is accepted. Without -Name it acts on the embedded lab (or the only network). Supports -WhatIf and -Confirm.'
            )
            Parameters  = @{
                Name     = 'The virtual networks to change (default: lab, or the only network there is); binds by property name from Get-StackNetwork.'
                Simulate = 'The settings to change, e.g. @{ Loss = 0.05; DelayMs = 20 }: Loss, DelayMs, JitterMs, Reorder, ReorderMs, Duplicate, Corrupt, RateMbps.'
                Clear    = 'Return the network to no faults first (then apply -Simulate, if given).'
                PassThru = 'Output the network after the change.'
            }
            Examples    = @(
                @{ Code = 'Set-StackNetwork -Simulate @{ Loss = 0.1; JitterMs = 5 }'; Remarks = 'Loses 10% of the frames on the embedded lab and delays each by up to 5 ms more; a download then shows retransmissions and SACK in Get-StackConnection.' }
                @{ Code = 'Set-StackNetwork bench -Clear -PassThru'; Remarks = 'Removes every fault from the network bench and shows it.' }
            )
            Links       = @('Get-StackNetwork', 'Start-Stack', 'Get-StackConnection')
        }
    }
}
