using NetStack;
using NetStack.Link;

namespace Stack.Tests.Support;

/// <summary>A link device for rule-level tests: the test injects frames and reads what the stack sent.</summary>
public sealed class TestDevice : ILinkDevice
{
    private readonly Queue<byte[]> _inbound = new();
    public TestDevice(MacAddress? mac = null, int mtu = 1500)
    {
        HardwareAddress = mac ?? MacAddress.Parse("02-00-00-00-00-02");
        Mtu = mtu;
    }

    public string Name => "test0";
    public MacAddress HardwareAddress { get; }
    public int Mtu { get; }
    public LinkStatistics Statistics { get; } = new();
    public TimeSpan? NextArrival => _inbound.Count > 0 ? TimeSpan.Zero : null;

    /// <summary>Frames the stack transmitted, oldest first.</summary>
    public List<byte[]> Sent { get; } = new();

    public void Inject(byte[] frame) => _inbound.Enqueue(frame);

    public int Receive(IFrameSink sink, TimeSpan now, int max)
    {
        int n = 0;
        while (n < max && _inbound.TryDequeue(out var f)) { sink.OnFrame(f, now); n++; }
        return n;
    }

    public void Transmit(ReadOnlySpan<byte> frame, TimeSpan now) => Sent.Add(frame.ToArray());
    public void Flush(TimeSpan now) { }
    public void WaitForFrames(TimeSpan timeout) { }
    public void Wake() { }
    public void Dispose() { }
}

/// <summary>One stack on a <see cref="TestDevice"/> in virtual time: crafted frame in, exact frame out.</summary>
public sealed class StackHarness : IDisposable
{
    public static readonly MacAddress OurMac = MacAddress.Parse("02-00-00-00-00-02");
    public static readonly MacAddress PeerMac = MacAddress.Parse("02-00-00-00-00-01");
    public static readonly Ipv4Address OurIp = Ipv4Address.Parse("192.0.2.2");
    public static readonly Ipv4Address PeerIp = Ipv4Address.Parse("192.0.2.1");

    /// <param name="seed">The stack's seed: 1 replays; null makes an unseeded stack (cryptographic ids and secrets).</param>
    public StackHarness(Func<StackConfig, StackConfig>? configure = null, int mtu = 1500, int? seed = 1)
    {
        Device = new TestDevice(OurMac, mtu);
        var config = new StackConfig { Address = OurIp, PrefixLength = 24, Arp = new ArpSettings { GratuitousOnStart = false } };
        if (configure != null) config = configure(config);
        Stack = new NetworkStack(Device, config, Clock, seed: seed);
        Poll();
    }

    public ManualClock Clock { get; } = new();
    public TestDevice Device { get; }
    public NetworkStack Stack { get; }

    public TimeSpan? Poll() => Stack.Poll(Clock.Now);

    /// <summary>Injects a frame, runs a loop turn, and returns what the stack sent in response.</summary>
    public List<byte[]> Feed(byte[] frame)
    {
        Device.Sent.Clear();
        Device.Inject(frame);
        Poll();
        return new List<byte[]>(Device.Sent);
    }

    /// <summary>Moves virtual time forward, running due timers at each deadline on the way.</summary>
    public void Advance(TimeSpan by)
    {
        var end = Clock.Now + by;
        while (true)
        {
            var next = Poll();
            if (next is not { } n || n > end) break;
            if (n > Clock.Now) Clock.Now = n;
        }
        Clock.Now = end;
        Poll();
    }

    /// <summary>Runs loop turns until the task is done (each turn drains posted API work).</summary>
    public T Run<T>(Task<T> task)
    {
        for (int i = 0; i < 100 && !task.IsCompleted; i++) Poll();
        Assert.True(task.IsCompleted, "the operation did not complete on the loop");
        return task.GetAwaiter().GetResult();
    }

    public void Run(Task task)
    {
        for (int i = 0; i < 100 && !task.IsCompleted; i++) Poll();
        Assert.True(task.IsCompleted, "the operation did not complete on the loop");
        task.GetAwaiter().GetResult();
    }

    public void Dispose() => Stack.Dispose();
}
