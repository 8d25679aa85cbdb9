using System.Globalization;
using System.Text;
using System.Text.Json.Serialization;

namespace NetStack.Bench;

/// <summary>One figure's runs on both sides, and what they come to: medians, spreads, ratio, target met or missed.</summary>
internal sealed class FigureResult(Figure figure)
{
    [JsonIgnore] public Figure Figure { get; } = figure;
    public string Id => Figure.Id;
    public string Title => Figure.Title;
    public string Unit => Figure.Unit;
    public string Target => Figure.Target;
    /// <summary>What the reference column holds: the kernel's figure, or (for scale figures) ours in another position.</summary>
    public string Reference => Figure.Reference;
    public List<Measurement> Ours { get; } = new();
    public List<Measurement> Kernel { get; } = new();
    public List<string> Errors { get; } = new();
    public double? OursMedian { get; private set; }
    public Spread? OursRange { get; private set; }
    public double? ReferenceMedian { get; private set; }
    public Spread? ReferenceRange { get; private set; }
    /// <summary>ours / reference.</summary>
    public double? Ratio { get; private set; }
    /// <summary>Whether the target is met; null when there is no target or too little to judge.</summary>
    public bool? Met { get; private set; }
    public Dictionary<string, double> OursDetails { get; private set; } = new();
    public Dictionary<string, double> KernelDetails { get; private set; } = new();
    /// <summary>Wall time of the whole scenario (both sides, every run).</summary>
    public double Seconds { get; set; }

    /// <summary>The reference values, run by run: the kernel's, or those ours measured alongside (Measurement.Reference).</summary>
    private List<double> ReferenceValues() =>
        Figure.Reference == "kernel" ? Kernel.Select(m => m.Value).ToList() : Ours.Where(m => m.Reference is not null).Select(m => m.Reference!.Value).ToList();

    public void Complete()
    {
        var ours = Ours.Select(m => m.Value).ToList();
        var reference = ReferenceValues();
        OursMedian = Median(ours);
        ReferenceMedian = Median(reference);
        OursRange = ours.Count == 0 ? null : new Spread(ours.Min(), ours.Max());
        ReferenceRange = reference.Count == 0 ? null : new Spread(reference.Min(), reference.Max());
        OursDetails = MedianDetails(Ours);
        KernelDetails = MedianDetails(Kernel);
        if (OursMedian is { } o && ReferenceMedian is { } r && r != 0) Ratio = o / r;
        if (Figure.Pass is { } pass && OursMedian is { } om && (!Figure.NeedsReference || ReferenceMedian is not null))
            Met = pass(om, ReferenceMedian);
    }

    /// <summary>The ratio of each run's pair (ours / its reference), in run order.</summary>
    public IEnumerable<double> PairRatios()
    {
        var reference = ReferenceValues();
        return Ours.Select(m => m.Value).Zip(reference, (a, b) => b == 0 ? double.NaN : a / b);
    }

    public static double? Median(IReadOnlyCollection<double> values)
    {
        var v = values.Where(x => !double.IsNaN(x)).OrderBy(x => x).ToArray();
        return v.Length == 0 ? null : v.Length % 2 == 1 ? v[v.Length / 2] : (v[v.Length / 2 - 1] + v[v.Length / 2]) / 2;
    }

    private static Dictionary<string, double> MedianDetails(List<Measurement> runs) =>
        runs.SelectMany(m => m.Details.Keys).Distinct().ToDictionary(k => k, k => Median(runs.Where(m => m.Details.ContainsKey(k)).Select(m => m.Details[k]).ToList()) ?? double.NaN);
}

