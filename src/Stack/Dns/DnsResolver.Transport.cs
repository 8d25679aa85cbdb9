using NetStack.Tcp;
using NetStack.Udp;

namespace NetStack.Dns;

/// <summary>
/// The resolver's transport: each attempt over UDP from a fresh random port with a fresh random id (RFC 5452 9.2), a
/// truncated answer again over TCP (RFC 7766), which responses count as ours (RFC 5452 9.1), timeouts, retransmissions
/// and the move to the next server. What an accepted answer means is <see cref="DnsResolver"/>'s other half.
/// </summary>
internal sealed partial class DnsResolver
{
    /// <summary>Sends the current attempt over UDP: a fresh socket on a random port and a fresh random id.</summary>
    private void SendQuery(Resolution r, TimeSpan now)
    {
        while (true)
        {
            CloseTransport(r, now);
            if (r.Attempt > 0) Counters.Retransmissions++;
            r.Attempt++;
            var socket = _udp.OpenRandom(r, now);
            if (socket is null)
            {
                Finish(r, new StackException(StackError.NoEphemeralPorts,
                    $"No free UDP port to send the DNS query for '{r.QueryName}' from; close sockets or widen the ephemeral range."), now);
                return;
            }
            r.Socket = socket;
            r.Id = (ushort)_context.Unpredictable.Next(65536); // RFC 5452 9.2: with the random port, 16 + ~14 bits to guess
            r.SentOpt = r.Edns;
            var length = DnsQuery.Write(_query, r.Id, r.QName, (ushort)r.Type, r.Edns ? Settings.EdnsPayloadSize : 0);
            var result = socket.Send(r.Server, Settings.ServerPort, _query.AsSpan(0, length), now);
            if (result == StackError.None)
            {
                Counters.QueriesSent++;
                if (r.SentOpt) Counters.EdnsQueries++;
                SetDeadline(r, now + Settings.Timeout);
                _context.Trace("Dns", $"query {r.Id:x4} for {r.QueryName} {r.Type} to {r.Server} (attempt {r.Attempt}{(r.SentOpt ? ", EDNS" : "")})");
                return;
            }
            // Unreachable at once (no route, ARP failed): no point in retrying this server.
            r.Outcomes.Add($"{r.Server} unreachable ({result})");
            if (!NextServer(r, now)) return;
        }
    }

    /// <summary>RFC 7766 5: the UDP answer was truncated; ask the same server again over TCP.</summary>
    private void SendOverTcp(Resolution r, TimeSpan now)
    {
        CloseTransport(r, now);
        Counters.TcpQueries++;
        r.Id = (ushort)_context.Unpredictable.Next(65536);
        r.SentOpt = false; // TCP has room for any answer: no payload size to advertise
        var length = DnsQuery.Write(_query, r.Id, r.QName, (ushort)r.Type);
        var exchange = new DnsTcpExchange(_query.AsSpan(0, length), (x, m, n) => OnTcpResponse(r, x, m.Span, n), (x, why, n) => OnTcpFailure(r, x, why, n));
        r.Tcp = exchange;
        SetDeadline(r, now + Settings.TcpTimeout);
        _context.Trace("Dns", $"query {r.Id:x4} for {r.QueryName} {r.Type} to {r.Server} over TCP (the UDP answer was truncated)");
        exchange.Start(_tcp, r.Server, Settings.ServerPort, now);
    }

    private void SetDeadline(Resolution r, TimeSpan deadline)
    {
        r.Deadline = deadline;
        if (deadline < _nextDeadline) _nextDeadline = deadline;
    }

    /// <summary>Moves to the next server; false (and the resolution failed) when none is left.</summary>
    private bool NextServer(Resolution r, TimeSpan now)
    {
        r.ServerIndex++;
        r.Attempt = 0;
        r.Edns = Settings.EdnsPayloadSize > 0;
        if (r.ServerIndex < r.Servers.Length) return true;
        var tried = string.Join(", ", r.Outcomes);
        Finish(r, r.AnyServerFailure
            ? new StackException(StackError.ServerFailure, $"No DNS server could resolve '{r.QueryName}': {tried}.")
            : new StackException(StackError.TimedOut, $"No DNS server answered for '{r.QueryName}': {tried}."), now);
        return false;
    }

