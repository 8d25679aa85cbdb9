namespace NetStack;

/// <summary>What went wrong, in words a socket user knows. The PowerShell layer maps each to an error id and category.</summary>
public enum StackError
{
    None = 0,
    ConnectionRefused,
    TimedOut,
    HostUnreachable,
    NetworkUnreachable,
    PortUnreachable,
    ProtocolUnreachable,
    AddressInUse,
    AddressNotAvailable,
    NoEphemeralPorts,
    MessageTooLong,
    NoBufferSpace,
    ConnectionReset,
    ConnectionAborted,
    NotConnected,
    AlreadyConnected,
    SocketClosed,
    Shutdown,
    InvalidState,
    InvalidArgument,
    StackStopped,
    NameNotFound,
    ServerFailure,
}

/// <summary>An error the stack reports to its user; <see cref="Error"/> says which.</summary>
public class StackException : Exception
{
    public StackException(StackError error, string message, Exception? inner = null) : base(message, inner) => Error = error;
    public StackError Error { get; }
}

/// <summary>Stack configuration that cannot work; <see cref="Field"/> names the setting.</summary>
public sealed class StackConfigurationException : ArgumentException
{
    public StackConfigurationException(string field, string message) : base(message, field) => Field = field;
    public string Field { get; }
}
