using System.Runtime.InteropServices;
using SharpPcap;
using SharpPcap.LibPcap;

namespace NetStack.Link;

/// <summary>
/// An Ethernet adapter opened with libpcap (through SharpPcap), driven by the stack's own loop thread.
/// </summary>
/// <remarks>
/// The I/O path decides the speed (see docs/lab.md), so:
/// <list type="bullet">
/// <item><see cref="Receive"/> walks libpcap's memory-mapped ring on the loop thread with pcap_dispatch (nonblocking)
/// and an unmanaged callback that hands the stack a span over the ring slot: no capture thread, no copy, no
/// allocation per frame. (SharpPcap's GetNextPacket allocates a PcapHeader object and calls poll(2) before every
/// frame; pcap_next_ex copies every frame.)</item>
/// <item><see cref="Transmit"/> copies frames into a preallocated native buffer and <see cref="Flush"/> sends the
/// batch with one sendmmsg(2) on the capture socket, instead of one system call per frame.</item>
/// <item><see cref="WaitForFrames"/> is epoll_pwait2(2) on the capture socket plus an eventfd that <see cref="Wake"/> writes
/// (ppoll(2) on both where epoll_pwait2 is missing); a caller running the stack's turn inline can hold the capture
/// socket's wake-up back meanwhile (<see cref="HoldArrivalWake"/>, PcapDevice.Wait.cs).</item>
/// <item>A BPF filter in the kernel keeps unicast for other hosts out of the ring.</item>
/// </list>
/// Linux only. Figures and the reasons behind each choice: docs/lab.md.
/// </remarks>
public sealed unsafe partial class PcapDevice : ILinkDevice
{
    private readonly LibPcapLiveDevice _device;
    private readonly PcapDeviceOptions _options;
    private readonly nint _pcap;          // pcap_t*, valid until Dispose
    private readonly int _fd;             // the capture socket (AF_PACKET, bound to the adapter)
    private readonly int _eventFd;        // Wake() writes here
    private readonly MacAddress _adapterMac;
    private MacAddress _stackMac;
    private volatile bool _disposed;
    private int _disposing;
    private bool _eventFdClosed;
    private readonly object _wakeGate = new();
    // Calls in progress. Dispose may come from another thread (a shell stopping a stack, a test's teardown) while
    // the loop is inside libpcap or the transmit buffer: it waits for them to leave before freeing anything.
    private int _busy;

    private bool Enter()
    {
        Interlocked.Increment(ref _busy);
        if (!_disposed) return true;
        Interlocked.Decrement(ref _busy);
        return false;
    }

    private void Exit() => Interlocked.Decrement(ref _busy);

    // Batched transmit: frames are copied into slots of one native buffer, described by preallocated
    // iovec and mmsghdr arrays whose only per-frame change is the length.
    private readonly int _slotSize;
    private readonly int _batchCapacity;
    private readonly byte* _txBuffer;
    private readonly Native.IoVec* _txIov;
    private readonly Native.MMsgHdr* _txMsgs;
    private readonly bool[] _txChecksumPending = [];  // per slot: TransmitChecksumPending's frames
    private int _txQueued;

    private TimeSpan _nextStatsAt;
    private readonly DispatchState _dispatch;
    private GCHandle _dispatchHandle;

