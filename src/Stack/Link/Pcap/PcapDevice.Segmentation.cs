using System.Buffers.Binary;
using System.Runtime.InteropServices;

namespace NetStack.Link;

/// <summary>
/// Transmit segmentation offload: consecutive full-sized TCP segments of one connection in a transmit batch leave as
/// one send of a virtio_net_hdr GSO packet (PACKET_VNET_HDR), which the kernel cuts back into the very same frames
/// (sequence numbers, IP ids counting up, checksums) in skb_segment: one skb allocation, one header parse and one
/// system-call message for up to 64 KiB instead of one per frame. The kernel's own TCP sends this way. Used only when
/// the adapter's TSO is off (as in the benchmark), so the kernel does the cutting in software and the frames are
/// the same; with TSO on, a veth would hand the large packets to its peer whole.
/// </summary>
/// <remarks>
/// Frames are still built and copied into the batch's slots one by one; the batch is then described with iovecs:
/// a run's first frame whole (its IP total length, TCP flags and checksum rewritten for the whole run, the checksum
/// as the pseudo-header sum the kernel completes: RFC 9293 3.1 with the partial-checksum convention of virtio) and
/// the following frames' payloads only. A run holds frames whose headers match but for the IP length, id (+1 each)
/// and checksum and the TCP sequence number (contiguous), checksum and, on the last frame only, PSH; every frame but
/// the last carries the first one's payload length (the segment size). Everything else leaves as it is, one message
/// each with an empty header. All messages go through one second packet socket (bound to the adapter, receiving
/// nothing), so the order of frames on the wire stays the order they were sent in.
/// </remarks>
public sealed unsafe partial class PcapDevice
{
    /// <summary>struct virtio_net_hdr (include/uapi/linux/virtio_net.h), in the host's byte order on a packet socket.</summary>
    [StructLayout(LayoutKind.Sequential, Pack = 1)]
    private struct VirtioNetHdr
    {
        public byte Flags;
        public byte GsoType;
        public ushort HdrLen;
        public ushort GsoSize;
        public ushort CsumStart;
        public ushort CsumOffset;
    }

    private const byte VirtioNeedsCsum = 1;   // VIRTIO_NET_HDR_F_NEEDS_CSUM
    private const byte VirtioGsoTcpV4 = 1;    // VIRTIO_NET_HDR_GSO_TCPV4
    private const int IpOffset = 14, TcpOffset = 34;
    private const byte TcpAck = 0x10, TcpPsh = 0x08;

    private int _gsoFd = -1;
    private VirtioNetHdr* _gsoHdrs;     // one per message
    private Native.IoVec* _gsoIov;      // up to two per frame: the header and the frame (or its payload)
    private Native.MMsgHdr* _gsoMsgs;
    private int[] _gsoFrames = [];      // frames per message
    private long[] _gsoBytes = [];      // bytes on the wire per message
    private bool _gsoRefused;

    /// <summary>Frames that left inside a GSO send (the kernel cut them from a larger packet), since the device opened.</summary>
    public long FramesSegmentedByKernel { get; private set; }

    /// <summary>GSO packets sent (messages of more than one frame), since the device opened: FramesSegmentedByKernel ÷ this is the frames per packet.</summary>
    public long SegmentationPackets { get; private set; }

    /// <summary>True when transmit segmentation offload is in use (<see cref="PcapDeviceOptions.SegmentationOffload"/>).</summary>
    public bool SegmentationOffload => _gsoFd >= 0;

    /// <summary>
    /// With segmentation offload the kernel computes the TCP checksum of every segment it cuts from a GSO packet, so
    /// the stack leaves it to the device (<see cref="ILinkDevice.CompletesTcpChecksum"/>): a frame that leaves inside
    /// a GSO packet gets it from the kernel, one that leaves alone from <see cref="CompleteChecksum"/>.
    /// </summary>
    public bool CompletesTcpChecksum => _gsoFd >= 0;

    /// <summary>Frames whose TCP checksum the device completed itself (they left alone, not inside a GSO packet).</summary>
    public long ChecksumsCompleted { get; private set; }

    public void TransmitChecksumPending(ReadOnlySpan<byte> frame, TimeSpan now)
    {
        if (!Enter()) return;
        try { TransmitEntered(frame, checksumPending: true); }
        finally { Exit(); }
    }

    /// <summary>Fills in the TCP checksum of the frame in <paramref name="slot"/> (its field holds the pseudo-header sum).</summary>
    private void CompleteChecksum(int slot)
    {
        _txChecksumPending[slot] = false;
        CompleteChecksum(Slot(slot));
    }

