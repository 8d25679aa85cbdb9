using NetStack.Sockets;
using NetStack.Tcp;

namespace NetStack.Diagnostics;

/// <summary>A state note and where it goes: just before or after arrow <see cref="Anchor"/>, or by its time (Anchor -1).</summary>
internal readonly record struct PlacedNote(LadderStateNote Note, int Anchor, bool Before);

/// <summary>
/// The TCP states written beside a ladder's columns. Each endpoint's states are inferred from the segments with the
/// RFC 9293 3.3.2 state diagram (a capture has nothing else); for our stacks' endpoints the transitions the stack
/// recorded replace them, each placed at the segment whose inferred transition it matches, else by its time.
/// </summary>
internal static class LadderStates
{
    private readonly record struct Endpoint(Ipv4Address Local, ushort LocalPort, Ipv4Address Remote, ushort RemotePort);

    private readonly record struct Inferred(Endpoint Endpoint, TcpState State, int Anchor, bool Before, TimeSpan Time);

    private sealed class Side
    {
        public TcpState? State;
        public bool FinSent;
        public uint FinEnd;
        public bool PeerFinSeen;
    }

    public static List<PlacedNote> Place(List<LadderArrow> arrows, List<string> hosts, List<TcpStateChange> changes, HashSet<string> multi)
    {
        var inferred = Infer(arrows);
        var ours = changes.Select(c => c.LocalAddress).ToHashSet();
        var result = new List<PlacedNote>();
        string? Conn(Endpoint e) => multi.Contains(e.Local.ToString()) ? ":" + e.LocalPort : null;
        foreach (var n in inferred.Where(n => !ours.Contains(n.Endpoint.Local)))
            result.Add(new PlacedNote(new LadderStateNote(n.Time, hosts.IndexOf(n.Endpoint.Local.ToString()), Ladder.StateName(n.State), true, Conn(n.Endpoint)), n.Anchor, n.Before));
        if (arrows.Count == 0) return result;

        var origin = arrows[0].Time;
        var present = Endpoints(arrows);
        foreach (var group in changes.Where(c => c.LocalPort != 0).GroupBy(c => new Endpoint(c.LocalAddress, c.LocalPort, c.RemoteAddress, c.RemotePort)))
        {
            if (!present.Contains(group.Key)) continue;
            // The transitions during the ladder, and the one before it began: the state the endpoint started in.
            var before = group.Where(c => c.Time < origin).Select(c => (TcpStateChange?)c).LastOrDefault();
            var shown = group.Where(c => c.Time >= origin).ToList();
            if (before is { } b) shown.Insert(0, b);
            var candidates = inferred.Where(n => n.Endpoint == group.Key).ToList();
            var host = hosts.IndexOf(group.Key.Local.ToString());
            var k = 0;
            foreach (var c in shown)
            {
                var j = candidates.FindIndex(k, n => n.State == c.To);
                var note = new LadderStateNote(c.Time, host, Ladder.StateName(c.To), false, Conn(group.Key));
                if (j >= 0)
                {
                    result.Add(new PlacedNote(note, candidates[j].Anchor, candidates[j].Before));
                    k = j + 1;
                }
                else result.Add(new PlacedNote(note, -1, false));
            }
        }
        return result;
    }

    private static HashSet<Endpoint> Endpoints(List<LadderArrow> arrows)
    {
        var set = new HashSet<Endpoint>();
        foreach (var a in arrows)
            if (TcpFlowKey.Of(a.Frame) is { } k)
            {
                set.Add(new Endpoint(k.Source, k.SourcePort, k.Destination, k.DestinationPort));
                set.Add(new Endpoint(k.Destination, k.DestinationPort, k.Source, k.SourcePort));
            }
        return set;
    }

