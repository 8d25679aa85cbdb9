using System.Diagnostics;
using System.Globalization;
using System.Runtime.InteropServices;
using System.Text;
using System.Text.Json;

namespace NetStack.Bench;

/// <summary>
/// NetStack.Bench: our stack against the Linux kernel in its place, on one veth pair (docs/benchmarks.md).
///   NetStack.Bench [--quick] [--runs N] [--duration S] [--scenarios recv,send,connect,rr,ping,idle] [--side ours|kernel|both] [--chunk KIB] [--no-host-drop] [--default-tiering] [--out DIR]
///   NetStack.Bench peer      (internal: the kernel's peer, started inside K by the suite)
/// </summary>
internal static class Program
{
    private sealed record Scenario(string Id, string Title, string Unit, bool HigherIsBetter, string Target,
        Func<BenchLab, BenchOptions, Task<Measurement>> Ours, Func<BenchLab, BenchOptions, Measurement>? Kernel,
        Func<double, double, bool> Pass);

    private static readonly Scenario[] All =
    [
        new("recv", "Bulk receive", "Gbit/s", true, ">= 0.5x kernel",
            (l, o) => Scenarios.OursBulk(l, o, receive: true), (l, o) => Scenarios.KernelBulk(l, o, receive: true), (ours, k) => ours >= 0.5 * k),
        new("send", "Bulk send", "Gbit/s", true, ">= 0.5x kernel",
            (l, o) => Scenarios.OursBulk(l, o, receive: false), (l, o) => Scenarios.KernelBulk(l, o, receive: false), (ours, k) => ours >= 0.5 * k),
        new("connect", "Connect+close", "conn/s", true, ">= 0.7x kernel",
            Scenarios.OursConnect, Scenarios.KernelConnectRate, (ours, k) => ours >= 0.7 * k),
        new("rr", "1-byte request/response", "µs/round trip", false, "<= 1.3x kernel",
            Scenarios.OursRequestResponse, Scenarios.KernelRequestResponse, (ours, k) => ours <= 1.3 * k),
        new("ping", "ICMP echo RTT (back to back)", "µs", false, "(no target; report)",
            Scenarios.OursPing, Scenarios.KernelPing, (_, _) => true),
        new("idle", "Memory per idle connection (10,000)", "bytes", false, "< 16 KiB (16384 B)",
            Scenarios.OursIdle, null, (ours, _) => ours < 16384),
    ];

    public static int Main(string[] args)
    {
        if (args.Length > 0 && args[0] == "peer") return Peer.Serve();
        if (Environment.GetEnvironmentVariable(TieringKnob) is null && !args.Contains("--default-tiering")) return RerunWithPromptTiering(args);
        try { return Run(args).GetAwaiter().GetResult(); }
        catch (ArgumentException e) { Console.Error.WriteLine(e.Message); return 2; }
    }

    private const string TieringKnob = "DOTNET_TC_CallCountingDelayMs";

    /// <summary>
    /// Runs the suite again in a child process with tier-up not delayed. By default the runtime waits until no new
    /// method has been jitted for 100 ms before promoting hot methods from tier 0; on this loaded machine, with the
    /// harness jitting as it goes, that kept most of the stack's code at tier 0 / instrumented even in the third
    /// run of a scenario (perf, connect: 2/3 of managed samples). The figures are meant to be the steady state.
    /// </summary>
    private static int RerunWithPromptTiering(string[] args)
    {
        var self = Environment.ProcessPath ?? throw new InvalidOperationException("no process path");
        var psi = new ProcessStartInfo(self) { UseShellExecute = false };
        if (Path.GetFileNameWithoutExtension(self) == "dotnet") psi.ArgumentList.Add(typeof(Program).Assembly.Location);
        foreach (var a in args) psi.ArgumentList.Add(a);
        psi.Environment[TieringKnob] = "0";
        using var child = Process.Start(psi) ?? throw new InvalidOperationException("could not start the suite");
        // Stay until the child has cleaned up its lab; pass a signal meant for us on to it (Ctrl+C in a terminal
        // reaches both; a plain `kill <pid>` only us).
        void Forward(PosixSignalContext ctx)
        {
            ctx.Cancel = true;
            try { if (!child.HasExited) _ = Native.kill(child.Id, (int)ctx.Signal == (int)PosixSignal.SIGINT ? 2 : 15); } catch (InvalidOperationException) { }
        }
        using var term = PosixSignalRegistration.Create(PosixSignal.SIGTERM, Forward);
        using var intr = PosixSignalRegistration.Create(PosixSignal.SIGINT, Forward);
        child.WaitForExit();
        return child.ExitCode;
    }

