using System.Buffers.Binary;
using System.Runtime.InteropServices;
using SharpPcap;
using SharpPcap.LibPcap;

namespace NetStack.Link;

/// <summary>How a <see cref="PcapDevice"/> is opened.</summary>
public sealed record PcapDeviceOptions
{
    /// <summary>
    /// Size of the kernel's capture ring (libpcap's buffer size). Frames that overflow it are lost before the
    /// stack sees them and show up in <see cref="LinkStatistics.DroppedByDevice"/>; bulk receive needs tens of MiB.
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
    /// </summary>
    public bool BypassQdisc { get; init; }

    /// <summary>Frames queued before a batch is sent even without a Flush.</summary>
    public int TransmitBatchSize { get; init; } = 64;

    /// <summary>
    /// A named network namespace (as in <c>ip netns add</c>, or a path such as /proc/123/ns/net) to open the
    /// adapter in, without moving the calling thread or process. Null: the calling thread's namespace.
    /// </summary>
    public string? NetworkNamespace { get; init; }

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

/// <summary>
/// An Ethernet adapter opened with libpcap (through SharpPcap), driven by the stack's own loop thread.
/// </summary>
/// <remarks>
/// The I/O path decides the speed (see ARCHITECTURE.md), so:
/// <list type="bullet">
/// <item><see cref="Receive"/> walks libpcap's memory-mapped ring on the loop thread with pcap_dispatch (nonblocking)
/// and an unmanaged callback that hands the stack a span over the ring slot: no capture thread, no copy, no
/// allocation per frame. (SharpPcap's GetNextPacket allocates a PcapHeader object and calls poll(2) before every
/// frame; pcap_next_ex copies every frame.)</item>
/// <item><see cref="Transmit"/> copies frames into a preallocated native buffer and <see cref="Flush"/> sends the
/// batch with one sendmmsg(2) on the capture socket, instead of one system call per frame.</item>
/// <item><see cref="WaitForFrames"/> is ppoll(2) on the capture socket plus an eventfd that <see cref="Wake"/> writes.</item>
/// <item>A BPF filter in the kernel keeps unicast for other hosts out of the ring.</item>
/// </list>
/// Linux only. Figures and the reasons behind each choice: docs/lab.md.
/// </remarks>
public sealed unsafe class PcapDevice : ILinkDevice
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
    private int _txQueued;

    private TimeSpan _nextStatsAt;
    private readonly DispatchState _dispatch;
    private GCHandle _dispatchHandle;

    private PcapDevice(LibPcapLiveDevice device, PcapDeviceOptions options, MacAddress adapterMac, int mtu, int snaplen, IReadOnlyList<string> warnings)
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