    private void CompleteChecksum(Span<byte> f)
    {
        if (Ethernet.CompleteTcpChecksum(f)) ChecksumsCompleted++;
    }

    /// <summary>A frame too long for a slot, sent on its own: completed in a copy (the caller's span is read-only).</summary>
    private void SendOneCompleted(ReadOnlySpan<byte> frame)
    {
        var copy = System.Buffers.ArrayPool<byte>.Shared.Rent(frame.Length);
        try
        {
            var f = copy.AsSpan(0, frame.Length);
            frame.CopyTo(f);
            CompleteChecksum(f);
            SendOne(f);
        }
        finally { System.Buffers.ArrayPool<byte>.Shared.Return(copy); }
    }

    private void InitSegmentation(int fd)
    {
        if (fd < 0 || _batchCapacity == 0) return;
        _gsoFd = fd;
        _gsoHdrs = (VirtioNetHdr*)NativeMemory.AllocZeroed((nuint)(sizeof(VirtioNetHdr) * _batchCapacity));
        _gsoIov = (Native.IoVec*)NativeMemory.AllocZeroed((nuint)(sizeof(Native.IoVec) * 2 * _batchCapacity));
        _gsoMsgs = (Native.MMsgHdr*)NativeMemory.AllocZeroed((nuint)(sizeof(Native.MMsgHdr) * _batchCapacity));
        _gsoFrames = new int[_batchCapacity];
        _gsoBytes = new long[_batchCapacity];
    }

    private void DisposeSegmentation()
    {
        if (_gsoFd >= 0) Native.close(_gsoFd);
        _gsoFd = -1;
        if (_gsoHdrs != null) NativeMemory.Free(_gsoHdrs);
        if (_gsoIov != null) NativeMemory.Free(_gsoIov);
        if (_gsoMsgs != null) NativeMemory.Free(_gsoMsgs);
        _gsoHdrs = null;
        _gsoIov = null;
        _gsoMsgs = null;
    }

    /// <summary>
    /// Opens the transmit socket in the calling thread's namespace: AF_PACKET, protocol 0 (receives nothing), bound to
    /// <paramref name="interfaceName"/>, with PACKET_VNET_HDR. -1 (and a warning) when the kernel refuses any step.
    /// </summary>
    /// <remarks>
    /// Never with PACKET_QDISC_BYPASS (<see cref="PcapDeviceOptions.BypassQdisc"/> applies to the capture socket only):
    /// the kernel's direct transmit (__dev_direct_xmit) drops a packet that has to be cut first (its
    /// validate_xmit_skb_list returns other skbs than it was given), so every GSO packet was lost with ENOBUFS and a bulk
    /// send stalled (the bench's send with the option: a timeout).
    /// </remarks>
    private static int OpenSegmentationSocket(string interfaceName, List<string> warnings)
    {
        var index = Native.if_nametoindex(interfaceName);
        if (index == 0) { warnings.Add($"SegmentationOffload: no index for '{interfaceName}'"); return -1; }
        var fd = Native.socket(Native.AF_PACKET, Native.SOCK_RAW | Native.SOCK_CLOEXEC, 0);
        if (fd < 0) { warnings.Add($"SegmentationOffload: socket errno {Marshal.GetLastPInvokeError()}"); return -1; }
        // Only where the kernel cuts the packets itself. With TSO on, a veth hands them to its peer whole (a capture
        // there would see other packets than without the option) and a NIC cuts them in hardware.
        if (Native.ReadTso(fd, interfaceName) != false)
        {
            Native.close(fd);
            return -1;
        }
        int one = 1;
        var addr = new Native.SockAddrLl { Family = Native.AF_PACKET, IfIndex = (int)index };
        // A GSO send holds up to 64 KiB until the receiver has taken it: room for a full batch of them.
        int sndbuf = 8 * 1024 * 1024;
        if (Native.setsockopt(fd, Native.SOL_PACKET, Native.PACKET_VNET_HDR, &one, sizeof(int)) != 0
            || Native.bind(fd, &addr, (uint)sizeof(Native.SockAddrLl)) != 0)
        {
            warnings.Add($"SegmentationOffload: errno {Marshal.GetLastPInvokeError()} (off)");
            Native.close(fd);
            return -1;
        }
        if (Native.setsockopt(fd, Native.SOL_SOCKET, Native.SO_SNDBUFFORCE, &sndbuf, sizeof(int)) != 0)
            _ = Native.setsockopt(fd, Native.SOL_SOCKET, Native.SO_SNDBUF, &sndbuf, sizeof(int));
        return fd;
    }

