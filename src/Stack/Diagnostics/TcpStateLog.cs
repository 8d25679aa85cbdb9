using NetStack.Sockets;
using NetStack.Tcp;

namespace NetStack.Diagnostics;

/// <summary>
/// One TCP state transition of one of the stack's connections (RFC 9293 3.3.2), with the connection's initial
/// sequence numbers and window shifts as they stood then: <see cref="Iss"/> and <see cref="LocalWindowShift"/> ours,
/// <see cref="Irs"/> and <see cref="RemoteWindowShift"/> the peer's (valid once <see cref="IrsKnown"/>). Times are on
/// the stack's clock, the clock of the packet log.
/// </summary>
public readonly record struct TcpStateChange(
    TimeSpan Time, Ipv4Address LocalAddress, ushort LocalPort, Ipv4Address RemoteAddress, ushort RemotePort,
    TcpState From, TcpState To, uint Iss, uint Irs, byte LocalWindowShift = 0, byte RemoteWindowShift = 0)
{
    /// <summary>The peer's ISN is known once either side of the change is a synchronized state (SYN-RECEIVED or later).</summary>
    public bool IrsKnown => Synchronized(From) || Synchronized(To);

    private static bool Synchronized(TcpState s) => s is not (TcpState.Closed or TcpState.Listen or TcpState.SynSent);
}

/// <summary>
/// The recent TCP state transitions of a stack, written on the loop where a connection changes state (one call
/// from <c>TcpConnection.SetState</c>) and read as a snapshot (ladder diagrams, relative sequence numbers).
/// A ring of structs that grows to <see cref="Capacity"/> and then overwrites the oldest: bounded memory, and no
/// allocation per transition once grown.
/// </summary>
public sealed class TcpStateLog
{
    public const int DefaultCapacity = 1024;
    private TcpStateChange[] _ring = Array.Empty<TcpStateChange>();
    private long _count;

    public TcpStateLog(int capacity = DefaultCapacity)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(capacity);
        Capacity = capacity;
    }

    public int Capacity { get; }

    /// <summary>Transitions recorded since the stack started (older ones have been overwritten).</summary>
    public long Total => _count;

    /// <summary>Records one transition. Loop only.</summary>
    public void Record(in TcpStateChange change)
    {
        if (Capacity == 0) return;
        if (_count >= _ring.Length && _ring.Length < Capacity)
            Array.Resize(ref _ring, (int)Math.Min(Capacity, Math.Max(16, _ring.Length * 2L)));
        _ring[(int)(_count % _ring.Length)] = change;
        _count++;
    }

    /// <summary>The transitions still held, oldest first. Loop only (or after the loop stopped).</summary>
    public TcpStateChange[] Snapshot() => Ring.Snapshot(_ring, _count);
}

/// <summary>The diagnostics rings (state log, internals recorder): <c>count</c> items written so far, the newest at (count - 1) % length.</summary>
internal static class Ring
{
    /// <summary>The items still held, oldest first.</summary>
    public static T[] Snapshot<T>(T[] ring, long count)
    {
        var n = (int)Math.Min(count, ring.Length);
        var result = new T[n];
        for (int i = 0; i < n; i++) result[i] = ring[(int)((count - n + i) % ring.Length)];
        return result;
    }
}
