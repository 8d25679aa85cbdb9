using System.Text.RegularExpressions;
using NetStack.Diagnostics;
using Xunit.Abstractions;

namespace Stack.Tests.Diagnostics;

/// <summary>Golden structure of the ladder of a known exchange (LadderScenario), from the stack's log and its state log.</summary>
public partial class LadderTests(ITestOutputHelper output)
{
    /// <summary>The exchange as the client saw it: arrows "from>to flags Seq/Ack/Len [marks]", notes "[host] STATE".</summary>
    internal static readonly string[] Golden =
    {
        "[0] SYN-SENT",
        "0>1 SYN Seq=0 Len=0",
        "[1] SYN-RECEIVED",
        "1>0 SYN,ACK Seq=0 Ack=1 Len=0",
        "[0] ESTABLISHED",
        "0>1 ACK Seq=1 Ack=1 Len=0",
        "[1] ESTABLISHED",
        "0>1 PSH,ACK Seq=1 Ack=1 Len=100",
        "0>1 PSH,ACK Seq=1 Ack=1 Len=100 [retransmission]",
        "1>0 PSH,ACK Seq=1 Ack=101 Len=50",
        "[0] FIN-WAIT-1",
        "0>1 FIN,ACK Seq=101 Ack=51 Len=0",
        "[1] CLOSE-WAIT",
        "1>0 ACK Seq=51 Ack=102 Len=0",
        "[0] FIN-WAIT-2",
        "[1] LAST-ACK",
        "1>0 FIN,ACK Seq=51 Ack=102 Len=0",
        "[0] TIME-WAIT",
        "0>1 ACK Seq=102 Ack=52 Len=0",
        "[1] CLOSED",
    };

    [GeneratedRegex(@" Win=\d+( MSS=\d+)?( WS=\d+)?( SACK_PERM)?( TS)?")]
    private static partial Regex WindowAndOptions();

    /// <summary>Each row as a short signature: the window and SYN options left out (they follow the settings).</summary>
    internal static List<string> Signature(Ladder ladder) => ladder.Rows.Select(r => r switch
    {
        LadderArrow a => $"{a.From}>{a.To} {WindowAndOptions().Replace(a.Label, "")}",
        LadderStateNote n => $"[{n.Host}] {n.State}",
        _ => "?",
    }).ToList();

    [Fact]
    public void The_known_exchange_has_the_right_arrows_in_order_with_the_stacks_own_states()
    {
        using var s = new LadderScenario();
        var ladder = s.ClientLadder();
        output.WriteLine(LadderText.ToText(ladder, 110));
        Assert.Equal(new[] { "192.0.2.2", "192.0.2.1" }, ladder.Hosts);
        Assert.Equal(Golden, Signature(ladder));
        Assert.All(ladder.States, n => Assert.False(n.Inferred)); // both are our stacks: recorded, not guessed
        var syn = ladder.Arrows.First();
        Assert.Matches(@"^SYN Seq=0 Len=0 Win=\d+ MSS=1460 WS=\d+ SACK_PERM$", syn.Label);
        var retransmitted = ladder.Arrows.Single(a => a.Marks.HasFlag(SegmentMarks.Retransmission));
        Assert.Equal(TimeSpan.FromMilliseconds(200), retransmitted.Time - ladder.Arrows.ElementAt(3).Time); // the minimum RTO
        // The recorded transitions sit at their own times: TIME-WAIT when the server's FIN arrived.
        var timeWait = ladder.States.Single(n => n.State == "TIME-WAIT");
        Assert.Equal(ladder.Arrows.ElementAt(8).Time, timeWait.Time);
    }

    [Fact]
    public void Without_the_stacks_states_the_same_states_are_inferred_and_marked_so()
    {
        using var s = new LadderScenario();
        var frames = s.ClientTrace.Decode().Where(f => f.Protocol == "TCP").ToList();
        var ladder = LadderBuilder.Build(frames);
        Assert.Equal(Golden, Signature(ladder));
        Assert.All(ladder.States, n => Assert.True(n.Inferred));
        Assert.Contains("~ESTABLISHED", LadderText.ToText(ladder));
    }