    private void OnUdpResponse(Resolution r, IUdpPort socket, Ipv4Address source, ushort sourcePort, ReadOnlySpan<byte> data, TimeSpan now)
    {
        Counters.ResponsesReceived++;
        if (socket != r.Socket || r.Done || source != r.Server || sourcePort != Settings.ServerPort) { Counters.DroppedMismatched++; return; }
        if (DnsMessage.Parse(data) is not { } message) { Counters.DroppedMalformed++; return; }
        if (!message.Answers(r.Id, r.QName, (ushort)r.Type)) { Counters.DroppedMismatched++; return; }
        Accept(r, message, overTcp: false, now);
    }

    private void OnTcpResponse(Resolution r, DnsTcpExchange exchange, ReadOnlySpan<byte> data, TimeSpan now)
    {
        if (exchange != r.Tcp || r.Done) return;
        Counters.ResponsesReceived++;
        r.Tcp = null;
        var message = DnsMessage.Parse(data);
        if (message is null) Counters.DroppedMalformed++;
        else if (!message.Answers(r.Id, r.QName, (ushort)r.Type)) Counters.DroppedMismatched++;
        else
        {
            Accept(r, message, overTcp: true, now);
            return;
        }
        // Over TCP the connection is ours alone: a wrong answer there will not be followed by the right one.
        TcpFailed(r, message is null ? "sent a malformed answer over TCP" : "sent an answer to another question over TCP", now);
    }

    private void OnTcpFailure(Resolution r, DnsTcpExchange exchange, string why, TimeSpan now)
    {
        if (exchange != r.Tcp || r.Done) return; // an exchange given up already
        r.Tcp = null;
        TcpFailed(r, why, now);
    }

    /// <summary>The TCP exchange with the current server gave no answer: the next server, asked over UDP again.</summary>
    private void TcpFailed(Resolution r, string why, TimeSpan now)
    {
        Counters.TcpFailures++;
        r.AnyServerFailure = true;
        r.Outcomes.Add($"{r.Server} {why}");
        if (NextServer(r, now)) SendQuery(r, now);
    }

    /// <summary>ICMP port/host unreachable about our query: the server is not there, so move on at once.</summary>
    private bool OnSendError(Resolution r, IUdpPort socket, StackError error, Ipv4Address destination, ushort destinationPort, TimeSpan now)
    {
        if (socket != r.Socket || r.Done || destination != r.Server || destinationPort != Settings.ServerPort) return false;
        r.Outcomes.Add($"{r.Server} unreachable ({error})");
        if (NextServer(r, now)) SendQuery(r, now);
        return true;
    }

    public TimeSpan? Poll(TimeSpan now)
    {
        if (now < _nextDeadline) return _nextDeadline == TimeSpan.MaxValue ? null : _nextDeadline;
        var next = TimeSpan.MaxValue;
        for (int i = 0; i < _active.Count; i++)
        {
            var r = _active[i];
            if (now >= r.Deadline)
            {
                Counters.Timeouts++;
                if (r.Tcp is { } tcp)
                {
                    tcp.Abort(now);
                    r.Tcp = null;
                    TcpFailed(r, $"did not answer over TCP within {Settings.TcpTimeout.TotalSeconds:0.###} s", now);
                }
                else if (r.Attempt >= Settings.Attempts)
                {
                    r.Outcomes.Add($"{r.Server} did not answer ({r.Attempt} x {Settings.Timeout.TotalSeconds:0.###} s)");
                    if (NextServer(r, now)) SendQuery(r, now);
                }
                else SendQuery(r, now);
                if (r.Done) { i--; continue; } // Finish removed it
            }
            if (r.Deadline < next) next = r.Deadline;
        }
        _nextDeadline = next;
        return next == TimeSpan.MaxValue ? null : next;
    }

    private static void CloseTransport(Resolution r, TimeSpan now)
    {
        r.Socket?.Release();
        r.Socket = null;
        r.Tcp?.Abort(now);
        r.Tcp = null;
    }
}
