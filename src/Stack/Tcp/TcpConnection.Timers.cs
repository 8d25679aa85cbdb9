namespace NetStack.Tcp;

/// <summary>
/// A connection's timers, run by the layer's heap when a deadline falls due: TIME-WAIT and FIN-WAIT-2 (StateAt),
/// retransmission or persist (RtoAt: the SYN's here, data's and the persist timer's in the sender), the loss
/// recovery's reorder timer or tail loss probe (LossAt), a paced sender's next burst (PaceAt), the delayed ACK (the receiver's) and keepalive (RFC 1122 4.2.3.6).
/// </summary>
internal sealed partial class TcpConnection
{
    public void OnTimers(TimeSpan now)
    {
        if (StateAt <= now)
        {
            StateAt = Never;
            if (State == TcpState.TimeWait)
            {
                Context.Trace("Tcp", $"{Describe()} TIME-WAIT over");
                SetState(TcpState.Closed, now);
                return;
            }
            if (State == TcpState.FinWait2)
            {
                Fail(StackError.TimedOut, "The peer did not close within Tcp.FinWait2Timeout.", now);
                return;
            }
        }
        if (RtoAt <= now)
        {
            RtoAt = Never;
            OnRetransmitTimer(now);
            if (State == TcpState.Closed) return;
        }
        if (LossAt <= now)
        {
            LossAt = Never;
            Snd.OnLossTimer(now);
        }
        if (PaceAt <= now)
        {
            PaceAt = Never;
            Snd.Output(now); // a paced sender's next burst
        }
        if (DelAckAt <= now)
        {
            DelAckAt = Never;
            Rcv.OnDelayedAckTimer(now);
        }
        if (KeepAt <= now) OnKeepalive(now);
    }

    /// <summary>RFC 6298 5: the persist timer, the SYN's retransmission, or data's (with the retry limits, RFC 1122 4.2.3.5).</summary>
    private void OnRetransmitTimer(TimeSpan now)
    {
        if (Snd.OnPersistTimer(now)) return;
        var s = Settings;
        switch (State)
        {
            case TcpState.SynSent:
            case TcpState.SynReceived:
                var limit = State == TcpState.SynSent ? s.SynRetries : s.SynAckRetries;
                if (Snd.Retries >= limit)
                {
                    Counters.ConnectionsTimedOut++;
                    Counters.AttemptFails++;
                    var err = SoftError is StackError.None ? StackError.TimedOut : SoftError;
                    Fail(err, $"Connecting to {Remote}:{Key.RemotePort} timed out after {Snd.Retries + 1} SYNs" + (SoftError != StackError.None ? $" (last error: {SoftError})." : "."), now);
                    return;
                }
                Snd.Retries++;
                Snd.Rtt.Backoff++;
                Counters.Timeouts++;
                Snd.RetransmitTimeouts++;
                Snd.CountRetransmit(0);
                Context.Trace("Tcp", $"{Describe()} retransmission {Snd.Retries} of {(State == TcpState.SynSent ? "SYN" : "SYN-ACK")}");
                SendSyn(now);
                RtoAt = now + Snd.Rtt.BackedOff;
                return;
        }
        if (Snd.Max == Snd.Una) return; // nothing outstanding
        if (Snd.Retries >= s.MaxRetries)
        {
            Counters.ConnectionsTimedOut++;
            var err = SoftError is StackError.None ? StackError.TimedOut : SoftError;
            SendReset(Snd.Max, now);
            Fail(err, $"The connection to {Remote}:{Key.RemotePort} timed out after {Snd.Retries} retransmissions.", now);
            return;
        }
        Snd.OnRetransmitTimeout(now);
    }

    private void OnKeepalive(TimeSpan now)
    {
        KeepAt = Never;
        if (!Keepalive || State is not (TcpState.Established or TcpState.CloseWait)) return;
        if (Snd.Max != Snd.Una) { KeepAt = now + Settings.KeepaliveIdle; return; } // the RTO watches outstanding data
        if (_keepProbes >= Math.Min(Settings.KeepaliveProbes, ushort.MaxValue))
        {
            Counters.ConnectionsTimedOut++;
            Fail(StackError.TimedOut, $"The connection to {Remote}:{Key.RemotePort} timed out: {_keepProbes} keepalive probes unanswered.", now);
            return;
        }
        _keepProbes++;
        Counters.KeepalivesSent++;
        SendProbe(now);
        KeepAt = now + Settings.KeepaliveInterval;
    }
}