    private static async Task<int> Run(string[] args)
    {
        var o = new BenchOptions();
        var selected = All.Select(s => s.Id).ToList();
        string? outDir = null;
        for (int i = 0; i < args.Length; i++)
        {
            string Value() => i + 1 < args.Length ? args[++i] : throw new ArgumentException($"{args[i]} needs a value.");
            switch (args[i])
            {
                case "--quick":
                    o = o with { Runs = 1, BulkDuration = TimeSpan.FromSeconds(1), BulkWarmup = TimeSpan.FromSeconds(0.3), Connects = 1000, RoundTrips = 5000, Pings = 1000 };
                    break;
                case "--runs": o = o with { Runs = int.Parse(Value(), CultureInfo.InvariantCulture) }; break;
                case "--duration": o = o with { BulkDuration = TimeSpan.FromSeconds(double.Parse(Value(), CultureInfo.InvariantCulture)) }; break;
                case "--scenarios":
                    selected = Value().Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries).ToList();
                    foreach (var s in selected)
                        if (All.All(x => x.Id != s)) throw new ArgumentException($"Unknown scenario '{s}'. Known: {string.Join(", ", All.Select(x => x.Id))}.");
                    break;
                case "--out": outDir = Value(); break;
                case "--no-host-drop": o = o with { HostDrop = false }; break;
                case "--chunk": o = o with { BulkChunk = int.Parse(Value(), CultureInfo.InvariantCulture) * 1024 }; break;
                case "--default-tiering": break; // handled in Main
                case "--side":
                    var side = Value();
                    if (side is not ("ours" or "kernel" or "both")) throw new ArgumentException("--side takes ours, kernel or both.");
                    o = o with { Side = side };
                    break;
                case "-h" or "--help":
                    Console.WriteLine("NetStack.Bench [--quick] [--runs N] [--duration SECONDS] [--scenarios " + string.Join(',', All.Select(x => x.Id)) + "] [--side ours|kernel|both] [--chunk KIB] [--no-host-drop] [--default-tiering] [--out DIR]");
                    return 0;
                default: throw new ArgumentException($"Unknown argument '{args[i]}' (try --help).");
            }
        }
        outDir ??= Path.Combine(FindRepositoryRoot() ?? Directory.GetCurrentDirectory(), "out", "bench");

        using var lab = new BenchLab();
        // Ctrl+C or kill: delete the namespaces and stop the peer before leaving (ProcessExit alone did not get
        // that far on SIGTERM: the namespaces stayed behind).
        void Abandon(PosixSignalContext ctx)
        {
            ctx.Cancel = true;
            Console.Error.WriteLine($"{ctx.Signal}: cleaning up the lab and stopping.");
            lab.Dispose();
            Environment.Exit(130);
        }
        using var term = PosixSignalRegistration.Create(PosixSignal.SIGTERM, Abandon);
        using var intr = PosixSignalRegistration.Create(PosixSignal.SIGINT, Abandon);
        AppDomain.CurrentDomain.ProcessExit += (_, _) => lab.Dispose();
        var peer = StartPeer(lab);
        CpuProbe.PeerPid = FindPeerPid(peer.Id);
        Console.WriteLine($"lab: {lab.KernelNamespace} (k0 {BenchLab.KernelAddress}) <-> {lab.StackNamespace} (u0); peer pid {peer.Id}; {o.Runs} run(s) per side, interleaved");

        var results = new List<ScenarioResult>();
        foreach (var sc in All.Where(s => selected.Contains(s.Id)))
        {
            var r = new ScenarioResult(sc.Id, sc.Title, sc.Unit, sc.Target);
            for (int run = 0; run < o.Runs; run++)
            {
                if (sc.Kernel is { } kernel && o.Side != "ours")
                {
                    lab.KernelTakesStackAddress(true);
                    await Attempt(r.Kernel, r.Errors, $"{sc.Id} kernel run {run + 1}", () => Task.Run(() => kernel(lab, o)), o.RunTimeout);
                    lab.KernelTakesStackAddress(false);
                }
                if (o.Side != "kernel")
                {
                    lab.KernelTakesStackAddress(false);
                    lab.SetHostIngressDrop(o.HostDrop);
                    await Attempt(r.Ours, r.Errors, $"{sc.Id} ours run {run + 1}", () => sc.Ours(lab, o), o.RunTimeout);
                }
            }
            r.Complete(sc.HigherIsBetter, sc.Pass, sc.Kernel is not null);
            results.Add(r);
        }
        peer.StandardInput.Close();
        if (!peer.WaitForExit(5000)) peer.Kill(entireProcessTree: true);

