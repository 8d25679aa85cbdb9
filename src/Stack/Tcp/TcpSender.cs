using System.Runtime.CompilerServices;

namespace NetStack.Tcp;

/// <summary>
/// The sending half of a connection: the send sequence space (RFC 9293 3.3.1), the send ring, the congestion
/// window and its algorithm, loss recovery behind <see cref="ILossRecovery"/>, the RTT estimator, and ACK
/// processing (3.10.7.4, fifth check). Output, Nagle, SWS avoidance, persist and the retransmission timer are in
/// TcpSender.Output.cs. Loop only.
/// </summary>
internal sealed partial class TcpSender : ISentSegmentObserver
{
    private readonly TcpConnection _c;

    public TcpSender(TcpConnection connection, TcpSettings settings)
    {
        _c = connection;
        _bufferLimit = settings.SendBufferSize;
        Rtt = new RttEstimator(settings.InitialRto, settings.MinRto, settings.MaxRto);
    }

    /// <summary>Data bytes from SND.UNA: sent-unacknowledged, then unsent. Made when data is first queued (its limit is kept here until then).</summary>
    public ByteRing Buffer => _buffer ??= new ByteRing(_bufferLimit);
    private ByteRing? _buffer;
    private int _bufferLimit;
    /// <summary>Bytes in the send ring, without making it.</summary>
    public int BufferCount => _buffer?.Count ?? 0;
    /// <summary>The send ring's limit (the socket's send buffer size), without making the ring.</summary>
    public int BufferLimit
    {
        get => _buffer?.Limit ?? _bufferLimit;
        set { if (_buffer is null) _bufferLimit = value; else _buffer.Limit = value; }
    }
    /// <summary>Gives the ring's array back (the ring, if made, stays).</summary>
    public void ReleaseBuffer() => _buffer?.Release();
    /// <summary>SND.UNA, SND.NXT, SND.WND, SND.WL1, SND.WL2.</summary>
    public uint Una { get; private set; }
    /// <summary>SND.NXT; loss recovery and path MTU discovery move it back (go-back-N).</summary>
    public uint Nxt;
    public uint Wnd { get; private set; }
    public uint Wl1 { get; private set; }
    public uint Wl2 { get; private set; }
    /// <summary>Highest sequence number sent; SND.NXT falls back to SND.UNA after a timeout (go-back-N).</summary>
    public uint Max { get; private set; }
    /// <summary>Largest window the peer has offered (RFC 5961 5.2, sender SWS avoidance).</summary>
    public uint MaxWnd { get; private set; }

    // ---- congestion control (RFC 5681, RFC 9438) and loss recovery (RFC 6582, RFC 6675) ----
    public uint Cwnd, Ssthresh = uint.MaxValue;
    // The congestion control, loss recovery and transmit records are made at their first use (an idle connection that
    // never sent data holds none: issue 18's memory per idle connection); until then they would have nothing to do.
    private ICongestionControl? _cc;
    private ILossRecovery? _recovery;
    private SentSegments? _sent;
    /// <summary>Departure times when the congestion control paces (BBR); made at the first paced transmission.</summary>
    private Pacer? _pacer;
    /// <summary>The pacer (made if none yet): its departure times, for the internals and the rule tests.</summary>
    public Pacer Pacer => _pacer ??= new Pacer();
    private byte _ccAlgorithm = NoAlgorithm; // a CongestionAlgorithm once the connection opened
    private const byte NoAlgorithm = byte.MaxValue;
    private RecoveryKind _recoveryKind;
    private uint _negotiatedUna;

    /// <summary>The congestion control chosen from the settings when the connection opened (made at its first use).</summary>
    public ICongestionControl Cc => _cc ??= CongestionControls.Create((CongestionAlgorithm)_ccAlgorithm, _c.Iss, _c.Layer.Settings.InitialWindowSegments);
    /// <summary>The congestion control if it has been made (snapshots read it without making one).</summary>
    public ICongestionControl? CcIfMade => _cc;
    /// <summary>The name of the congestion control, without making it; empty before the connection opened.</summary>
    public string CcName => _cc?.Name ?? (_ccAlgorithm != NoAlgorithm ? CongestionControls.Create((CongestionAlgorithm)_ccAlgorithm).Name : "");

