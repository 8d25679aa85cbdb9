using System.Diagnostics;
using System.Globalization;
using System.Runtime.InteropServices;
using System.Text.Json;

namespace NetStack.Bench;

/// <summary>
/// NetStack.Bench: our stack against the Linux kernel in its place, on one veth pair (docs/benchmarks.md).
///   NetStack.Bench [--quick] [--full] [--runs N] [--duration S] [--scenarios ID,...] [--side ours|kernel|both] [--chunk KIB] [--paced-samples N] [--no-host-drop] [--default-tiering] [--out DIR] [--list]
///   NetStack.Bench peer      (internal: the kernel's peer, started inside K by the suite)
/// </summary>
internal static class Program
{
    public static int Main(string[] args)
    {
        if (args.Length > 0 && args[0] == "peer") return Peer.Serve();
        if (args.Length > 0 && args[0] == "hold") return Peer.Hold(args);
        if (Environment.GetEnvironmentVariable(TieringKnob) is null && !args.Contains("--default-tiering") && !args.Contains("--list") && !args.Contains("--help"))
            return RerunWithPromptTiering(args);
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

    private static string Usage() =>
        "NetStack.Bench [--quick] [--full] [--runs N] [--duration SECONDS] [--scenarios ID,...] [--side ours|kernel|both] [--chunk KIB] [--paced-samples N] [--no-host-drop] [--default-tiering] [--out DIR] [--list]\n" +
        "  no --scenarios: the default set (a few minutes); --full: every scenario, the long ones too; --list: the scenarios.\n" +
        "  --scenarios takes ids, groups or id prefixes: e.g. lossy, lossy-send, lossy-send-cubic, scale, idle-100k.";

    private static async Task<int> Run(string[] args)
    {
        var o = new BenchOptions();
        var all = Catalog.All(o);
        List<string>? selected = null;
        bool full = false, quick = false;
        string? outDir = null;
        for (int i = 0; i < args.Length; i++)
        {
            string Value() => i + 1 < args.Length ? args[++i] : throw new ArgumentException($"{args[i]} needs a value.");
            switch (args[i])
            {
                case "--quick": quick = true; break;
                case "--full": full = true; break;
                case "--runs": o = o with { Runs = int.Parse(Value(), CultureInfo.InvariantCulture) }; break;
                case "--duration": o = o with { BulkDuration = TimeSpan.FromSeconds(double.Parse(Value(), CultureInfo.InvariantCulture)) }; break;
                case "--scenarios":
                    selected = Value().Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries).ToList();
                    foreach (var s in selected)
                        if (!all.Any(x => x.Matches(s))) throw new ArgumentException($"Unknown scenario '{s}'. Known (--list for all): {string.Join(", ", all.Select(x => x.Group).Distinct())}.");
                    break;
                case "--paced-samples": o = o with { PacedSamples = int.Parse(Value(), CultureInfo.InvariantCulture) }; break;
                case "--out": outDir = Value(); break;
                case "--no-host-drop": o = o with { HostDrop = false }; break;
                case "--chunk": o = o with { BulkChunk = int.Parse(Value(), CultureInfo.InvariantCulture) * 1024 }; break;
                case "--default-tiering": break; // handled in Main
                case "--side":
                    var side = Value();
                    if (side is not ("ours" or "kernel" or "both")) throw new ArgumentException("--side takes ours, kernel or both.");
                    o = o with { Side = side };
                    break;
                case "--list":
                    foreach (var sc in all)
                        Console.WriteLine($"{sc.Id,-28} {(sc.Long ? "long   " : "default")} {string.Join("; ", sc.Figures.Select(f => f.Title))}");
                    return 0;
                case "-h" or "--help":
                    Console.WriteLine(Usage());
                    return 0;
                default: throw new ArgumentException($"Unknown argument '{args[i]}' (try --help).");
            }
        }
        if (quick) o = o.Quick();
        all = Catalog.All(o); // targets and titles follow the options (host drop, transfer size)
        outDir ??= Path.Combine(FindRepositoryRoot() ?? Directory.GetCurrentDirectory(), "out", "bench");
        var chosen = all.Where(s => selected is not null ? selected.Any(s.Matches) : full || !s.Long).ToList();

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
        Console.WriteLine($"lab: {lab.KernelNamespace} (k0 {BenchLab.KernelAddress}) <-> {lab.StackNamespace} (u0); peer pid {peer.Id}; {o.Runs} run(s) per side, interleaved; {chosen.Count} scenario(s)");
        var clock = Stopwatch.StartNew();

        var results = new List<FigureResult>();
        foreach (var sc in chosen)
        {
            var figures = sc.Figures.Select(f => new FigureResult(f)).ToList();
            var so = sc.HostDrop is { } hd ? o with { HostDrop = hd && o.HostDrop } : o;
            var timeout = sc.Timeout ?? o.RunTimeout;
            var started = clock.Elapsed;
            for (int run = 0; run < o.Runs; run++)
            {
                if (sc.Kernel is { } kernel && o.Side != "ours")
                {
                    lab.KernelTakesStackAddress(true);
                    await Attempt(figures, "kernel", $"{sc.Id} kernel run {run + 1}", () => Task.Run(() => kernel(lab, so)), timeout);
                    lab.KernelTakesStackAddress(false);
                }
                if (o.Side != "kernel")
                {
                    lab.KernelTakesStackAddress(false);
                    await Attempt(figures, "ours", $"{sc.Id} ours run {run + 1}", () => sc.Ours(lab, so), timeout);
                }
            }
            foreach (var f in figures)
            {
                f.Seconds = (clock.Elapsed - started).TotalSeconds;
                f.Complete();
            }
            results.AddRange(figures);
        }
        peer.StandardInput.Close();
        if (!peer.WaitForExit(5000)) peer.Kill(entireProcessTree: true);

        var md = Report.Markdown(results, o, clock.Elapsed, quick);
        Console.WriteLine();
        Console.WriteLine(md);
        Directory.CreateDirectory(outDir);
        File.WriteAllText(Path.Combine(outDir, "results.md"), md);
        File.WriteAllText(Path.Combine(outDir, "results.json"), JsonSerializer.Serialize(new { Environment = Report.Environment(), Options = o, Results = results },
            new JsonSerializerOptions { WriteIndented = true, NumberHandling = System.Text.Json.Serialization.JsonNumberHandling.AllowNamedFloatingPointLiterals }));
        Console.WriteLine($"written: {Path.Combine(outDir, "results.md")} and results.json ({clock.Elapsed.TotalMinutes:0.0} min)");
        return results.Any(r => r.Errors.Count > 0) ? 1 : 0;
    }

