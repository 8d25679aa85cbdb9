using System.Buffers.Binary;
using System.Runtime.InteropServices;

namespace NetStack.Link;

public sealed unsafe partial class PcapDevice
{
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
        public const int ENOSYS = 38;
        public const int EPOLL_CLOEXEC = 0x80000;
        public const int EPOLL_CTL_ADD = 1;
        public const int EPOLL_CTL_DEL = 2;
        public const int EPOLL_CTL_MOD = 3;
        public const uint EPOLLIN = 1;
        public const uint EPOLLERR = 8;
        public const uint EPOLLHUP = 0x10;
        public const int PCAP_ERRBUF_SIZE = 256;
        public const int PCAP_D_IN = 1;
        public const int PCAP_ERROR_BREAK = -2;
        public const int SOL_PACKET = 263;
        public const int PACKET_QDISC_BYPASS = 20;
        public const int PACKET_VNET_HDR = 15;
        public const int PACKET_IGNORE_OUTGOING = 23;
        public const int SOL_SOCKET = 1;
        public const int SO_SNDBUF = 7;
        public const int SO_SNDBUFFORCE = 32;
        public const ushort AF_PACKET = 17;
        public const int SOCK_RAW = 3;
        public const int SOCK_CLOEXEC = 0x80000;
        public const int EINVAL = 22;
        private const uint SIOCGIFMTU = 0x8921;
        private const uint SIOCGIFHWADDR = 0x8927;
        private const uint SIOCETHTOOL = 0x8946;
        private const uint ETHTOOL_GTSO = 0x1e;

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

        /// <summary>struct sockaddr_ll (protocol in network byte order; 0 here: the socket receives nothing).</summary>
        [StructLayout(LayoutKind.Sequential)]
        public struct SockAddrLl { public ushort Family; public ushort Protocol; public int IfIndex; public ushort HaType; public byte PktType; public byte HaLen; public fixed byte Addr[8]; }

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
        [DllImport("libc", SetLastError = true)] public static extern int epoll_create1(int flags);
        [DllImport("libc", SetLastError = true)] private static extern int epoll_ctl(int epfd, int op, int fd, byte* ev);
        [DllImport("libc", SetLastError = true)] public static extern int epoll_pwait2(int epfd, byte* events, int maxevents, TimeSpec* timeout, void* sigmask);
        [DllImport("libc", SetLastError = true)] public static extern int sendmmsg(int fd, MMsgHdr* msgs, uint vlen, int flags);
        [DllImport("libc", SetLastError = true)] public static extern int setsockopt(int fd, int level, int name, void* value, uint length);
        [DllImport("libc", SetLastError = true)] public static extern int socket(int domain, int type, int protocol);
        [DllImport("libc", SetLastError = true)] public static extern int bind(int fd, SockAddrLl* addr, uint length);
        [DllImport("libc", SetLastError = true)] public static extern uint if_nametoindex([MarshalAs(UnmanagedType.LPUTF8Str)] string name);
        [DllImport("libc", SetLastError = true)] private static extern int ioctl(int fd, nuint request, void* arg);

        /// <summary>
        /// sizeof(struct epoll_event): a 32-bit event mask and 64-bit data, packed on x86-64 (12 bytes), naturally aligned
        /// elsewhere (16).
        /// </summary>
        public static readonly int EpollEventSize = RuntimeInformation.ProcessArchitecture == Architecture.X64 ? 12 : 16;
        private static readonly int EpollDataOffset = RuntimeInformation.ProcessArchitecture == Architecture.X64 ? 4 : 8;

        public static int EpollControl(int epfd, int op, int fd, uint events, ulong key)
        {
            var ev = stackalloc byte[16];
            *(uint*)ev = events;
            *(ulong*)(ev + EpollDataOffset) = key;
            return epoll_ctl(epfd, op, fd, ev);
        }

        public static (uint Events, ulong Key) EpollEventAt(byte* events, int i)
        {
            var e = events + (nint)i * EpollEventSize;
            return (*(uint*)e, *(ulong*)(e + EpollDataOffset));
        }

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

        /// <summary>Whether TCP segmentation offload is on for <paramref name="name"/> (ETHTOOL_GTSO); null if the driver does not say.</summary>
        public static bool? ReadTso(int fd, string name)
        {
            var value = stackalloc uint[2];
            value[0] = ETHTOOL_GTSO;
            var req = default(IfReq);
            if (fd < 0 || name.Length > 15) return null;
            for (int i = 0; i < name.Length; i++) req.Name[i] = (byte)name[i];
            *(uint**)req.Data = value; // ifr_data
            return ioctl(fd, SIOCETHTOOL, &req) == 0 ? value[1] != 0 : null;
        }

        /// <summary>The hardware address of <paramref name="name"/> (struct sockaddr: family, then the address).</summary>
        public static MacAddress? ReadHardwareAddress(int fd, string name)
        {
            if (!IfIoctl(fd, name, SIOCGIFHWADDR, out var req)) return null;
            return MacAddress.Read(new ReadOnlySpan<byte>(req.Data + 2, 6));
        }
    }
}
