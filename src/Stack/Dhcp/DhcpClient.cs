using NetStack.Arp;
using NetStack.Udp;

namespace NetStack.Dhcp;

/// <summary>
/// The DHCP client (RFC 2131 4.4): DISCOVER, OFFER, REQUEST, ACK from 0.0.0.0 to the limited broadcast, an RFC 5227
/// probe of the address before it is taken (DECLINE when it is in use), the lease applied to the interface
/// (<see cref="IInterfaceConfiguration"/>), renewal at T1 (REQUEST unicast to the server), rebinding at T2 (broadcast),
/// expiry (address removed, start over), NAK (start over), RELEASE on request. Retransmission timings in
/// <see cref="DhcpBackoff"/>, messages in <see cref="DhcpMessage"/>. Speaks through UDP port 68 (<see cref="IUdpPorts"/>);
/// ARP through <see cref="IAddressProbe"/>. Loop-thread only; <see cref="Lease"/> is published for any thread.
/// </summary>
internal sealed partial class DhcpClient : IUdpReceiver, IAddressProbeClient
{
    /// <summary>REQUESTs sent for an offer before starting over with a DISCOVER (RFC 2131 3.1.5: 4 s + 8 + 16 + 32).</summary>
    public const int MaxRequests = 4;
    /// <summary>RFC 2131 3.1.5: after a DECLINE, wait at least ten seconds before starting over.</summary>
    public static readonly TimeSpan DeclineWait = TimeSpan.FromSeconds(10);

    private readonly LayerContext _context;
    private readonly IUdpPorts _udp;
    private readonly IAddressProbe _arp;
    private readonly IInterfaceConfiguration _iface;
    private readonly MacAddress _mac;
    private readonly byte[] _buffer = new byte[DhcpMessage.MaxWrittenLength];
    private readonly List<TaskCompletionSource<DhcpLease>> _waiters = new();
    private IUdpPort? _port;
    private DhcpState _state = DhcpState.Init;
    private uint _xid;
    private TimeSpan _acquisitionStarted;
    private TimeSpan _due = TimeSpan.MaxValue;
    private int _sent;
    private int _naksInARow;
    private DhcpMessage? _offer;
    private DhcpMessage? _ack;
    private TimeSpan _requestedAt;
    private Ipv4Address? _previous;
    private DhcpLease _lease = new();
    private volatile DhcpLease _published = new();

    public DhcpClient(LayerContext context, IUdpPorts udp, IAddressProbe arp, IInterfaceConfiguration iface, MacAddress mac)
    {
        _context = context;
        _udp = udp;
        _arp = arp;
        _iface = iface;
        _mac = mac;
    }

    public DhcpCounters Counters { get; } = new();

    /// <summary>The client's state and lease as of the last change. Any thread.</summary>
    public DhcpLease Lease => _published;

    private DhcpSettings Settings => _context.Config.Dhcp;

    // ---------------- start, stop, release ----------------

    /// <summary>Opens UDP port 68 and sends the first DISCOVER. Fails with AddressInUse when port 68 is taken.</summary>
    public void Start(TimeSpan now)
    {
        if (_port != null || _state == DhcpState.Stopped) return;
        _port = _udp.Open(DhcpMessage.ClientPort, this, now);
        if (_port is null)
        {
            Fail(new StackException(StackError.AddressInUse, $"UDP port {DhcpMessage.ClientPort} is taken on stack '{_context.Name}', so the DHCP client cannot run; close the socket that holds it."));
            return;
        }
        BeginDiscover(now);
    }

    /// <summary>Completes with the lease once bound (at once if it is).</summary>
    public Task<DhcpLease> WaitForLease()
    {
        if (_state is DhcpState.Bound or DhcpState.Renewing or DhcpState.Rebinding) return Task.FromResult(_lease);
        if (_state == DhcpState.Stopped) return Task.FromException<DhcpLease>(Stopped());
        var tcs = new TaskCompletionSource<DhcpLease>(); // loop-side: see NetworkStack.InvokeAsync
        _waiters.Add(tcs);
        return tcs.Task;
    }

    /// <summary>ARPs for the leasing server now, so that a RELEASE leaves at once; true when it answered.</summary>
    public Task<bool> ResolveServer(TimeSpan now) =>
        _lease.Server is { } server
            ? _arp.ResolveNow(server, now).ContinueWith(static t => t.IsCompletedSuccessfully, CancellationToken.None, TaskContinuationOptions.ExecuteSynchronously, TaskScheduler.Default)
            : Task.FromResult(false);

    /// <summary>Resolves the server, then releases (on the loop: ARP completes there); false when there was no lease.</summary>
    public Task<bool> ReleaseAsync(TimeSpan now)
    {
        if (_lease.Address is null) return Task.FromResult(false);
        return ResolveServer(now).ContinueWith(_ => Release(_context.Now), CancellationToken.None, TaskContinuationOptions.ExecuteSynchronously, TaskScheduler.Default);
    }

