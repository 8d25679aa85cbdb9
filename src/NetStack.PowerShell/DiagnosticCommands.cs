using System.Management.Automation;
using NetStack.Diagnostics;
using NetStack.Icmp;
using NetStack.Sockets;

namespace NetStack.PowerShell;

/// <summary>
/// Test-StackConnection: ICMP echo (ping) from the stack, one reply object per echo as it arrives, or with -Quiet
/// a single true/false per target. Failed echoes are non-terminating errors (TimedOut, HostUnreachable...).
/// -TcpPort and -UdpPort probe ports instead, one result per port (<see cref="PortProbe"/>); -Traceroute and -MtuSize
/// trace the path and find its MTU (<see cref="PathProbe"/>).
/// </summary>
[Cmdlet(VerbsDiagnostic.Test, "StackConnection", DefaultParameterSetName = PingSet)]
[OutputType(typeof(StackPingReply), ParameterSetName = new[] { PingSet })]
[OutputType(typeof(bool), ParameterSetName = new[] { PingSet, TcpSet, UdpSet })]
[OutputType(typeof(StackTcpTestResult), ParameterSetName = new[] { TcpSet })]
[OutputType(typeof(StackUdpTestResult), ParameterSetName = new[] { UdpSet })]
[OutputType(typeof(StackTraceHop), typeof(bool), ParameterSetName = new[] { TraceSet })]
[OutputType(typeof(StackMtuResult), typeof(int), ParameterSetName = new[] { MtuSet })]
public sealed class TestStackConnectionCommand : StackScopedCmdlet
{
    internal const string PingSet = "Ping";
    internal const string TcpSet = "Tcp";
    internal const string UdpSet = "Udp";
    internal const string TraceSet = "Traceroute";
    internal const string MtuSet = "MtuSize";
    /// <summary>-MaxHops of a traceroute when not given (traceroute's and tracert's default).</summary>
    internal const int DefaultTraceHops = 30;

    [Parameter(Mandatory = true, Position = 0, ValueFromPipeline = true, ValueFromPipelineByPropertyName = true)]
    [Alias("IPAddress", "RemoteAddress")]
    [ValidateNotNullOrEmpty]
    public string[] ComputerName { get; set; } = Array.Empty<string>();

    [Parameter(ParameterSetName = PingSet)]
    [ValidateRange(1, int.MaxValue)]
    public int Count { get; set; } = 4;

    /// <summary>Seconds between echoes.</summary>
    [Parameter(ParameterSetName = PingSet)]
    [ValidateRange(0, 60)]
    public int Delay { get; set; } = 1;

    /// <summary>Bytes of echo payload.</summary>
    [Parameter(ParameterSetName = PingSet)]
    [ValidateRange(0, 65500)]
    public int BufferSize { get; set; } = 32;

    /// <summary>The echo request's TTL; with -Traceroute, the highest TTL tried (default 30).</summary>
    [Parameter(ParameterSetName = PingSet)]
    [Parameter(ParameterSetName = TraceSet)]
    [ValidateRange(1, 255)]
    public int MaxHops { get; set; } = 64;

    /// <summary>Set DF on the echo requests: too big for a link on the way is PacketTooBig, not fragmented.</summary>
    [Parameter(ParameterSetName = PingSet)]
    public SwitchParameter DontFragment { get; set; }

    /// <summary>Trace the route: echo requests with TTL 1, 2, 3..., three per hop, one result per probe as it comes.</summary>
    [Parameter(Mandatory = true, ParameterSetName = TraceSet)]
    public SwitchParameter Traceroute { get; set; }

    /// <summary>Find the path MTU with DF echo requests (RFC 1191).</summary>
    [Parameter(Mandatory = true, ParameterSetName = MtuSet)]
    [Alias("MtuSizeDetect")]
    public SwitchParameter MtuSize { get; set; }

    [Parameter]
    [ValidateRange(1, 600)]
    [Alias("TimeoutSec")]
    public int TimeoutSeconds { get; set; } = 4;

    [Parameter(Mandatory = true, ParameterSetName = TcpSet)]
    [ValidateRange(1, 65535)]
    public int[] TcpPort { get; set; } = Array.Empty<int>();

    [Parameter(Mandatory = true, ParameterSetName = UdpSet)]
    [ValidateRange(1, 65535)]
    public int[] UdpPort { get; set; } = Array.Empty<int>();

    /// <summary>Port probes: the detailed table, with our source endpoint and the error.</summary>
    [Parameter(ParameterSetName = TcpSet)]
    [Parameter(ParameterSetName = UdpSet)]
    public SwitchParameter Detailed { get; set; }