    /// <summary>
    /// Chosen when the options are negotiated (<see cref="OnNegotiated"/>): SACK recovery when both ends allow SACK, else
    /// NewReno; made at its first use, starting from SND.UNA as it was at the negotiation.
    /// </summary>
    public ILossRecovery Recovery => _recovery ??= _c.CreateRecovery(_recoveryKind, _negotiatedUna);
    /// <summary>The loss recovery if it has been made (null before the options are negotiated or before its first use).</summary>
    public ILossRecovery? RecoveryIfMade => _recovery;
    /// <summary>The recovery's figures: of a fresh one (as it would be) while none has been made; null before the negotiation.</summary>
    public LossRecoveryStats? RecoveryStats => _recovery?.Stats ?? (_recoveryKind == RecoveryKind.None ? null : _c.CreateRecovery(_recoveryKind, _negotiatedUna).Stats);

    /// <summary>The congestion control to make, when the connection opens.</summary>
    public void ChooseCongestionControl(CongestionAlgorithm algorithm)
    {
        _ccAlgorithm = (byte)algorithm;
        _cc = null;
    }

    /// <summary>The options are negotiated: the loss recovery to make, from SND.UNA as it is now.</summary>
    public void OnNegotiated(RecoveryKind kind)
    {
        _recoveryKind = kind;
        _negotiatedUna = Una;
        _recovery = null;
    }

    // ---- transmit records and delivery rate ----
    /// <summary>One record per sent segment in [SND.UNA, SND.MAX): send times, SACK/lost state, rate-sample fields.</summary>
    public SentSegments Sent => _sent ??= new SentSegments(this);
    /// <summary>The transmit records if made (none until the first data leaves): for readers that must not make them.</summary>
    public SentSegments? SentIfMade => _sent;
    /// <summary>
    /// The delivery rate estimator (draft-cheng-iccrg-delivery-rate-estimation); a struct used in place, in a box made at
    /// its first use (with the application-limited mark the idle sender's output gave before: see <see cref="Output"/>).
    /// </summary>
    public ref DeliveryRateSampler Rate
    {
        get
        {
            if (_rate is null)
            {
                _rate = new StrongBox<DeliveryRateSampler>();
                if (_appLimitedBeforeRate) _rate.Value.MarkAppLimited(0);
            }
            return ref _rate.Value;
        }
    }
    private StrongBox<DeliveryRateSampler>? _rate;
    private bool _appLimitedBeforeRate;
    /// <summary>The delivery rate of the sample the last ACK that delivered data gave (the sample also went to the congestion control).</summary>
    public double LastDeliveryRate => _rate?.Value.LastDeliveryRate ?? 0;

    // ---- retransmission (RFC 6298) ----
    /// <summary>SRTT, RTTVAR, RTO and its backoff; a struct used in place.</summary>
    public RttEstimator Rtt;
    /// <summary>Retransmissions (of the SYN, or of data) since the last ACK of something new.</summary>
    public int Retries;
    /// <summary>
    /// This connection's loss episodes so far: fast recoveries entered and retransmission timeouts (of the SYN or of
    /// data). The counters are the layer's sums; these let the internals recorder mark every episode, also two in one
    /// loop turn.
    /// </summary>
    public ushort FastRecoveries, RetransmitTimeouts;

    // ---- SYN and FIN ----
    /// <summary>The user shut down sending: a FIN follows the queued data.</summary>
    public bool FinQueued;
    public bool FinAcked { get; private set; }
    public bool SynAcked { get; private set; }

    // ---- statistics ----
    public long BytesSent { get; private set; }
    public long Retransmits { get; private set; }

    private TcpCounters Counters => _c.Layer.Counters;

