using System.Diagnostics;
using System.Globalization;
using System.Text.RegularExpressions;

namespace NetStack.Link;

/// <summary>
/// The host ingress drop (<see cref="PcapDeviceOptions.HostIngressDrop"/>): an nftables netdev-ingress rule on the
/// adapter that drops IPv4 addressed to the stack for the host kernel, after the capture has copied the frame to us
/// (AF_PACKET taps run before the ingress hook). Without it the host kernel also takes every frame meant for the stack,
/// routes it, finds no address of its own and drops it: 24% of the loop's CPU per frame in bulk receive
/// (docs/benchmarks.md). Only the stack's own address is dropped: the host keeps its traffic, ARP and broadcasts.
/// </summary>
/// <remarks>
/// One table per adapter and address, <c>netstack_&lt;adapter&gt;_&lt;address&gt;</c>, whose comment names the owning
/// process (pid and start time). <see cref="Dispose"/> removes it, and so does process exit; a process killed
/// before either leaves it behind, and the next install in that network namespace deletes every NetStack table whose
/// owner is gone (<see cref="RemoveLeftovers"/>). Needs nftables' <c>nft</c> and CAP_NET_ADMIN (root).
/// </remarks>
public sealed partial class HostIngressDropRule : IDisposable
{
    /// <summary>The prefix of every table NetStack installs, so leftovers can be recognised.</summary>
    public const string TablePrefix = "netstack_";

    private static readonly object LiveGate = new();
    private static readonly HashSet<HostIngressDropRule> Live = new();
    private static int _exitHooked;
    private int _disposed;

    private HostIngressDropRule(string adapter, Ipv4Address address, string? networkNamespace)
    {
        Adapter = adapter;
        Address = address;
        NetworkNamespace = networkNamespace;
        Table = TableName(adapter, address);
    }

    public string Adapter { get; }
    public Ipv4Address Address { get; }
    /// <summary>The network namespace the rule lives in (as given when the device was opened); null: the process's own.</summary>
    public string? NetworkNamespace { get; }
    /// <summary>The nftables table (family netdev) holding the rule.</summary>
    public string Table { get; }

    /// <summary>The table for <paramref name="adapter"/> and <paramref name="address"/> (characters nft does not take become '_').</summary>
    public static string TableName(string adapter, Ipv4Address address) =>
        TablePrefix + UnsafeNameCharacters().Replace(adapter, "_") + "_" + address;

    /// <summary>
    /// Installs the rule for <paramref name="address"/> on <paramref name="adapter"/>, in <paramref name="networkNamespace"/>
    /// if given, after deleting the tables of NetStack processes that no longer run.
    /// </summary>
    /// <exception cref="HostIngressDropException">nft is missing or may not change the rules, another live process holds the rule for this adapter and address, or nft failed (<see cref="HostIngressDropException.Reason"/>).</exception>
    public static HostIngressDropRule Install(string adapter, Ipv4Address address, string? networkNamespace = null) =>
        InNamespace(networkNamespace, () => InstallHere(adapter, address, networkNamespace));