    private PcapDevice(LibPcapLiveDevice device, PcapDeviceOptions options, MacAddress adapterMac, int mtu, int snaplen, IReadOnlyList<string> warnings, int segmentationFd)
    {
        _device = device;
        _options = options;
        _pcap = device.Handle.DangerousGetHandle();
        Name = device.Name;
        _adapterMac = adapterMac;
        _stackMac = adapterMac;
        Mtu = mtu;
        Warnings = warnings;
        Snaplen = snaplen;

        _fd = Native.pcap_get_selectable_fd(_pcap);
        if (_fd < 0) throw new InvalidOperationException($"libpcap gave no selectable descriptor for '{Name}'.");
        _eventFd = Native.eventfd(0, Native.EFD_NONBLOCK | Native.EFD_CLOEXEC);
        if (_eventFd < 0) throw new InvalidOperationException($"eventfd failed (errno {Marshal.GetLastPInvokeError()}).");
        InitEpoll();

        _dispatch = new DispatchState(this);
        _dispatchHandle = GCHandle.Alloc(_dispatch);
        _slotSize = Math.Max(2048, (mtu + 14 + 4 + 63) & ~63);
        _batchCapacity = options.BatchTransmit ? options.TransmitBatchSize : 0;
        if (_batchCapacity > 0)
        {
            _txBuffer = (byte*)NativeMemory.AlignedAlloc((nuint)(_slotSize * _batchCapacity), 64);
            _txIov = (Native.IoVec*)NativeMemory.AllocZeroed((nuint)(sizeof(Native.IoVec) * _batchCapacity));
            _txMsgs = (Native.MMsgHdr*)NativeMemory.AllocZeroed((nuint)(sizeof(Native.MMsgHdr) * _batchCapacity));
            _txChecksumPending = new bool[_batchCapacity];
            for (int i = 0; i < _batchCapacity; i++)
            {
                _txIov[i].Base = _txBuffer + (nint)i * _slotSize;
                _txMsgs[i].Hdr.Iov = &_txIov[i];
                _txMsgs[i].Hdr.IovLen = 1;
            }
        }
        InitSegmentation(segmentationFd);
    }

    public string Name { get; }

    /// <summary>The adapter's own MAC.</summary>
    public MacAddress HardwareAddress => _adapterMac;

    public int Mtu { get; }

    public LinkStatistics Statistics { get; } = new();

    public TimeSpan? NextArrival => null;

    /// <summary>Frames longer than the snaplen, dropped (see <see cref="PcapDeviceOptions.Snaplen"/>).</summary>
    public long FramesTruncated { get; private set; }

    /// <summary>System calls that sent frames (a sendmmsg of a batch, or a send of one frame), since the device opened.</summary>
    public long TransmitCalls { get; private set; }

    /// <summary>pcap_dispatch calls (or pcap_next_ex calls on the copying path) made to take frames, since the device opened.</summary>
    public long ReceiveCalls { get; private set; }

    /// <summary>Times the loop slept in <see cref="WaitForFrames"/> (a ppoll), since the device opened.</summary>
    public long Waits { get; private set; }

    /// <summary>The snaplen in force.</summary>
    public int Snaplen { get; }

    /// <summary>Configuration problems libpcap reported while opening (e.g. a buffer size it refused).</summary>
    public IReadOnlyList<string> Warnings { get; }

    /// <summary>The MAC the stack answers to (the adapter's unless <see cref="SetStackAddress"/> was called).</summary>
    public MacAddress StackAddress => _stackMac;

    /// <summary>The BPF filter in force.</summary>
    public string Filter => _device.Filter ?? "";

    /// <summary>pcap's own descriptor, for diagnostics.</summary>
    internal int FileDescriptor => _fd;

    /// <summary>
    /// Tells the device the stack uses <paramref name="mac"/> rather than the adapter's own address: the BPF filter
    /// is rewritten to pass unicast for it, and frames sent from it are ignored when echoed back.
    /// </summary>
    public void SetStackAddress(MacAddress mac)
    {
        if (!mac.IsUnicast) throw new ArgumentException($"{mac} cannot be a station address (it is zero or a group address).", nameof(mac));
        if (!Enter()) throw new ObjectDisposedException(ToString());
        try
        {
            if (mac == _stackMac) return;
            _stackMac = mac;
            ApplyFilter();
        }
        finally { Exit(); }
    }

    /// <summary>The filter expression for a station address: tcpdump syntax, colons in the MAC.</summary>
    public static string FilterFor(MacAddress mac) =>
        $"ether dst {mac.ToString().Replace('-', ':').ToLowerInvariant()} or ether broadcast or ether multicast or arp";

    private void ApplyFilter()
    {
        var expression = FilterFor(_stackMac);
        try { _device.Filter = expression; }
        catch (PcapException e) { throw new InvalidOperationException($"Cannot set the capture filter '{expression}' on '{Name}': {e.Message}", e); }
    }

