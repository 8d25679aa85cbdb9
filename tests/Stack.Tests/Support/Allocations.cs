namespace Stack.Tests.Support;

/// <summary>Assertions for "no allocation per packet".</summary>
public static class Allocations
{
    /// <summary>
    /// Asserts that <paramref name="allocated"/> bytes over <paramref name="items"/> packets (frames, datagrams…)
    /// cannot hide an allocation per item: the smallest object is 24 bytes, so a per-item allocation costs at
    /// least 24 × items, while the bound here is under 1 byte per item on average. Exactly zero is not asserted,
    /// because the runtime itself may allocate once on the measuring thread (tiered JIT, on-stack replacement,
    /// a thread-pool or timer structure growing) when the machine is loaded.
    /// </summary>
    public static void AssertNonePerItem(long allocated, long items, string what)
    {
        Assert.True(items > 0, "nothing was measured");
        Assert.True(allocated < items,
            $"{allocated} bytes allocated over {items:N0} {what} ({(double)allocated / items:F2} per item): something allocates per item");
    }
}