        var md = Report.Markdown(results, o);
        Console.WriteLine();
        Console.WriteLine(md);
        Directory.CreateDirectory(outDir);
        File.WriteAllText(Path.Combine(outDir, "results.md"), md);
        File.WriteAllText(Path.Combine(outDir, "results.json"), JsonSerializer.Serialize(new { Environment = Report.Environment(), Options = o, Results = results },
            new JsonSerializerOptions { WriteIndented = true }));
        Console.WriteLine($"written: {Path.Combine(outDir, "results.md")} and results.json");
        return results.Any(r => r.Errors.Count > 0) ? 1 : 0;
    }

    private static async Task Attempt(List<Measurement> into, List<string> errors, string what, Func<Task<Measurement>> run, TimeSpan timeout)
    {
        Console.Write($"  {what}... ");
        try
        {
            var m = await run().WaitAsync(timeout);
            into.Add(m);
            Console.WriteLine(m.Value.ToString("0.###", CultureInfo.InvariantCulture));
        }
        catch (Exception e)
        {
            errors.Add($"{what}: {e.GetType().Name}: {e.Message}");
            Console.WriteLine($"FAILED: {e.GetType().Name}: {e.Message}");
        }
    }

    private static Process StartPeer(BenchLab lab)
    {
        var self = Environment.ProcessPath ?? throw new InvalidOperationException("no process path");
        var p = Path.GetFileNameWithoutExtension(self) == "dotnet"
            ? lab.StartInKernel(self, typeof(Program).Assembly.Location, "peer")
            : lab.StartInKernel(self, "peer");
        var ready = p.StandardOutput.ReadLineAsync();
        if (!ready.Wait(TimeSpan.FromSeconds(30)) || ready.Result != "ready")
            throw new InvalidOperationException("the peer in K did not start: " + p.StandardError.ReadToEnd());
        return p;
    }

    /// <summary>The peer process itself: `ip netns exec` execs it in place, so the pid is the same (checked via /proc).</summary>
    private static int FindPeerPid(int pid)
    {
        try { return File.ReadAllText($"/proc/{pid}/cmdline").Contains("peer", StringComparison.Ordinal) ? pid : 0; }
        catch (IOException) { return 0; }
    }

    private static string? FindRepositoryRoot()
    {
        for (var d = new DirectoryInfo(AppContext.BaseDirectory); d is not null; d = d.Parent)
            if (File.Exists(Path.Combine(d.FullName, "NetStack.slnx"))) return d.FullName;
        return null;
    }
}

internal sealed class ScenarioResult(string id, string title, string unit, string target)
{
    public string Id { get; } = id;
    public string Title { get; } = title;
    public string Unit { get; } = unit;
    public string Target { get; } = target;
    public List<Measurement> Ours { get; } = new();
    public List<Measurement> Kernel { get; } = new();
    public List<string> Errors { get; } = new();
    public double? OursMedian { get; private set; }
    public double? KernelMedian { get; private set; }
    /// <summary>ours / kernel.</summary>
    public double? Ratio { get; private set; }
    public bool? Pass { get; private set; }
    public Dictionary<string, double> OursDetails { get; private set; } = new();
    public Dictionary<string, double> KernelDetails { get; private set; } = new();

    public void Complete(bool higherIsBetter, Func<double, double, bool> pass, bool hasKernel)
    {
        OursMedian = Median(Ours.Select(m => m.Value));
        KernelMedian = Median(Kernel.Select(m => m.Value));
        OursDetails = MedianDetails(Ours);
        KernelDetails = MedianDetails(Kernel);
        if (OursMedian is { } o && KernelMedian is { } k && k > 0) Ratio = o / k;
        if (OursMedian is { } ours && (!hasKernel || KernelMedian is not null)) Pass = pass(ours, KernelMedian ?? 0);
    }

    private static double? Median(IEnumerable<double> values)
    {
        var v = values.OrderBy(x => x).ToArray();
        return v.Length == 0 ? null : v.Length % 2 == 1 ? v[v.Length / 2] : (v[v.Length / 2 - 1] + v[v.Length / 2]) / 2;
    }

    private static Dictionary<string, double> MedianDetails(List<Measurement> runs) =>
        runs.SelectMany(m => m.Details.Keys).Distinct().ToDictionary(k => k, k => Median(runs.Where(m => m.Details.ContainsKey(k)).Select(m => m.Details[k])) ?? 0);
}