    public int Receive(IFrameSink sink, TimeSpan now, int max)
    {
        if (max <= 0 || !Enter()) return 0;
        try
        {
            var handed = _options.CopyingReceive ? ReceiveCopying(sink, now, max) : ReceiveDispatch(sink, now, max);
            if (now >= _nextStatsAt) RefreshStatistics(now);
            return handed;
        }
        finally { Exit(); }
    }

    /// <summary>
    /// pcap_dispatch with an unmanaged callback: libpcap walks its ring and calls us per frame with a pointer into
    /// the ring slot, several frames per native call. (pcap_next_ex copies each frame into a side buffer first.)
    /// </summary>
    private int ReceiveDispatch(IFrameSink sink, TimeSpan now, int max)
    {
        var d = _dispatch;
        d.Sink = sink;
        d.Now = now;
        d.Handed = 0;
        // The wall clock (the pcap timestamps' clock) once per call: each frame's wait in the ring is measured against it.
        d.WallMicroseconds = (DateTime.UtcNow.Ticks - DateTime.UnixEpoch.Ticks) / TimeSpan.TicksPerMicrosecond;
        try
        {
            while (d.Handed < max)
            {
                var requested = max - d.Handed;
                var r = Native.pcap_dispatch(_pcap, requested, &OnPacket, GCHandle.ToIntPtr(_dispatchHandle));
                ReceiveCalls++;
                if (d.Error is not null) break;
                if (r < 0)
                {
                    if (r != Native.PCAP_ERROR_BREAK && Fault is null) SetFault($"capture on '{Name}' failed: {Marshal.PtrToStringUTF8(Native.pcap_geterr(_pcap))}");
                    break;
                }
                if (r < requested) break; // the ring is empty (own frames may have made r smaller than what we handed)
            }
        }
        finally
        {
            d.Sink = null;
        }
        if (d.Error is { } error)
        {
            d.Error = null;
            System.Runtime.ExceptionServices.ExceptionDispatchInfo.Throw(error);
        }
        return d.Handed;
    }

    [UnmanagedCallersOnly(CallConvs = [typeof(System.Runtime.CompilerServices.CallConvCdecl)])]
    private static void OnPacket(nint user, Native.PcapPktHdr* header, byte* data)
    {
        var d = (DispatchState)GCHandle.FromIntPtr(user).Target!;
        if (d.Error is not null || d.Sink is null) return;
        try
        {
            if (d.Device.Accept(header, data, out var frame))
            {
                d.Handed++;
                var wait = d.WallMicroseconds - (header->TvSec * 1_000_000 + header->TvUsec);
                if (wait > 0) d.Device.Statistics.ReceiveWaitMicroseconds += wait;
                d.Sink.OnFrame(frame, d.Now);
            }
        }
        catch (Exception e)
        {
            // An exception must not unwind through libpcap: keep it, stop the dispatch, rethrow in Receive.
            d.Error = e;
            Native.pcap_breakloop(d.Device._pcap);
        }
    }

    private sealed class DispatchState(PcapDevice device)
    {
        public readonly PcapDevice Device = device;
        public IFrameSink? Sink;
        public TimeSpan Now;
        public int Handed;
        public long WallMicroseconds;
        public Exception? Error;
    }

    /// <summary>The filtering every received frame goes through; counts it and says whether the stack gets it.</summary>
    private bool Accept(Native.PcapPktHdr* header, byte* data, out ReadOnlySpan<byte> frame)
    {
        var length = (int)header->CapLen;
        frame = new ReadOnlySpan<byte>(data, length);
        if (length < 14) return false;
        if (header->Len > header->CapLen)
        {
            FramesTruncated++; // a GRO/LRO aggregate larger than the snaplen: useless to the stack
            return false;
        }
        if (Ethernet.IsFrom(frame, _stackMac) || Ethernet.IsFrom(frame, _adapterMac))
        {
            Statistics.OwnFramesIgnored++;
            return false;
        }
        Statistics.FramesReceived++;
        Statistics.BytesReceived += length;
        return true;
    }