    /// <summary>Installs from a thread already in the adapter's namespace (the device's open); <paramref name="networkNamespace"/> is remembered for removal.</summary>
    internal static HostIngressDropRule InstallHere(string adapter, Ipv4Address address, string? networkNamespace)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(adapter);
        if (adapter.Contains('"')) throw new ArgumentException($"Adapter name '{adapter}' cannot be used in an nftables rule.", nameof(adapter));
        var rule = new HostIngressDropRule(adapter, address, networkNamespace);
        RemoveLeftoversHere();
        if (ReadOwner(rule.Table) is { } owner)
            throw new HostIngressDropException(HostIngressDropFailure.InUse,
                $"Process {owner.Pid} already drops IPv4 to {address} on '{adapter}' for the host (nftables table netdev {rule.Table}). " +
                $"Stop the stack that owns it, or remove the table with: nft delete table netdev {rule.Table}");
        var (pid, start) = Self.Value;
        Nft(Script(rule.Table, adapter, address, pid, start));
        lock (LiveGate) Live.Add(rule);
        if (Interlocked.Exchange(ref _exitHooked, 1) == 0) AppDomain.CurrentDomain.ProcessExit += (_, _) => RemoveAllLive();
        return rule;
    }

    /// <summary>The nft script for the table: the rule and, in its comment, the owning process (pid and start time).</summary>
    internal static string Script(string table, string adapter, Ipv4Address address, long pid, long start) => $$"""
        table netdev {{table}} {
          comment "NetStack host ingress drop for {{address}}: owner pid {{pid}} start {{start}}"
          chain ingress {
            type filter hook ingress device "{{adapter}}" priority 0; policy accept;
            ip daddr {{address}} counter drop
          }
        }
        """;

    /// <summary>A process's start time in clock ticks since boot (/proc/PID/stat field 22): with the pid, unique across reuse.</summary>
    internal static long? StartTime(long pid)
    {
        try
        {
            var stat = File.ReadAllText($"/proc/{pid}/stat");
            var fields = stat[(stat.LastIndexOf(')') + 2)..].Split(' ');
            return long.Parse(fields[19], CultureInfo.InvariantCulture);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException or FormatException or IndexOutOfRangeException) { return null; }
    }

    /// <summary>Frames the rule has dropped for the host so far (its nftables counter), or null if the table is gone.</summary>
    public long? DroppedPackets()
    {
        try
        {
            var text = InNamespace(NetworkNamespace, () => RunNft(["list", "table", "netdev", Table], null));
            if (text.ExitCode != 0) return null;
            var m = CounterPackets().Match(text.Output);
            return m.Success ? long.Parse(m.Groups[1].Value, CultureInfo.InvariantCulture) : null;
        }
        catch (ArgumentException) { return null; } // the namespace is gone, and the rule with it
    }

    /// <summary>Removes the rule (if this process still owns it). Safe from any thread, more than once.</summary>
    public void Dispose()
    {
        if (Interlocked.Exchange(ref _disposed, 1) != 0) return;
        lock (LiveGate) Live.Remove(this);
        try
        {
            InNamespace(NetworkNamespace, () =>
            {
                if (ReadOwner(Table) is { } owner && owner == Self.Value) RunNft(["delete", "table", "netdev", Table], null);
                return 0;
            });
        }
        catch (Exception e) when (e is ArgumentException or InvalidOperationException or IOException or UnauthorizedAccessException or HostIngressDropException)
        {
            // The namespace (and the rule with it) is gone, or nft is: nothing left to remove here.
        }
    }

    /// <summary>
    /// Deletes the NetStack tables in <paramref name="networkNamespace"/> (null: the process's own) whose owning
    /// process no longer runs (killed before it could remove them). Returns the tables deleted.
    /// </summary>
    public static IReadOnlyList<string> RemoveLeftovers(string? networkNamespace = null) => InNamespace(networkNamespace, RemoveLeftoversHere);

    private static IReadOnlyList<string> RemoveLeftoversHere()
    {
        var deleted = new List<string>();
        var list = RunNft(["list", "tables", "netdev"], null);
        if (list.ExitCode != 0) ThrowFor(list, "list tables");
        foreach (Match m in TableLine().Matches(list.Output))
        {
            var table = m.Groups[1].Value;
            var comment = RunNft(["list", "table", "netdev", table], null);
            if (comment.ExitCode != 0 || OwnerComment().Match(comment.Output) is not { Success: true } o) continue; // not ours
            var owner = (long.Parse(o.Groups[1].Value, CultureInfo.InvariantCulture), long.Parse(o.Groups[2].Value, CultureInfo.InvariantCulture));
            if (IsAlive(owner)) continue;
            if (RunNft(["delete", "table", "netdev", table], null).ExitCode == 0) deleted.Add(table);
        }
        return deleted;
    }

    /// <summary>The live process owning <paramref name="table"/>, or null if there is no such table or its owner is gone.</summary>
    private static (long Pid, long Start)? ReadOwner(string table)
    {
        var r = RunNft(["list", "table", "netdev", table], null);
        if (r.ExitCode != 0 || OwnerComment().Match(r.Output) is not { Success: true } m) return null;
        var owner = (long.Parse(m.Groups[1].Value, CultureInfo.InvariantCulture), long.Parse(m.Groups[2].Value, CultureInfo.InvariantCulture));
        return IsAlive(owner) ? owner : null;
    }

    private static bool IsAlive((long Pid, long Start) owner) => StartTime(owner.Pid) is { } start && start == owner.Start;

    private static readonly Lazy<(long Pid, long Start)> Self = new(() => (Environment.ProcessId, StartTime(Environment.ProcessId) ?? 0));

    private static void RemoveAllLive()
    {
        HostIngressDropRule[] rules;
        lock (LiveGate) rules = [.. Live];
        foreach (var r in rules) r.Dispose();
    }

    private static T InNamespace<T>(string? networkNamespace, Func<T> work) =>
        networkNamespace is null ? work() : PcapDevice.RunInNetworkNamespace(networkNamespace, work);

    internal static void Nft(string script)
    {
        var r = RunNft(["-f", "-"], script);
        if (r.ExitCode != 0) ThrowFor(r, "add the host ingress drop");
    }

    private static void ThrowFor((int ExitCode, string Output, string Error) r, string what)
    {
        var error = r.Error.Trim();
        if (error.Contains("Operation not permitted", StringComparison.Ordinal) || error.Contains("Permission denied", StringComparison.Ordinal))
            throw new HostIngressDropException(HostIngressDropFailure.PermissionDenied,
                $"nft may not {what}: the host ingress drop needs root (CAP_NET_ADMIN for the nft program). Run as root, or start without the drop. nft said: {error}");
        throw new HostIngressDropException(HostIngressDropFailure.NftFailed, $"nft could not {what} (exit {r.ExitCode}): {error}");
    }

    /// <summary>Runs nft on the calling thread (its child inherits the thread's network namespace).</summary>
    private static (int ExitCode, string Output, string Error) RunNft(string[] arguments, string? input)
    {
        var nft = FindNft() ?? throw new HostIngressDropException(HostIngressDropFailure.NftMissing,
            "The host ingress drop needs nftables' 'nft' program, which is not installed. Install it (apt-get install nftables) or start without the drop.");
        var psi = new ProcessStartInfo(nft)
        {
            RedirectStandardInput = true, RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false,
        };
        foreach (var a in arguments) psi.ArgumentList.Add(a);
        using var p = Process.Start(psi) ?? throw new HostIngressDropException(HostIngressDropFailure.NftFailed, "Could not start nft.");
        if (input is not null) p.StandardInput.Write(input);
        p.StandardInput.Close();
        var output = p.StandardOutput.ReadToEndAsync();
        var error = p.StandardError.ReadToEndAsync();
        if (!p.WaitForExit(30_000))
        {
            try { p.Kill(); } catch (InvalidOperationException) { }
            throw new HostIngressDropException(HostIngressDropFailure.NftFailed, $"nft {string.Join(' ', arguments)} did not finish within 30 s.");
        }
        return (p.ExitCode, output.Result, error.Result);
    }

    private static string? FindNft() =>
        (Environment.GetEnvironmentVariable("PATH") ?? "").Split(':', StringSplitOptions.RemoveEmptyEntries)
            .Concat(["/usr/sbin", "/sbin", "/usr/bin", "/bin"])
            .Select(d => Path.Combine(d, "nft")).FirstOrDefault(File.Exists);

    [GeneratedRegex(@"[^A-Za-z0-9_.]")]
    private static partial Regex UnsafeNameCharacters();

    [GeneratedRegex(@"^table netdev (" + TablePrefix + @"\S+)\s*$", RegexOptions.Multiline)]
    private static partial Regex TableLine();

    [GeneratedRegex(@"comment ""NetStack host ingress drop for \S+: owner pid (\d+) start (\d+)""")]
    private static partial Regex OwnerComment();

    [GeneratedRegex(@"counter packets (\d+)")]
    private static partial Regex CounterPackets();
}

/// <summary>Why the host ingress drop could not be installed.</summary>
public enum HostIngressDropFailure
{
    /// <summary>nftables' nft program is not installed.</summary>
    NftMissing,
    /// <summary>nft may not change the rules: not root (CAP_NET_ADMIN).</summary>
    PermissionDenied,
    /// <summary>Another running process holds the rule for this adapter and address.</summary>
    InUse,
    /// <summary>nft failed otherwise (its message says why).</summary>
    NftFailed,
}

/// <summary>The host ingress drop (<see cref="PcapDeviceOptions.HostIngressDrop"/>) could not be installed; the message names the fix.</summary>
public sealed class HostIngressDropException : Exception
{
    public HostIngressDropException(HostIngressDropFailure reason, string message) : base(message) => Reason = reason;

    public HostIngressDropFailure Reason { get; }
}
