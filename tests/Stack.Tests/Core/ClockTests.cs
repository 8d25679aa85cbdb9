using NetStack;

namespace Stack.Tests.Core;

public sealed class ClockTests
{
    [Fact]
    public void System_clocks_made_at_different_times_tell_the_same_time()
    {
        // Two stacks on a virtual wire compare one's frame stamps with the other's clock: they must share an epoch.
        var first = new SystemClock();
        var started = first.Now;
        while (first.Now - started < TimeSpan.FromMilliseconds(20)) Thread.SpinWait(100);
        var second = new SystemClock();

        var before = first.Now;
        var between = second.Now;
        var after = first.Now;
        Assert.InRange(between, before, after);
    }
}