    /// <summary>The pcap_next_ex path (one native call and one copy inside libpcap per frame), kept for comparison.</summary>
    private int ReceiveCopying(IFrameSink sink, TimeSpan now, int max)
    {
        int handed = 0;
        while (handed < max)
        {
            Native.PcapPktHdr* header;
            byte* data;
            var r = Native.pcap_next_ex(_pcap, &header, &data);
            ReceiveCalls++;
            if (r != 1)
            {
                // 0: nothing ready (nonblocking). <0: the capture failed, e.g. the interface was removed.
                if (r < 0 && Fault is null) SetFault($"capture on '{Name}' failed: {Marshal.PtrToStringUTF8(Native.pcap_geterr(_pcap))}");
                break;
            }
            if (!Accept(header, data, out var frame)) continue;
            handed++;
            sink.OnFrame(frame, now);
        }
        return handed;
    }

    /// <summary>Reads pcap's drop counters (ps_drop + ps_ifdrop) into <see cref="LinkStatistics.DroppedByDevice"/>.</summary>
    public void RefreshStatistics()
    {
        if (!Enter()) return;
        try { RefreshStatistics(TimeSpan.Zero); }
        finally { Exit(); }
    }

    private void RefreshStatistics(TimeSpan now)
    {
        _nextStatsAt = now + _options.StatisticsInterval;
        Native.PcapStat st;
        if (Native.pcap_stats(_pcap, &st) == 0)
            Statistics.DroppedByDevice = (long)st.Drop + st.IfDrop;
    }

    public void Transmit(ReadOnlySpan<byte> frame, TimeSpan now)
    {
        if (!Enter()) return;
        try { TransmitEntered(frame); }
        finally { Exit(); }
    }

    private void TransmitEntered(ReadOnlySpan<byte> frame, bool checksumPending = false)
    {
        if (frame.Length < 14) { Statistics.SendErrors++; return; }
        if (_batchCapacity == 0 || frame.Length > _slotSize)
        {
            if (_txQueued > 0) SendQueued();
            if (checksumPending) SendOneCompleted(frame);
            else SendOne(frame);
            return;
        }
        var slot = _txQueued;
        frame.CopyTo(new Span<byte>(_txIov[slot].Base, _slotSize));
        _txIov[slot].Len = (nuint)frame.Length;
        _txChecksumPending[slot] = checksumPending;
        if (checksumPending && _gsoFd < 0) CompleteChecksum(slot);
        _txQueued = slot + 1;
        if (_txQueued == _batchCapacity) SendQueued();
    }

    public void Flush(TimeSpan now)
    {
        if (_txQueued == 0 || !Enter()) return;
        try { SendQueued(); }
        finally { Exit(); }
    }

    private void SendOne(ReadOnlySpan<byte> frame)
    {
        try
        {
            TransmitCalls++;
            _device.SendPacket(frame);
            Statistics.FramesSent++;
            Statistics.BytesSent += frame.Length;
        }
        catch (PcapException e)
        {
            Statistics.SendErrors++;
            if (Fault is null && (e.Message.Contains("No such device", StringComparison.Ordinal) || e.Message.Contains("is down", StringComparison.Ordinal)))
                SetFault($"sending on '{Name}' failed: {e.Message}");
        }
    }

    private void SendQueued()
    {
        if (_gsoFd >= 0) { SendQueuedSegmented(); return; }
        int sent = 0, count = _txQueued;
        _txQueued = 0;
        while (sent < count)
        {
            var r = Native.sendmmsg(_fd, _txMsgs + sent, (uint)(count - sent), 0);
            TransmitCalls++;
            if (r > 0)
            {
                for (int i = sent; i < sent + r; i++) Statistics.BytesSent += (long)_txIov[i].Len;
                Statistics.FramesSent += r;
                sent += r;
                continue;
            }
            if (r < 0)
            {
                var errno = Marshal.GetLastPInvokeError();
                if (errno == Native.EINTR) continue;
                if (errno is Native.ENXIO or Native.ENODEV or Native.ENETDOWN && Fault is null)
                    SetFault($"sending on '{Name}' failed: the interface is down or gone (errno {errno}).");
            }
            // The first frame of the rest failed (ENOBUFS, ENETDOWN, EMSGSIZE, ...): count it and go on with the others.
            Statistics.SendErrors++;
            sent++;
        }
    }

