using System.Collections;
using System.Globalization;
using System.Management.Automation;
using System.Management.Automation.Language;
using NetStack.Diagnostics;
using NetStack.Link;
using NetStack.Tcp;

namespace NetStack.PowerShell;

// Tab completion. Every list offered comes from where the values live: running stacks, adapters, namespaces,
// sockets, the counters a stack keeps, the TcpState enum, the frames in the packet log, DataCodec's names.

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

    /// <summary>Runs a query on a live stack for a completer: null when there is none or it does not answer soon.</summary>
    public static T? Ask<T>(IDictionary fakeBoundParameters, Func<NetworkStack, Task<T>> query) where T : class
    {
        var stack = StackFrom(fakeBoundParameters);
        if (stack is null || stack.IsMissing || stack.IsStopped) return null;
        try
        {
            var task = query(stack.Core);
            return task.Wait(TimeSpan.FromSeconds(2)) ? task.Result : null;
        }
        catch (Exception) { return null; } // stopped meanwhile: nothing to offer
    }

    /// <summary>The values of a parameter as the user typed them so far (for narrowing one list by another).</summary>
    public static string[] Bound(IDictionary fakeBoundParameters, string name) =>
        fakeBoundParameters.Contains(name) && fakeBoundParameters[name] is { } v
            ? LanguagePrimitives.ConvertTo<string[]>(v is PSObject p ? p.BaseObject : v)
            : Array.Empty<string>();
}

/// <summary>
/// The counters a stack keeps (layer and name), read from a stack the first time they are asked for: a throwaway stack
/// on a private virtual wire, polled once on this thread, so the list is exactly what Get-StackStatistics returns.
/// </summary>
internal static class CounterCatalog
{
    private static readonly Lazy<IReadOnlyList<StackCounter>> All = new(Read);

    public static IReadOnlyList<StackCounter> Counters => All.Value;

    private static IReadOnlyList<StackCounter> Read()
    {
        var wire = new VirtualWire();
        // With DHCP on, so its counters are listed too; polled once, its DISCOVER goes nowhere (a private wire).
        var config = new StackConfig { Dhcp = new DhcpSettings { Enabled = true } };
        using var stack = new NetworkStack(wire.CreatePort("catalog", new MacAddress(0x0200_0000_0001UL)), config, name: "counter-catalog");
        var task = stack.GetStatisticsAsync();
        stack.Poll(TimeSpan.Zero); // caller-driven: this thread is the loop for one turn
        return task.GetAwaiter().GetResult();
    }
}

/// <summary>Completes -Layer of Get-StackStatistics with the layers that have counters.</summary>
public sealed class LayerCompleter : IArgumentCompleter
{
    public IEnumerable<CompletionResult> CompleteArgument(string commandName, string parameterName, string wordToComplete, CommandAst commandAst, IDictionary fakeBoundParameters) =>
        Completion.Matching(CounterCatalog.Counters.Select(c => c.Layer).Distinct().Select(l => (l, $"{l} counters")), wordToComplete);
}

/// <summary>Completes -Name of Get-StackStatistics with counter names (of the -Layer given, if any).</summary>
public sealed class CounterNameCompleter : IArgumentCompleter
{
    public IEnumerable<CompletionResult> CompleteArgument(string commandName, string parameterName, string wordToComplete, CommandAst commandAst, IDictionary fakeBoundParameters)
    {
        var layers = Completion.Bound(fakeBoundParameters, "Layer").Select(l => new WildcardPattern(l, WildcardOptions.IgnoreCase)).ToArray();
        var counters = CounterCatalog.Counters.Where(c => layers.Length == 0 || layers.Any(p => p.IsMatch(c.Layer)));
        return Completion.Matching(counters.GroupBy(c => c.Name).Select(g => (g.Key, string.Join(", ", g.Select(c => c.Layer)) + " counter")), wordToComplete);
    }
}

/// <summary>Completes -Protocol of Get-StackPacket with the protocols of the frames in the stack's packet log.</summary>
public sealed class PacketProtocolCompleter : IArgumentCompleter
{
    public IEnumerable<CompletionResult> CompleteArgument(string commandName, string parameterName, string wordToComplete, CommandAst commandAst, IDictionary fakeBoundParameters)
    {
        var frames = Completion.Ask(fakeBoundParameters, s => s.GetPacketLogAsync());
        if (frames is null) return Array.Empty<CompletionResult>();
        var decoder = new FrameDecoder();
        var counts = frames.Select(f => decoder.Decode(f).Protocol).GroupBy(p => p).OrderBy(g => g.Key, StringComparer.OrdinalIgnoreCase);
        return Completion.Matching(counts.Select(g => (g.Key, $"{g.Key}: {g.Count()} frames in the log")), wordToComplete);
    }
}

/// <summary>Completes -State of Get-StackConnection: the TcpState names, and a UDP socket's states.</summary>
public sealed class ConnectionStateCompleter : IArgumentCompleter
{
    /// <summary>What a UDP endpoint's row says (UdpSocket's snapshot).</summary>
    private static readonly string[] UdpStates = { "Bound", "Unbound" };

    public IEnumerable<CompletionResult> CompleteArgument(string commandName, string parameterName, string wordToComplete, CommandAst commandAst, IDictionary fakeBoundParameters) =>
        Completion.Matching(Enum.GetNames<TcpState>().Select(s => (s, $"TCP {s}")).Concat(UdpStates.Select(s => (s, $"UDP {s}"))), wordToComplete);
}

/// <summary>Completes -Encoding with the short names DataCodec knows.</summary>
public sealed class EncodingCompleter : IArgumentCompleter
{
    public IEnumerable<CompletionResult> CompleteArgument(string commandName, string parameterName, string wordToComplete, CommandAst commandAst, IDictionary fakeBoundParameters) =>
        Completion.Matching(DataCodec.Named.Keys.Select(e => (e, e)), wordToComplete);
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
        var ns = fakeBoundParameters.Contains("NetworkNamespace") ? fakeBoundParameters["NetworkNamespace"]?.ToString() : null;
        try { adapters = LinkFactory.ListAdapters(ns); }
        catch (Exception) { return Array.Empty<CompletionResult>(); } // no libpcap, no such namespace, no rights: nothing to offer
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
        var rows = Completion.Ask(fakeBoundParameters, s => s.GetConnectionsAsync());
        if (rows is null) return Array.Empty<CompletionResult>();
        return Completion.Matching(rows.Select(r => (r.Id.ToString(CultureInfo.InvariantCulture),
            $"{r.Protocol} {r.LocalAddress}:{r.LocalPort} -> {r.RemoteAddress}:{r.RemotePort} {r.State}")), wordToComplete);
    }
}

/// <summary>Completes -NetworkNamespace with the named namespaces (ip netns list).</summary>
public sealed class NetworkNamespaceCompleter : IArgumentCompleter
{
    public IEnumerable<CompletionResult> CompleteArgument(string commandName, string parameterName, string wordToComplete, CommandAst commandAst, IDictionary fakeBoundParameters)
    {
        string[] names;
        try { names = Directory.Exists("/var/run/netns") ? Directory.GetFiles("/var/run/netns").Select(Path.GetFileName).OfType<string>().Order().ToArray() : Array.Empty<string>(); }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException) { names = Array.Empty<string>(); }
        return Completion.Matching(names.Select(n => (n, n)), wordToComplete);
    }
}
