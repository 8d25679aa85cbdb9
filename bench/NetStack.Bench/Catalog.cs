namespace NetStack.Bench;

/// <summary>Knobs of one suite run.</summary>
internal sealed record BenchOptions
{
    public int Runs { get; init; } = 3;
    public TimeSpan BulkDuration { get; init; } = TimeSpan.FromSeconds(3);
    public TimeSpan BulkWarmup { get; init; } = TimeSpan.FromSeconds(0.5);
    /// <summary>Bytes per send/receive call in the bulk scenarios, both sides.</summary>
    public int BulkChunk { get; init; } = 128 * 1024;
    public int Connects { get; init; } = 5000;
    public int RoundTrips { get; init; } = 20_000;
    public int Pings { get; init; } = 5000;
    /// <summary>Echoes / requests the kernel sends us at <see cref="PacedInterval"/> (the admin's ping).</summary>
    public int PacedSamples { get; init; } = 1000;
    public TimeSpan PacedInterval { get; init; } = TimeSpan.FromMilliseconds(2);
    public int IdleConnections { get; init; } = 10_000;
    /// <summary>Idle connections of the scale figures (idle-100k, scale-*).</summary>
    public int ScaleConnections { get; init; } = 100_000;
    /// <summary>Bytes of each lossy transfer (issue 14: 32 MiB).</summary>
    public long LossyBytes { get; init; } = 32L * 1024 * 1024;
    /// <summary>Bulk window of the in-memory wire figures (cpu-wire, api-*).</summary>
    public TimeSpan WireDuration { get; init; } = TimeSpan.FromSeconds(2);
    public TimeSpan RunTimeout { get; init; } = TimeSpan.FromSeconds(120);
    /// <summary>Which side to run: both (the suite), or one of them alone (for profiling).</summary>
    public string Side { get; init; } = "both";
    /// <summary>Install the host ingress drop while our stack runs (PcapDeviceOptions.HostIngressDrop).</summary>
    public bool HostDrop { get; init; } = true;

    /// <summary>--quick: every scenario once, small: checks that it all runs, not figures.</summary>
    public BenchOptions Quick() => this with
    {
        Runs = 1, BulkDuration = TimeSpan.FromSeconds(1), BulkWarmup = TimeSpan.FromSeconds(0.3), Connects = 1000, RoundTrips = 5000, Pings = 1000,
        PacedSamples = 200, IdleConnections = 2000, ScaleConnections = 12_000, LossyBytes = 2L * 1024 * 1024, WireDuration = TimeSpan.FromSeconds(0.5),
    };
}

/// <summary>One side's figure for one run, with what explains it (CPU, allocations, drops...), and the reference ours measured alongside if any.</summary>
internal sealed record Measurement(double Value, Dictionary<string, double> Details, double? Reference = null);

/// <summary>
/// One line of the table: what is measured, its target (from issues 14 and 18) as a test on (ours, reference), and what
/// the reference is: the kernel's figure in our place (the default), or ours in another position (scale figures).
/// </summary>
internal sealed record Figure(string Id, string Title, string Unit, string Target, Func<double, double?, bool>? Pass, string Reference = "kernel")
{
    public bool NeedsReference { get; init; } = true;
}

/// <summary>
/// Work measured together: one run of each side yields a measurement for each of its figures. Long scenarios run only
/// when named (or with --full). <paramref name="HostDrop"/> false measures without the host ingress drop.
/// </summary>
internal sealed record Scenario(string Id, string Group, bool Long, Figure[] Figures,
    Func<BenchLab, BenchOptions, Task<Dictionary<string, Measurement>>> Ours,
    Func<BenchLab, BenchOptions, Dictionary<string, Measurement>>? Kernel,
    TimeSpan? Timeout = null, bool? HostDrop = null)
{
    /// <summary>"lossy" selects every lossy scenario, "lossy-send" the send ones, "lossy-send-cubic-3" one.</summary>
    /// <summary>By id, group, or id prefix (ping-in-2ms takes its -busypoll variant too); a trailing = takes the one id alone (ping-in-2ms=).</summary>
    public bool Matches(string token) => token.EndsWith('=') ? Id == token[..^1] : token == "all" || Id == token || Group == token || Id.StartsWith(token + "-", StringComparison.Ordinal);
}

