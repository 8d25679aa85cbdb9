using System.Management.Automation;
using NetStack.Sockets;
using NetStack.Udp;

namespace NetStack.PowerShell;

/// <summary>What a port probe found, in nmap's words.</summary>
public enum StackPortStatus
{
    /// <summary>TCP: the handshake completed. UDP: an answer came back.</summary>
    Open,
    /// <summary>TCP: refused (RST). UDP: ICMP port unreachable came back.</summary>
    Closed,
    /// <summary>TCP: no answer to the SYNs within the time limit (something drops them).</summary>
    Filtered,
    /// <summary>UDP: silence. Either a service took the datagram and did not answer, or something dropped it (nmap's open|filtered).</summary>
    OpenOrFiltered,
    /// <summary>The host itself could not be reached: no ARP answer, no route, or a router said so.</summary>
    Unreachable,
}

/// <summary>The outcome of a TCP connect test (Test-StackConnection -TcpPort), one per port.</summary>
public sealed class StackTcpTestResult
{
    /// <summary>The target as given (a name or an address).</summary>
    public string Destination { get; init; } = "";
    /// <summary>The address tested (what the name resolved to).</summary>
    public string Address { get; init; } = "";
    public int TcpPort { get; init; }
    public StackPortStatus Status { get; init; }
    public bool Succeeded => Status == StackPortStatus.Open;
    /// <summary>Time to establish, to be refused, or to give up, in milliseconds.</summary>
    public double Latency { get; init; }
    /// <summary>Our end of the attempt (address:port).</summary>
    public string? Source { get; init; }
    public string? Error { get; init; }
    public string Stack { get; init; } = "";
}

/// <summary>The outcome of a UDP probe (Test-StackConnection -UdpPort), one per port.</summary>
public sealed class StackUdpTestResult
{
    public string Destination { get; init; } = "";
    public string Address { get; init; } = "";
    public int UdpPort { get; init; }
    public StackPortStatus Status { get; init; }
    /// <summary>Time to the answer or the ICMP error; the whole wait when there was silence. Milliseconds.</summary>
    public double Latency { get; init; }
    /// <summary>The answer's bytes, when one came.</summary>
    public byte[]? Reply { get; init; }
    public string? Source { get; init; }
    /// <summary>Who sent the ICMP error, and what it said.</summary>
    public string? Error { get; init; }
    public string Stack { get; init; } = "";
}

/// <summary>Port probes for Test-StackConnection: a TCP connect, or a UDP datagram and what comes back.</summary>
internal static class PortProbe
{
    /// <summary>Connect, note the time and the outcome, close (or abort a failed attempt).</summary>
    public static StackTcpTestResult Tcp(NetStackCmdlet cmdlet, StackInstance stack, string destination, Ipv4Address address, int port, TimeSpan timeout)
    {
        var started = System.Diagnostics.Stopwatch.StartNew();
        var socket = stack.Core.CreateTcpSocket();
        var error = cmdlet.TryAwaitTimedQuiet(stack, ct => Done(socket.ConnectAsync(address, (ushort)port, ct)), timeout, $"{address}:{port}", $"Connecting to {address}:{port}");
        var elapsed = started.Elapsed;
        var source = socket.LocalEndPoint.Port == 0 ? null : socket.LocalEndPoint.ToString();
        if (error is null) socket.Dispose();
        else socket.Abort();
        return new StackTcpTestResult
        {
            Destination = destination, Address = address.ToString(), TcpPort = port, Status = StatusOf(error), Latency = Math.Round(elapsed.TotalMilliseconds, 3),
            Source = source, Error = error?.Exception.Message, Stack = stack.Name,
        };
    }

    /// <summary>
    /// One empty datagram from a connected socket, then wait: an answer is Open, ICMP port unreachable is Closed (a
    /// connected UdpSocket fails its receive with it), silence until <paramref name="timeout"/> is OpenOrFiltered.
    /// </summary>
    public static StackUdpTestResult Udp(NetStackCmdlet cmdlet, StackInstance stack, string destination, Ipv4Address address, int port, TimeSpan timeout)
    {
        var started = System.Diagnostics.Stopwatch.StartNew();
        UdpSocket? socket = null;
        ErrorRecord? error;
        UdpDatagram? reply = null;
        try
        {
            error = cmdlet.TryAwaitTimedQuiet(stack, async ct =>
            {
                socket = await stack.Core.CreateUdpSocketAsync().ConfigureAwait(false);
                await socket.ConnectAsync(address, (ushort)port).ConfigureAwait(false);
                await socket.SendAsync(ReadOnlyMemory<byte>.Empty).ConfigureAwait(false);
                return reply = await socket.ReceiveAsync(ct).ConfigureAwait(false);
            }, timeout, $"{address}:{port}", $"Waiting for an answer from {address}:{port}");
        }
        finally { socket?.Close(); }
        var status = error is null ? StackPortStatus.Open : error.CategoryInfo.Category == ErrorCategory.OperationTimeout ? StackPortStatus.OpenOrFiltered : StatusOf(error);
        return new StackUdpTestResult
        {
            Destination = destination, Address = address.ToString(), UdpPort = port, Status = status, Latency = Math.Round(started.Elapsed.TotalMilliseconds, 3),
            Reply = reply?.Data, Source = socket is { LocalPort: > 0 } s ? $"{stack.IPAddress}:{s.LocalPort}" : null, Error = status == StackPortStatus.OpenOrFiltered ? null : error?.Exception.Message,
            Stack = stack.Name,
        };
    }

    private static StackPortStatus StatusOf(ErrorRecord? error) => error?.Exception switch
    {
        null => StackPortStatus.Open,
        StackException { Error: StackError.ConnectionRefused or StackError.ConnectionReset or StackError.PortUnreachable or StackError.ProtocolUnreachable } => StackPortStatus.Closed,
        StackException { Error: StackError.HostUnreachable or StackError.NetworkUnreachable } => StackPortStatus.Unreachable,
        _ => StackPortStatus.Filtered, // timed out, or an ICMP error that is not about the port
    };

    private static async Task<bool> Done(Task task)
    {
        await task.ConfigureAwait(false);
        return true;
    }
}
