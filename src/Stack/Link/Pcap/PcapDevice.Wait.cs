using System.Runtime.InteropServices;

namespace NetStack.Link;

/// <summary>
/// The loop's sleep: an epoll set of the capture socket and the eventfd <see cref="Wake"/> writes, waited on with
/// epoll_pwait2 (nanosecond timeouts), so that the capture socket's readiness can be held back while a caller runs the
/// loop's turn inline (<see cref="HoldArrivalWake"/>) without touching the sleeping loop.
/// </summary>
/// <remarks>
/// Why: a caller that connects (or pings) inline sends its SYN with sendmmsg, and a peer on this host (veth) answers
/// inside that system call: the SYN-ACK lands in our ring while the loop thread sleeps on the capture socket, so the
/// kernel wakes the loop for a frame the caller takes itself a microsecond later. The loop then only finds the turn
/// held and blocks on it, and the caller's release has to wake it again: measured 0.57 loop wake-ups per connect+close,
/// 1,818 of 2,863 of them the turn lock's (docs/benchmarks.md, conn3). Held, the frame wakes nobody; what is still unread
/// at the release wakes the loop as before (the set is level-triggered, and a modify that finds the socket ready
/// wakes the waiter). Without epoll_pwait2 (glibc before 2.35, Linux before 5.11: found out once, when the first device
/// opens) the device waits with ppoll on both descriptors as before and holds nothing.
/// </remarks>
public sealed unsafe partial class PcapDevice
{
    private const ulong CaptureKey = 0, WakeKey = 1;
    private int _epollFd = -1;            // the capture socket and the eventfd; -1: ppoll on both instead
    private bool _captureWatched;         // the capture socket is in the set (taken out once the capture fails)
    private bool _arrivalWakeHeld;        // HoldArrivalWake is in force (turn holder only)
    private static bool _noEpollWait2;    // epoll_pwait2 is missing here: every device waits with ppoll

    /// <summary>Times <see cref="HoldArrivalWake"/> took effect, since the device opened.</summary>
    public long ArrivalWakeHolds { get; private set; }

    private void InitEpoll()
    {
        if (_noEpollWait2) return;
        var ep = Native.epoll_create1(Native.EPOLL_CLOEXEC);
        if (ep < 0) return;
        if (Native.EpollControl(ep, Native.EPOLL_CTL_ADD, _eventFd, Native.EPOLLIN, WakeKey) != 0
            || Native.EpollControl(ep, Native.EPOLL_CTL_ADD, _fd, Native.EPOLLIN, CaptureKey) != 0
            || !EpollWait2Works(ep))
        {
            Native.close(ep);
            return;
        }
        _epollFd = ep;
        _captureWatched = true;
    }

    /// <summary>One wait that returns at once (level-triggered: nothing is consumed), to learn whether epoll_pwait2 exists.</summary>
    private static bool EpollWait2Works(int ep)
    {
        var events = stackalloc byte[2 * Native.EpollEventSize];
        var zero = new Native.TimeSpec();
        try
        {
            if (Native.epoll_pwait2(ep, events, 2, &zero, null) >= 0 || Marshal.GetLastPInvokeError() != Native.ENOSYS) return true;
        }
        catch (EntryPointNotFoundException) { }
        _noEpollWait2 = true;
        return false;
    }

    /// <summary>
    /// Until <see cref="ReleaseArrivalWake"/>, a frame's arrival does not end the loop's <see cref="WaitForFrames"/>: the
    /// caller holding the loop's turn takes it. A wake-up (<see cref="Wake"/>) and the timeout still end the wait, and so
    /// does a failing capture (epoll reports errors whatever the set asks for). Only whoever holds the stack's turn calls it.
    /// </summary>
    public void HoldArrivalWake()
    {
        if (_epollFd < 0 || _arrivalWakeHeld || !Enter()) return;
        try
        {
            if (_captureWatched && Native.EpollControl(_epollFd, Native.EPOLL_CTL_MOD, _fd, 0, CaptureKey) == 0)
            {
                _arrivalWakeHeld = true;
                ArrivalWakeHolds++;
            }
        }
        finally { Exit(); }
    }

    /// <summary>Ends <see cref="HoldArrivalWake"/>: frames still in the ring wake the sleeping loop at once.</summary>
    public void ReleaseArrivalWake()
    {
        if (!_arrivalWakeHeld || !Enter()) return;
        try
        {
            _arrivalWakeHeld = false;
            if (_captureWatched) Native.EpollControl(_epollFd, Native.EPOLL_CTL_MOD, _fd, Native.EPOLLIN, CaptureKey);
        }
        finally { Exit(); }
    }

    /// <summary>The loop's sleep on the epoll set (<see cref="_epollFd"/> is open).</summary>
    private void WaitEpoll(Native.TimeSpec* timeout)
    {
        // Once the capture has failed its socket reports errors for ever: it leaves the set, so a loop over a vanished
        // adapter sleeps on the eventfd alone instead of spinning.
        if (Fault is not null && _captureWatched)
        {
            _captureWatched = false;
            Native.EpollControl(_epollFd, Native.EPOLL_CTL_DEL, _fd, 0, CaptureKey);
        }
        var events = stackalloc byte[2 * Native.EpollEventSize];
        var r = Native.epoll_pwait2(_epollFd, events, 2, timeout, null);
        for (int i = 0; i < r; i++)
        {
            var (flags, key) = Native.EpollEventAt(events, i);
            if (key == WakeKey)
            {
                ulong value;
                _ = Native.read(_eventFd, &value, 8);
            }
            else if (Fault is null && (flags & (Native.EPOLLERR | Native.EPOLLHUP)) != 0)
                SetFault($"capture on '{Name}' failed: the interface is down or gone (poll events 0x{flags:x}).");
        }
    }

    private void DisposeEpoll()
    {
        if (_epollFd < 0) return;
        Native.close(_epollFd);
        _epollFd = -1;
    }
}