    [Fact]
    public void Only_the_client_stack_known_the_server_side_is_inferred()
    {
        using var s = new LadderScenario();
        var frames = s.ClientTrace.Decode().Where(f => f.Protocol == "TCP").ToList();
        var ladder = LadderBuilder.Build(frames, s.ClientTrace.StateChanges);
        Assert.Equal(Golden, Signature(ladder));
        Assert.All(ladder.States, n => Assert.Equal(n.Host == 1, n.Inferred));
    }

    [Fact]
    public void Console_text_fits_the_width_and_has_an_ascii_form()
    {
        using var s = new LadderScenario();
        var ladder = s.ClientLadder(tcpOnly: false); // ARP too: a gratuitous ARP is an arrow to itself
        foreach (var width in new[] { 80, 120 })
        {
            var lines = LadderText.Render(ladder, width);
            Assert.All(lines, l => Assert.True(l.Length <= width, $"line longer than {width}: '{l}'"));
        }
        var text = LadderText.ToText(ladder, 100);
        Assert.Contains("├", text);
        Assert.Contains("▶│", text);
        Assert.Contains("TIME-WAIT", text);
        var ascii = LadderText.ToText(ladder, 100, ascii: true);
        Assert.All(ascii, c => Assert.True(c < 128, $"non-ASCII '{c}' in the ASCII form"));
        Assert.Contains("=>|", ascii); // the retransmission's arrow
        Assert.Contains("[retransmission]", ascii);
        // Three hosts: the client, the server and a third the client resolved names with would each get a column.
        Assert.Equal(2, ladder.Hosts.Count);
    }

    [Fact]
    public void A_reset_and_duplicate_acks_are_marked()
    {
        var f = new FrameFactory();
        var frames = new List<NetStack.Diagnostics.FrameSummary>
        {
            f.Tcp(true, 1000, 0, 0x02, 0), f.Tcp(false, 5000, 1001, 0x12, 0), f.Tcp(true, 1001, 5001, 0x10, 0),
            f.Tcp(true, 1001, 5001, 0x18, 100), f.Tcp(true, 1101, 5001, 0x18, 100), f.Tcp(true, 1201, 5001, 0x18, 100),
            f.Tcp(false, 5001, 1101, 0x10, 0), f.Tcp(false, 5001, 1101, 0x10, 0), f.Tcp(false, 5001, 1101, 0x10, 0, window: 0),
            f.Tcp(true, 1301, 5001, 0x04, 0),
        };
        var ladder = LadderBuilder.Build(frames);
        var marks = ladder.Arrows.Select(a => a.Marks).ToList();
        Assert.Equal(SegmentMarks.DuplicateAck, marks[7]);
        Assert.True(marks[8].HasFlag(SegmentMarks.ZeroWindow));
        Assert.Equal(SegmentMarks.Reset, marks[9]);
        Assert.Equal(new[] { "CLOSED", "CLOSED" }, ladder.States.TakeLast(2).Select(n => n.State));
        Assert.Contains("[dup ACK]", ladder.Arrows.ElementAt(7).Label);
    }

    [Fact]
    public void Three_hosts_get_three_columns()
    {
        var f = new FrameFactory();
        var third = new FrameFactory(client: f.Client, server: new NetStack.Ipv4Address(192, 0, 2, 53), serverPort: 53);
        var frames = new List<NetStack.Diagnostics.FrameSummary> { third.Tcp(true, 1, 0, 0x02, 0), f.Tcp(true, 1000, 0, 0x02, 0), third.Tcp(false, 9, 2, 0x12, 0) };
        var ladder = LadderBuilder.Build(frames);
        Assert.Equal(new[] { "192.0.2.2", "192.0.2.53", "192.0.2.1" }, ladder.Hosts);
        Assert.Equal(new[] { (0, 1), (0, 2), (1, 0) }, ladder.Arrows.Select(a => (a.From, a.To)));
        var lines = LadderText.Render(ladder, 100);
        Assert.Contains(lines, l => l.Contains("┼")); // the arrow to the third column crosses the middle one
        output.WriteLine(string.Join("\n", lines));
    }
}
