using System.Runtime.InteropServices;
using SharpPcap;
using SharpPcap.LibPcap;

namespace NetStack.Link;

/// <summary>Opening an adapter: finding it, in its network namespace if asked, and configuring libpcap for the loop.</summary>
public sealed unsafe partial class PcapDevice
{
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
            // The same in the kernel (Linux 4.20+): outgoing frames are not even offered to the capture socket, so
            // the frames of the segmentation socket (PcapDevice.Segmentation.cs) cost it no filter run.
            int ignoreOutgoing = 1;
            _ = Native.setsockopt(Native.pcap_get_selectable_fd(pcap), Native.SOL_PACKET, Native.PACKET_IGNORE_OUTGOING, &ignoreOutgoing, sizeof(int));

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
            var segmentationFd = options.BatchTransmit && options.SegmentationOffload ? OpenSegmentationSocket(interfaceName, warnings) : -1;
            try { result = new PcapDevice(device, options, mac, mtu, config.Snaplen, warnings, segmentationFd); }
            catch
            {
                if (segmentationFd >= 0) Native.close(segmentationFd);
                throw;
            }
            result.ApplyFilter();
            // Last: a failure above leaves no rule behind. This thread is in the adapter's namespace; nft runs there too.
            if (options.HostIngressDrop is { } address)
                result.HostIngressDrop = HostIngressDropRule.InstallHere(interfaceName, address, options.NetworkNamespace);
            return result;
        }
        catch
        {
            if (result is not null) result.Dispose();
            else device.Close();
            throw;
        }
    }

    /// <summary>The host ingress drop installed for this device (<see cref="PcapDeviceOptions.HostIngressDrop"/>), removed on Dispose; null if none.</summary>
    public HostIngressDropRule? HostIngressDrop { get; private set; }

    private static int? ReadSysfsMtu(string name)
    {
        try { return int.TryParse(File.ReadAllText($"/sys/class/net/{name}/mtu").Trim(), out var v) ? v : null; }
        catch (IOException) { return null; }
        catch (UnauthorizedAccessException) { return null; }
    }
}