    public void WaitForFrames(TimeSpan timeout)
    {
        if (timeout <= TimeSpan.Zero || !Enter()) return;
        try { WaitEntered(timeout); }
        finally { Exit(); }
    }

    private void WaitEntered(TimeSpan timeout)
    {
        var ticks = Math.Min(timeout.Ticks, TimeSpan.TicksPerDay);
        var ts = new Native.TimeSpec { Sec = ticks / TimeSpan.TicksPerSecond, NSec = ticks % TimeSpan.TicksPerSecond * 100 };
        Waits++;
        if (_epollFd >= 0) WaitEpoll(&ts); // PcapDevice.Wait.cs
        else WaitPoll(&ts);
    }

    private void WaitPoll(Native.TimeSpec* ts)
    {
        var fds = stackalloc Native.PollFd[2];
        fds[0] = new Native.PollFd { Fd = _fd, Events = Native.POLLIN };
        fds[1] = new Native.PollFd { Fd = _eventFd, Events = Native.POLLIN };
        // Once the capture has failed its socket polls as always ready (POLLERR): wait on the eventfd alone,
        // so a loop over a vanished adapter sleeps instead of spinning.
        var r = Native.ppoll(Fault is null ? fds : fds + 1, Fault is null ? 2u : 1u, ts, null);
        if (r > 0 && (fds[1].REvents & Native.POLLIN) != 0)
        {
            ulong value;
            _ = Native.read(_eventFd, &value, 8);
        }
        if (r > 0 && Fault is null && (fds[0].REvents & (Native.POLLERR | Native.POLLHUP | Native.POLLNVAL)) != 0)
            SetFault($"capture on '{Name}' failed: the interface is down or gone (poll events 0x{fds[0].REvents:x}).");
    }

    /// <summary>Why the device stopped working (the adapter went away), or null while it works.</summary>
    public string? Fault { get; private set; }

    private void SetFault(string message)
    {
        Fault = message;
        FaultOccurred?.Invoke(message);
    }

    /// <summary>Raised once, on the loop thread, when the device stops working.</summary>
    public event Action<string>? FaultOccurred;

    public void Wake()
    {
        // Locked against Dispose closing the eventfd, so a late Wake never writes to a reused descriptor.
        lock (_wakeGate)
        {
            if (_eventFdClosed) return;
            ulong one = 1;
            _ = Native.write(_eventFd, &one, 8);
        }
    }

    /// <summary>
    /// Sends what is queued and closes the adapter. Safe from any thread: calls in progress on the loop (a wait,
    /// a receive) are woken and finish first; calls after it return at once.
    /// </summary>
    public void Dispose()
    {
        if (Interlocked.Exchange(ref _disposing, 1) != 0) return;
        _disposed = true;
        Wake();
        var waited = System.Diagnostics.Stopwatch.StartNew();
        var spin = new SpinWait();
        while (Volatile.Read(ref _busy) != 0 && waited.Elapsed < TimeSpan.FromSeconds(10)) spin.SpinOnce();
        try { if (_txQueued > 0) SendQueued(); } catch (Exception) { /* the adapter may be gone */ }
        DisposeEpoll();
        lock (_wakeGate)
        {
            _eventFdClosed = true;
            Native.close(_eventFd);
        }
        _device.Close();
        HostIngressDrop?.Dispose();
        if (_dispatchHandle.IsAllocated) _dispatchHandle.Free();
        if (_txBuffer != null) NativeMemory.AlignedFree(_txBuffer);
        if (_txIov != null) NativeMemory.Free(_txIov);
        if (_txMsgs != null) NativeMemory.Free(_txMsgs);
        DisposeSegmentation();
    }

    public override string ToString() => $"pcap {Name} {_adapterMac} mtu {Mtu}";
}