    [Parameter]
    public SwitchParameter Quiet { get; set; }

    protected override void ProcessStack(StackInstance stack)
    {
        foreach (var name in ComputerName)
        {
            if (DnsResolution.ResolveTarget(this, stack, name, quiet: Quiet) is not { } address)
            {
                if (Quiet) foreach (var _ in Ports) WriteObject(ParameterSetName == MtuSet ? 0 : false);
                continue;
            }
            var timeout = TimeSpan.FromSeconds(TimeoutSeconds);
            switch (ParameterSetName)
            {
                case PingSet: Ping(stack, name, address); break;
                case TraceSet:
                    PathProbe.Trace(this, stack, name, address, MyInvocation.BoundParameters.ContainsKey(nameof(MaxHops)) ? MaxHops : DefaultTraceHops, timeout, Quiet);
                    break;
                case MtuSet: PathProbe.Mtu(this, stack, name, address, timeout, Quiet); break;
                default: TestPorts(stack, name, address); break;
            }
        }
    }

    /// <summary>The ports of a probe (one -Quiet answer each); a single "port" for ping.</summary>
    private int[] Ports => ParameterSetName switch { TcpSet => TcpPort, UdpSet => UdpPort, _ => [0] };

    private void Ping(StackInstance stack, string name, Ipv4Address address)
    {
        var anySuccess = false;
        var progressId = Math.Abs(name.GetHashCode() % 1000) + 1;
        for (int seq = 1; seq <= Count; seq++)
        {
            if (Count > 1)
                WriteProgress(new ProgressRecord(progressId, $"Test-StackConnection {name}", $"Echo {seq} of {Count}")
                { PercentComplete = (seq - 1) * 100 / Count });
            PingReply? reply = null;
            var ok = TryStack(() => reply = Await(stack, () => stack.Core.PingAsync(address, BufferSize, TimeSpan.FromSeconds(TimeoutSeconds), (byte)MaxHops, DontFragment, StopToken)), name);
            if (ok && reply is { } r)
            {
                if (r.Status == PingStatus.Success)
                {
                    anySuccess = true;
                    if (!Quiet)
                        WriteObject(new StackPingReply
                        {
                            Ping = seq, Source = stack.IPAddress, Destination = name, Address = r.Address.ToString(),
                            Latency = Math.Round(r.RoundTripTime.TotalMilliseconds, 3), Ttl = r.Ttl, BufferSize = r.Bytes,
                            Status = r.Status, Stack = stack.Name,
                        });
                }
                else if (!Quiet)
                {
                    WriteError(PingFailure(name, seq, r));
                }
            }
            if (seq < Count) Sleep(TimeSpan.FromSeconds(Delay));
        }
        if (Count > 1) WriteProgress(new ProgressRecord(progressId, $"Test-StackConnection {name}", "Done") { RecordType = ProgressRecordType.Completed });
        if (Quiet) WriteObject(anySuccess);
    }

    private ErrorRecord PingFailure(string name, int seq, PingReply r)
    {
        var via = r.ReportedBy is { } by ? $" (reported by {by})" : "";
        var (id, category, text) = r.Status switch
        {
            PingStatus.TimedOut => ("TimedOut", ErrorCategory.OperationTimeout, $"no reply within {TimeoutSeconds} s"),
            PingStatus.HostUnreachable => ("HostUnreachable", ErrorCategory.ConnectionError, "host unreachable (no ARP reply)" + via),
            PingStatus.NetworkUnreachable => ("NetworkUnreachable", ErrorCategory.ConnectionError, "network unreachable (no route; set -Gateway on Start-Stack)" + via),
            PingStatus.TtlExpired => ("TtlExpired", ErrorCategory.ConnectionError, "TTL expired in transit" + via),
            PingStatus.PacketTooBig => ("PacketTooBig", ErrorCategory.ConnectionError,
                $"packet too big to pass with DF set: fragmentation needed, next-hop MTU {r.NextHopMtu}{via}; use a -BufferSize up to {Math.Max(0, r.NextHopMtu - 28)}, or drop -DontFragment"),
            _ => ("DestinationUnreachable", ErrorCategory.ConnectionError, "destination unreachable" + via),
        };
        return new ErrorRecord(new StackException(r.Status switch
            {
                PingStatus.TimedOut => StackError.TimedOut,
                PingStatus.NetworkUnreachable => StackError.NetworkUnreachable,
                PingStatus.PacketTooBig => StackError.MessageTooLong,
                _ => StackError.HostUnreachable,
            }, $"Ping {name} ({r.Address}) seq {seq}: {text}."), id, category, name);
    }

