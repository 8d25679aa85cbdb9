namespace NetStack.Icmp;

/// <summary>ICMP types and destination-unreachable codes (RFC 792).</summary>
public static class IcmpCodes
{
    public const byte TypeEchoReply = 0;
    public const byte TypeDestinationUnreachable = 3;
    public const byte TypeSourceQuench = 4;
    public const byte TypeRedirect = 5;
    public const byte TypeEchoRequest = 8;
    public const byte TypeTimeExceeded = 11;
    public const byte TypeParameterProblem = 12;

    public const byte NetworkUnreachable = 0;
    public const byte HostUnreachable = 1;
    public const byte ProtocolUnreachable = 2;
    public const byte PortUnreachable = 3;
    public const byte FragmentationNeeded = 4;
    public const byte SourceRouteFailed = 5;
    public const byte AdministrativelyProhibited = 13;

    /// <summary>Time exceeded codes (RFC 792).</summary>
    public const byte TtlExceededInTransit = 0;
    public const byte FragmentReassemblyTimeExceeded = 1;
}
