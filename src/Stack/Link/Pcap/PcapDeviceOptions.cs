namespace NetStack.Link;

/// <summary>How a <see cref="PcapDevice"/> is opened.</summary>
public sealed record PcapDeviceOptions
{
    /// <summary>
    /// Size of the kernel's capture ring (libpcap's buffer size). Frames that overflow it are lost before the
    /// stack sees them and show up in <see cref="LinkStatistics.DroppedByDevice"/>. A ring with a slot for every
    /// segment of the largest receive window (Tcp.ReceiveBufferMax, 6 MiB, over the MSS: ~4,300 slots of 1,600 bytes at
    /// MTU 1500, a 7 MiB ring) cannot overflow with one connection's data however long the loop is held up; the default,
    /// 32 MiB (~21,000 slots, 41 MiB mapped: two slots to a 4 KiB block), leaves room for several. A smaller ring did
    /// not lower bulk receive's CPU per frame (2 to 32 MiB measured alike: docs/benchmarks.md).
    /// </summary>
    public int KernelBufferSize { get; init; } = 32 * 1024 * 1024;

    /// <summary>
    /// Largest frame captured whole; null (the default) means the interface's MTU plus an Ethernet header and a
    /// VLAN tag. libpcap sizes each slot of the kernel ring from this when the adapter has offloads (GSO/GRO) on,
    /// so 65535 would leave only ~500 slots in 32 MiB and bulk receive would overflow. Longer frames (GRO/LRO
    /// aggregates: turn those off with ethtool -K dev gro off lro off) are dropped and counted in
    /// <see cref="PcapDevice.FramesTruncated"/>.
    /// </summary>
    public int? Snaplen { get; init; }

    /// <summary>
    /// Queue transmitted frames and send them in <see cref="ILinkDevice.Flush"/> with one sendmmsg(2) per batch,
    /// instead of one send per frame. On by default: see docs/lab.md for the measurement.
    /// </summary>
    public bool BatchTransmit { get; init; } = true;

    /// <summary>
    /// Send straight to the driver (PACKET_QDISC_BYPASS), skipping the qdisc layer. Other sniffers on the same
    /// host (tcpdump on this interface) then no longer see our outgoing frames; the <see cref="CaptureTap"/> still does.
    /// Not for <see cref="SegmentationOffload"/>'s GSO packets, which the kernel must cut on the qdisc path (its direct
    /// transmit drops them).
    /// </summary>
    public bool BypassQdisc { get; init; }

    /// <summary>
    /// With <see cref="BatchTransmit"/>: consecutive full-sized TCP segments of a connection in a batch leave as one
    /// GSO packet (PACKET_VNET_HDR) that the kernel cuts back into the same frames, as its own TCP does; on by default
    /// (bulk send: see docs/benchmarks.md). The frames on the wire do not change. In effect only while the adapter's
    /// TCP segmentation offload is off (ethtool -K dev tso off, or tx off), where the kernel cuts them in software.
    /// </summary>
    public bool SegmentationOffload { get; init; } = true;

    /// <summary>Frames queued before a batch is sent even without a Flush.</summary>
    public int TransmitBatchSize { get; init; } = 64;

    /// <summary>
    /// A named network namespace (as in <c>ip netns add</c>, or a path such as /proc/123/ns/net) to open the
    /// adapter in, without moving the calling thread or process. Null: the calling thread's namespace.
    /// </summary>
    public string? NetworkNamespace { get; init; }

    /// <summary>
    /// The stack's address, to install the host ingress drop for it while the device is open: an nftables rule at the
    /// adapter's ingress that drops IPv4 to this address for the host kernel after the capture has copied it, so the
    /// host does not also route and drop every frame meant for the stack (~24% of the loop's CPU per frame in bulk
    /// receive). The host keeps its own traffic. Removed on Dispose and at process exit; a crashed process's rule is
    /// removed by the next install. Needs nftables' nft and root. Null (the default): no rule. See
    /// <see cref="HostIngressDropRule"/>.
    /// </summary>
    public Ipv4Address? HostIngressDrop { get; init; }

    /// <summary>How often pcap's own drop counters are read into <see cref="LinkStatistics.DroppedByDevice"/>.</summary>
    public TimeSpan StatisticsInterval { get; init; } = TimeSpan.FromSeconds(1);

    /// <summary>Read frames with pcap_next_ex (libpcap copies each one) instead of pcap_dispatch: for measurements.</summary>
    internal bool CopyingReceive { get; init; }

    internal void Validate()
    {
        if (KernelBufferSize < 64 * 1024) throw new ArgumentOutOfRangeException(nameof(KernelBufferSize), KernelBufferSize, "KernelBufferSize must be at least 64 KiB (32 MiB suits bulk transfers).");
        if (Snaplen is not null and (< 68 or > 262144)) throw new ArgumentOutOfRangeException(nameof(Snaplen), Snaplen, "Snaplen must be between 68 and 262144.");
        if (TransmitBatchSize is < 1 or > 1024) throw new ArgumentOutOfRangeException(nameof(TransmitBatchSize), TransmitBatchSize, "TransmitBatchSize must be between 1 and 1024.");
        if (StatisticsInterval < TimeSpan.Zero) throw new ArgumentOutOfRangeException(nameof(StatisticsInterval), "StatisticsInterval cannot be negative.");
    }
}

/// <summary>libpcap could not be loaded.</summary>
public sealed class PcapUnavailableException : Exception
{
    public PcapUnavailableException(string message, Exception? inner = null) : base(message, inner) { }
}
