using System.Globalization;

namespace NetStack.Services;

/// <summary>
/// The lab HTTP service's range requests (RFC 9110 14.2): one range "bytes=first-" or "bytes=first-last" of a pattern
/// body is a 206 with Content-Range; a first byte at or past the end is 416 with "bytes */length"; anything else
/// (several ranges, a suffix range, no Range) is answered with the whole body, as RFC 9110 14.2 lets a server do.
/// </summary>
internal static class HttpRange
{
    /// <summary>The 206 or 416 response for <paramref name="request"/>'s Range on a body of <paramref name="length"/> bytes, or null for the whole body.</summary>
    public static HttpService.Response? Apply(HttpRequest request, long length)
    {
        if (request.Headers.GetValueOrDefault("Range") is not { } value || !TryParse(value, out var first, out var last)) return null;
        if (first >= length)
        {
            var refused = new HttpService.Response { Status = 416, Body = [] };
            refused.Headers.Add(("Content-Range", $"bytes */{length}"));
            return refused;
        }
        last = Math.Min(last, length - 1);
        var partial = new HttpService.Response { Status = 206, PatternOffset = first, PatternLength = last - first + 1, ContentType = "application/octet-stream" };
        partial.Headers.Add(("Content-Range", string.Create(CultureInfo.InvariantCulture, $"bytes {first}-{last}/{length}")));
        return partial;
    }

    /// <summary>"bytes=first-" (last = long.MaxValue) or "bytes=first-last" with first &lt;= last.</summary>
    internal static bool TryParse(string value, out long first, out long last)
    {
        first = 0;
        last = long.MaxValue;
        var v = value.Trim();
        if (!v.StartsWith("bytes=", StringComparison.OrdinalIgnoreCase) || v.Contains(',')) return false;
        var spec = v[6..].Trim();
        var dash = spec.IndexOf('-');
        if (dash <= 0 || !long.TryParse(spec[..dash], NumberStyles.None, CultureInfo.InvariantCulture, out first)) return false;
        var end = spec[(dash + 1)..];
        return end.Length == 0 || (long.TryParse(end, NumberStyles.None, CultureInfo.InvariantCulture, out last) && last >= first);
    }
}