/// <summary>The lowest and highest run.</summary>
internal sealed record Spread(double Min, double Max);

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

    public static string F(double? v) => v is not { } x ? "—" : double.IsNaN(x) ? "n/a" : Math.Abs(x) >= 100 ? x.ToString("N0", CultureInfo.InvariantCulture) : x.ToString("0.##", CultureInfo.InvariantCulture);

    private static string Range(Spread? r) => r is { } x ? (x.Min == x.Max ? F(x.Min) : $"{F(x.Min)}–{F(x.Max)}") : "—";

    private static string Result(FigureResult r) =>
        r.Errors.Count > 0 && r.Met is null ? "error" : r.Met switch { true => "met", false => "MISSED", null => r.Figure.Pass is null ? "—" : "n/a" };

    public static string Markdown(List<FigureResult> results, BenchOptions o, TimeSpan elapsed, bool quick)
    {
        var sb = new StringBuilder();
        var env = Environment();
        sb.AppendLine("# NetStack benchmark results");
        sb.AppendLine();
        sb.AppendLine($"{env["date_utc"]} UTC, Linux {env["kernel"]}, {env["cpus"]} CPUs, load average at the end {env["load_average"]}, {env["runtime"]}; the suite took {elapsed.TotalMinutes:0.0} min.");
        sb.AppendLine(quick
            ? "**`--quick`: one short run per side, smaller transfers: a smoke test, not figures to compare.**"
            : $"Median of {o.Runs} run(s) per side, kernel and ours interleaved, on one veth pair (MTU 1500, TX offload off on both ends); the range is the lowest and highest run.");
        sb.AppendLine("The machine's 2 cores are shared with other work: figures are noisy (spreads of 30% seen); the per-frame CPU figures are steadier than the rates.");
        sb.AppendLine(System.Environment.GetEnvironmentVariable("DOTNET_TC_CallCountingDelayMs") == "0"
            ? "Tier-up not delayed (DOTNET_TC_CallCountingDelayMs=0): the stack's hot code is optimized during the timed windows."
            : "Default tiering (--default-tiering): part of the stack's code may still run at tier 0 during the windows.");
        sb.AppendLine(o.HostDrop
            ? "While our stack runs, the host ingress drop (PcapDeviceOptions.HostIngressDrop: nftables in U drops IPv4 to 192.0.2.2 for the host kernel after the capture) is in place, except in the figures marked \"no host drop\"; `--no-host-drop` measures without it throughout."
            : "Run with `--no-host-drop`: the kernel in U also routes and drops every frame meant for our stack.");
        sb.AppendLine();
        sb.AppendLine("| figure | unit | ours | ours range | kernel / reference | reference range | ratio | target | result |");
        sb.AppendLine("|---|---|---|---|---|---|---|---|---|");
        foreach (var r in results)
        {
            var title = r.Reference == "kernel" ? r.Title : $"{r.Title} (reference: {r.Reference})";
            sb.AppendLine($"| {title} | {r.Unit} | {F(r.OursMedian)} | {Range(r.OursRange)} | {F(r.ReferenceMedian)} | {Range(r.ReferenceRange)} | {(r.Ratio is { } x ? x.ToString("0.00", CultureInfo.InvariantCulture) + "x" : "—")} | {r.Target} | {Result(r)} |");
        }
        // Allocation per frame is read from the bulk runs.
        foreach (var r in results.Where(r => r.Id is "recv" or "send"))
        {
            if (!r.OursDetails.TryGetValue("loop_alloc_bytes_per_frame_excluding_api", out var perFrame)) continue;
            r.OursDetails.TryGetValue("loop_alloc_bytes_per_frame", out var withApi);
            sb.AppendLine($"| Allocation per frame on the loop, {r.Title.ToLowerInvariant()} (API calls' own objects excluded; with them: {withApi:0.##}) | bytes/frame | {perFrame:0.##} | — | — | — | — | 0 (< 0.5) | {(Math.Abs(perFrame) < 0.5 ? "met" : "MISSED")} |");
        }
        // What the low-latency mode costs: the cores the process kept busy (the spinning loop or caller included).
        foreach (var r in results.Where(r => r.Id.Contains("-busypoll", StringComparison.Ordinal)))
        {
            if (!r.OursDetails.TryGetValue("process_cpu_share", out var cores)) continue;
            var loop = r.OursDetails.TryGetValue("loop_cpu_share", out var l) ? $"; the loop thread {l:0.00}" : "";
            sb.AppendLine($"| CPU of the busy polling, {r.Title.ToLowerInvariant()} (whole process{loop}) | cores | {cores:0.00} | — | — | — | — | (report) | — |");
        }
        // The pending receive split: what the application's own objects (its 4 KiB buffer, the array's header, its slots)
        // cost in RSS, and what RSS grew by after them when the receives started, the stack's (the socket is the
        // receive's source: nothing but noise), on each half of the connections; and the figure against the constant mark.
        foreach (var r in results.Where(r => r.Id == "pending-recv"))
        {
            if (!r.OursDetails.TryGetValue("rss_per_pending_receive_after_the_buffers", out var stack)) continue;
            r.OursDetails.TryGetValue("application_heap_per_connection", out var appHeap);
            r.OursDetails.TryGetValue("application_rss_per_connection", out var appRss);
            r.OursDetails.TryGetValue("heap_ours_per_pending_receiveasync", out var heap);
            var halves = r.OursDetails.TryGetValue("rss_per_pending_receive_first_half", out var h1) && r.OursDetails.TryGetValue("rss_per_pending_receive_second_half", out var h2) ? $"; halves {F(h1)} / {F(h2)} B" : "";
            var mark = r.OursDetails.TryGetValue("over_the_4144_mark", out var over) ? $"; over idle + {Scale.CallersBytesPerPendingReceive.ToString("N0", CultureInfo.InvariantCulture)} B: {F(over)} B" : "";
            var read = r.OursDetails.TryGetValue("stack_rss_per_pending_astask", out var rd) ? $"; held as a Task (AsTask), on top of idle less its heap, {F(rd)} B" : "";
            sb.AppendLine($"| Pending receive: RSS the receives added after the application's buffers and slots (those {F(appRss)} B of RSS, {F(appHeap)} B of heap; heap the stack allocated: {F(heap)} B{halves}{read}) | bytes | {F(stack)} | — | — | — | — | (report{mark}) | — |");
        }
        // Flat with scale in CPU: the rates on a loaded machine move with the scheduler, the CPU per frame, connection or
        // round trip far less; each run's with-N / with-none ratio of the process's CPU per unit, and their median.
        foreach (var r in results.Where(r => r.Id.StartsWith("scale-", StringComparison.Ordinal)))
        {
            var key = r.Id switch { "scale-connect" => "process_cpu_us_per_connection", "scale-rr" => "process_cpu_us_per_round_trip", _ => "process_cpu_us_per_frame" };
            var pairs = r.Ours.Where(m => m.Details.ContainsKey(key) && m.Details.ContainsKey("none_" + key)).Select(m => (Many: m.Details[key], None: m.Details["none_" + key])).ToList();
            if (pairs.Count == 0) continue;
            var many = FigureResult.Median(pairs.Select(p => p.Many).ToList());
            var none = FigureResult.Median(pairs.Select(p => p.None).ToList());
            var ratios = pairs.Select(p => p.Many / p.None).ToList();
            var unit = key["process_cpu_us_per_".Length..].Replace('_', ' ');
            sb.AppendLine($"| {r.Title}: process CPU per {unit} (reference: with none, same run; ratio: median of the runs' ratios, {string.Join(", ", ratios.Select(x => x.ToString("0.00", CultureInfo.InvariantCulture) + "x"))}) | µs | {F(many)} | {Range(new Spread(pairs.Min(p => p.Many), pairs.Max(p => p.Many)))} | {F(none)} | {Range(new Spread(pairs.Min(p => p.None), pairs.Max(p => p.None)))} | {FigureResult.Median(ratios):0.00}x | (report: within 10% is the rates' target) | — |");
        }
        // Flat with scale, the kernel's: the kernel in our place with N idle connections (from K, held in U's accept queue)
        // against none, same run; and ours against the kernel's, both with N.
        foreach (var r in results.Where(r => r.Id.StartsWith("scale-", StringComparison.Ordinal) && r.Kernel.Count > 0))
        {
            var many = r.Kernel.Select(m => m.Value).ToList();
            var none = r.Kernel.Where(m => m.Reference is not null).Select(m => m.Reference!.Value).ToList();
            if (none.Count == 0) continue;
            var km = FigureResult.Median(many);
            var kn = FigureResult.Median(none);
            var pairs = r.Kernel.Where(m => m.Reference is { } x && x != 0).Select(m => m.Value / m.Reference!.Value).ToList();
            var oursVsKernel = r.OursMedian is { } om && km is { } k && k != 0 ? $"; ours / the kernel's, both with them: {om / k:0.00}x" : "";
            sb.AppendLine($"| {r.Title}, the kernel in our place (reference: the kernel with none, same run; ratio of each run: {string.Join(", ", pairs.Select(x => x.ToString("0.00", CultureInfo.InvariantCulture) + "x"))}{oursVsKernel}) | {r.Unit} | {F(km)} | {Range(new Spread(many.Min(), many.Max()))} | {F(kn)} | {Range(new Spread(none.Min(), none.Max()))} | {(km is { } a && kn is { } b && b != 0 ? (a / b).ToString("0.00", CultureInfo.InvariantCulture) + "x" : "—")} | (report: the kernel's own flatness) | — |");
        }
        sb.AppendLine();
        sb.AppendLine("## Details (medians)");
        foreach (var r in results)
        {
            sb.AppendLine();
            var pairs = r.PairRatios().ToList();
            sb.AppendLine($"**{r.Title}** ({r.Id}, {r.Seconds:0} s) — ours runs: {string.Join(", ", r.Ours.Select(m => F(m.Value)))}; {r.Reference} runs: " +
                string.Join(", ", (r.Reference == "kernel" ? r.Kernel.Select(m => (double?)m.Value) : r.Ours.Select(m => m.Reference)).Select(F)) +
                (pairs.Count > 0 ? $"; ratio of each interleaved pair: {string.Join(", ", pairs.Select(x => x.ToString("0.00", CultureInfo.InvariantCulture) + "x"))}" : ""));
            if (r.OursDetails.Count > 0) sb.AppendLine($"- ours: {string.Join(", ", r.OursDetails.Select(kv => $"{kv.Key} {F(kv.Value)}"))}");
            if (r.KernelDetails.Count > 0) sb.AppendLine($"- kernel: {string.Join(", ", r.KernelDetails.Select(kv => $"{kv.Key} {F(kv.Value)}"))}");
            foreach (var e in r.Errors) sb.AppendLine($"- error: {e}");
        }
        return sb.ToString();
    }
}
