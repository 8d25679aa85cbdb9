using NetStack.Tcp;

namespace Stack.Tests.Tcp;

/// <summary>
/// The delivery rate estimator (draft-cheng-iccrg-delivery-rate-estimation) and the transmit records it stamps, alone:
/// segments "sent" into a <see cref="SentSegments"/> ring at chosen times, delivered by cumulative ACK or SACK, and the
/// samples that result.
/// </summary>
public class DeliveryRateSamplerTests
{
    private const uint Mss = 1000;
    private static TimeSpan Ms(double ms) => TimeSpan.FromMilliseconds(ms);

    /// <summary>A sender's records and sampler, as TcpSender wires them.</summary>
    private sealed class Flow : ISentSegmentObserver
    {
        public readonly SentSegments Sent;
        public DeliveryRateSampler Rate;
        public TimeSpan Now;
        public uint Una = 1, Max = 1;
        public Flow() => Sent = new SentSegments(this);
        void ISentSegmentObserver.OnDelivered(in SentSegment s, uint bytes) => Rate.OnDelivered(in s, bytes, Now);

        public void Send(int segments, TimeSpan at)
        {
            Now = at;
            for (int i = 0; i < segments; i++)
            {
                var stamp = Rate.OnSend(at, Max == Una);
                Sent.OnTransmit(Max, Mss, Max, at, ref stamp);
                Max += Mss;
            }
        }

        public RateSample Ack(int segments, TimeSpan at, TimeSpan minRtt)
        {
            Now = at;
            Una += (uint)segments * Mss;
            Sent.OnCumulativeAck(Una);
            return Rate.OnAckDone(minRtt, Max - Una);
        }

        public RateSample Sack(int from, int to, TimeSpan at, TimeSpan minRtt)
        {
            Now = at;
            Sent.MarkSacked(1 + (uint)from * Mss, 1 + (uint)to * Mss);
            return Rate.OnAckDone(minRtt, Sent.Pipe(Una, Max));
        }
    }

    [Fact]
    public void A_window_sent_at_once_and_acknowledged_a_round_trip_later_gives_its_size_over_the_round_trip()
    {
        var f = new Flow();
        f.Send(10, Ms(0));
        var rs = f.Ack(10, Ms(10), minRtt: Ms(10));
        Assert.True(rs.IsValid);
        Assert.Equal(10 * Mss, rs.Delivered);
        Assert.Equal(Ms(10), rs.Interval);                               // ack_elapsed; send_elapsed is 0
        Assert.Equal(1_000_000, rs.DeliveryRate, 3);                     // 10,000 bytes in 10 ms
        Assert.Equal(Ms(10), rs.Rtt);
        Assert.Equal(0, rs.PriorDelivered);
        Assert.Equal(10_000, f.Rate.TotalDelivered);
    }

    [Fact]
    public void Acks_spread_over_a_round_trip_measure_the_ack_rate_not_the_burst()
    {
        var f = new Flow();
        f.Send(10, Ms(0));
        f.Ack(5, Ms(10), Ms(10));                                        // half the window, one RTT later
        f.Send(5, Ms(10));                                               // the ACK clock sends 5 more
        var rs = f.Ack(5, Ms(15), Ms(10));
        // The sample comes from segment 9 (sent at 0, when C.delivered was 0): 10 segments in max(0, 15 ms) = 15 ms.
        Assert.Equal(10 * Mss, rs.Delivered);
        Assert.Equal(Ms(15), rs.Interval);
        var next = f.Ack(5, Ms(25), Ms(10));
        // Segments 10-14 were sent at 10 ms when C.delivered was 5000 (delivered time 10 ms, first sent time 0): 10,000
        // bytes delivered since, over max(send 10 ms, ack 15 ms) = 15 ms.
        Assert.Equal(10 * Mss, next.Delivered);
        Assert.Equal(5000, next.PriorDelivered);
        Assert.Equal(Ms(15), next.Interval);
    }

    [Fact]
    public void An_interval_shorter_than_the_min_rtt_is_not_a_valid_sample()
    {
        var f = new Flow();
        f.Send(2, Ms(0));
        var rs = f.Ack(2, Ms(1), minRtt: Ms(10));                        // an ACK compression artefact
        Assert.False(rs.IsValid);
        Assert.Equal(0, rs.DeliveryRate);
        Assert.Equal(2 * Mss, rs.NewlyDelivered);
    }

