using NetStack.Link;

namespace NetStack.IPv4;

/// <summary>
/// Fragment reassembly (RFC 791 3.2, RFC 815). PLACEHOLDER: drops every fragment (counted as
/// ReassemblyMalformed) until the real reassembler lands.
/// </summary>
internal sealed class Reassembler
{
    private readonly NetworkStack _stack;
    private readonly Ipv4Counters _counters;

    public Reassembler(NetworkStack stack, Ipv4Counters counters)
    {
        _stack = stack;
        _counters = counters;
    }

    public void OnFragment(ReadOnlySpan<byte> packet, int ihl, MacAddress linkSource, TimeSpan now) => _counters.ReassemblyMalformed++;

    public TimeSpan? Poll(TimeSpan now) => null;

    public void Dispose() { }
}