    private void TestPorts(StackInstance stack, string name, Ipv4Address address)
    {
        var timeout = TimeSpan.FromSeconds(TimeoutSeconds);
        foreach (var port in Ports)
        {
            object result = ParameterSetName == TcpSet
                ? PortProbe.Tcp(this, stack, name, address, port, timeout)
                : PortProbe.Udp(this, stack, name, address, port, timeout);
            if (Quiet)
            {
                WriteObject(result is StackTcpTestResult t ? t.Succeeded : ((StackUdpTestResult)result).Status == StackPortStatus.Open);
                continue;
            }
            var o = PSObject.AsPSObject(result);
            if (Detailed) o.TypeNames.Insert(0, result.GetType().FullName + "#Detailed");
            WriteObject(o);
        }
    }
}

/// <summary>
/// Get-StackStatistics: the counters of every layer, read in one consistent snapshot; those that moved unless -All.
/// Of the stacks named (several may be), or without -Stack of every running stack.
/// </summary>
[Cmdlet(VerbsCommon.Get, "StackStatistics")]
[OutputType(typeof(StackStatistic))]
public sealed class GetStackStatisticsCommand : StackViewCmdlet
{
    [Parameter(Position = 0)]
    [SupportsWildcards]
    [ArgumentCompleter(typeof(LayerCompleter))]
    public string[]? Layer { get; set; }

    [Parameter]
    [SupportsWildcards]
    [ArgumentCompleter(typeof(CounterNameCompleter))]
    public string[]? Name { get; set; }

    /// <summary>Counters that are zero too (by default only those that moved).</summary>
    [Parameter]
    public SwitchParameter All { get; set; }

    protected override void ProcessStack(StackInstance stack)
    {
        var counters = OrTerminate(() => Await(stack, () => stack.Core.GetStatisticsAsync()), stack);
        var layers = Layer?.Select(p => new WildcardPattern(p, WildcardOptions.IgnoreCase)).ToArray();
        var names = Name?.Select(p => new WildcardPattern(p, WildcardOptions.IgnoreCase)).ToArray();
        // A counter asked for by its exact name shows even at zero ("did anything drop?" has the answer 0).
        var exact = Name is { } n && n.All(p => !WildcardPattern.ContainsWildcardCharacters(p));
        foreach (var c in counters)
        {
            if (!All && !exact && c.Value == 0) continue;
            if (layers != null && !layers.Any(p => p.IsMatch(c.Layer))) continue;
            if (names != null && !names.Any(p => p.IsMatch(c.Name))) continue;
            WriteObject(new StackStatistic { Layer = c.Layer, Name = c.Name, Value = c.Value, Stack = stack.Name });
        }
    }
}

/// <summary>
/// Get-StackPacket: the recent frames in and out, from the stack's packet log, decoded one line each like tshark
/// (for TCP: flags, relative Seq/Ack, Win, Len). Of the default stack, or of each stack named, one log after the other.
/// </summary>
[Cmdlet(VerbsCommon.Get, "StackPacket")]
[OutputType(typeof(StackPacket))]
public sealed class GetStackPacketCommand : StackViewCmdlet
{
    /// <summary>Only frames of this socket's connection (its local port, and its peer once connected).</summary>
    [Parameter(ValueFromPipeline = true, ValueFromPipelineByPropertyName = true)]
    [Alias("Id")]
    [ArgumentCompleter(typeof(SocketIdCompleter))]
    public SocketReference? Socket { get; set; }

    [Parameter]
    [SupportsWildcards]
    [ArgumentCompleter(typeof(PacketProtocolCompleter))]
    public string[]? Protocol { get; set; }

    [Parameter]
    public FrameDirection? Direction { get; set; }

    /// <summary>Only the last n frames (after filtering).</summary>
    [Parameter]
    [ValidateRange(1, int.MaxValue)]
    public int? Last { get; set; }

    protected override bool ShowsEveryStack => false;

    protected override void ProcessRecord()
    {
        if (Socket is not null && Stack is { Length: > 1 })
            ThrowTerminatingError(new ErrorRecord(
                new ArgumentException($"-Socket {Socket.Id} names a socket of one stack, but -Stack names {Stack.Length}. Give that socket's stack alone with -Stack, or pipe the socket in."),
                "SocketOfOneStack", ErrorCategory.InvalidArgument, Socket));
        base.ProcessRecord();
    }