    [Fact]
    public void Sacked_segments_count_once_and_the_sample_follows_the_most_recently_sent()
    {
        var f = new Flow();
        f.Send(4, Ms(0));
        var rs = f.Sack(2, 4, Ms(10), Ms(5));                            // 2 and 3 SACKed, 0 and 1 missing
        Assert.Equal(2 * Mss, rs.NewlyDelivered);
        Assert.Equal(2 * Mss, rs.Delivered);
        var later = f.Ack(4, Ms(12), Ms(5));                              // the cumulative ACK covers all four
        Assert.Equal(2 * Mss, later.NewlyDelivered);                       // 2 and 3 are not counted again
        Assert.Equal(4000, f.Rate.TotalDelivered);
    }

    [Fact]
    public void Samples_while_the_application_had_nothing_to_send_are_marked_until_that_data_is_delivered()
    {
        var f = new Flow();
        f.Send(2, Ms(0));
        f.Rate.MarkAppLimited(inFlight: 2 * Mss);                        // nothing more to send, cwnd not used
        f.Send(1, Ms(1));
        Assert.True(f.Ack(2, Ms(10), Ms(5)).IsAppLimited is false);       // sent before the bubble
        Assert.True(f.Ack(1, Ms(11), Ms(5)).IsAppLimited);                // sent inside it
        f.Send(1, Ms(12));
        Assert.False(f.Ack(1, Ms(22), Ms(5)).IsAppLimited);               // the bubble has left the pipe
    }

    [Fact]
    public void A_retransmission_gives_no_rtt_and_the_records_keep_the_pipe()
    {
        var f = new Flow();
        f.Send(4, Ms(0));
        f.Sent.MarkLost(0);
        Assert.Equal(3 * Mss, (ulong)f.Sent.Pipe(f.Una, f.Max));        // RFC 6675 SetPipe: a lost segment leaves it
        var stamp = f.Rate.OnSend(Ms(5), false);
        f.Sent.OnTransmit(1, Mss, f.Max, Ms(5), ref stamp);               // sent again
        Assert.Equal(4 * Mss, (ulong)f.Sent.Pipe(f.Una, f.Max));
        Assert.True(f.Sent[0].Has(SentFlags.EverRetransmitted));
        var rs = f.Ack(1, Ms(12), Ms(5));
        Assert.Equal(TimeSpan.Zero, rs.Rtt);                              // Karn
        Assert.Equal(3 * Mss, (ulong)f.Sent.Pipe(f.Una, f.Max));
    }

    [Fact]
    public void A_sack_block_inside_a_record_splits_it()
    {
        var f = new Flow();
        var stamp = f.Rate.OnSend(Ms(0), true);
        f.Sent.OnTransmit(1, 3 * Mss, 1, Ms(0), ref stamp);               // one record of three segments (as a full ring makes)
        f.Max = 1 + 3 * Mss;
        Assert.Equal(1, f.Sent.Count);
        Assert.Equal(Mss, f.Sent.MarkSacked(1 + Mss, 1 + 2 * Mss));
        Assert.Equal(3, f.Sent.Count);
        Assert.Equal(new[] { false, true, false }, Enumerable.Range(0, 3).Select(i => f.Sent[i].Has(SentFlags.Sacked)));
        Assert.Equal(2 * Mss, (ulong)f.Sent.Pipe(f.Una, f.Max));
    }

    [Fact]
    public void The_windowed_min_rtt_forgets_a_minimum_older_than_its_window()
    {
        var m = WindowedFilter.Min();
        var w = TimeSpan.FromSeconds(10).Ticks;
        void Take(TimeSpan rtt, double atSeconds) => m.Update(rtt.Ticks, TimeSpan.FromSeconds(atSeconds).Ticks, w);
        TimeSpan Min() => TimeSpan.FromTicks((long)m.Value);
        Take(Ms(5), 0);
        Take(Ms(8), 3);
        Take(Ms(9), 6);
        Assert.Equal(Ms(5), Min());
        Take(Ms(12), 11);                   // 5 ms is 11 s old: the next best of the window
        Assert.Equal(Ms(8), Min());
        Take(Ms(4), 12);
        Assert.Equal(Ms(4), Min());
    }
}