/// <summary>
/// A congestion control of ours against the kernel's: <see cref="Ours"/> is StackConfig's Tcp.CongestionControl (null:
/// our default), <see cref="Kernel"/> the kernel's TCP_CONGESTION name (null: the kernel's default, tcp_congestion_control).
/// </summary>
internal sealed record CongestionPair(string Name, string? Ours, string? Kernel, string Target, Func<double, bool>? RatioMet);

/// <summary>Every scenario of the suite, in the order they run.</summary>
internal static class Catalog
{
    /// <summary>Loss rates of the lossy scenarios, percent each way (issue 14).</summary>
    public static readonly int[] LossRates = [1, 3, 5];

    /// <summary>
    /// The congestion controls compared under loss, data-driven: a line per pair (ours against the kernel's same one). A
    /// line naming a control the kernel lacks reports an error for that side instead of a figure.
    /// </summary>
    public static readonly CongestionPair[] CongestionControls =
    [
        new("cubic", "cubic", "cubic", "<= 1.0x kernel CUBIC", r => r <= 1.0),
        new("newreno", "newreno", "reno", "(report)", null),
        new("bbr", "bbr", "bbr", "<= 1.5x kernel BBR", r => r <= 1.5),
        new("default", null, null, "<= 1.5x kernel default", r => r <= 1.5),
    ];

    private static Func<BenchLab, BenchOptions, Task<Dictionary<string, Measurement>>> One(string id, Func<BenchLab, BenchOptions, Task<Measurement>> f) =>
        async (l, o) => new() { [id] = await f(l, o) };

    private static Func<BenchLab, BenchOptions, Dictionary<string, Measurement>> One(string id, Func<BenchLab, BenchOptions, Measurement> f) =>
        (l, o) => new() { [id] = f(l, o) };

    private static Scenario Simple(string id, string group, string title, string unit, string target, Func<double, double?, bool>? pass,
        Func<BenchLab, BenchOptions, Task<Measurement>> ours, Func<BenchLab, BenchOptions, Measurement>? kernel, bool? hostDrop = null) =>
        new(id, group, false, [new Figure(id, title, unit, target, pass) { NeedsReference = kernel is not null }], One(id, ours), kernel is null ? null : One(id, kernel), HostDrop: hostDrop);