    /// <summary>One run of one side: its measurements go to the figures they name; a failure is noted on every figure of the scenario.</summary>
    private static async Task Attempt(List<FigureResult> figures, string side, string what, Func<Task<Dictionary<string, Measurement>>> run, TimeSpan timeout)
    {
        Console.Write($"  {what}... ");
        try
        {
            var ms = await run().WaitAsync(timeout);
            foreach (var f in figures)
                if (ms.TryGetValue(f.Id, out var m)) (side == "kernel" ? f.Kernel : f.Ours).Add(m);
            Console.WriteLine(string.Join(", ", ms.Select(kv => $"{kv.Key} {kv.Value.Value.ToString("0.###", CultureInfo.InvariantCulture)}")));
        }
        catch (Exception e)
        {
            foreach (var f in figures) f.Errors.Add($"{what}: {e.GetType().Name}: {e.Message}");
            Console.WriteLine($"FAILED: {e.GetType().Name}: {e.Message}");
        }
    }

    /// <summary>This program again, in K, with <paramref name="args"/> (the peer, a holder of idle connections).</summary>
    internal static Process StartSelfInKernel(BenchLab lab, params string[] args)
    {
        var self = Environment.ProcessPath ?? throw new InvalidOperationException("no process path");
        return Path.GetFileNameWithoutExtension(self) == "dotnet"
            ? lab.StartInKernel(self, [typeof(Program).Assembly.Location, .. args])
            : lab.StartInKernel(self, args);
    }

    private static Process StartPeer(BenchLab lab)
    {
        var p = StartSelfInKernel(lab, "peer");
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
