using NetStack;
using NetStack.Tcp;

namespace Stack.Tests.Tcp;

/// <summary>
/// TCP with nothing around it: a <see cref="TcpLayer"/> whose segments go to a recorder instead of an IP layer
/// (no NetworkStack, no IPv4, no device), fed parsed segments, on the test's own clock. The connection under test
/// is a bare <see cref="TcpConnection"/>; what it sends is read back as <see cref="Seg"/> values, field by field.
/// Defaults as <see cref="TcpRig"/>: no timestamps, SACK or window scaling, a 64 KiB - 1 receive buffer.
/// </summary>
internal sealed class BareTcp : ISegmentOutput
{
    public static readonly Ipv4Address Us = Ipv4Address.Parse("192.0.2.2");
    public static readonly Ipv4Address Peer = Ipv4Address.Parse("192.0.2.1");
    public const ushort PeerPort = 40000;
    public const uint PeerIss = 1000;
    private readonly int _mtu;
    private readonly List<Seg> _sent = new();

    public BareTcp(Func<TcpSettings, TcpSettings>? tcp = null, int mtu = 1500)
    {
        _mtu = mtu;
        var settings = new TcpSettings { Timestamps = false, Sack = false, WindowScaling = false, ReceiveBufferSize = 65535 };
        if (tcp != null) settings = tcp(settings);
        var config = new StackConfig { Address = Us, Tcp = settings };
        config.Validate(mtu);
        var random = new Random(1);
        Context = new LayerContext("bare", config, random);
        Layer = new TcpLayer(Context, this, new EphemeralPorts(config, random));
    }

    public LayerContext Context { get; }
    public TcpLayer Layer { get; }
    public TimeSpan Now { get; private set; } = TimeSpan.FromSeconds(1);
    public User LastUser { get; private set; } = null!;

    int ISegmentOutput.PathMss => _mtu - 40;

    StackError ISegmentOutput.Send(Ipv4Address remote, in OutgoingSegment s, TimeSpan now)
    {
        Assert.Equal(Peer, remote);
        var data = new byte[s.DataLength];
        s.Data.CopyTo(data);
        s.DataWrapped.CopyTo(data.AsSpan(s.Data.Length));
        var options = new byte[40];
        var optionLength = TcpHeader.WriteOptions(options, in s.Options);
        var syn = s.Options.Mss != 0;
        _sent.Add(new Seg
        {
            SrcPort = s.LocalPort, DstPort = s.RemotePort, Seq = s.Seq, Ack = s.Ack, Flags = s.Flags, Window = s.Window,
            Payload = data, Options = options[..optionLength],
            Mss = s.Options.Mss, WindowScale = syn ? s.Options.WindowScale : -1, SackPermitted = syn && s.Options.SackPermitted,
            TsVal = s.Options.HasTimestamp ? s.Options.TsVal : null, TsEcr = s.Options.HasTimestamp ? s.Options.TsEcr : null,
            Sack = s.Options.Sack.ToArray().Select(b => (b.Left, b.Right)).ToArray(),
        });
        return StackError.None;
    }

    /// <summary>A connection with a recording user, as a socket would make it.</summary>
    public TcpConnection NewConnection()
    {
        LastUser = new User();
        return new TcpConnection(Layer, LastUser);
    }

    /// <summary>Active open towards the peer: returns the connection and our SYN.</summary>
    public (TcpConnection Connection, Task<bool> Connected, Seg Syn) Connect()
    {
        var c = NewConnection();
        var connected = c.Connect(Peer, PeerPort, Now);
        return (c, connected, Assert.Single(Take()));
    }

    /// <summary>
    /// Active open completed by the peer's SYN-ACK after <paramref name="rtt"/>: MSS <paramref name="mss"/>, and
    /// SACK-permitted and timestamps when asked (the settings must allow them). Returns the connection and its first data sequence number.
    /// </summary>
    public (TcpConnection Connection, uint Us) Established(ushort mss, TimeSpan rtt, bool sack = false, bool timestamps = false)
    {
        var (c, _, syn) = Connect();
        Advance(rtt);
        var options = SegCodec.MssOption(mss).AsEnumerable();
        if (sack) options = options.Concat(new byte[] { 1, 1, 4, 2 });
        if (timestamps) options = options.Concat(SegCodec.TimestampOption(1, syn.TsVal!.Value));
        Feed(From(syn.SrcPort, PeerIss, syn.Seq + 1, TcpFlags.Syn | TcpFlags.Ack, options: options.ToArray()));
        return (c, syn.Seq + 1);
    }

