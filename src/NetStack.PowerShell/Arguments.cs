using System.Collections;
using System.Globalization;
using System.Management.Automation;
using System.Management.Automation.Language;

namespace NetStack.PowerShell;

/// <summary>An IPv4 address with its prefix length, as written '192.0.2.2/24'.</summary>
public readonly record struct Ipv4Prefix(Ipv4Address Address, int PrefixLength)
{
    public override string ToString() => $"{Address}/{PrefixLength}";
}

/// <summary>Turns a parameter's input into the value the cmdlet needs, failing at binding with a message that says what to write.</summary>
public abstract class NetStackTransformationAttribute : ArgumentTransformationAttribute
{
    public override object? Transform(EngineIntrinsics engineIntrinsics, object? inputData)
    {
        var value = inputData is PSObject pso ? pso.BaseObject : inputData;
        if (value is null) return null;
        if (value is IList list && value is not string)
        {
            var result = new object?[list.Count];
            for (int i = 0; i < list.Count; i++)
                result[i] = TransformOne(list[i] is PSObject p ? p.BaseObject : list[i]);
            return result;
        }
        return TransformOne(value);
    }

    protected abstract object? TransformOne(object? value);
}

/// <summary>
/// '192.0.2.2/24' to an <see cref="Ipv4Prefix"/>. An address without a prefix length is refused, with the fix: a guessed
/// length is wrong on any network that is not a /24 and shows up much later as "network unreachable" or as hosts that
/// never answer, far from its cause.
/// </summary>
public sealed class Ipv4PrefixTransformationAttribute : NetStackTransformationAttribute
{
    protected override object? TransformOne(object? value)
    {
        switch (value)
        {
            case null: return null;
            case Ipv4Prefix p: return p;
            case Ipv4Address a: throw NoPrefix(a.ToString());
            case System.Net.IPAddress ip: throw NoPrefix(Ipv4AddressTransformationAttribute.FromIPAddress(ip).ToString());
        }
        var text = value.ToString()!.Trim();
        var slash = text.IndexOf('/');
        var addressText = slash < 0 ? text : text[..slash];
        if (!Ipv4Address.TryParse(addressText, out var address))
            throw new ArgumentTransformationMetadataException(
                $"'{text}' is not an IPv4 address with a prefix length. Write it as address/prefix, e.g. '192.0.2.2/24' (prefix 1 to 30).");
        if (slash < 0) throw NoPrefix(addressText);
        if (!int.TryParse(text[(slash + 1)..], NumberStyles.None, CultureInfo.InvariantCulture, out var prefix) || prefix is < 1 or > 30)
            throw new ArgumentTransformationMetadataException(
                $"'{text}' has no valid prefix length. Write it as address/prefix with a prefix from 1 to 30, e.g. '{addressText}/24'.");
        return new Ipv4Prefix(address, prefix);
    }

    private static ArgumentTransformationMetadataException NoPrefix(string address) => new(
        $"'{address}' has no prefix length, so the stack cannot tell which addresses are on its link. Add your network's: " +
        $"'{address}/24' for a 255.255.255.0 mask ('ip -4 addr' on the host shows it).");
}

/// <summary>'192.0.2.1' or an [ipaddress] to a NetStack <see cref="Ipv4Address"/>.</summary>
public sealed class Ipv4AddressTransformationAttribute : NetStackTransformationAttribute
{
    internal static Ipv4Address FromIPAddress(System.Net.IPAddress ip)
    {
        try { return Ipv4Address.FromIPAddress(ip); }
        catch (ArgumentException e) { throw new ArgumentTransformationMetadataException(NetStackCmdlet.PlainMessage(e), e); }
    }

    protected override object? TransformOne(object? value)
    {
        switch (value)
        {
            case null: return null;
            case Ipv4Address a: return a;
            case System.Net.IPAddress ip: return FromIPAddress(ip);
        }
        var text = value.ToString()!.Trim();
        if (!Ipv4Address.TryParse(text, out var address))
            throw new ArgumentTransformationMetadataException($"'{text}' is not an IPv4 address. Write it in dotted-quad form, e.g. '192.0.2.1'.");
        return address;
    }
}

/// <summary>'02-00-5E-10-00-01', '02:00:5e:10:00:01' or '0200.5e10.0001' to a <see cref="MacAddress"/>.</summary>
public sealed class MacAddressTransformationAttribute : NetStackTransformationAttribute
{
    protected override object? TransformOne(object? value)
    {
        switch (value)
        {
            case null: return null;
            case MacAddress m: return m;
            case System.Net.NetworkInformation.PhysicalAddress pa when pa.GetAddressBytes().Length == 6:
                return MacAddress.Read(pa.GetAddressBytes());
        }
        var text = value.ToString()!.Trim();
        if (!MacAddress.TryParse(text, out var mac))
            throw new ArgumentTransformationMetadataException($"'{text}' is not a MAC address. Write six hex octets, e.g. '02-00-5E-10-00-01'.");
        return mac;
    }
}

/// <summary>A stack name (or a stack object) to the running <see cref="StackInstance"/>.</summary>
/// <remarks>
/// An unknown name becomes a placeholder the cmdlet reports as an ObjectNotFound error with a stable id, rather than
/// a binding failure, so scripts can catch it like any other missing object.
/// </remarks>
public sealed class StackTransformationAttribute : ArgumentTransformationAttribute
{
    public override object? Transform(EngineIntrinsics engineIntrinsics, object? inputData)
    {
        var value = inputData is PSObject pso ? pso.BaseObject : inputData;
        return value switch
        {
            null => null,
            // Several stacks (Stop-Stack a, b): each one as below; a parameter that takes one stack refuses the array.
            object[] many => many.Select(m => Transform(engineIntrinsics, m)).ToArray() is var items && items.All(i => i is null or StackInstance)
                ? items.Cast<StackInstance?>().ToArray()
                : items,
            StackInstance s => s,
            // A socket's Stack property: its stack, or (once stopped) StackStopped rather than StackNotFound.
            NetworkStack ns => ModuleState.All().FirstOrDefault(s => ReferenceEquals(s.NetworkStack, ns))
                ?? (ns.IsRunning ? StackInstance.Missing(ns.Name) : StackInstance.Stopped(ns.Name, 0)),
            // A name. Only a plain value is read as one: any other object is left for the binder to refuse, so that piped
            // into a view (whose -Stack also takes pipeline input) a socket binds by its Stack property, not as a name.
            IConvertible => ModuleState.Lookup(value.ToString()!),
            _ => value,
        };
    }
}

/// <summary>
/// What a -Socket parameter accepts: a socket object, anything carrying the socket's descriptor Id (a
/// Get-StackConnection row, a StackSocket wrapper), or the Id itself. The cmdlet looks the Id up in its stack.
/// </summary>
public sealed class SocketReference
{
    public SocketReference(int id) => Id = id;

    public SocketReference(Sockets.StackSocket socket)
    {
        Id = socket.Id;
        Socket = socket;
        StackName = socket.Stack.Name;
    }

    public SocketReference(StackConnection connection)
    {
        Id = connection.Id;
        StackName = connection.Stack;
    }

    public int Id { get; }
    internal Sockets.StackSocket? Socket { get; }
    /// <summary>The stack the socket came from, when the input said so.</summary>
    internal string? StackName { get; }

    public override string ToString() => Id.ToString(CultureInfo.InvariantCulture);
}

