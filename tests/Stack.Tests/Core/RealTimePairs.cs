using NetStack;

namespace Stack.Tests.Core;

/// <summary>What the real-time loop tests (busy polling, the caller's wait) share: bounded waits, a stack counter, a connection.</summary>
internal static class RealTimePairs
{
    /// <summary>The value of the stack-level counter <paramref name="name"/> (Get-StackStatistics' Stack layer).</summary>
    public static async Task<long> Counter(NetworkStack stack, string name) =>
        (await stack.GetStatisticsAsync().WaitAsync(TimeSpan.FromSeconds(30))).Single(c => c.Layer == "Stack" && c.Name == name).Value;

    /// <summary>Waits (bounded) until <paramref name="condition"/> holds; fails the test if it never does.</summary>
    public static void Until(Func<bool> condition, string what) =>
        Assert.True(SpinWait.SpinUntil(condition, TimeSpan.FromSeconds(30)), $"timed out waiting until {what}");

    /// <summary>A connection from A to B's port 7000: the client's socket and the one B accepted.</summary>
    public static async Task<(NetStack.Sockets.TcpSocket Client, NetStack.Sockets.TcpSocket Server)> Connect(NetworkStack a, NetworkStack b)
    {
        var accept = b.Listen(7000).AcceptAsync();
        var client = await a.ConnectTcpAsync(b.Config.Address, 7000).WaitAsync(TimeSpan.FromSeconds(30));
        return (client, await accept.WaitAsync(TimeSpan.FromSeconds(30)));
    }
}
