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

/// <summary>'192.0.2.2/24' (or '192.0.2.2', taken as /24) to an <see cref="Ipv4Prefix"/>.</summary>
public sealed class Ipv4PrefixTransformationAttribute : NetStackTransformationAttribute
{
    protected override object? TransformOne(object? value)
    {
        switch (value)
        {
            case null: return null;
            case Ipv4Prefix p: return p;
            case Ipv4Address a: return new Ipv4Prefix(a, 24);
            case System.Net.IPAddress ip: return new Ipv4Prefix(Ipv4AddressTransformationAttribute.FromIPAddress(ip), 24);
        }
        var text = value.ToString()!.Trim();
        var slash = text.IndexOf('/');
        var addressText = slash < 0 ? text : text[..slash];
        var prefix = 24;
        if (!Ipv4Address.TryParse(addressText, out var address)
            || (slash >= 0 && (!int.TryParse(text[(slash + 1)..], NumberStyles.None, CultureInfo.InvariantCulture, out prefix) || prefix is < 1 or > 30)))
            throw new ArgumentTransformationMetadataException(
                $"'{text}' is not an IPv4 address with a prefix length. Write it as address/prefix, e.g. '192.0.2.2/24' (prefix 1 to 30; without one, /24 is assumed).");
        return new Ipv4Prefix(address, prefix);
    }
}

/// <summary>'192.0.2.1' or an [ipaddress] to a NetStack <see cref="Ipv4Address"/>.</summary>
public sealed class Ipv4AddressTransformationAttribute : NetStackTransformationAttribute
{
    internal static Ipv4Address FromIPAddress(System.Net.IPAddress ip)
    {
        try { return Ipv4Address.FromIPAddress(ip); }
        catch (ArgumentException e) { throw new ArgumentTransformationMetadataException(e.Message, e); }
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
            StackInstance s => s,
            NetworkStack ns => ModuleState.All().FirstOrDefault(s => ReferenceEquals(s.NetworkStack, ns)) ?? StackInstance.Missing(ns.Name),
            _ => ModuleState.Find(value.ToString()!) ?? StackInstance.Missing(value.ToString()!),
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

// ---------------- tab completion ----------------

internal static class Completion
{
    public static IEnumerable<CompletionResult> Matching(IEnumerable<(string Text, string Tip)> items, string wordToComplete)
    {
        var word = (wordToComplete ?? "").Trim('\'', '"');
        foreach (var (text, tip) in items)
        {
            if (!text.StartsWith(word, StringComparison.OrdinalIgnoreCase)) continue;
            var quoted = text.IndexOfAny(new[] { ' ', '$', '\'', '"', '`', ';', '(', ')', '{', '}', ',', '@', '#' }) >= 0 ? $"'{text.Replace("'", "''")}'" : text;
            yield return new CompletionResult(quoted, text, CompletionResultType.ParameterValue, tip);
        }
    }

    public static StackInstance? StackFrom(IDictionary fakeBoundParameters)
    {
        var value = fakeBoundParameters.Contains("Stack") ? fakeBoundParameters["Stack"] : null;
        if (value is PSObject p) value = p.BaseObject;
        return value switch
        {
            StackInstance s => s,
            string name => ModuleState.Find(name),
            _ => ModuleState.Latest(),
        };
    }
}

/// <summary>Completes -Stack with the names of running stacks.</summary>
public sealed class StackNameCompleter : IArgumentCompleter
{
    public IEnumerable<CompletionResult> CompleteArgument(string commandName, string parameterName, string wordToComplete, CommandAst commandAst, IDictionary fakeBoundParameters) =>
        Completion.Matching(ModuleState.All().Select(s => (s.Name, $"{s.Name}  {s.Address}  {s.Link}")), wordToComplete);
}

/// <summary>Completes -Adapter with the names of the adapters libpcap lists.</summary>
public sealed class AdapterNameCompleter : IArgumentCompleter
{
    public IEnumerable<CompletionResult> CompleteArgument(string commandName, string parameterName, string wordToComplete, CommandAst commandAst, IDictionary fakeBoundParameters)
    {
        IReadOnlyList<AdapterInfo> adapters;
        try { adapters = AdapterInfo.List(); }
        catch (Exception) { return Array.Empty<CompletionResult>(); } // no libpcap: nothing to offer
        return Completion.Matching(adapters.Select(a => (a.Name, string.IsNullOrEmpty(a.Description) ? a.Name : a.Description!)), wordToComplete);
    }
}

/// <summary>Completes -VirtualNetwork with the networks that exist in this process.</summary>
public sealed class VirtualNetworkCompleter : IArgumentCompleter
{
    public IEnumerable<CompletionResult> CompleteArgument(string commandName, string parameterName, string wordToComplete, CommandAst commandAst, IDictionary fakeBoundParameters) =>
        Completion.Matching(ModuleState.AllNetworks().Select(n => (n.Name, $"{n.Name} ({n.PortCount} stacks)")), wordToComplete);
}

/// <summary>Completes -Socket with the descriptors of the stack's sockets.</summary>
public sealed class SocketIdCompleter : IArgumentCompleter
{
    public IEnumerable<CompletionResult> CompleteArgument(string commandName, string parameterName, string wordToComplete, CommandAst commandAst, IDictionary fakeBoundParameters)
    {
        var stack = Completion.StackFrom(fakeBoundParameters);
        if (stack is null || stack.IsMissing || stack.IsStopped) return Array.Empty<CompletionResult>();
        IReadOnlyList<Sockets.ConnectionInfo> rows;
        try
        {
            var task = stack.Core.GetConnectionsAsync();
            if (!task.Wait(TimeSpan.FromSeconds(2))) return Array.Empty<CompletionResult>();
            rows = task.Result;
        }
        catch (Exception) { return Array.Empty<CompletionResult>(); }
        return Completion.Matching(rows.Select(r => (r.Id.ToString(CultureInfo.InvariantCulture),
            $"{r.Protocol} {r.LocalAddress}:{r.LocalPort} -> {r.RemoteAddress}:{r.RemotePort} {r.State}")), wordToComplete);
    }
}
