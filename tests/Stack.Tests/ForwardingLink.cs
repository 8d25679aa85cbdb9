using NetStack;
using NetStack.Link;

namespace Stack.Tests;

/// <summary>
/// A link device that hands everything to <paramref name="inner"/>: the base of the test wrappers that watch or alter
/// what a stack transmits or receives (override <see cref="Transmit"/>, <see cref="Flush"/>, <see cref="Receive"/>, <see cref="NextArrival"/>
/// or <see cref="WaitForFrames"/>) without repeating the rest of <see cref="ILinkDevice"/>.
/// </summary>
public abstract class ForwardingLink(ILinkDevice inner) : ILinkDevice
{
    protected ILinkDevice Inner => inner;
    public string Name => inner.Name;
    public MacAddress HardwareAddress => inner.HardwareAddress;
    public int Mtu => inner.Mtu;
    public LinkStatistics Statistics => inner.Statistics;
    public virtual TimeSpan? NextArrival => inner.NextArrival;
    public void SetStackAddress(MacAddress mac) => inner.SetStackAddress(mac);
    public virtual int Receive(IFrameSink sink, TimeSpan now, int max) => inner.Receive(sink, now, max);
    public virtual void Transmit(ReadOnlySpan<byte> frame, TimeSpan now) => inner.Transmit(frame, now);
    public virtual void Flush(TimeSpan now) => inner.Flush(now);
    public virtual void WaitForFrames(TimeSpan timeout) => inner.WaitForFrames(timeout);
    public virtual void Wake() => inner.Wake();
    public virtual void HoldArrivalWake() => inner.HoldArrivalWake();
    public virtual void ReleaseArrivalWake() => inner.ReleaseArrivalWake();
    public void Dispose() => inner.Dispose();
}
