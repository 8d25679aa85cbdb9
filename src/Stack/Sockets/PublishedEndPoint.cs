namespace NetStack.Sockets;

/// <summary>
/// An endpoint the loop publishes for readers on any thread (a socket's LocalEndPoint, RemoteEndPoint): address
/// and port in one 64-bit word written and read atomically, so a reader never sees one peer's address with
/// another's port. Written on the loop only. A mutable struct: keep it in a field and call it there.
/// </summary>
internal struct PublishedEndPoint
{
    private const long Set = 1L << 48;
    private long _packed; // 0: none; else Set | address << 16 | port

    public void Publish(Ipv4Address address, ushort port) => Volatile.Write(ref _packed, Set | (long)address.Value << 16 | port);

    public void Clear() => Volatile.Write(ref _packed, 0);

    /// <summary>The endpoint last published, or null.</summary>
    public IpEndPoint? Read()
    {
        var v = Volatile.Read(ref _packed);
        return v == 0 ? null : new IpEndPoint(new Ipv4Address((uint)(v >> 16)), (ushort)v);
    }
}