    /// <summary>Our SYN takes <paramref name="iss"/>: SND.UNA = ISS, SND.NXT = ISS + 1.</summary>
    public void Start(uint iss)
    {
        Una = iss;
        Nxt = Max = iss + 1;
    }

    /// <summary>The peer's SYN offers its window, never scaled in a SYN (RFC 7323 2.2).</summary>
    public void OnPeerSyn(ref TcpSegment syn)
    {
        Wnd = syn.Window;
        MaxWnd = Wnd;
        Wl1 = syn.Seq;
    }

    /// <summary>SYN-SENT: the SYN-ACK acknowledges our SYN and offers its window (unscaled).</summary>
    public void OnSynAck(ref TcpSegment synAck)
    {
        Una = synAck.Ack;
        SynAcked = true;
        OnPeerSyn(ref synAck);
        Wl2 = synAck.Ack;
    }

    /// <summary>SYN-RECEIVED: the handshake's ACK gives the first scaled window.</summary>
    public void OnHandshakeAck(ref TcpSegment seg)
    {
        Wnd = (uint)seg.Window << _c.SndWndShift;
        MaxWnd = Math.Max(MaxWnd, Wnd);
        Wl1 = seg.Seq;
        Wl2 = seg.Ack;
    }

    /// <summary>The MSS is known: the initial window (RFC 6928: IW = min(10*MSS, max(2*MSS, 14600)) for 10 segments).</summary>
    public void SetInitialWindow(int mss, int segments)
    {
        if (Cwnd != 0) return;
        Cwnd = (uint)(segments >= 10 ? Math.Min(segments * mss, Math.Max(2 * mss, 14600 * segments / 10)) : segments * mss);
    }

