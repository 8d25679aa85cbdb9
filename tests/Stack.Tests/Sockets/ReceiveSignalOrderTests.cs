using NetStack.Sockets;
using Stack.Tests.Tcp;

namespace Stack.Tests.Sockets;

/// <summary>
/// The socket as its own receive's ValueTask source (OperationCore.cs, TcpSocket.ReadSource.cs): a completion has two steps,
/// the claim of its continuation slot and the flag a caller polls. A caller that saw the flag before the claim was made
/// could take the result and start the next receive, whose start clears the slot; the late claim then marked that next
/// receive done before it ran, and its await returned 0 (a false end of stream) while it still waited in the
/// connection. The test stops the loop between the two steps and does what a fast caller does there.
/// </summary>
public class ReceiveSignalOrderTests
{
    /// <summary>Holds the first completion of an operation <paramref name="match"/> picks between its two steps, until released.</summary>
    private sealed class Pause : IDisposable
    {
        public readonly ManualResetEventSlim Paused = new();
        public readonly ManualResetEventSlim Release = new();

        public Pause(Func<IReusableOperation, bool> match) =>
            OperationCoreTestHooks.BetweenClaimAndFlag = owner =>
            {
                if (!match(owner) || Paused.IsSet) return;
                Paused.Set();
                Release.Wait(TimeSpan.FromSeconds(30));
            };

        public void Dispose()
        {
            OperationCoreTestHooks.BetweenClaimAndFlag = null;
            Release.Set();
            Paused.Dispose();
            Release.Dispose();
        }
    }

    [Fact]
    public async Task A_receive_started_while_the_last_one_signals_is_not_completed_by_that_signal()
    {
        using var c = await TcpRealTimeTests.Connected.Start(seed: 41, port: 41);
        var server = c.Server;
        using var pause = new Pause(owner => ReferenceEquals(owner, server));
        var firstBuffer = new byte[16];
        var first = server.ReceiveAsync(firstBuffer);
        Assert.False(first.IsCompleted); // nothing was sent yet
        await c.Client.SendAsync(new byte[] { 1 }, c.Timeout.Token);
        Assert.True(pause.Paused.Wait(TimeSpan.FromSeconds(30)), "the receive was never completed");

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
        pause.Release.Set();
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

    [Fact]
    public async Task A_send_started_while_the_last_one_signals_waits_for_its_own_completion()
    {
        using var c = await TcpRealTimeTests.Connected.Start(seed: 42, port: 42);
        var client = c.Client;
        // The client's send operation (its owner is not the socket, which is the receive's) on A's loop.
        using var pause = new Pause(owner => owner is not TcpSocket && ReferenceEquals(owner.Stack, c.A));
        // More than the send buffer and the peer's window hold while B does not read: the send waits for space, and
        // A's loop completes it once B reads.
        var big = new byte[8 << 20];
        big.AsSpan().Fill(7);
        var first = client.WriteAsync(big);
        Assert.False(first.IsCompleted);
        long read = 0;
        var reader = Task.Run(async () =>
        {
            var buffer = new byte[64 << 10];
            while (read < big.Length + 1)
            {
                var n = await c.Server.ReceiveAsync(buffer, c.Timeout.Token);
                if (n == 0) break;
                Interlocked.Add(ref read, n);
            }
        });
        Assert.True(pause.Paused.Wait(TimeSpan.FromSeconds(30)), "the send was never completed");

        ValueTask second = default;
        var takenEarly = first.IsCompleted;
        if (takenEarly)
        {
            await first;
            second = client.WriteAsync(new byte[] { 8 });
        }
        pause.Release.Set();
        if (!takenEarly)
        {
            await first.AsTask().WaitAsync(c.Timeout.Token);
            second = client.WriteAsync(new byte[] { 8 });
        }
        await second.AsTask().WaitAsync(c.Timeout.Token); // completes as itself: no "not completed" from the first's signal
        await reader.WaitAsync(c.Timeout.Token);
        Assert.Equal(big.Length + 1, Interlocked.Read(ref read));
    }
}
