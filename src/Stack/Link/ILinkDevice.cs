namespace NetStack.Link;

/// <summary>Receives frames from a link device. The span is valid only during the call.</summary>
public interface IFrameSink
{
    void OnFrame(ReadOnlySpan<byte> frame, TimeSpan now);

    /// <summary>
    /// A frame whose TCP checksum is pending, from a device that vouches nothing could have altered it since the sending
    /// stack built it (<see cref="VirtualWire.TcpChecksumOffload"/>: both ends in this process, as Linux's
    /// CHECKSUM_PARTIAL between two veth ends): an IPv4 frame (header without options, not fragmented) carrying TCP whose
    /// checksum field holds only the pseudo-header sum (<see cref="Checksum.CompletePartial"/>). A sink that knows this
    /// (the stack's Ethernet layer) may pass it up unverified; the default completes the checksum in place and hands the
    /// frame to <see cref="OnFrame"/>, so a sink that records, alters or checks frames (a capture, a test) sees it final.
    /// The span is valid only during the call.
    /// </summary>
    void OnFrameChecksumPending(Span<byte> frame, TimeSpan now)
    {
        Ethernet.CompleteTcpChecksum(frame);
        OnFrame(frame, now);
    }
}

/// <summary>
/// An Ethernet link: a pcap adapter, a port on the in-memory <see cref="VirtualWire"/>, or a wrapper
/// such as <see cref="CaptureTap"/>. All methods except <see cref="Wake"/> and
/// <see cref="WaitForFrames"/> are called only from the owning stack's loop.
/// </summary>
public interface ILinkDevice : IDisposable
{
    /// <summary>Interface or port name, e.g. "u0".</summary>
    string Name { get; }

    /// <summary>The adapter's own hardware address (the stack's default MAC).</summary>
    MacAddress HardwareAddress { get; }

    /// <summary>Largest IP datagram the link carries (Ethernet payload), normally 1500.</summary>
    int Mtu { get; }

    /// <summary>
    /// Hands up to <paramref name="max"/> received frames to <paramref name="sink"/> without blocking.
    /// Returns how many were handed; fewer than max means the device had no more ready.
    /// </summary>
    int Receive(IFrameSink sink, TimeSpan now, int max);

    /// <summary>Sends (or queues for <see cref="Flush"/>) one complete Ethernet frame without FCS.</summary>
    void Transmit(ReadOnlySpan<byte> frame, TimeSpan now);

    /// <summary>Pushes out anything <see cref="Transmit"/> batched. Called once per loop turn.</summary>
    void Flush(TimeSpan now);

    /// <summary>When a frame already in flight becomes receivable on its own (virtual wire delay); null if none.</summary>
    TimeSpan? NextArrival { get; }

    /// <summary>
    /// Blocks the calling thread up to <paramref name="timeout"/> until frames may be ready or <see cref="Wake"/> is called:
    /// the loop thread, or a caller waiting on the device for its call (StackConfig.CallerWaitMicroseconds); one thread at a time.
    /// </summary>
    void WaitForFrames(TimeSpan timeout);

    /// <summary>Interrupts <see cref="WaitForFrames"/> from any thread (API work was posted to the loop).</summary>
    void Wake();

    /// <summary>
    /// Until <see cref="ReleaseArrivalWake"/>, frames that arrive do not end a <see cref="WaitForFrames"/> in progress on
    /// the loop thread: the one who holds the stack's turn and calls this takes them itself (a caller running the turn
    /// inline whose peer answers inside its own send). Frames still unread at the release end the wait as usual. Called
    /// only by the holder of the stack's turn, in pairs. Devices whose arrivals wake nobody of their own (the in-memory
    /// wire) ignore it; wrappers pass it on.
    /// </summary>
    void HoldArrivalWake() { }

    /// <summary>Ends <see cref="HoldArrivalWake"/>.</summary>
    void ReleaseArrivalWake() { }

    /// <summary>Device-level counters (e.g. pcap's own drop count), read on the loop.</summary>
    LinkStatistics Statistics { get; }

    /// <summary>
    /// Tells the device which MAC the stack answers to when it is not the adapter's own (so a capture filter
    /// passes its frames). The stack calls it once, before its loop starts. Devices that do not filter ignore it.
    /// </summary>
    void SetStackAddress(MacAddress mac) { }

    /// <summary>
    /// True when the device takes IPv4 frames carrying TCP whose checksum field holds only the pseudo-header sum
    /// (<see cref="TransmitChecksumPending"/>) and completes the checksum itself, as a NIC with checksum offload does.
    /// A device that segments TCP in the kernel (pcap's <see cref="PcapDeviceOptions.SegmentationOffload"/>) has the
    /// checksum computed there anyway; the stack then skips its own. Wrappers (a capture tap) leave it false.
    /// </summary>
    bool CompletesTcpChecksum => false;

    /// <summary>
    /// As <see cref="Transmit"/>, for an IPv4 frame (header without options, not fragmented) carrying a TCP segment
    /// whose checksum field holds the pseudo-header sum (<see cref="Checksum.CompletePartial"/>): the device fills in
    /// the checksum. Called only when <see cref="CompletesTcpChecksum"/> is true.
    /// </summary>
    void TransmitChecksumPending(ReadOnlySpan<byte> frame, TimeSpan now) =>
        throw new NotSupportedException($"{GetType().Name} does not complete TCP checksums (CompletesTcpChecksum is false).");

    /// <summary>
    /// A buffer of the device's own of at least <paramref name="frameLength"/> bytes that the stack may build its next frame
    /// in, from its first byte: <see cref="Transmit"/> or <see cref="TransmitChecksumPending"/> of a span that starts there
    /// then takes the frame without copying it (the in-memory wire's slot). Empty when the device lends none (the default)
    /// or none that large. The buffer stays the device's: the stack writes it only on the loop, until its next call on the
    /// device; a frame built there and not transmitted is simply forgotten (the next lend may return the same buffer).
    /// Wrappers (a capture tap) lend none.
    /// </summary>
    Memory<byte> LendTransmitBuffer(int frameLength) => default;
}

/// <summary>What the device itself saw, below the stack.</summary>
public sealed class LinkStatistics
{
    public long FramesReceived;
    public long FramesSent;
    public long BytesReceived;
    public long BytesSent;
    /// <summary>Frames the device or capture library dropped before the stack saw them (pcap's ps_drop + ps_ifdrop).</summary>
    public long DroppedByDevice;
    /// <summary>Frames dropped because they were our own transmissions echoed back by the capture.</summary>
    public long OwnFramesIgnored;
    /// <summary>Frames the device failed to send.</summary>
    public long SendErrors;
    /// <summary>
    /// Summed over the frames received, µs from the kernel's capture of each (its pcap timestamp) to the stack taking it
    /// from the ring: the loop's wake-up, mostly (÷ FramesReceived for the mean). Devices without capture timestamps
    /// (the virtual wire) leave it 0.
    /// </summary>
    public long ReceiveWaitMicroseconds;
}
