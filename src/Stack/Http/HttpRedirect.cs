using System.Net;

namespace NetStack.Http;

/// <summary>
/// Following a redirect (RFC 9110 15.4): which status codes redirect, where to (Location, resolved against the
/// request's URI, RFC 9110 10.2.2), and with which method and body.
/// </summary>
public static class HttpRedirect
{
    /// <summary>301, 302, 303, 307 and 308 redirect when they carry a Location; 300 and 304 do not (a choice, a cache hit).</summary>
    public static bool IsRedirect(HttpStatusCode status) => (int)status is 301 or 302 or 303 or 307 or 308;

    /// <summary>
    /// The request to send next after <paramref name="status"/> with <paramref name="location"/>, or null when the
    /// response does not redirect. 303 turns any method but HEAD into GET without a body (RFC 9110 15.4.4); 301 and 302
    /// turn POST into GET, as user agents do and RFC 9110 15.4.2/15.4.3 allow; 307 and 308 keep method and body
    /// (15.4.8, 15.4.9). Credentials (Authorization, Cookie) are not carried to another origin (RFC 9110 15.4 notes).
    /// </summary>
    /// <exception cref="HttpRedirectException">An https page redirects to plain http, or to a scheme other than http(s).</exception>
    public static StackHttpRequest? Next(StackHttpRequest request, HttpStatusCode status, Uri? location)
    {
        if (!IsRedirect(status) || location is null) return null;
        var target = location.IsAbsoluteUri ? location : new Uri(request.Uri, location);
        // RFC 9110 10.2.2: a Location without a fragment inherits the request's.
        if (target.Fragment.Length == 0 && request.Uri.Fragment.Length > 0) target = new UriBuilder(target) { Fragment = request.Uri.Fragment[1..] }.Uri;
        if (target.Scheme != Uri.UriSchemeHttp && target.Scheme != Uri.UriSchemeHttps)
            throw new HttpRedirectException($"{request.Uri} redirects to {target}, which is not an http or https address.");
        if (request.Uri.Scheme == Uri.UriSchemeHttps && target.Scheme == Uri.UriSchemeHttp)
            throw new HttpRedirectException($"{request.Uri} redirects to {target}: from https to plain http, which would send the request unencrypted. Request {target} yourself if that is intended.");

        var toGet = (int)status == 303 ? request.Method != HttpMethod.Head
            : (int)status is 301 or 302 && request.Method == HttpMethod.Post;
        var sameOrigin = Uri.Compare(request.Uri, target, UriComponents.SchemeAndServer, UriFormat.Unescaped, StringComparison.OrdinalIgnoreCase) == 0;
        var headers = sameOrigin ? request.Headers
            : request.Headers.Where(h => !h.Key.Equals("Authorization", StringComparison.OrdinalIgnoreCase)
                                      && !h.Key.Equals("Cookie", StringComparison.OrdinalIgnoreCase)).ToList();
        return request with
        {
            Uri = target,
            Method = toGet ? HttpMethod.Get : request.Method,
            Body = toGet ? null : request.Body,
            Content = toGet ? null : request.Content,
            ContentType = toGet ? null : request.ContentType,
            Headers = headers,
        };
    }
}

/// <summary>A redirect that is not followed because following it would be unsafe or impossible.</summary>
public sealed class HttpRedirectException : Exception
{
    public HttpRedirectException(string message) : base(message) { }
}
