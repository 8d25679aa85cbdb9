using NetStack;
using NetStack.IPv4;
using NetStack.Udp;
using Stack.Tests.Support;
using static Stack.Tests.Support.StackHarness;

namespace Stack.Tests.Udp;

public class DatagramQueueTests
{
    [Theory]
    [InlineData(1, 212992)]
    [InlineData(2, 4096)]
    [InlineData(3, 100_000)]
    public void Ring_keeps_order_and_content_and_refuses_only_beyond_the_limit(int seed, int limit)
    {
        var rng = new Random(seed);
        var q = new DatagramQueue(limit);
        var model = new Queue<byte[]>();
        var charged = 0;
        for (int step = 0; step < 5000; step++)
        {
            if (rng.Next(3) > 0 || model.Count == 0)
            {
                // Mostly small datagrams, now and then a big one, so that wraps happen at odd places.
                var len = rng.Next(10) == 0 ? rng.Next(UdpHeader.MaxPayload + 1) : rng.Next(1500);
                var data = new byte[len];
                rng.NextBytes(data);
                var fits = charged + len + DatagramQueue.OverheadPerDatagram <= limit;
                Assert.Equal(fits, q.TryEnqueue(data, new Ipv4Address((uint)step), (ushort)step));
                if (fits)
                {
                    model.Enqueue(data);
                    charged += len + DatagramQueue.OverheadPerDatagram;
                }
            }
            else
            {
                var expected = model.Dequeue();
                var got = q.Dequeue();
                Assert.Equal(expected, got.Data);
                charged -= expected.Length + DatagramQueue.OverheadPerDatagram;
            }
            Assert.Equal(charged, q.Charged);
            Assert.InRange(q.Capacity, 0, limit + 2 * 65536);
        }
    }

    [Fact]
    public void Storing_datagrams_allocates_nothing_once_the_ring_has_grown()
    {
        var q = new DatagramQueue(212992);
        var data = new byte[1000];
        for (int i = 0; i < 150; i++) q.TryEnqueue(data, default, 1); // grow the ring and the entry queue
        while (q.Count > 0) q.Dequeue();

        long allocated = 0;
        for (int round = 0; round < 10; round++)
        {
            var before = GC.GetAllocatedBytesForCurrentThread();
            for (int i = 0; i < 150; i++) Assert.True(q.TryEnqueue(data, default, 1));
            allocated += GC.GetAllocatedBytesForCurrentThread() - before;
            while (q.Count > 0) q.Dequeue(); // the caller's copy is allocated here, by design
        }
        Support.Allocations.AssertNonePerItem(allocated, 1500, "datagrams stored");
    }

    [Fact]
    public void Receive_path_allocates_nothing_per_datagram_while_the_socket_queues()
    {
        using var h = new StackHarness(c => c with { PacketLogCapacity = 0 });
        h.Run(h.Stack.AddArpEntryAsync(PeerIp, PeerMac));
        using var s = h.Run(h.Stack.CreateUdpSocketAsync(7));
        var frames = new byte[200][];
        for (int i = 0; i < frames.Length; i++)
            frames[i] = Frames.Ipv4(PeerMac, OurMac, PeerIp, OurIp, (byte)IpProtocol.Udp,
                UdpRuleTests.Udp(PeerIp, 5000, OurIp, 7, new byte[512]), id: (ushort)i);

        void Round()
        {
            foreach (var f in frames) h.Device.Inject(f);
            h.Poll();
        }
        Round(); // warm up: the ring and the entry queue grow to their working size
        for (int i = 0; i < frames.Length; i++) h.Run(s.ReceiveAsync());

        var before = GC.GetAllocatedBytesForCurrentThread();
        Round();
        var allocated = GC.GetAllocatedBytesForCurrentThread() - before;
        Assert.Equal(400, h.Stack.Udp.Counters.DatagramsDelivered);
        Support.Allocations.AssertNonePerItem(allocated, frames.Length, "datagrams received");
    }
}