    /// <summary>Gives the lease back (RFC 2131 4.4.6: RELEASE unicast to the server) and removes the address. False when there is none.</summary>
    public bool Release(TimeSpan now)
    {
        if (_lease.Address is not { } address || _lease.Server is not { } server) return false;
        _xid = NewXid();
        var m = NewMessage(DhcpMessageType.Release, now);
        m.ClientAddress = address;
        m.ServerId = server;
        Send(m, server, now);
        Counters.ReleasesSent++;
        _context.Trace("Dhcp", $"DHCPRELEASE of {address} to {server}");
        _arp.CancelProbe();
        _iface.Remove($"the lease on {address} was released", now);
        _lease = new DhcpLease { State = DhcpState.Released };
        SetState(DhcpState.Released, TimeSpan.MaxValue);
        return true;
    }

    /// <summary>The stack stopped: waiters fail, the port is given back.</summary>
    public void Stop()
    {
        _arp.CancelProbe();
        _port?.Release();
        _port = null;
        _lease = _lease with { State = DhcpState.Stopped };
        SetState(DhcpState.Stopped, TimeSpan.MaxValue);
        Fail(Stopped());
    }

    private StackException Stopped() => new(StackError.StackStopped, $"Stack '{_context.Name}' stopped before DHCP gave it an address.");

    private void Fail(Exception e)
    {
        foreach (var w in _waiters) w.TrySetException(e);
        _waiters.Clear();
    }

    // ---------------- timers ----------------

    /// <summary>Runs what is due (lease deadlines, retransmissions); returns the next deadline.</summary>
    public TimeSpan? Poll(TimeSpan now)
    {
        if (_port is null) return null;
        if (_state is DhcpState.Bound or DhcpState.Renewing or DhcpState.Rebinding && _lease.Expiry is { } expiry)
        {
            if (now >= expiry) Expire(now);
            else if (_state != DhcpState.Rebinding && now >= _lease.Rebinding) EnterRebinding(now);
            else if (_state == DhcpState.Bound && now >= _lease.Renewal) EnterRenewing(now);
        }
        if (now >= _due) OnTimer(now);
        var next = _due;
        if (_state == DhcpState.Bound && _lease.Renewal is { } t1 && t1 < next) next = t1;
        return next == TimeSpan.MaxValue ? null : next;
    }

    private void OnTimer(TimeSpan now)
    {
        switch (_state)
        {
            case DhcpState.Init:
                BeginDiscover(now);
                break;
            case DhcpState.Selecting:
                Counters.Retransmissions++;
                SendDiscover(now);
                break;
            case DhcpState.Requesting when _sent >= MaxRequests:
                _context.Trace("Dhcp", $"no ACK after {_sent} REQUESTs for {_offer!.YourAddress}: starting over");
                BeginDiscover(now);
                break;
            case DhcpState.Requesting:
                Counters.Retransmissions++;
                SendSelectingRequest(now);
                break;
            case DhcpState.Renewing:
                Counters.Retransmissions++;
                SendLeaseRequest(now, _lease.Server!.Value);
                _due = DhcpBackoff.NextLeaseRetry(now, _lease.Rebinding!.Value);
                break;
            case DhcpState.Rebinding:
                Counters.Retransmissions++;
                SendLeaseRequest(now, Ipv4Address.Broadcast);
                _due = DhcpBackoff.NextLeaseRetry(now, _lease.Expiry!.Value);
                break;
            default:
                _due = TimeSpan.MaxValue;
                break;
        }
    }

    // ---------------- the exchanges ----------------

    private void BeginDiscover(TimeSpan now)
    {
        _xid = NewXid();
        _acquisitionStarted = now;
        _sent = 0;
        _offer = null;
        _ack = null;
        SetState(DhcpState.Selecting, TimeSpan.MaxValue);
        SendDiscover(now);
    }

    private void SendDiscover(TimeSpan now)
    {
        var m = NewMessage(DhcpMessageType.Discover, now);
        m.RequestedAddress = _previous; // RFC 2131 4.4.1: the client MAY ask for its last address
        _sent++;
        _due = now + DhcpBackoff.Retransmit(_sent, _context.Random);
        Send(m, Ipv4Address.Broadcast, now);
        Counters.DiscoversSent++;
        _context.Trace("Dhcp", $"DHCPDISCOVER xid 0x{_xid:x8} (attempt {_sent}); next in {(_due - now).TotalSeconds:0.0} s");
        Publish();
    }