    protected override void ProcessStack(StackInstance stack)
    {
        ConnectionInfo? socket = null;
        if (Socket is { } sref)
        {
            var rows = OrTerminate(() => Await(stack, () => stack.Core.GetConnectionsAsync()), stack);
            socket = rows.FirstOrDefault(r => r.Id == sref.Id);
            if (socket is null)
                ThrowTerminatingError(SocketErrors.NotFound(stack, sref.Id));
        }
        if (stack.PacketLogSize == 0)
            WriteWarning($"Stack '{stack.Name}' keeps no packet log (it was started with -PacketLogSize 0).");
        var trace = OrTerminate(() => Await(stack, () => stack.Core.GetPacketTraceAsync()), stack);
        var protocols = Protocol?.Select(p => new WildcardPattern(p, WildcardOptions.IgnoreCase)).ToArray();
        var selected = new List<StackPacket>();
        foreach (var s in trace.Decode()) // every frame, in order, with the ISNs the stack recorded: relative TCP numbers
        {
            if (Direction is { } d && s.Direction != d) continue;
            if (protocols != null && !protocols.Any(p => p.IsMatch(s.Protocol))) continue;
            if (socket != null && !Belongs(s, socket)) continue;
            selected.Add(new StackPacket(s, stack.Name));
        }
        var skip = Last is { } n && selected.Count > n ? selected.Count - n : 0;
        for (int i = skip; i < selected.Count; i++) WriteObject(selected[i]);
    }

    internal static bool Belongs(FrameSummary s, ConnectionInfo c)
    {
        var proto = c.Protocol == SocketProtocol.Tcp ? "TCP" : null;
        if (proto != null && s.Protocol != proto) return false;
        if (proto == null && s.Protocol is not ("UDP" or "DNS")) return false;
        bool Local(Ipv4Address? a, ushort port) => port == c.LocalPort && (c.LocalAddress.IsUnspecified || a == c.LocalAddress);
        bool Remote(Ipv4Address? a, ushort port) => c.RemotePort == 0 || (port == c.RemotePort && a == c.RemoteAddress);
        return (Local(s.SourceAddress, s.SourcePort) && Remote(s.DestinationAddress, s.DestinationPort))
            || (Local(s.DestinationAddress, s.DestinationPort) && Remote(s.SourceAddress, s.SourcePort));
    }
}

/// <summary>Get-StackConnection: the netstat view of every TCP connection and UDP endpoint.</summary>
[Cmdlet(VerbsCommon.Get, "StackConnection")]
[OutputType(typeof(StackConnection))]
public sealed class GetStackConnectionCommand : StackViewCmdlet
{
    /// <summary>Only these sockets (their descriptors, as the Id column shows them).</summary>
    [Parameter(Position = 0)]
    [ArgumentCompleter(typeof(SocketIdCompleter))]
    public int[]? Id { get; set; }

    [Parameter]
    public SocketProtocol[]? Protocol { get; set; }

    /// <summary>State names as Get-NetTCPConnection gives them (Listen, Established, TimeWait...); UDP endpoints are Bound.</summary>
    [Parameter]
    [SupportsWildcards]
    [ArgumentCompleter(typeof(ConnectionStateCompleter))]
    public string[]? State { get; set; }

    [Parameter]
    [ValidateRange(0, 65535)]
    public int[]? LocalPort { get; set; }

    [Parameter]
    [SupportsWildcards]
    public string[]? RemoteAddress { get; set; }

    [Parameter]
    [ValidateRange(0, 65535)]
    public int[]? RemotePort { get; set; }

    protected override void ProcessStack(StackInstance stack)
    {
        var rows = OrTerminate(() => Await(stack, () => stack.Core.GetConnectionsAsync()), stack);
        var states = State?.Select(p => new WildcardPattern(p, WildcardOptions.IgnoreCase)).ToArray();
        var remotes = RemoteAddress?.Select(p => new WildcardPattern(p, WildcardOptions.IgnoreCase)).ToArray();
        foreach (var r in rows)
        {
            if (Id != null && !Id.Contains(r.Id)) continue;
            if (Protocol != null && !Protocol.Contains(r.Protocol)) continue;
            if (states != null && !states.Any(p => p.IsMatch(r.State))) continue;
            if (LocalPort != null && !LocalPort.Contains(r.LocalPort)) continue;
            if (RemotePort != null && !RemotePort.Contains(r.RemotePort)) continue;
            if (remotes != null && !remotes.Any(p => p.IsMatch(r.RemoteAddress.ToString()))) continue;
            WriteObject(new StackConnection(r, stack.Name));
        }
    }
}