    /// <summary>Active open against a peer offering <paramref name="mss"/> and <paramref name="window"/>; returns the connection and ISS + 1.</summary>
    public (TcpConnection C, uint Us) Open(ushort mss = 1000, ushort window = 65535)
    {
        var (c, connected, syn) = Connect();
        var ack = Assert.Single(Feed(From(syn.SrcPort, PeerIss, syn.Seq + 1, TcpFlags.Syn | TcpFlags.Ack, window: window, options: SegCodec.MssOption(mss))));
        Assert.Equal(TcpFlags.Ack, ack.Flags);
        Assert.True(connected.IsCompletedSuccessfully);
        return (c, syn.Seq + 1);
    }

    /// <summary>A listening port (the TCP side only) whose owner records what it is handed.</summary>
    public (ListenEndpoint Endpoint, Owner Owner) Listen(ushort port, int backlog = 4)
    {
        var owner = new Owner(this);
        var endpoint = new ListenEndpoint(Layer, port, backlog, owner);
        endpoint.Start();
        return (endpoint, owner);
    }

    /// <summary>Runs <paramref name="op"/> on the connection "on the loop" at the current time and returns what it sent.</summary>
    public List<Seg> Do(Action<TimeSpan> op)
    {
        Context.Now = Now;
        op(Now);
        Layer.FlushPendingAcks(Now);
        return Take();
    }

    /// <summary>A segment from the peer to <paramref name="localPort"/>.</summary>
    public static Seg From(ushort localPort, uint seq, uint ack, TcpFlags flags, byte[]? payload = null, ushort window = 65535, byte[]? options = null, ushort peerPort = PeerPort) => new()
    {
        SrcPort = peerPort, DstPort = localPort, Seq = seq, Ack = ack, Flags = flags, Window = window,
        Payload = payload ?? Array.Empty<byte>(), Options = options ?? Array.Empty<byte>(),
    };

    /// <summary>Delivers one segment from the peer (as IPv4 would after its checks), ends the receive batch, returns the replies.</summary>
    public List<Seg> Feed(Seg s)
    {
        Assert.True(TcpOptions.TryParse(s.Options, out var options));
        var seg = new TcpSegment
        {
            SourcePort = s.SrcPort, DestinationPort = s.DstPort, Seq = s.Seq, Ack = s.Ack, Flags = s.Flags, Window = s.Window,
            Payload = s.Payload, Options = options,
        };
        Context.Now = Now;
        Layer.Deliver(Peer, ref seg, Now);
        Layer.FlushPendingAcks(Now);
        return Take();
    }

    /// <summary>Moves the clock on by <paramref name="by"/>, running every timer that falls due, and returns what was sent.</summary>
    public List<Seg> Advance(TimeSpan by)
    {
        var end = Now + by;
        while (Layer.Poll(Now) is { } next && next <= end) Context.Now = Now = next;
        Context.Now = Now = end;
        Layer.Poll(Now);
        return Take();
    }

    public List<Seg> Take()
    {
        var r = _sent.ToList();
        _sent.Clear();
        return r;
    }

    /// <summary>Stands in for the socket API's listener: makes bare connections, takes none by hand-off (so they queue).</summary>
    public sealed class Owner : IListenerOwner
    {
        private readonly BareTcp _t;
        public Owner(BareTcp t) => _t = t;
        public List<TcpConnection> Created { get; } = new();
        public List<TcpConnection> Offered { get; } = new();
        public bool Closed { get; private set; }
        public TcpConnection CreateConnection()
        {
            var c = _t.NewConnection();
            Created.Add(c);
            return c;
        }
        public bool TryHandOff(TcpConnection connection) { Offered.Add(connection); return false; }
        public void Defer(Action<TimeSpan> work) => work(_t.Now);
        public void OnClosed() => Closed = true;
    }

    /// <summary>Stands in for the socket: records the states the connection publishes and its end.</summary>
    public sealed class User : IConnectionUser
    {
        public List<TcpState> States { get; } = new();
        public bool Closed { get; private set; }
        public int Id => 42;
        public void OnStateChanged(TcpState state) => States.Add(state);
        public void OnClosed() => Closed = true;
    }
}
