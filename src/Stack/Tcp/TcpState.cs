namespace NetStack.Tcp;

/// <summary>The connection states of RFC 9293 section 3.3.2, named as Get-NetTCPConnection names them.</summary>
public enum TcpState
{
    Closed,
    Listen,
    SynSent,
    SynReceived,
    Established,
    FinWait1,
    FinWait2,
    CloseWait,
    Closing,
    LastAck,
    TimeWait,
}
