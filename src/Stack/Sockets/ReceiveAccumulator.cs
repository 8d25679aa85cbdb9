namespace NetStack.Sockets;

/// <summary>
/// What a bounded receive (<see cref="TcpSocket.ReceiveUntilAsync"/>, <see cref="TcpSocket.ReceiveExactlyAsync"/>,
/// <see cref="TcpSocket.ReceiveToEndAsync"/>) has read so far, in 64 KiB chunks (under the large-object threshold, so
/// small receives stay cheap). The socket receives straight into the last chunk; growing never copies what is
/// already held (a MemoryStream doubles and copies, and its ToArray copies again: about four times the payload at
/// the peak for a 100 MiB receive), so a receive peaks at about twice its size: the chunks and the one array handed
/// to the user. The delimiter search resumes where the last one stopped, so an -Until stays linear however much
/// arrives. What the receive does not return goes back to the socket as slices of these chunks, without a copy.
/// Owned by one receive operation; never shared.
/// </summary>
internal sealed class ReceiveAccumulator
{
    private const int ChunkBytes = 64 * 1024;
    private readonly List<byte[]> _chunks = new();
    private int _lastUsed = ChunkBytes;
    private int _searchedUpTo;

    public int Length { get; private set; }

    /// <summary>Room for up to <paramref name="max"/> more bytes at the end (at least one), for a receive to fill; then <see cref="Commit"/>.</summary>
    public Memory<byte> Reserve(int max)
    {
        if (_lastUsed == ChunkBytes)
        {
            _chunks.Add(new byte[ChunkBytes]);
            _lastUsed = 0;
        }
        return _chunks[^1].AsMemory(_lastUsed, Math.Min(max, ChunkBytes - _lastUsed));
    }

    /// <summary>Takes <paramref name="n"/> bytes written into the last <see cref="Reserve"/>d room.</summary>
    public void Commit(int n)
    {
        _lastUsed += n;
        Length += n;
    }

    public void Write(ReadOnlySpan<byte> data)
    {
        while (!data.IsEmpty)
        {
            var room = Reserve(data.Length).Span;
            data[..room.Length].CopyTo(room);
            Commit(room.Length);
            data = data[room.Length..];
        }
    }

    private byte this[int index] => _chunks[index / ChunkBytes][index % ChunkBytes];

    /// <summary>Where <paramref name="pattern"/> first starts, or -1; bytes already searched are not searched again.</summary>
    public int IndexOf(ReadOnlySpan<byte> pattern)
    {
        if (pattern.Length == 0) return 0;
        for (int i = Math.Max(0, _searchedUpTo - pattern.Length + 1); i + pattern.Length <= Length; i++)
        {
            int k = 0;
            while (k < pattern.Length && this[i + k] == pattern[k]) k++;
            if (k == pattern.Length) return i;
        }
        _searchedUpTo = Length;
        return -1;
    }

    public byte[] ToArray() => ToArray(0, Length);

    public byte[] ToArray(int start, int count)
    {
        var result = new byte[count];
        var done = 0;
        while (done < count)
        {
            var at = start + done;
            var chunk = _chunks[at / ChunkBytes];
            var offset = at % ChunkBytes;
            var n = Math.Min(count - done, ChunkBytes - offset);
            chunk.AsSpan(offset, n).CopyTo(result.AsSpan(done));
            done += n;
        }
        return result;
    }

    /// <summary>The bytes from <paramref name="start"/> to the end, in order, as slices of the chunks (no copy).</summary>
    public List<ArraySegment<byte>> Slices(int start)
    {
        var slices = new List<ArraySegment<byte>>();
        for (var at = start; at < Length;)
        {
            var chunk = _chunks[at / ChunkBytes];
            var offset = at % ChunkBytes;
            var n = Math.Min(Length - at, ChunkBytes - offset);
            slices.Add(new ArraySegment<byte>(chunk, offset, n));
            at += n;
        }
        return slices;
    }
}
