namespace NetStack.Tcp;

/// <summary>
/// What a listener's TCP side needs from whoever holds it for the user (the socket API's <c>TcpListener</c>):
/// a connection (with its socket) for each SYN it takes, the hand-off of established connections to waiting
/// accepts, deferred work, and word that the listener closed. Called on the loop.
/// </summary>
internal interface IListenerOwner
{
    /// <summary>A new connection for an arriving SYN, its user attached.</summary>
    TcpConnection CreateConnection();

    /// <summary>An established connection: true when a waiting accept took it (else it joins the accept queue).</summary>
    bool TryHandOff(TcpConnection connection);

    /// <summary>Runs <paramref name="work"/> on the loop's next turn (to abort without re-entering segment processing).</summary>
    void Defer(Action<TimeSpan> work);

    /// <summary>The listener stopped (by the user, or because the stack stopped): waiting accepts fail.</summary>
    void OnClosed();
}

/// <summary>
/// A port in the LISTEN state (RFC 9293 3.10.7.2): SYNs become SYN-RECEIVED connections, counted in the SYN queue
/// until their handshake ends; established ones wait in the accept queue until the user accepts them. Both are
/// bounded by the backlog (refusals counted: ListenSynQueueFull, ListenAcceptQueueFull). With a full SYN queue (or
/// always, by Tcp.SynCookies) a SYN gets a cookie SYN-ACK that keeps no state (RFC 4987, <see cref="SynCookies"/>), and
/// an ACK bearing a valid cookie makes the connection. Loop only.
/// </summary>
internal sealed class ListenEndpoint
{
    private readonly TcpLayer _layer;
    private readonly IListenerOwner _owner;
    private readonly Queue<TcpConnection> _acceptQueue = new();
    private int _synQueue;
    private TimeSpan _lastCookieAt = TimeSpan.MinValue;

    public ListenEndpoint(TcpLayer layer, ushort port, int backlog, IListenerOwner owner)
    {
        _layer = layer;
        Port = port;
        Backlog = backlog;
        _owner = owner;
    }

    public ushort Port { get; }
    /// <summary>Bound on both the SYN queue and the accept queue.</summary>
    public int Backlog { get; }
    public bool IsClosed { get; private set; }
    /// <summary>Established connections not yet accepted.</summary>
    public int AcceptQueueCount => _acceptQueue.Count;
    /// <summary>Half-open connections (SYN-RECEIVED).</summary>
    public int SynQueueCount => _synQueue;
    public bool HasAcceptRoom => _acceptQueue.Count < Backlog;

    /// <summary>Registers the port with the layer (AddressInUse when it has a listener already).</summary>
    public void Start()
    {
        _layer.AddListener(this);
        _layer.Context.Trace("Tcp", $"listening on port {Port}, backlog {Backlog}");
    }

    /// <summary>SEGMENT ARRIVES in the LISTEN state (RFC 9293 3.10.7.2).</summary>
    public void OnSegment(Ipv4Address remote, ref TcpSegment seg, TimeSpan now)
    {
        var counters = _layer.Counters;
        if (seg.Has(TcpFlags.Rst)) return;
        if (seg.Has(TcpFlags.Ack))
        {
            if (!seg.Has(TcpFlags.Syn) && CookiesRecent(now) && TakeCookie(remote, ref seg, now)) return;
            counters.DroppedNoSocket++;
            _layer.ResetFor(remote, ref seg, now); // <SEQ=SEG.ACK><CTL=RST>, for a stale or forged cookie too
            return;
        }
        if (!seg.Has(TcpFlags.Syn)) { counters.DroppedNotAcceptable++; return; }
        if (_acceptQueue.Count >= Backlog) { counters.ListenAcceptQueueFull++; return; } // cookies or not, as Linux
        var cookies = _layer.Settings.SynCookies;
        if (cookies == SynCookieMode.Always || (cookies == SynCookieMode.Auto && _synQueue >= Backlog))
        {
            SendCookie(remote, ref seg, now);
            return;
        }
        if (_synQueue >= Backlog) { counters.ListenSynQueueFull++; return; }          // the client retries its SYN
        var connection = _owner.CreateConnection();
        if (!connection.OpenPassive(this, remote, ref seg, now))
        {
            connection.User?.OnClosed();
            return;
        }
        _synQueue++;
        _layer.Context.Trace("Tcp", $"{connection.Describe()} SYN received on listener, SYN-ACK sent, ISN {connection.Iss}");
    }

    // ---------------- SYN cookies (RFC 4987 3.6) ----------------

    /// <summary>
    /// Whether an ACK to this port may bear a cookie: always with Tcp.SynCookies = Always; with Auto only while cookies
    /// sent lately can still be valid (as Linux), so ACKs are not checked (nor cookies guessed at) when none went out.
    /// </summary>
    private bool CookiesRecent(TimeSpan now) => _layer.Settings.SynCookies switch
    {
        SynCookieMode.Always => true,
        SynCookieMode.Auto => _lastCookieAt != TimeSpan.MinValue && now - _lastCookieAt < 2 * SynCookies.Period,
        _ => false,
    };

