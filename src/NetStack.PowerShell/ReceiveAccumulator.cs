namespace NetStack.PowerShell;

/// <summary>
/// What Receive-StackData has read so far, in 64 KiB chunks (under the large-object threshold, so small receives stay cheap). Growing never copies what is already held (a
/// MemoryStream doubles and copies, and its ToArray copies again: about four times the payload at the peak for a
/// 100 MiB receive), so a receive peaks at about twice its size: the chunks and the one array handed to the user.
/// The delimiter search resumes where the last one stopped, so -Until stays linear however much arrives.
/// </summary>
internal sealed class ReceiveAccumulator
{
    private const int ChunkBytes = 64 * 1024;
    private readonly List<byte[]> _chunks = new();
    private int _lastUsed = ChunkBytes;
    private int _searchedUpTo;

    public int Length { get; private set; }

    public void Write(ReadOnlySpan<byte> data)
    {
        while (!data.IsEmpty)
        {
            if (_lastUsed == ChunkBytes)
            {
                _chunks.Add(new byte[ChunkBytes]);
                _lastUsed = 0;
            }
            var chunk = _chunks[^1];
            var n = Math.Min(data.Length, chunk.Length - _lastUsed);
            data[..n].CopyTo(chunk.AsSpan(_lastUsed));
            _lastUsed += n;
            Length += n;
            data = data[n..];
        }
    }

    private byte this[int index] => _chunks[index / ChunkBytes][index % ChunkBytes];

    /// <summary>Where <paramref name="pattern"/> first starts, or -1; bytes already searched are not searched again.</summary>
    public int IndexOf(byte[] pattern)
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
}