    /// <summary>
    /// The fifth check's ACK processing (RFC 9293 3.10.7.4; RFC 5681, RFC 6582, RFC 6675 through the recovery;
    /// RFC 6298 and RFC 7323 4.1 for RTT samples). The segment's ACK is within the send window.
    /// </summary>
    public AckResult OnAck(ref TcpSegment seg, TimeSpan now)
    {
        ref readonly var opts = ref seg.Options;
        if (opts.SackCount == 0 && Bare) return OnAckBare(ref seg, now); // only the SYN or a FIN can be acknowledged
        var ack = seg.Ack;
        if (ack == Una && Max == Una && opts.SackCount == 0)
        {
            // Nothing in flight and nothing new acknowledged (a receiving connection's every data segment): no duplicate
            // ACK (RFC 5681 2 needs outstanding data), no RTT or delivery-rate sample, nothing for the recovery or the
            // congestion control; only the window (RFC 9293 3.10.7.4). As Linux's tcp_ack with no packets out (its
            // no_queue path: the window update, no congestion control call).
            UpdateWindow(ref seg, (uint)seg.Window << _c.SndWndShift, now);
            return AckResult.NothingNew;
        }
        Rate.AckTime = now; // for the delivered segments' callbacks (OnDelivered) during this ACK
        var priorInFlight = Recovery.Pipe();
        var e = new AckEvent { Ack = ack, Sack = opts.Sack[..opts.SackCount], HasTimestamp = opts.HasTimestamp, TsEcr = opts.TsEcr, PriorUna = Una };
        FindDsack(ref e);
        (Recovery as RackRecovery)?.BeginAck(opts.HasTimestamp, opts.TsEcr);
        Recovery.OnAckArrived(ref e);
        e.Delivered = MarkSacked(ref e);

        var window = (uint)seg.Window << _c.SndWndShift;
        if (Seq.Le(ack, Una))
        {
            // RFC 5681 2: a duplicate ACK carries no data, no SYN/FIN, the same window, while data is outstanding.
            // RFC 6675 2: with SACK, one that SACKs new data is a duplicate whatever its window (Linux opens its
            // window as it reads, so its duplicates rarely repeat the window).
            if (ack == Una && seg.Payload.Length == 0 && !seg.Has(TcpFlags.Fin) && (window == Wnd || e.NewlySacked) && Max != Una)
                Recovery.OnDuplicateAck(ref e, now);
            UpdateWindow(ref seg, window, now);
            SampleRtt(now);
            Recovery.OnAckDone(ref e, now);
            TakeRateSample(priorInFlight, now);
            return AckResult.NothingNew;
        }

        // New data acknowledged.
        var acked = ack - Una;
        // Our SYN still unacknowledged? A flag, not SND.UNA <= ISS: that comparison wraps after 2^31 bytes.
        var synAcked = !SynAcked;
        if (synAcked) { acked--; SynAcked = true; }
        var dataAcked = (int)Math.Min(acked, (uint)BufferCount);
        var flightBefore = Nxt - Una; // in flight when this ACK arrived: our estimate of RFC 7661's pipeACK
        _buffer?.Discard(dataAcked); // none made: nothing was queued, dataAcked is 0
        var finAcked = FinQueued && !FinAcked && acked > (uint)dataAcked;
        if (finAcked) FinAcked = true;
        Una = ack;
        if (Seq.Lt(Nxt, Una)) Nxt = Una;
        e.DataAcked = (uint)dataAcked;
        e.Delivered += Sent.OnCumulativeAck(ack);
        Recovery.OnSndUnaAdvanced(ref e, now);
        if (BufferCount == 0) _buffer?.ReleaseIfEmpty();

        // RTT (RFC 6298): from the transmit records (the latest segment delivered that was sent once: Karn), else the
        // echoed timestamp (RFC 7323 4.1), else the one timed segment. Not from TSecr after a timeout: the echoed
        // TS.Recent may then be that of a much older segment (the peer does not update TS.Recent from segments below
        // RCV.NXT), which would inflate SRTT (Karn's rule, applied to TSecr).
        if (!SampleRtt(now))
        {
            if (_c.TsEnabled && opts.HasTimestamp && opts.TsEcr != 0)
            {
                if (Retries == 0) Rtt.Sample(TimeSpan.FromMilliseconds((int)(_c.TsNow(now) - opts.TsEcr)));
            }
            else Rtt.OnAck(ack, now);
        }
        Rtt.Backoff = 0;
        Retries = 0;

        // The window's response: recovery's first (leaving it, partial ACKs, loss detection), else growth.
        var wasInRecovery = Recovery.InRecovery;
        Recovery.OnNewAck(ref e, now);
        Recovery.OnAckDone(ref e, now);
        TakeRateSample(priorInFlight, now);
        if (!wasInRecovery && !Recovery.InRecovery && !synAcked && dataAcked > 0)
        {
            // RFC 7661 4.3: grow cwnd only while it is validated, i.e. the flight uses at least half of it. An
            // application- or receive-window-limited sender would otherwise inflate cwnd without bound and then
            // burst it all the first time more data or a slower path appears.
            if (flightBefore >= Cwnd / 2) Cwnd = Cc.OnAck(Cwnd, Ssthresh, (uint)dataAcked, (uint)_c.SndMss, now, Rtt.Srtt);
            else Cc.OnNotCwndLimited(now);
        }

        // RTO (RFC 6298 5.2/5.3): stop when all is acknowledged, else restart.
        Persisting = false;
        _c.RtoAt = Max == Una ? TcpConnection.Never : now + Rtt.Rto;
        UpdateWindow(ref seg, window, now);
        if (dataAcked > 0) BytesSent += dataAcked;
        return finAcked ? AckResult.AckedFin : AckResult.AckedData;
    }

    /// <summary>
    /// RFC 2883 4: the first SACK block reports a duplicate when it lies below SEG.ACK, or within the second block.
    /// Counted; the block is not SACK information.
    /// </summary>
    private void FindDsack(ref AckEvent e)
    {
        if (e.Sack.Length == 0) return;
        var b = e.Sack[0];
        if (!Seq.Lt(b.Left, b.Right)) return;
        var dsack = Seq.Le(b.Right, e.Ack)
            || (e.Sack.Length > 1 && Seq.Ge(b.Left, e.Sack[1].Left) && Seq.Le(b.Right, e.Sack[1].Right));
        if (!dsack) return;
        e.Dsack = true;
        e.DsackLeft = b.Left;
        e.DsackRight = b.Right;
        Counters.DsacksReceived++;
    }

