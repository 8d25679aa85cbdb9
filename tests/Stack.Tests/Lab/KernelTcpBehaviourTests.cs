using System.Buffers.Binary;
using NetStack.Tcp;
using Stack.Tests.Tcp;

namespace NetStack.Tests.Lab;

/// <summary>
/// What the kernel lab showed about the Linux peer, replayed as crafted segments (runs everywhere, no root): each
/// test is a behaviour of the kernel's TCP that once tripped ours in KernelTcpTests.
/// </summary>
public sealed class KernelTcpBehaviourTests
{
    private static byte[] SackOkOption() => [2, 4, 0x03, 0xE8, 1, 1, 4, 2]; // MSS 1000, NOP NOP SACK-permitted

    private static byte[] SackOption(uint left, uint right)
    {
        var o = new byte[12];
        o[0] = 1; o[1] = 1; o[2] = 5; o[3] = 10;
        BinaryPrimitives.WriteUInt32BigEndian(o.AsSpan(4), left);
        BinaryPrimitives.WriteUInt32BigEndian(o.AsSpan(8), right);
        return o;
    }

    /// <summary>
    /// Linux opens its receive window as it reads (rcv_ssthresh grows), so the duplicate ACKs that report a hole
    /// with SACK each carry a slightly larger window. RFC 6675 2 counts an ACK that SACKs new data as a duplicate
    /// whatever its window; requiring an unchanged window (RFC 5681's definition) left every loss to the RTO.
    /// </summary>
    [Fact]
    public void SackDuplicateAcks_WithAGrowingWindow_TriggerFastRetransmit()
    {
        using var rig = new TcpRig(t => t with { Sack = true });
        var s = rig.ConnectOne(synAckOptions: SackOkOption());
        var send = s.SendAsync(new byte[10_000]);
        var sent = rig.Drain();
        Assert.Equal(10, sent.Count(x => x.Payload.Length == 1000));
        rig.H.Run(send);

        var first = rig.OurIss + 1;   // this segment was lost
        var peerSeq = TcpRig.PeerIss + 1;
        var replies = new List<Seg>();
        for (int k = 1; k <= 3; k++)
        {
            var ack = rig.From(peerSeq, first, TcpFlags.Ack, window: (ushort)(60_000 + 100 * k), options: SackOption(first + 1000, first + 1000 + 1000 * (uint)k));
            replies.AddRange(rig.Feed(ack));
        }
        Assert.Single(replies, r => r.Seq == first && r.Payload.Length == 1000);
        Assert.Equal(1, rig.Counter("FastRetransmits"));
        Assert.Equal(0, rig.Counter("Timeouts"));
    }

    /// <summary>
    /// A Linux receiver that stops reading closes its window to its scale's granularity (1024 bytes with
    /// wscale 10), not to zero. With data waiting, nothing in flight and a window too small to use (sender SWS
    /// avoidance), we must still send something on a timer (a probe, RFC 9293 3.8.6.1, or the override timeout of
    /// 3.8.6.2.1): otherwise a lost
    /// window update leaves the connection stalled for good.
    /// </summary>
    [Fact]
    public void ATinyWindow_WithNothingInFlight_IsProbed()
    {
        using var rig = new TcpRig();
        var s = rig.ConnectOne();
        var send = s.SendAsync(new byte[20_000]);
        var sent = rig.Drain();
        var end = sent.Max(x => x.Seq + (uint)x.Payload.Length);
        // Everything in flight is acknowledged, but the window left is 100 bytes.
        var replies = rig.Feed(rig.From(TcpRig.PeerIss + 1, end, TcpFlags.Ack, window: 100));
        Assert.DoesNotContain(replies, r => r.Payload.Length > 0); // too small to use: SWS avoidance holds the data
        // Within a few RTOs: a probe one below SND.UNA, or (the override timeout of RFC 9293 3.8.6.2.1) data that fits.
        var later = rig.Advance(TimeSpan.FromSeconds(3));
        Assert.Contains(later, r => (r.Payload.Length == 0 && r.Seq == end - 1) || (r.Seq == end && r.Payload.Length is > 0 and <= 100));
        _ = send;
    }
}
