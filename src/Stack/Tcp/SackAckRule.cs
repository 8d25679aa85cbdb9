namespace NetStack.Tcp;

/// <summary>
/// RFC 2018 4: "If sent at all, SACK options SHOULD be included in all ACKs which do not ACK the highest sequence
/// number in the data receiver's queue" (and RFC 5681 4.2 / RFC 2018 4 make the receiver ACK at once when out-of-order
/// data arrives, so that the sender learns of the hole). A connection sending data both ways acknowledges mostly on
/// its data segments, and a full segment (MSS already less the timestamp option) leaves no room for a SACK option, so
/// without this rule its peer learns of its holes only from the one pure ACK each out-of-order arrival draws: when that
/// ACK is lost, RACK finds no loss and the RTO must act (issue 14: most of RACK's timeouts at 20% loss). Two parts:
/// <list type="bullet">
/// <item>New data makes room: while SACK blocks are owed a new segment carries less data by the option's size, as
/// Linux's tcp_current_mss subtracts the options a segment carries (RFC 9293 3.7.1: the effective send MSS counts the
/// TCP options), so the blocks go on every data segment.</item>
/// <item>A segment that still has no room (a retransmission of a full segment sent before) carries the cumulative ACK
/// but not the SACK information an immediate ACK was owed for, so it does not pay that ACK: a pure ACK with the blocks
/// follows.</item>
/// </list>
/// </summary>
internal static class SackAckRule
{
    /// <summary>The TCP header's option space (RFC 9293 3.1: data offset at most 15 words).</summary>
    public const int OptionSpace = 40;

    /// <summary>SACK option bytes besides its blocks: two NOPs to align, kind and length (RFC 2018 3, as we lay it out).</summary>
    public const int OptionBase = 4;

    /// <summary>
    /// The data bytes a new segment may carry: <paramref name="sndMss"/> (the MSS less the options every segment carries,
    /// <paramref name="otherOptions"/> bytes of them) less a SACK option for as many of the <paramref name="blocksOwed"/>
    /// blocks as the option space holds (3 beside timestamps, 4 without).
    /// </summary>
    public static int DataRoom(int sndMss, int otherOptions, int blocksOwed)
    {
        if (blocksOwed <= 0) return sndMss;
        var blocks = Math.Min(blocksOwed, (OptionSpace - otherOptions - OptionBase) / 8);
        if (blocks <= 0) return sndMss;
        return Math.Max(sndMss - (OptionBase + 8 * blocks), 1);
    }

    /// <summary>
    /// Whether a segment carrying ACK = RCV.NXT pays an ACK owed at once: unless SACK information was owed
    /// (<paramref name="sackOwed"/>: out-of-order data held or a D-SACK to report) and the segment carried no SACK block.
    /// </summary>
    public static bool PaysImmediateAck(bool sackOwed, bool sackCarried) => !sackOwed || sackCarried;
}