    /// <summary>
    /// Answers a SYN with a cookie SYN-ACK and keeps nothing: the ISN encodes the MSS, and where the peer sent timestamps
    /// our TSval's low bits its window scale and SACK-permitted; without timestamps we offer neither (nothing would
    /// remember them).
    /// </summary>
    private void SendCookie(Ipv4Address remote, ref TcpSegment syn, TimeSpan now)
    {
        var s = _layer.Settings;
        ref readonly var o = ref syn.Options;
        var key = new ConnKey(remote.Value, syn.SourcePort, Port);
        var ts = s.Timestamps && o.HasTimestamp;
        var peerScale = ts && s.WindowScaling ? o.WindowScale : -1;
        var sack = ts && s.Sack && o.SackPermitted;
        var seg = new OutgoingSegment
        {
            LocalPort = Port, RemotePort = syn.SourcePort, Flags = TcpFlags.Syn | TcpFlags.Ack, DontFragment = true,
            Seq = _layer.Cookies.Make(key, syn.Seq, o.Mss != 0 ? o.Mss : 536, now),
            Ack = syn.Seq + 1,
            Window = (ushort)Math.Min(s.ReceiveBufferSize, 65535), // what a new connection's SYN-ACK offers
        };
        seg.Options.Mss = (ushort)Math.Min(_layer.Output.PathMss, 65535);
        seg.Options.SackPermitted = sack;
        seg.Options.WindowScale = peerScale >= 0 ? TcpReceiver.WindowShiftFor(TcpReceiver.DefaultBufferCeiling(s)) : -1;
        seg.Options.HasTimestamp = ts;
        if (ts)
        {
            var tsNow = (uint)(now.Ticks / TimeSpan.TicksPerMillisecond) + _layer.TimestampOffset(key);
            seg.Options.TsVal = SynCookies.TimestampWithOptions(tsNow, peerScale, sack);
            seg.Options.TsEcr = o.TsVal;
        }
        _lastCookieAt = now;
        if (_layer.Output.Send(remote, in seg, now) != StackError.None) return;
        _layer.Counters.SegmentsSent++;
        _layer.Counters.SynCookiesSent++;
    }

    /// <summary>
    /// An ACK that may bear a cookie: if SEG.ACK - 1 is one we made for this four-tuple and SEG.SEQ - 1, lately enough, the
    /// connection is made with the options the cookie carried and takes the ACK (and any data on it). False when the
    /// cookie is stale or forged (the caller answers with RST).
    /// </summary>
    private bool TakeCookie(Ipv4Address remote, ref TcpSegment ack, TimeSpan now)
    {
        var counters = _layer.Counters;
        var key = new ConnKey(remote.Value, ack.SourcePort, Port);
        if (!_layer.Cookies.TryCheck(key, ack.Ack - 1, ack.Seq - 1, now, out var mss))
        {
            counters.SynCookiesRejected++;
            return false;
        }
        // Without a timestamp nothing says which options the peer offered: no window scale, no SACK.
        var (scale, sack) = ack.Options.HasTimestamp && _layer.Settings.Timestamps ? SynCookies.OptionsFromTimestamp(ack.Options.TsEcr) : (-1, false);
        // A valid cookie proves a peer that got our SYN-ACK. If the accept queue is full the connection still gets made,
        // and waits in SYN-RECEIVED as a queued SYN would (its SYN-ACK retransmission, or the peer's next segment,
        // completes it once the user accepts): Linux drops the ACK instead, and a peer that waits for the server to
        // speak first then waits for ever.
        var connection = _owner.CreateConnection();
        if (!connection.OpenFromCookie(this, remote, ref ack, mss, scale, sack, now))
        {
            connection.User?.OnClosed();
            return true;
        }
        counters.SynCookiesAccepted++;
        _synQueue++; // half-open until the ACK establishes it (at once, unless the accept queue is full)
        _layer.Context.Trace("Tcp", $"{connection.Describe()} SYN cookie accepted (MSS {mss}, window scale {scale}, SACK {sack})");
        connection.OnSegment(ref ack, now);
        return true;
    }

    /// <summary>A half-open connection failed (reset, or its SYN-ACKs went unanswered).</summary>
    public void OnHalfOpenGone() => _synQueue--;

    /// <summary>A connection completed its handshake: to a waiting accept, else to the accept queue.</summary>
    public void OnEstablished(TcpConnection connection)
    {
        _synQueue--;
        if (IsClosed)
        {
            // The listener went away during the handshake: nobody can accept this one.
            _owner.Defer(now => connection.Abort(now));
            return;
        }
        if (_owner.TryHandOff(connection)) return;
        _acceptQueue.Enqueue(connection);
    }

    public bool TryAccept(out TcpConnection connection) => _acceptQueue.TryDequeue(out connection!);

    /// <summary>Stops listening: unaccepted connections are reset, the owner's waiting accepts fail.</summary>
    public void Close(TimeSpan now)
    {
        if (IsClosed) return;
        IsClosed = true;
        _layer.RemoveListener(this);
        while (_acceptQueue.TryDequeue(out var c)) c.Abort(now);
        _owner.OnClosed();
    }
}