    /// <summary>Both endpoints of every connection walked through RFC 9293's state diagram, one segment at a time.</summary>
    private static List<Inferred> Infer(List<LadderArrow> arrows)
    {
        var sides = new Dictionary<Endpoint, Side>();
        var notes = new List<Inferred>();
        for (int i = 0; i < arrows.Count; i++)
        {
            var f = arrows[i].Frame;
            if (f.Tcp is not { } t || TcpFlowKey.Of(f) is not { } k) continue;
            var sndKey = new Endpoint(k.Source, k.SourcePort, k.Destination, k.DestinationPort);
            var rcvKey = new Endpoint(k.Destination, k.DestinationPort, k.Source, k.SourcePort);
            var snd = Get(sides, sndKey);
            var rcv = Get(sides, rcvKey);
            void Move(Side s, Endpoint e, TcpState to, bool before)
            {
                if (s.State == to) return;
                s.State = to;
                notes.Add(new Inferred(e, to, i, before, f.Time));
            }
            if (t.Has(TcpFlags.Rst))
            {
                if (snd.State is not (null or TcpState.Closed)) Move(snd, sndKey, TcpState.Closed, false);
                if (rcv.State is not (null or TcpState.Closed)) Move(rcv, rcvKey, TcpState.Closed, false);
                continue;
            }
            var syn = t.Has(TcpFlags.Syn);
            var ack = t.Has(TcpFlags.Ack);
            var fin = t.Has(TcpFlags.Fin);
            // The sender: states entered by sending (before the arrow).
            if (syn && !ack && snd.State is null or TcpState.Closed or TcpState.TimeWait) { ResetSide(snd); Move(snd, sndKey, TcpState.SynSent, true); }
            if (fin && !snd.FinSent)
            {
                snd.FinSent = true;
                snd.FinEnd = t.Seq + t.SequenceLength;
                if (snd.State is null or TcpState.Established or TcpState.SynReceived) Move(snd, sndKey, TcpState.FinWait1, true);
                else if (snd.State == TcpState.CloseWait) Move(snd, sndKey, TcpState.LastAck, true);
            }
            // The receiver: states entered by receiving (after the arrow); the ACK first, then the FIN, as TCP processes them.
            if (syn && !ack)
            {
                if (rcv.State is null or TcpState.Closed or TcpState.Listen or TcpState.TimeWait) { ResetSide(rcv); Move(rcv, rcvKey, TcpState.SynReceived, false); }
                else if (rcv.State == TcpState.SynSent) Move(rcv, rcvKey, TcpState.SynReceived, false); // simultaneous open
            }
            else if (syn && rcv.State == TcpState.SynSent) Move(rcv, rcvKey, TcpState.Established, false);
            else if (ack && rcv.State == TcpState.SynReceived) Move(rcv, rcvKey, TcpState.Established, false);
            if (ack && rcv.FinSent && t.Ack == rcv.FinEnd)
            {
                if (rcv.State == TcpState.FinWait1) Move(rcv, rcvKey, TcpState.FinWait2, false);
                else if (rcv.State == TcpState.Closing) Move(rcv, rcvKey, TcpState.TimeWait, false);
                else if (rcv.State == TcpState.LastAck) Move(rcv, rcvKey, TcpState.Closed, false);
            }
            if (fin && !rcv.PeerFinSeen)
            {
                rcv.PeerFinSeen = true;
                if (rcv.State is null or TcpState.Established or TcpState.SynReceived) Move(rcv, rcvKey, TcpState.CloseWait, false);
                else if (rcv.State == TcpState.FinWait1) Move(rcv, rcvKey, TcpState.Closing, false);
                else if (rcv.State == TcpState.FinWait2) Move(rcv, rcvKey, TcpState.TimeWait, false);
            }
        }
        return notes;
    }

    private static void ResetSide(Side s)
    {
        s.FinSent = false;
        s.PeerFinSeen = false;
    }

    private static Side Get(Dictionary<Endpoint, Side> sides, Endpoint e)
    {
        if (!sides.TryGetValue(e, out var s)) sides[e] = s = new Side();
        return s;
    }
}