    private void SendSelectingRequest(TimeSpan now)
    {
        var offer = _offer!;
        var m = NewMessage(DhcpMessageType.Request, now);
        m.RequestedAddress = offer.YourAddress; // RFC 2131 4.3.2: SELECTING: option 50 and 54 set, ciaddr 0
        m.ServerId = offer.ServerId;
        if (_sent == 0) _requestedAt = now;
        _sent++;
        _due = now + DhcpBackoff.Retransmit(_sent, _context.Random);
        Send(m, Ipv4Address.Broadcast, now);
        Counters.RequestsSent++;
        _context.Trace("Dhcp", $"DHCPREQUEST for {offer.YourAddress} from server {offer.ServerId} xid 0x{_xid:x8} (attempt {_sent})");
    }

    /// <summary>RFC 2131 4.3.2 RENEWING/REBINDING: ciaddr is our address, no option 50 or 54; unicast to the server, or broadcast.</summary>
    private void SendLeaseRequest(TimeSpan now, Ipv4Address to)
    {
        var m = NewMessage(DhcpMessageType.Request, now);
        m.ClientAddress = _lease.Address!.Value;
        m.Flags = 0; // ciaddr set: the server answers it by unicast
        if (_sent == 0) _requestedAt = now;
        _sent++;
        Send(m, to, now);
        Counters.RequestsSent++;
        _context.Trace("Dhcp", $"DHCPREQUEST to renew {_lease.Address} {(to.IsBroadcast ? "(broadcast)" : "to " + to)} xid 0x{_xid:x8} (attempt {_sent})");
    }

    private void EnterRenewing(TimeSpan now)
    {
        Counters.Renewals++;
        _context.Trace("Dhcp", $"T1 reached: renewing the lease on {_lease.Address} with {_lease.Server}");
        _xid = NewXid();
        _acquisitionStarted = now;
        _sent = 0;
        SetState(DhcpState.Renewing, DhcpBackoff.NextLeaseRetry(now, _lease.Rebinding!.Value));
        SendLeaseRequest(now, _lease.Server!.Value);
    }

    private void EnterRebinding(TimeSpan now)
    {
        Counters.Rebinds++;
        _context.Trace("Dhcp", $"T2 reached without an answer from {_lease.Server}: rebinding {_lease.Address} with any server");
        _xid = NewXid();
        _sent = 0;
        SetState(DhcpState.Rebinding, DhcpBackoff.NextLeaseRetry(now, _lease.Expiry!.Value));
        SendLeaseRequest(now, Ipv4Address.Broadcast);
    }

    private void Expire(TimeSpan now)
    {
        Counters.LeasesExpired++;
        _context.Trace("Dhcp", $"the lease on {_lease.Address} expired: address removed, starting over");
        _previous = _lease.Address;
        _iface.Remove($"the DHCP lease on {_lease.Address} expired", now);
        _lease = new DhcpLease();
        BeginDiscover(now);
    }

    // ---------------- sending ----------------

    /// <summary>RFC 2131 4.4.1: a random xid; from the unpredictable source, so an off-path host cannot forge an answer (RFC 2131 7).</summary>
    private uint NewXid()
    {
        Span<byte> b = stackalloc byte[4];
        uint xid;
        do { _context.Unpredictable.NextBytes(b); xid = BitConverter.ToUInt32(b); } while (xid == 0);
        return xid;
    }

    private DhcpMessage NewMessage(DhcpMessageType type, TimeSpan now) => new()
    {
        Op = DhcpMessage.OpRequest,
        Type = type,
        TransactionId = _xid,
        ClientMac = _mac,
        Seconds = (ushort)Math.Clamp((now - _acquisitionStarted).TotalSeconds, 0, ushort.MaxValue),
        Flags = Settings.BroadcastFlag ? DhcpMessage.FlagBroadcast : (ushort)0,
        ClientId = ClientIdentifier(),
        HostName = Settings.HostName,
        ParameterList = type is DhcpMessageType.Discover or DhcpMessageType.Request ? DhcpMessage.ParametersWanted : [],
    };

    /// <summary>RFC 2132 9.14: hardware type 1 and the MAC.</summary>
    private byte[] ClientIdentifier()
    {
        var id = new byte[7];
        id[0] = 1;
        _mac.Write(id.AsSpan(1));
        return id;
    }

    private void Send(DhcpMessage m, Ipv4Address to, TimeSpan now)
    {
        if (_port is null) return;
        var length = m.Write(_buffer);
        if (_port.Send(to, DhcpMessage.ServerPort, _buffer.AsSpan(0, length), now) != StackError.None) Counters.SendErrors++;
    }

    private void SetState(DhcpState state, TimeSpan due)
    {
        _state = state;
        _due = due;
        Publish();
    }

    private void Publish() => _published = _lease with { State = _state, TransactionId = _xid };
}