    /// <summary>Marks the transmit records the ACK's SACK blocks cover (valid ones: above SEG.ACK and SND.UNA, up to SND.MAX); returns the bytes newly SACKed.</summary>
    private uint MarkSacked(ref AckEvent e)
    {
        uint added = 0;
        for (int i = e.Dsack ? 1 : 0; i < e.Sack.Length; i++)
        {
            var b = e.Sack[i];
            var left = Seq.Max(b.Left, Seq.Max(Una, e.Ack));
            if (!Seq.Lt(left, b.Right) || Seq.Gt(b.Right, Max)) continue;
            added += Sent.MarkSacked(left, b.Right);
        }
        return added;
    }

    /// <summary>An RTT sample from the records this ACK delivered (RFC 6298 2, Karn: only segments sent once); false when none.</summary>
    private bool SampleRtt(TimeSpan now)
    {
        if (!Rate.HasRtt) return false;
        Rtt.Sample(Rate.CurrentRtt);
        Rtt.SampleMinRtt(Rate.CurrentRtt, now);
        return true;
    }

    /// <summary>The ACK's delivery-rate sample, handed to the congestion control (BBR builds its model from these).</summary>
    private void TakeRateSample(long priorInFlight, TimeSpan now)
    {
        var rs = Rate.OnAckDone(Rtt.MinRtt, priorInFlight);
        if (rs.NewlyDelivered != 0 || rs.NewlyLost != 0) Cc.OnRateSample(in rs, now);
        // A model-based algorithm (BBR) sets cwnd itself, after the recovery's say (PRR), as Linux's cong_control.
        if (Cc.SetsWindow)
        {
            var phase = Recovery.InRecovery ? LossPhase.Recovery : Recovery is RackRecovery { InLoss: true } ? LossPhase.Loss : LossPhase.Open;
            Cwnd = Cc.WindowAfterAck(Cwnd, Recovery.Pipe(), rs.NewlyDelivered, rs.NewlyLost, phase, (uint)_c.SndMss, now);
        }
    }

    /// <summary>A record's data reached the peer (cumulatively acknowledged or SACKed) during the current ACK.</summary>
    void ISentSegmentObserver.OnDelivered(in SentSegment segment, uint bytes)
    {
        Rate.OnDelivered(in segment, bytes, Rate.AckTime);
        Recovery.OnSegmentDelivered(in segment, Rate.AckTime);
    }

    /// <summary>SND.WND follows segments that are not older than the last update (RFC 9293 3.10.7.4, SND.WL1/WL2).</summary>
    private void UpdateWindow(ref TcpSegment seg, uint window, TimeSpan now)
    {
        if (Seq.Lt(Wl1, seg.Seq) || (Wl1 == seg.Seq && Seq.Le(Wl2, seg.Ack)))
        {
            Wnd = window;
            Wl1 = seg.Seq;
            Wl2 = seg.Ack;
            if (window > MaxWnd) MaxWnd = window;
            if (window > 0 && Persisting)
            {
                Persisting = false;
                _c.RtoAt = Max == Una ? TcpConnection.Never : now + Rtt.Rto;
                Rtt.Backoff = 0;
            }
        }
    }

    /// <summary>The connection closed: the send ring, the transmit records and the recovery's state go.</summary>
    public void OnClosed()
    {
        _buffer?.Release();
        _sent?.Clear();
        _recovery?.OnClosed();
    }
}

/// <summary>What an ACK acknowledged.</summary>
internal enum AckResult
{
    /// <summary>Nothing new (a duplicate or an old ACK; the window may have moved).</summary>
    NothingNew,
    AckedData,
    /// <summary>New data and our FIN.</summary>
    AckedFin,
}
