using NetStack;
using NetStack.Tcp;
using static NetStack.Tcp.TcpFlags;

namespace Stack.Tests.Tcp;

/// <summary>
/// RFC 2018 4 (<see cref="SackAckRule"/>): while out-of-order data is held every ACK carries the SACK blocks, data
/// segments included: new data makes room for the option (as Linux's tcp_current_mss), and a segment with no room (a
/// retransmission of a full segment) leaves the ACK owed for the out-of-order arrival to a pure ACK with the blocks.
/// A bare connection, SACK without timestamps, the peer's MSS the path's (1460): crafted segments in, exact segments out.
/// </summary>
public class SackAckRuleTests
{
    private const uint P = BareTcp.PeerIss + 1;
    private const int Full = 1460;

    [Theory]
    [InlineData(1448, 12, 0, 1448)]   // nothing owed: a full segment
    [InlineData(1448, 12, 1, 1436)]   // one block: NOP NOP kind length + 8
    [InlineData(1448, 12, 5, 1420)]   // beside timestamps at most 3 blocks fit in 40 bytes
    [InlineData(1460, 0, 5, 1424)]    // without, 4
    public void New_data_leaves_room_for_as_many_blocks_as_the_option_space_holds(int sndMss, int otherOptions, int blocks, int expected)
        => Assert.Equal(expected, SackAckRule.DataRoom(sndMss, otherOptions, blocks));

    [Fact]
    public void While_out_of_order_data_is_held_new_data_segments_carry_the_sack_block_and_less_data_by_its_size()
    {
        var t = new BareTcp(s => s with { Sack = true });
        var (c, us) = t.Established(Full, TimeSpan.FromMilliseconds(10), sack: true);
        var port = c.Key.LocalPort;
        // The peer's segment after a hole: the pure ACK at once reports it (RFC 5681 4.2).
        var dupAck = Assert.Single(t.Feed(BareTcp.From(port, P + 1000, us, Ack | Psh, new byte[1000])));
        Assert.Equal(P, dupAck.Ack);
        Assert.Equal(new[] { (P + 1000, P + 2000) }, dupAck.Sack);

        // Our data now: every segment carries the block, and 12 bytes less data than a full one (one block and its base);
        // the rest (104 bytes) waits for Nagle.
        var sent = t.Do(now => c.Send(new byte[3000], now));
        Assert.Equal(new[] { 1448, 1448 }, sent.Select(s => s.Payload.Length));
        Assert.Equal(new[] { us, us + 1448 }, sent.Select(s => s.Seq));
        Assert.All(sent, s => Assert.Equal(new[] { (P + 1000, P + 2000) }, s.Sack));
        Assert.All(sent, s => Assert.Equal(P, s.Ack));

        // The hole fills and our data is acknowledged: nothing is owed, the rest goes with the cumulative ACK alone and
        // new data is full-sized again.
        var rest = Assert.Single(t.Feed(BareTcp.From(port, P, us + 2896, Ack | Psh, new byte[1000])));
        Assert.Equal(104, rest.Payload.Length);
        Assert.Equal(P + 2000, rest.Ack);
        Assert.Empty(rest.Sack);
        var next = t.Do(now => c.Send(new byte[3000], now))[0];
        Assert.Equal(Full, next.Payload.Length);
        Assert.Empty(next.Sack);
    }

    [Fact]
    public void A_full_retransmission_has_no_room_for_the_block_so_a_pure_ack_with_it_follows()
    {
        var t = new BareTcp(s => s with { Sack = true });
        var (c, us) = t.Established(Full, TimeSpan.FromMilliseconds(10), sack: true);
        var port = c.Key.LocalPort;
        Assert.Equal(4, t.Do(now => c.Send(new byte[4 * Full], now)).Count);
        t.Advance(TimeSpan.FromMilliseconds(10));

        // The peer's data segment after a hole in its own data, SACKing our last three segments: RACK finds the first
        // lost (RFC 8985 6.2, no reordering seen and three SACKed) and resends it, full-sized with no room for a block.
        var replies = t.Feed(BareTcp.From(port, P + 1000, us, Ack | Psh, new byte[100], options: SegCodec.SackOption((us + Full, us + 4 * Full))));
        Assert.Equal(2, replies.Count);
        var resent = replies[0];
        Assert.Equal(us, resent.Seq);
        Assert.Equal(Full, resent.Payload.Length);
        Assert.Equal(P, resent.Ack);
        Assert.Empty(resent.Sack);
        // The ACK owed for the out-of-order arrival still goes, with its block.
        var pure = replies[1];
        Assert.Empty(pure.Payload);
        Assert.Equal(P, pure.Ack);
        Assert.Equal(new[] { (P + 1000, P + 1100) }, pure.Sack);
    }
}
