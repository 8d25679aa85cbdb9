using NetStack.Tcp;

namespace Stack.Tests.Tcp;

/// <summary>
/// A send that did not fit the send buffer waits until a third of the buffer is free (as Linux wakes a writer at
/// sk_stream_write_space), then takes what fits and completes once all of it is queued: its caller then finds room for
/// more sends at once instead of parking again on the next call.
/// </summary>
public class ParkedSendTests
{
    private sealed class Waiter : IOperationWaiter<bool>
    {
        public int Completions;
        public void Complete(bool result) => Completions++;
        public void Fail(Exception error) => throw error;
        public void Cancel() => throw new InvalidOperationException("not cancelled here");
    }

    [Fact]
    public void A_parked_send_waits_for_a_third_of_the_buffer_then_completes_in_one_take()
    {
        var ring = new ByteRing(300);
        Assert.Equal(300, ring.Write(new byte[300]));
        var pending = new PendingOperations();
        var waiter = new Waiter();
        pending.WaitSend(new byte[50], waiter);

        ring.Discard(60); // an ACK frees 60 of 300: under a third
        pending.PumpSend(ring);
        Assert.Equal(0, waiter.Completions);
        Assert.Equal(240, ring.Count);

        ring.Discard(40); // 100 free: a third
        pending.PumpSend(ring);
        Assert.Equal(1, waiter.Completions);
        Assert.Equal(250, ring.Count);
        Assert.False(pending.HasSend);
        ring.Release();
    }

    [Fact]
    public void A_send_larger_than_a_third_is_taken_a_third_at_a_time_until_all_of_it_is_queued()
    {
        var ring = new ByteRing(300);
        ring.Write(new byte[300]);
        var pending = new PendingOperations();
        var waiter = new Waiter();
        pending.WaitSend(new byte[250], waiter);

        ring.Discard(150);
        pending.PumpSend(ring);
        Assert.Equal(300, ring.Count);
        Assert.Equal(0, waiter.Completions);

        ring.Discard(300); // everything acknowledged
        pending.PumpSend(ring);
        Assert.Equal(100, ring.Count);
        Assert.Equal(1, waiter.Completions);
        ring.Release();
    }
}
