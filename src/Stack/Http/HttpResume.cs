using System.Globalization;
using System.Net;

namespace NetStack.Http;

/// <summary>What to do with a response to a request that asked for the rest of a file (Range: bytes=N-).</summary>
public enum HttpResumeOutcome
{
    /// <summary>206 from byte N: the body continues the file.</summary>
    Continued,
    /// <summary>A 2xx other than 206 (the server ignored Range): the body is the whole file, written again.</summary>
    Restarted,
    /// <summary>416 saying the file is N bytes long: the file is already complete, nothing to write.</summary>
    AlreadyComplete,
    /// <summary>A 206 of another range, or a 416 for another length: the file cannot be continued from this answer.</summary>
    Mismatch,
    /// <summary>Any other status (an error): the file is left as it was; the body is the error's.</summary>
    NotWritten,
}

/// <summary>Continuing a partial download with a range request (RFC 9110 14.2 Range, 14.4 Content-Range, 15.3.7 206, 15.5.17 416).</summary>
public static class HttpResume
{
    /// <summary>
    /// The outcome of <paramref name="status"/> with <paramref name="contentRange"/> (the Content-Range header, or null)
    /// for a request of the bytes from <paramref name="offset"/> on.
    /// </summary>
    public static HttpResumeOutcome Decide(HttpStatusCode status, string? contentRange, long offset)
    {
        var code = (int)status;
        if (code == 206) return TryParse(contentRange, out var first, out _) && first == offset ? HttpResumeOutcome.Continued : HttpResumeOutcome.Mismatch;
        if (code == 416) return TryParse(contentRange, out var f, out var complete) && f < 0 && complete == offset ? HttpResumeOutcome.AlreadyComplete : HttpResumeOutcome.Mismatch;
        return code is >= 200 and <= 299 ? HttpResumeOutcome.Restarted : HttpResumeOutcome.NotWritten;
    }

    /// <summary>"bytes first-last/complete" (first >= 0) or "bytes */complete" (first = -1); complete is -1 for "*".</summary>
    internal static bool TryParse(string? value, out long first, out long complete)
    {
        first = complete = -1;
        if (value is null) return false;
        var v = value.Trim();
        if (!v.StartsWith("bytes ", StringComparison.OrdinalIgnoreCase)) return false;
        var slash = v.IndexOf('/');
        if (slash < 0) return false;
        var range = v[6..slash].Trim();
        var length = v[(slash + 1)..].Trim();
        if (length != "*" && !long.TryParse(length, NumberStyles.None, CultureInfo.InvariantCulture, out complete)) return false;
        if (range == "*") return complete >= 0;
        var dash = range.IndexOf('-');
        return dash > 0 && long.TryParse(range[..dash], NumberStyles.None, CultureInfo.InvariantCulture, out first)
            && long.TryParse(range[(dash + 1)..], NumberStyles.None, CultureInfo.InvariantCulture, out var last) && last >= first;
    }
}