    /// <summary>Sends the queued slots as messages on the segmentation socket (see the type's remarks).</summary>
    private void SendQueuedSegmented()
    {
        int count = _txQueued, messages = 0, iov = 0;
        _txQueued = 0;
        for (int i = 0; i < count;)
        {
            var hdr = _gsoHdrs + messages;
            *hdr = default;
            var msg = _gsoMsgs + messages;
            msg->Hdr.Iov = _gsoIov + iov;
            _gsoIov[iov++] = new Native.IoVec { Base = (byte*)hdr, Len = (nuint)sizeof(VirtioNetHdr) };
            _gsoIov[iov++] = _txIov[i];
            var run = RunAt(i, count, out var headerLength, out var bytes);
            if (run == 1 && _txChecksumPending[i]) CompleteChecksum(i);
            for (int k = 1; k < run; k++)
                _gsoIov[iov++] = new Native.IoVec { Base = _txIov[i + k].Base + headerLength, Len = _txIov[i + k].Len - (nuint)headerLength };
            if (run > 1) MakeGsoLeader(i, run, headerLength, hdr);
            msg->Hdr.IovLen = (nuint)(run + 1);
            _gsoFrames[messages] = run;
            _gsoBytes[messages] = bytes;
            messages++;
            i += run;
        }

        int sent = 0;
        while (sent < messages)
        {
            var r = Native.sendmmsg(_gsoFd, _gsoMsgs + sent, (uint)(messages - sent), 0);
            TransmitCalls++;
            if (r > 0)
            {
                for (int m = sent; m < sent + r; m++)
                {
                    Statistics.FramesSent += _gsoFrames[m];
                    Statistics.BytesSent += _gsoBytes[m];
                    if (_gsoFrames[m] > 1)
                    {
                        FramesSegmentedByKernel += _gsoFrames[m];
                        SegmentationPackets++;
                    }
                }
                sent += r;
                continue;
            }
            if (r < 0)
            {
                var errno = Marshal.GetLastPInvokeError();
                if (errno == Native.EINTR) continue;
                // A kernel that refuses GSO packets from packet sockets: send frame by frame from now on (TCP resends these).
                if (errno == Native.EINVAL && _gsoFrames[sent] > 1) _gsoRefused = true;
                if (errno is Native.ENXIO or Native.ENODEV or Native.ENETDOWN && Fault is null)
                    SetFault($"sending on '{Name}' failed: the interface is down or gone (errno {errno}).");
            }
            Statistics.SendErrors += _gsoFrames[sent];
            sent++;
        }
    }

    /// <summary>How many slots from <paramref name="first"/> can leave as one GSO packet (1: alone).</summary>
    private int RunAt(int first, int count, out int headerLength, out long bytes)
    {
        var lead = Slot(first);
        bytes = lead.Length;
        headerLength = 0;
        if (_gsoRefused || !IsPlainTcp(lead, out headerLength, out var segment) || segment == 0 || lead[TcpOffset + 13] != TcpAck) return 1;
        int run = 1;
        int previousPayload = segment, ipLength = lead.Length - IpOffset;
        var previous = lead;
        for (int j = first + 1; j < count && run < 64; j++)
        {
            var c = Slot(j);
            if (!IsPlainTcp(c, out var h, out var payload) || h != headerLength || payload == 0 || payload > segment
                || ipLength + payload > 65535 || !FollowsInRun(lead, previous, c, previousPayload, headerLength)) break;
            run++;
            bytes += c.Length;
            ipLength += payload;
            if (payload < segment || c[TcpOffset + 13] != TcpAck) break; // a short segment or PSH ends a GSO packet
            previous = c;
            previousPayload = payload;
        }
        return run;
    }

    private Span<byte> Slot(int i) => new(_txIov[i].Base, (int)_txIov[i].Len);

    /// <summary>IPv4 without options or fragmentation carrying TCP, lengths consistent (no Ethernet padding).</summary>
    private static bool IsPlainTcp(ReadOnlySpan<byte> f, out int headerLength, out int payload)
    {
        headerLength = payload = 0;
        if (f.Length < TcpOffset + 20 || f[12] != 0x08 || f[13] != 0x00 || f[IpOffset] != 0x45 || f[IpOffset + 9] != 6
            || (BinaryPrimitives.ReadUInt16BigEndian(f[(IpOffset + 6)..]) & 0x3FFF) != 0
            || BinaryPrimitives.ReadUInt16BigEndian(f[(IpOffset + 2)..]) != f.Length - IpOffset) return false;
        headerLength = TcpOffset + (f[TcpOffset + 12] >> 4) * 4;
        if (headerLength < TcpOffset + 20 || headerLength > f.Length) return false;
        payload = f.Length - headerLength;
        return true;
    }