    public static IReadOnlyList<Scenario> All(BenchOptions options)
    {
        var hostDrop = options.HostDrop;
        var mib = options.LossyBytes / (1024.0 * 1024);
        var idle = options.IdleConnections.ToString("N0", System.Globalization.CultureInfo.InvariantCulture);
        var scale = options.ScaleConnections.ToString("N0", System.Globalization.CultureInfo.InvariantCulture);
        var list = new List<Scenario>
        {
            // Issue 18: with the host drop receive >= 1.0x and send >= 0.8x; without it >= 0.8x and >= 0.7x.
            Simple("recv", "bulk", "Bulk receive", "Gbit/s", hostDrop ? ">= 1.0x kernel" : ">= 0.8x kernel", (o, k) => o >= (hostDrop ? 1.0 : 0.8) * k!.Value,
                (l, o) => Scenarios.OursBulk(l, o, receive: true), (l, o) => KernelClients.Bulk(l, o, receive: true)),
            Simple("send", "bulk", "Bulk send", "Gbit/s", hostDrop ? ">= 0.8x kernel" : ">= 0.7x kernel", (o, k) => o >= (hostDrop ? 0.8 : 0.7) * k!.Value,
                (l, o) => Scenarios.OursBulk(l, o, receive: false), (l, o) => KernelClients.Bulk(l, o, receive: false)),
            Simple("recv-nodrop", "bulk", "Bulk receive, no host drop", "Gbit/s", ">= 0.8x kernel", (o, k) => o >= 0.8 * k!.Value,
                (l, o) => Scenarios.OursBulk(l, o, receive: true), (l, o) => KernelClients.Bulk(l, o, receive: true), hostDrop: false),
            Simple("send-nodrop", "bulk", "Bulk send, no host drop", "Gbit/s", ">= 0.7x kernel", (o, k) => o >= 0.7 * k!.Value,
                (l, o) => Scenarios.OursBulk(l, o, receive: false), (l, o) => KernelClients.Bulk(l, o, receive: false), hostDrop: false),
            Simple("connect", "connect", "Connect+close", "conn/s", ">= 1.0x kernel", (o, k) => o >= k!.Value, Scenarios.OursConnect, KernelClients.ConnectRate),
            Simple("rr", "rr", "1-byte request/response, we request back to back", "µs/round trip", "(report; issue 18 targets the 2 ms figure)", null,
                (l, o) => Scenarios.OursRequestResponse(l, o), KernelClients.RequestResponse),
            Simple("rr-busypoll", "rr", $"1-byte request/response, we request back to back, busy polling {Latency.BusyPoll} µs", "µs/round trip", "(report)", null,
                (l, o) => Scenarios.OursRequestResponse(l, o, Latency.BusyPoll), KernelClients.RequestResponse),
            Simple("rr-busypoll-100", "rr", $"1-byte request/response, we request back to back, busy polling {Latency.ShortBusyPoll} µs", "µs/round trip", "(report)", null,
                (l, o) => Scenarios.OursRequestResponse(l, o, Latency.ShortBusyPoll), KernelClients.RequestResponse),
            Simple("rr-in", "rr", "1-byte request/response, the kernel requests back to back", "µs/round trip", "(report)", null,
                (l, o) => Latency.OursServesRequests(l, o, paced: false), (l, o) => Latency.KernelServesRequests(l, o, paced: false)),
            Simple("rr-in-2ms", "rr", "1-byte request/response, the kernel requests 2 ms apart", "µs/round trip", "<= 2x kernel", (o, k) => o <= 2 * k!.Value,
                (l, o) => Latency.OursServesRequests(l, o, paced: true), (l, o) => Latency.KernelServesRequests(l, o, paced: true)),
            // The low-latency mode (StackConfig.BusyPollMicroseconds, above the 2 ms gap): the details give the CPU it costs.
            Simple("rr-in-2ms-busypoll", "rr", $"1-byte request/response, the kernel requests 2 ms apart, busy polling {Latency.BusyPoll} µs", "µs/round trip", "<= 2x kernel",
                (o, k) => o <= 2 * k!.Value,
                (l, o) => Latency.OursServesRequests(l, o, paced: true, Latency.BusyPoll), (l, o) => Latency.KernelServesRequests(l, o, paced: true)),
            // The caller's wait on the device (StackConfig.CallerWaitMicroseconds, above the 2 ms gap): the server's receive sleeps in the device itself.
            Simple("rr-in-2ms-wait", "rr", $"1-byte request/response, the kernel requests 2 ms apart, the caller waiting on the device {Latency.CallerWait} µs", "µs/round trip", "<= 2x kernel",
                (o, k) => o <= 2 * k!.Value,
                (l, o) => Latency.OursServesRequests(l, o, paced: true, callerWait: Latency.CallerWait), (l, o) => Latency.KernelServesRequests(l, o, paced: true)),
            // As ping-in-2ms-pinned: our loop and K's client thread on one processor (the reference's client pinned the same way).
            Simple("rr-in-2ms-pinned", "rr", $"1-byte request/response, the kernel requests 2 ms apart, our loop and the client on processor {Latency.PinnedProcessor}", "µs/round trip", "<= 2x kernel",
                (o, k) => o <= 2 * k!.Value,
                (l, o) => Latency.OursServesRequests(l, o, paced: true, pinned: true), (l, o) => Latency.KernelServesRequests(l, o, paced: true, pinned: true)),
            Simple("ping", "ping", "ICMP echo RTT, we ping back to back", "µs", "(report)", null, (l, o) => Scenarios.OursPing(l, o), KernelClients.Ping),
            Simple("ping-busypoll", "ping", $"ICMP echo RTT, we ping back to back, busy polling {Latency.BusyPoll} µs", "µs", "(report)", null,
                (l, o) => Scenarios.OursPing(l, o, Latency.BusyPoll), KernelClients.Ping),
            Simple("ping-busypoll-100", "ping", $"ICMP echo RTT, we ping back to back, busy polling {Latency.ShortBusyPoll} µs", "µs", "(report)", null,
                (l, o) => Scenarios.OursPing(l, o, Latency.ShortBusyPoll), KernelClients.Ping),
            Simple("ping-in", "ping", "ICMP echo RTT, the kernel pings us back to back (ping -f)", "µs", "(report)", null,
                (l, o) => Latency.OursPingedByKernel(l, o, paced: false), (l, o) => Latency.KernelPingedByKernel(l, o, paced: false)),
            Simple("ping-in-2ms", "ping", "ICMP echo RTT, the kernel pings us 2 ms apart", "µs", "<= 2x kernel", (o, k) => o <= 2 * k!.Value,
                (l, o) => Latency.OursPingedByKernel(l, o, paced: true), (l, o) => Latency.KernelPingedByKernel(l, o, paced: true)),
            Simple("ping-in-2ms-busypoll", "ping", $"ICMP echo RTT, the kernel pings us 2 ms apart, busy polling {Latency.BusyPoll} µs", "µs", "<= 2x kernel",
                (o, k) => o <= 2 * k!.Value,
                (l, o) => Latency.OursPingedByKernel(l, o, paced: true, Latency.BusyPoll), (l, o) => Latency.KernelPingedByKernel(l, o, paced: true)),
            // Our loop pinned to the processor the frames arrive on (StackConfig.LoopProcessor; K's ping pinned there too, for
            // both sides: on veth a frame arrives on its sender's processor, as on a real adapter on the one taking its interrupts).
            Simple("ping-in-2ms-pinned", "ping", $"ICMP echo RTT, the kernel pings us 2 ms apart, our loop and the ping on processor {Latency.PinnedProcessor}", "µs", "<= 2x kernel",
                (o, k) => o <= 2 * k!.Value,
                (l, o) => Latency.OursPingedByKernel(l, o, paced: true, pinned: true), (l, o) => Latency.KernelPingedByKernel(l, o, paced: true, pinned: true)),
            Simple("idle", "memory", $"Memory per idle connection ({idle}), managed heap", "bytes", "< 16 KiB (16384 B)", (o, _) => o < 16384, Scenarios.OursIdle, null),
            new("pending-recv", "memory", false,
                [new Figure("pending-recv", $"RSS per connection with a pending 4 KiB ReceiveAsync ({idle})", "bytes", "<= idle + the caller's buffers as their RSS reads (+8 B spread)",
                    (o, idleAndBuffers) => o <= idleAndBuffers!.Value + Scale.PendingReceiveRssSpread, "ours, idle + the caller's buffers and slots, same run")],
                One("pending-recv", Scale.OursPendingReceive), null),
            new("cpu-wire", "cpu", false,
                [new Figure("cpu-wire", "Bulk on the in-memory wire, Gbit/s per core of process CPU", "Gbit/s/core", ">= 10", (o, _) => o >= 10) { NeedsReference = false }],
                One("cpu-wire", WireCost.OursCpuPerCore), null),
            // The same with the whole process on one processor (every thread, and those made meanwhile): the stack's CPU per
            // byte without the second processor's parallel polling (wirebi: on two processors the receiving loop takes
            // frames in batches of 5-22 instead of 75-85, and every thread costs more per segment).
            new("cpu-wire-1cpu", "cpu", false,
                [new Figure("cpu-wire-1cpu", $"Bulk on the in-memory wire, the process on processor {WireCost.OneProcessor}, Gbit/s per core of process CPU", "Gbit/s/core", ">= 10", (o, _) => o >= 10) { NeedsReference = false }],
                One("cpu-wire-1cpu", WireCost.OursCpuPerCoreOnOneProcessor), null),
            new("api", "api", false,
                [
                    new Figure("api-alloc-send", "Allocation per send call (WriteAsync: SendAsync as ValueTask), steady state", "bytes/call", "0 (< 1)", (o, _) => o < 1) { NeedsReference = false },
                    new Figure("api-alloc-recv", "Allocation per receive call (ReadAsync: ReceiveAsync under Stream's name), steady state", "bytes/call", "0 (< 1)", (o, _) => o < 1) { NeedsReference = false },
                    new Figure("api-handoffs-send", "Thread hand-offs per send call (WriteAsync)", "hand-offs/call", "<= 1", (o, _) => o <= 1) { NeedsReference = false },
                    new Figure("api-handoffs-recv", "Thread hand-offs per receive call (ReadAsync)", "hand-offs/call", "<= 1", (o, _) => o <= 1) { NeedsReference = false },
                ],
                (_, o) => WireCost.OursApiCost(o), null),
            // Long: selectable by name, or --full.
            new("idle-100k", "scale", true,
                [new Figure("idle-100k", $"RSS per idle connection at {scale}", "bytes", $"<= {idle} figure + 1 KiB", (o, r) => o <= r!.Value + 1024, $"ours at {idle}, same run")],
                One("idle-100k", Scale.OursIdleAtScale), null, Timeout: TimeSpan.FromMinutes(10)),
            new("scale", "scale", true,
                [
                    new Figure("scale-recv", $"Bulk receive with {scale} idle connections", "Gbit/s", ">= 0.9x none", (o, r) => o >= 0.9 * r!.Value, "ours with none, same run"),
                    new Figure("scale-connect", $"Connect+close with {scale} idle connections", "conn/s", ">= 0.9x none", (o, r) => o >= 0.9 * r!.Value, "ours with none, same run"),
                    new Figure("scale-rr", $"1-byte request/response with {scale} idle connections", "µs/round trip", "<= 1.1x none", (o, r) => o <= 1.1 * r!.Value, "ours with none, same run"),
                ],
                Scale.OursFlatWithScale, KernelClients.FlatWithScale, Timeout: TimeSpan.FromMinutes(10)),
        };
        foreach (var loss in LossRates)
            foreach (var cc in CongestionControls)
            {
                var id = $"lossy-send-{cc.Name}-{loss}";
                list.Add(new(id, "lossy", true,
                    [new Figure(id, $"{mib:0.#} MiB sent under {loss}% loss each way, {cc.Name} (ours {cc.Ours ?? $"default, {new NetStack.TcpSettings().CongestionControl}"} / kernel {cc.Kernel ?? "default"})", "s", cc.Target,
                        cc.RatioMet is null ? null : (o, k) => cc.RatioMet(o / k!.Value))],
                    One(id, (l, o) => Lossy.OursSend(l, o, cc, loss)), One(id, (l, o) => Lossy.KernelSend(l, o, cc, loss)), Timeout: TimeSpan.FromMinutes(10)));
            }
        foreach (var loss in LossRates)
        {
            var id = $"lossy-recv-{loss}";
            list.Add(new(id, "lossy", true,
                [new Figure(id, $"{mib:0.#} MiB received under {loss}% loss each way (the kernel in K sends, its default control)", "s", "(report)", null)],
                One(id, (l, o) => Lossy.OursReceive(l, o, loss)), One(id, (l, o) => Lossy.KernelReceive(l, o, loss)), Timeout: TimeSpan.FromMinutes(10)));
        }
        return list;
    }
}