internal static class Report
{
    public static Dictionary<string, string> Environment() => new()
    {
        ["date_utc"] = DateTime.UtcNow.ToString("yyyy-MM-dd HH:mm", CultureInfo.InvariantCulture),
        ["kernel"] = File.Exists("/proc/sys/kernel/osrelease") ? File.ReadAllText("/proc/sys/kernel/osrelease").Trim() : "?",
        ["cpus"] = System.Environment.ProcessorCount.ToString(CultureInfo.InvariantCulture),
        ["load_average"] = File.Exists("/proc/loadavg") ? File.ReadAllText("/proc/loadavg").Trim() : "?",
        ["runtime"] = System.Runtime.InteropServices.RuntimeInformation.FrameworkDescription,
    };

    private static string F(double? v) => v is not { } x ? "—" : Math.Abs(x) >= 100 ? x.ToString("N0", CultureInfo.InvariantCulture) : x.ToString("0.##", CultureInfo.InvariantCulture);

    public static string Markdown(List<ScenarioResult> results, BenchOptions o)
    {
        var sb = new StringBuilder();
        var env = Environment();
        sb.AppendLine("# NetStack benchmark results");
        sb.AppendLine();
        sb.AppendLine($"{env["date_utc"]} UTC, Linux {env["kernel"]}, {env["cpus"]} CPUs, load average at the end {env["load_average"]}, {env["runtime"]}.");
        sb.AppendLine($"Median of {o.Runs} run(s) per side, kernel and ours interleaved, on one veth pair (MTU 1500, TX offload off on both ends).");
        sb.AppendLine("The machine's 2 cores are shared with other work: figures are noisy (spreads of 30% seen); the per-frame CPU figures are steadier than the rates.");
        sb.AppendLine(System.Environment.GetEnvironmentVariable("DOTNET_TC_CallCountingDelayMs") == "0"
            ? "Tier-up not delayed (DOTNET_TC_CallCountingDelayMs=0): the stack's hot code is optimized during the timed windows."
            : "Default tiering (--default-tiering): part of the stack's code may still run at tier 0 during the windows.");
        sb.AppendLine(o.HostDrop
            ? "While our stack runs, an nftables netdev-ingress rule in U drops IPv4 for the host kernel after the capture tap (docs/benchmarks.md); `--no-host-drop` measures without it."
            : "Run with `--no-host-drop`: the kernel in U also routes and drops every frame meant for our stack.");
        sb.AppendLine();
        sb.AppendLine("| scenario | unit | ours | kernel | ratio (ours/kernel) | target | result |");
        sb.AppendLine("|---|---|---|---|---|---|---|");
        foreach (var r in results)
            sb.AppendLine($"| {r.Title} | {r.Unit} | {F(r.OursMedian)} | {F(r.KernelMedian)} | {(r.Ratio is { } x ? x.ToString("0.00", CultureInfo.InvariantCulture) + "x" : "—")} | {r.Target} | {(r.Errors.Count > 0 && r.Pass is null ? "error" : r.Pass switch { true => "pass", false => "MISS", null => "—" })} |");
        // Allocation per frame is read from the bulk runs.
        foreach (var r in results.Where(r => r.Id is "recv" or "send"))
        {
            if (!r.OursDetails.TryGetValue("loop_alloc_bytes_per_frame_excluding_api", out var perFrame)) continue;
            r.OursDetails.TryGetValue("loop_alloc_bytes_per_frame", out var withApi);
            sb.AppendLine($"| Allocation per frame on the loop, {r.Title.ToLowerInvariant()} (API calls' own objects excluded; with them: {withApi:0.##}) | bytes/frame | {perFrame:0.##} | — | — | 0 (< 0.5) | {(Math.Abs(perFrame) < 0.5 ? "pass" : "MISS")} |");
        }
        sb.AppendLine();
        sb.AppendLine("## Details (medians)");
        foreach (var r in results)
        {
            sb.AppendLine();
            sb.AppendLine($"**{r.Title}** — ours runs: {string.Join(", ", r.Ours.Select(m => F(m.Value)))}; kernel runs: {string.Join(", ", r.Kernel.Select(m => F(m.Value)))}" +
                (r.Ours.Count == r.Kernel.Count && r.Kernel.Count > 0
                    ? $"; ratio of each interleaved pair: {string.Join(", ", r.Ours.Zip(r.Kernel, (a, b) => (a.Value / b.Value).ToString("0.00", CultureInfo.InvariantCulture) + "x"))}"
                    : ""));
            if (r.OursDetails.Count > 0) sb.AppendLine($"- ours: {string.Join(", ", r.OursDetails.Select(kv => $"{kv.Key} {F(kv.Value)}"))}");
            if (r.KernelDetails.Count > 0) sb.AppendLine($"- kernel: {string.Join(", ", r.KernelDetails.Select(kv => $"{kv.Key} {F(kv.Value)}"))}");
            foreach (var e in r.Errors) sb.AppendLine($"- error: {e}");
        }
        return sb.ToString();
    }
}