        _dispatch = new DispatchState(this);
        _dispatchHandle = GCHandle.Alloc(_dispatch);
        _slotSize = Math.Max(2048, (mtu + 14 + 4 + 63) & ~63);
        _batchCapacity = options.BatchTransmit ? options.TransmitBatchSize : 0;
        if (_batchCapacity > 0)
        {
            _txBuffer = (byte*)NativeMemory.AlignedAlloc((nuint)(_slotSize * _batchCapacity), 64);
            _txIov = (Native.IoVec*)NativeMemory.AllocZeroed((nuint)(sizeof(Native.IoVec) * _batchCapacity));
            _txMsgs = (Native.MMsgHdr*)NativeMemory.AllocZeroed((nuint)(sizeof(Native.MMsgHdr) * _batchCapacity));
            for (int i = 0; i < _batchCapacity; i++)
            {
                _txIov[i].Base = _txBuffer + (nint)i * _slotSize;
                _txMsgs[i].Hdr.Iov = &_txIov[i];
                _txMsgs[i].Hdr.IovLen = 1;
            }
        }
    }

    /// <summary>
    /// Opens <paramref name="interfaceName"/> for the stack: promiscuous, immediate mode, a large kernel ring,
    /// nonblocking reads, and a BPF filter passing only frames for the adapter's MAC, broadcast, multicast and ARP.
    /// </summary>
    /// <exception cref="ArgumentException">No adapter has that name (the message lists those that exist).</exception>
    /// <exception cref="UnauthorizedAccessException">The process may not capture (needs root or CAP_NET_RAW and CAP_NET_ADMIN).</exception>
    /// <exception cref="PcapUnavailableException">libpcap is not installed.</exception>
    public static PcapDevice Open(string interfaceName, PcapDeviceOptions? options = null)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(interfaceName);
        options ??= new PcapDeviceOptions();
        options.Validate();
        return options.NetworkNamespace is { } ns
            ? RunInNetworkNamespace(ns, () => OpenHere(interfaceName, options))
            : OpenHere(interfaceName, options);
    }

    /// <summary>Names of the adapters libpcap can open (in a network namespace, if one is named).</summary>
    public static IReadOnlyList<string> ListInterfaces(string? networkNamespace = null)
    {
        return networkNamespace is null ? ListHere() : RunInNetworkNamespace(networkNamespace, ListHere);
        static IReadOnlyList<string> ListHere() => LoadDeviceList().Select(d => d.Name).ToArray();
    }

    /// <summary>
    /// Runs <paramref name="action"/> on a new thread that has entered network namespace <paramref name="networkNamespace"/>
    /// (a name under /var/run/netns or a path). Sockets it opens stay in that namespace after the thread ends; the
    /// calling thread and the rest of the process stay where they are (in Linux the namespace is per thread).
    /// </summary>
    public static T RunInNetworkNamespace<T>(string networkNamespace, Func<T> action)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(networkNamespace);
        ArgumentNullException.ThrowIfNull(action);
        var path = networkNamespace.Contains('/') ? networkNamespace : Path.Combine("/var/run/netns", networkNamespace);
        if (!File.Exists(path))
            throw new ArgumentException($"Network namespace '{networkNamespace}' does not exist ({path} is missing). Create it with: ip netns add {networkNamespace}", nameof(networkNamespace));

        T? result = default;
        Exception? error = null;
        var thread = new Thread(() =>
        {
            try
            {
                using (var ns = File.OpenHandle(path, FileMode.Open, FileAccess.Read))
                {
                    if (Native.setns((int)ns.DangerousGetHandle(), Native.CLONE_NEWNET) != 0)
                    {
                        var errno = Marshal.GetLastPInvokeError();
                        throw errno == 1
                            ? new UnauthorizedAccessException($"Cannot enter network namespace '{networkNamespace}': run as root or grant CAP_SYS_ADMIN.")
                            : new InvalidOperationException($"setns({path}) failed with errno {errno}.");
                    }
                }
                result = action();
            }
            catch (Exception e) { error = e; }
        }, 256 * 1024) { IsBackground = true, Name = "netns " + networkNamespace };
        thread.Start();
        thread.Join();
        if (error is not null) System.Runtime.ExceptionServices.ExceptionDispatchInfo.Throw(error);
        return result!;
    }

    private static List<LibPcapLiveDevice> LoadDeviceList()
    {
        Native.EnsureLibpcap();
        try
        {
            // New(), not Instance: Instance is cached for the process, but the list depends on the thread's namespace.
            return LibPcapLiveDeviceList.New().ToList();
        }
        catch (Exception e) when (e is DllNotFoundException or TypeInitializationException or EntryPointNotFoundException)
        {
            throw Native.LibpcapMissing(e);
        }
    }

    private static PcapDevice OpenHere(string interfaceName, PcapDeviceOptions options)
    {
        var devices = LoadDeviceList();
        var device = devices.FirstOrDefault(d => d.Name == interfaceName);
        if (device is null)
        {
            var names = devices.Select(d => d.Name).Where(n => n != "any" && !n.StartsWith("dbus", StringComparison.Ordinal) && !n.StartsWith("nf", StringComparison.Ordinal) && !n.StartsWith("bluetooth", StringComparison.Ordinal));
            throw new ArgumentException($"No network adapter named '{interfaceName}'. Adapters here: {string.Join(", ", names)}.", nameof(interfaceName));
        }

        var warnings = new List<string>();
        var config = new DeviceConfiguration
        {
            Mode = DeviceModes.Promiscuous,   // NoCaptureLocal throws PlatformNotSupported on Linux
            Immediate = true,                 // otherwise libpcap holds frames for up to hundreds of milliseconds
            ReadTimeout = 10,
            Snaplen = options.Snaplen ?? (Native.ReadMtuHere(interfaceName) ?? 1500) + 14 + 4,
            BufferSize = options.KernelBufferSize, // pcap_set_buffer_size: the kernel ring on Linux
        };
        config.ConfigurationFailed += (_, e) => warnings.Add($"{e.Property}: {e.Error} {e.Message}");
        try
        {
            device.Open(config);
        }
        catch (PcapException e) when (e.Error is PcapError.PermissionDenied or PcapError.PromiscuousPermissionDenied
                                      || e.Message.Contains("ermission", StringComparison.Ordinal)
                                      || e.Message.Contains("not permitted", StringComparison.Ordinal))
        {
            throw new UnauthorizedAccessException(
                $"No permission to capture on '{interfaceName}': run as root, or grant the capabilities CAP_NET_RAW and CAP_NET_ADMIN " +
                "(e.g. sudo setcap cap_net_raw,cap_net_admin+eip on the dotnet/pwsh executable).", e);
        }
        catch (PcapException e) when (e.Error is PcapError.InterfaceNotUp)
        {
            throw new InvalidOperationException($"Adapter '{interfaceName}' is down. Bring it up first: ip link set {interfaceName} up", e);
        }
        catch (PcapException e)
        {
            throw new InvalidOperationException($"Cannot open adapter '{interfaceName}': {e.Message} ({e.Error})", e);
        }

        PcapDevice? result = null;
        try
        {
            var pcap = device.Handle.DangerousGetHandle();
            var errbuf = stackalloc byte[Native.PCAP_ERRBUF_SIZE];
            if (Native.pcap_setnonblock(pcap, 1, errbuf) < 0)
                throw new InvalidOperationException($"Cannot make '{interfaceName}' nonblocking: {Marshal.PtrToStringUTF8((nint)errbuf)}");
            // Frames we send come back through the capture on Linux; libpcap drops them before pcap_next_ex.
            _ = Native.pcap_setdirection(pcap, Native.PCAP_D_IN);

            var fd = Native.pcap_get_selectable_fd(pcap);
            if (options.BypassQdisc)
            {
                int one = 1;
                if (Native.setsockopt(fd, Native.SOL_PACKET, Native.PACKET_QDISC_BYPASS, &one, sizeof(int)) != 0)
                    warnings.Add($"PACKET_QDISC_BYPASS: errno {Marshal.GetLastPInvokeError()}");
            }
            var mac = Native.ReadHardwareAddress(fd, interfaceName)
                      ?? (device.MacAddress is { } pa && pa.GetAddressBytes().Length == 6 ? MacAddress.FromPhysicalAddress(pa) : MacAddress.Zero);
            var mtu = Native.ReadMtu(fd, interfaceName) ?? ReadSysfsMtu(interfaceName) ?? 1500;
            result = new PcapDevice(device, options, mac, mtu, config.Snaplen, warnings);
            result.ApplyFilter();
            return result;
        }
        catch
        {
            if (result is not null) result.Dispose();
            else device.Close();
            throw;
        }
    }

    private static int? ReadSysfsMtu(string name)
    {
        try { return int.TryParse(File.ReadAllText($"/sys/class/net/{name}/mtu").Trim(), out var v) ? v : null; }
        catch (IOException) { return null; }
        catch (UnauthorizedAccessException) { return null; }
    }

    public string Name { get; }

    /// <summary>The adapter's own MAC.</summary>
    public MacAddress HardwareAddress => _adapterMac;

    public int Mtu { get; }

    public LinkStatistics Statistics { get; } = new();

    public TimeSpan? NextArrival => null;

    /// <summary>Frames longer than the snaplen, dropped (see <see cref="PcapDeviceOptions.Snaplen"/>).</summary>
    public long FramesTruncated { get; private set; }

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
        if (mac.IsMulticast || mac.IsZero) throw new ArgumentException($"{mac} cannot be a station address (it is zero or a group address).", nameof(mac));
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
        try
        {
            while (d.Handed < max)
            {
                var requested = max - d.Handed;
                var r = Native.pcap_dispatch(_pcap, requested, &OnPacket, GCHandle.ToIntPtr(_dispatchHandle));
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
        var src = (ulong)BinaryPrimitives.ReadUInt16BigEndian(frame[6..]) << 32 | BinaryPrimitives.ReadUInt32BigEndian(frame[8..]);
        if (src == _stackMac.Value || src == _adapterMac.Value)
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

    private void TransmitEntered(ReadOnlySpan<byte> frame)
    {
        if (frame.Length < 14) { Statistics.SendErrors++; return; }
        if (_batchCapacity == 0 || frame.Length > _slotSize)
        {
            if (_txQueued > 0) SendQueued();
            SendOne(frame);
            return;
        }
        var slot = _txQueued;
        frame.CopyTo(new Span<byte>(_txIov[slot].Base, _slotSize));
        _txIov[slot].Len = (nuint)frame.Length;
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
        int sent = 0, count = _txQueued;
        _txQueued = 0;
        while (sent < count)
        {
            var r = Native.sendmmsg(_fd, _txMsgs + sent, (uint)(count - sent), 0);
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
        var fds = stackalloc Native.PollFd[2];
        fds[0] = new Native.PollFd { Fd = _fd, Events = Native.POLLIN };
        fds[1] = new Native.PollFd { Fd = _eventFd, Events = Native.POLLIN };
        var ticks = Math.Min(timeout.Ticks, TimeSpan.TicksPerDay);
        var ts = new Native.TimeSpec { Sec = ticks / TimeSpan.TicksPerSecond, NSec = ticks % TimeSpan.TicksPerSecond * 100 };
        // Once the capture has failed its socket polls as always ready (POLLERR): wait on the eventfd alone,
        // so a loop over a vanished adapter sleeps instead of spinning.
        var r = Native.ppoll(Fault is null ? fds : fds + 1, Fault is null ? 2u : 1u, &ts, null);
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
        lock (_wakeGate)
        {
            _eventFdClosed = true;
            Native.close(_eventFd);
        }
        _device.Close();
        if (_dispatchHandle.IsAllocated) _dispatchHandle.Free();
        if (_txBuffer != null) NativeMemory.AlignedFree(_txBuffer);
        if (_txIov != null) NativeMemory.Free(_txIov);
        if (_txMsgs != null) NativeMemory.Free(_txMsgs);
    }

    public override string ToString() => $"pcap {Name} {_adapterMac} mtu {Mtu}";

    /// <summary>libc and libpcap entry points SharpPcap does not expose (or exposes with an allocation per call).</summary>
    internal static class Native
    {
        public const int CLONE_NEWNET = 0x40000000;
        public const int EFD_NONBLOCK = 0x800;
        public const int EFD_CLOEXEC = 0x80000;
        public const short POLLIN = 1;
        public const short POLLERR = 8;
        public const short POLLHUP = 0x10;
        public const short POLLNVAL = 0x20;
        public const int ENXIO = 6;
        public const int ENODEV = 19;
        public const int ENETDOWN = 100;
        public const int EINTR = 4;
        public const int PCAP_ERRBUF_SIZE = 256;
        public const int PCAP_D_IN = 1;
        public const int PCAP_ERROR_BREAK = -2;
        public const int SOL_PACKET = 263;
        public const int PACKET_QDISC_BYPASS = 20;
        private const uint SIOCGIFMTU = 0x8921;
        private const uint SIOCGIFHWADDR = 0x8927;

        [StructLayout(LayoutKind.Sequential)]
        public struct PollFd { public int Fd; public short Events; public short REvents; }

        [StructLayout(LayoutKind.Sequential)]
        public struct TimeSpec { public long Sec; public long NSec; }

        [StructLayout(LayoutKind.Sequential)]
        public struct IoVec { public byte* Base; public nuint Len; }

        [StructLayout(LayoutKind.Sequential)]
        public struct MsgHdr
        {
            public void* Name; public uint NameLen;
            public IoVec* Iov; public nuint IovLen;
            public void* Control; public nuint ControlLen;
            public int Flags;
        }

        [StructLayout(LayoutKind.Sequential)]
        public struct MMsgHdr { public MsgHdr Hdr; public uint Len; }

        /// <summary>struct pcap_pkthdr on LP64: struct timeval, caplen, len.</summary>
        [StructLayout(LayoutKind.Sequential)]
        public struct PcapPktHdr { public long TvSec; public long TvUsec; public uint CapLen; public uint Len; }

        [StructLayout(LayoutKind.Sequential)]
        public struct PcapStat { public uint Recv; public uint Drop; public uint IfDrop; }

        [StructLayout(LayoutKind.Sequential)]
        private struct IfReq { public fixed byte Name[16]; public fixed byte Data[24]; }

        [DllImport("libc", SetLastError = true)] public static extern int setns(int fd, int nstype);
        [DllImport("libc", SetLastError = true)] public static extern int eventfd(uint initval, int flags);
        [DllImport("libc", SetLastError = true)] public static extern nint read(int fd, void* buf, nint count);
        [DllImport("libc", SetLastError = true)] public static extern nint write(int fd, void* buf, nint count);
        [DllImport("libc", SetLastError = true)] public static extern int close(int fd);
        [DllImport("libc", SetLastError = true)] public static extern int ppoll(PollFd* fds, nuint nfds, TimeSpec* timeout, void* sigmask);
        [DllImport("libc", SetLastError = true)] public static extern int sendmmsg(int fd, MMsgHdr* msgs, uint vlen, int flags);
        [DllImport("libc", SetLastError = true)] public static extern int setsockopt(int fd, int level, int name, void* value, uint length);
        [DllImport("libc", SetLastError = true)] private static extern int ioctl(int fd, nuint request, void* arg);

        private static nint _libpcap;
        private static delegate* unmanaged<nint, PcapPktHdr**, byte**, int> _nextEx;
        private static delegate* unmanaged<nint, int> _selectableFd;
        private static delegate* unmanaged<nint, int, int> _setDirection;
        private static delegate* unmanaged<nint, int, byte*, int> _setNonBlock;
        private static delegate* unmanaged<nint, PcapStat*, int> _stats;
        private static delegate* unmanaged<nint, nint> _geterr;
        private static delegate* unmanaged<nint, int, delegate* unmanaged[Cdecl]<nint, PcapPktHdr*, byte*, void>, nint, int> _dispatch;
        private static delegate* unmanaged<nint, void> _breakloop;
        private static readonly object Gate = new();
        private static readonly string[] LibraryNames = ["libpcap.so.1", "libpcap.so.0.8", "libpcap.so", "libpcap.1.dylib", "wpcap"];

        public static Exception LibpcapMissing(Exception? inner) => new PcapUnavailableException(
            $"libpcap is not installed (looked for {string.Join(", ", LibraryNames)}). Install it: apt-get install libpcap0.8", inner);

        public static void EnsureLibpcap()
        {
            if (_libpcap != 0) return;
            lock (Gate)
            {
                if (_libpcap != 0) return;
                nint lib = 0;
                foreach (var name in LibraryNames)
                    if (NativeLibrary.TryLoad(name, out lib)) break;
                if (lib == 0) throw LibpcapMissing(null);
                try
                {
                    _nextEx = (delegate* unmanaged<nint, PcapPktHdr**, byte**, int>)NativeLibrary.GetExport(lib, "pcap_next_ex");
                    _selectableFd = (delegate* unmanaged<nint, int>)NativeLibrary.GetExport(lib, "pcap_get_selectable_fd");
                    _setDirection = (delegate* unmanaged<nint, int, int>)NativeLibrary.GetExport(lib, "pcap_setdirection");
                    _setNonBlock = (delegate* unmanaged<nint, int, byte*, int>)NativeLibrary.GetExport(lib, "pcap_setnonblock");
                    _stats = (delegate* unmanaged<nint, PcapStat*, int>)NativeLibrary.GetExport(lib, "pcap_stats");
                    _geterr = (delegate* unmanaged<nint, nint>)NativeLibrary.GetExport(lib, "pcap_geterr");
                    _dispatch = (delegate* unmanaged<nint, int, delegate* unmanaged[Cdecl]<nint, PcapPktHdr*, byte*, void>, nint, int>)NativeLibrary.GetExport(lib, "pcap_dispatch");
                    _breakloop = (delegate* unmanaged<nint, void>)NativeLibrary.GetExport(lib, "pcap_breakloop");
                }
                catch (EntryPointNotFoundException e) { throw LibpcapMissing(e); }
                _libpcap = lib;
            }
        }

        public static int pcap_next_ex(nint p, PcapPktHdr** header, byte** data) => _nextEx(p, header, data);
        public static int pcap_get_selectable_fd(nint p) => _selectableFd(p);
        public static int pcap_setdirection(nint p, int direction) => _setDirection(p, direction);
        public static int pcap_setnonblock(nint p, int nonblock, byte* errbuf) => _setNonBlock(p, nonblock, errbuf);
        public static int pcap_stats(nint p, PcapStat* stats) => _stats(p, stats);
        public static nint pcap_geterr(nint p) => _geterr(p);
        public static int pcap_dispatch(nint p, int count, delegate* unmanaged[Cdecl]<nint, PcapPktHdr*, byte*, void> callback, nint user) => _dispatch(p, count, callback, user);
        public static void pcap_breakloop(nint p) => _breakloop(p);

        private static bool IfIoctl(int fd, string name, uint request, out IfReq req)
        {
            req = default;
            if (fd < 0 || name.Length > 15) return false;
            fixed (IfReq* r = &req)
            {
                for (int i = 0; i < name.Length; i++) r->Name[i] = (byte)name[i];
                return ioctl(fd, request, r) == 0;
            }
        }

        /// <summary>The MTU of <paramref name="name"/> in the calling thread's network namespace.</summary>
        public static int? ReadMtuHere(string name)
        {
            try
            {
                using var s = new System.Net.Sockets.Socket(System.Net.Sockets.AddressFamily.InterNetwork, System.Net.Sockets.SocketType.Dgram, System.Net.Sockets.ProtocolType.Udp);
                return ReadMtu((int)s.Handle, name);
            }
            catch (System.Net.Sockets.SocketException) { return null; }
        }

        /// <summary>The MTU of <paramref name="name"/> in the namespace of socket <paramref name="fd"/>.</summary>
        public static int? ReadMtu(int fd, string name) =>
            IfIoctl(fd, name, SIOCGIFMTU, out var req) ? BinaryPrimitives.ReadInt32LittleEndian(new ReadOnlySpan<byte>(req.Data, 4)) : null;

        /// <summary>The hardware address of <paramref name="name"/> (struct sockaddr: family, then the address).</summary>
        public static MacAddress? ReadHardwareAddress(int fd, string name)
        {
            if (!IfIoctl(fd, name, SIOCGIFHWADDR, out var req)) return null;
            return MacAddress.Read(new ReadOnlySpan<byte>(req.Data + 2, 6));
        }
    }
}
