using NetStack.Sockets;
using Stack.Tests.Tcp;

namespace Stack.Tests.Sockets;

/// <summary>
/// The socket as its own receive's ValueTask source (TcpSocket.ReadSource.cs): a receive's completion has two steps,
/// the claim of its continuation slot and the flag a caller polls. A caller that saw the flag before the claim was made
/// could take the result and start the next receive, whose start clears the slot; the late claim then marked that next
/// receive done before it ran, and its await returned 0 (a false end of stream) while it still waited in the
/// connection. The test stops the loop between the two steps and does what a fast caller does there.
/// </summary>
public class ReceiveSignalOrderTests
{
    [Fact]
    public async Task A_receive_started_while_the_last_one_signals_is_not_completed_by_that_signal()
    {
        using var c = await TcpRealTimeTests.Connected.Start(seed: 41, port: 41);
        using var paused = new ManualResetEventSlim();
        using var release = new ManualResetEventSlim();
        var server = c.Server;
        TcpSocket.s_betweenClaimAndFlagForTests = s =>
        {
            if (!ReferenceEquals(s, server) || paused.IsSet) return;
            paused.Set();
            release.Wait(TimeSpan.FromSeconds(30));
        };
        try
        {
            var firstBuffer = new byte[16];
            var first = server.ReceiveAsync(firstBuffer);
            Assert.False(first.IsCompleted); // nothing was sent yet
            await c.Client.SendAsync(new byte[] { 1 }, c.Timeout.Token);
            Assert.True(paused.Wait(TimeSpan.FromSeconds(30)), "the receive was never completed");

            // The loop is inside the first receive's signal. A caller that sees it completed takes its result and starts
            // the next receive at once (what an await that finds the ValueTask completed does).
            ValueTask<int> second = default;
            var secondBuffer = new byte[16];
            var takenEarly = first.IsCompleted;
            if (takenEarly)
            {
                Assert.Equal(1, await first); // completed: the await takes the result on this thread, at once
                second = server.ReceiveAsync(secondBuffer);
            }
            release.Set();
            if (!takenEarly)
            {
                Assert.Equal(1, await first.AsTask().WaitAsync(c.Timeout.Token));
                second = server.ReceiveAsync(secondBuffer);
            }
            Assert.Equal(1, firstBuffer[0]);

            // The second receive waits for data of its own: the first's signal did not end it.
            var secondTask = second.AsTask();
            await c.Client.SendAsync(new byte[] { 2 }, c.Timeout.Token);
            Assert.Equal(1, await secondTask.WaitAsync(c.Timeout.Token));
            Assert.Equal(2, secondBuffer[0]);
        }
        finally
        {
            TcpSocket.s_betweenClaimAndFlagForTests = null;
            release.Set();
        }
    }
}
