using NetStack;
using NetStack.Link;
using static Stack.Tests.Support.StackHarness;

namespace Stack.Tests.IPv4;

/// <summary>
/// Base for test devices that make up their received frames themselves and do not keep what is sent,
/// so measuring the stack (allocation, frames per second) measures the stack and not the test device.
/// </summary>
public abstract class GeneratedFramesDevice : ILinkDevice
{
    public long Transmitted;

    public virtual string Name => "gen0";
    public MacAddress HardwareAddress => OurMac;
    public int Mtu => 1500;
    public LinkStatistics Statistics { get; } = new();
    public TimeSpan? NextArrival => null;

    public abstract int Receive(IFrameSink sink, TimeSpan now, int max);
    public virtual void Transmit(ReadOnlySpan<byte> frame, TimeSpan now) => Transmitted++;
    public void Flush(TimeSpan now) { }
    public void WaitForFrames(TimeSpan timeout) { }
    public void Wake() { }
    public void Dispose() { }
}
