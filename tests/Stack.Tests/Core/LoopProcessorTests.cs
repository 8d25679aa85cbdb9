using NetStack;
using NetStack.Link;
using Stack.Tests.Tcp;

namespace Stack.Tests.Core;

/// <summary>
/// StackConfig.LoopProcessor: the loop's thread runs on the processor named (Linux's affinity), so a sleeping loop
/// woken for a frame is woken where the frame arrived; a processor the system refuses fails Start, naming the field.
/// </summary>
public class LoopProcessorTests
{
    private static (VirtualWire Wire, NetworkStack A, NetworkStack B) Pair(int? processorOfA)
    {
        var wire = new VirtualWire(seed: 3);
        var a = new NetworkStack(wire.CreatePort("a", MacAddress.Parse("02-00-00-00-00-01")), new StackConfig { Address = TcpSim.A, LoopProcessor = processorOfA });
        var b = new NetworkStack(wire.CreatePort("b", MacAddress.Parse("02-00-00-00-00-02")), new StackConfig { Address = TcpSim.B });
        return (wire, a, b);
    }

    /// <summary>The processors the calling thread may run on, as the kernel lists them (/proc/thread-self/status).</summary>
    private static string AllowedProcessors() =>
        File.ReadLines("/proc/thread-self/status").Single(l => l.StartsWith("Cpus_allowed_list:", StringComparison.Ordinal)).Split(':')[1].Trim();

    [Fact]
    public async Task The_loop_runs_on_the_processor_named_and_answers_there()
    {
        var (_, a, b) = Pair(processorOfA: 0);
        using var _a = a;
        using var _b = b;
        a.Start();
        b.Start();
        Assert.Equal("0", await a.InvokeAsync(_ => AllowedProcessors()).WaitAsync(TimeSpan.FromSeconds(30)));
        Assert.NotEqual("0", await b.InvokeAsync(_ => AllowedProcessors()).WaitAsync(TimeSpan.FromSeconds(30))); // unpinned: all of them
        var reply = await b.PingAsync(TcpSim.A, timeout: TimeSpan.FromSeconds(10)).WaitAsync(TimeSpan.FromSeconds(30));
        Assert.Equal(NetStack.Icmp.PingStatus.Success, reply.Status); // the pinned stack answers
    }

    [Fact]
    public void A_processor_the_system_refuses_fails_Start_naming_the_field()
    {
        var (_, a, b) = Pair(processorOfA: LoopAffinity.MaxProcessors - 1);
        using var _a = a;
        using var _b = b;
        var e = Assert.Throws<StackConfigurationException>(a.Start);
        Assert.Equal(nameof(StackConfig.LoopProcessor), e.Field);
        Assert.Contains("online processors", e.Message);
    }

    [Fact]
    public void A_negative_processor_is_refused_by_Validate()
    {
        var e = Assert.Throws<StackConfigurationException>(() => new StackConfig { Address = TcpSim.A, LoopProcessor = -1 }.Validate(1500));
        Assert.Equal(nameof(StackConfig.LoopProcessor), e.Field);
    }
}