    /// <summary>
    /// <paramref name="c"/> continues <paramref name="previous"/> in the run <paramref name="lead"/> begins: the same
    /// headers (Ethernet, IP but length/id/checksum, TCP ports, ack, offset, window, urgent pointer, options), the
    /// next IP id and the next sequence number; flags ACK, or ACK+PSH (then it is the last).
    /// </summary>
    private static bool FollowsInRun(ReadOnlySpan<byte> lead, ReadOnlySpan<byte> previous, ReadOnlySpan<byte> c, int previousPayload, int headerLength)
    {
        var flags = c[TcpOffset + 13];
        if (flags != TcpAck && flags != (TcpAck | TcpPsh)) return false;
        if (!c[..(IpOffset + 2)].SequenceEqual(lead[..(IpOffset + 2)])            // Ethernet, version/IHL, TOS
            || !c.Slice(IpOffset + 6, 4).SequenceEqual(lead.Slice(IpOffset + 6, 4)) // flags/offset, TTL, protocol
            || !c.Slice(IpOffset + 12, 8 + 4).SequenceEqual(lead.Slice(IpOffset + 12, 8 + 4)) // addresses, ports
            || !c.Slice(TcpOffset + 8, 5).SequenceEqual(lead.Slice(TcpOffset + 8, 5))   // ack, data offset
            || !c.Slice(TcpOffset + 14, 2).SequenceEqual(lead.Slice(TcpOffset + 14, 2)) // window
            || !c[(TcpOffset + 18)..headerLength].SequenceEqual(lead[(TcpOffset + 18)..headerLength])) // urgent, options
            return false;
        var id = BinaryPrimitives.ReadUInt16BigEndian(c[(IpOffset + 4)..]);
        var previousId = BinaryPrimitives.ReadUInt16BigEndian(previous[(IpOffset + 4)..]);
        var seq = BinaryPrimitives.ReadUInt32BigEndian(c[(TcpOffset + 4)..]);
        var previousSeq = BinaryPrimitives.ReadUInt32BigEndian(previous[(TcpOffset + 4)..]);
        return id == (ushort)(previousId + 1) && seq == unchecked(previousSeq + (uint)previousPayload);
    }

    /// <summary>Rewrites the run's first frame as the GSO packet's headers and fills its virtio_net_hdr.</summary>
    private void MakeGsoLeader(int first, int run, int headerLength, VirtioNetHdr* hdr)
    {
        var lead = Slot(first);
        var last = Slot(first + run - 1);
        int tcpLength = lead.Length - TcpOffset;
        for (int k = 1; k < run; k++) tcpLength += (int)_txIov[first + k].Len - headerLength;
        BinaryPrimitives.WriteUInt16BigEndian(lead[(IpOffset + 2)..], (ushort)(tcpLength + 20));
        // A device with TSO (veth by default) passes the packet on whole: its IP header must verify as it is.
        BinaryPrimitives.WriteUInt16BigEndian(lead[(IpOffset + 10)..], 0);
        BinaryPrimitives.WriteUInt16BigEndian(lead[(IpOffset + 10)..], Checksum.Compute(lead.Slice(IpOffset, 20)));
        lead[TcpOffset + 13] = last[TcpOffset + 13]; // PSH of the last frame (the kernel keeps it on the last segment only)
        var src = new Ipv4Address(BinaryPrimitives.ReadUInt32BigEndian(lead[(IpOffset + 12)..]));
        var dst = new Ipv4Address(BinaryPrimitives.ReadUInt32BigEndian(lead[(IpOffset + 16)..]));
        // Not complemented: the partial checksum the kernel completes per segment after adjusting the length.
        BinaryPrimitives.WriteUInt16BigEndian(lead[(TcpOffset + 16)..], (ushort)Checksum.PseudoHeader(src, dst, 6, tcpLength));
        hdr->Flags = VirtioNeedsCsum;
        hdr->GsoType = VirtioGsoTcpV4;
        hdr->HdrLen = (ushort)headerLength;
        hdr->GsoSize = (ushort)(lead.Length - headerLength);
        hdr->CsumStart = TcpOffset;
        hdr->CsumOffset = 16;
    }
}
