using System.Net;
using NetStack.Http;

namespace Stack.Tests.Http;

/// <summary>The redirect rule (RFC 9110 15.4) on its own: method, body, target and headers of the next request.</summary>
public class HttpRedirectTests
{
    private static readonly byte[] Body = "a=1"u8.ToArray();

    private static StackHttpRequest Post(string uri = "http://web.test/form") => new()
    {
        Uri = new Uri(uri), Method = HttpMethod.Post, Body = Body, ContentType = "application/x-www-form-urlencoded",
        Headers = [new("Authorization", "Bearer x"), new("Cookie", "c=1"), new("X-Trace", "7")],
    };

    [Theory]
    [InlineData(301)]
    [InlineData(302)]
    [InlineData(303)]
    public void Post_becomes_a_get_without_its_body(int status)
    {
        var next = HttpRedirect.Next(Post(), (HttpStatusCode)status, new Uri("/done", UriKind.Relative))!;
        Assert.Equal(HttpMethod.Get, next.Method);
        Assert.Null(next.Body);
        Assert.Null(next.ContentType);
        Assert.Equal(new Uri("http://web.test/done"), next.Uri);
    }

    [Theory]
    [InlineData(307)]
    [InlineData(308)]
    public void Temporary_and_permanent_redirects_keep_method_and_body(int status)
    {
        var next = HttpRedirect.Next(Post(), (HttpStatusCode)status, new Uri("http://web.test/other"))!;
        Assert.Equal(HttpMethod.Post, next.Method);
        Assert.Same(Body, next.Body);
        Assert.Equal("application/x-www-form-urlencoded", next.ContentType);
    }

    [Fact]
    public void See_other_keeps_head_and_turns_put_into_get()
    {
        var head = new StackHttpRequest { Uri = new Uri("http://web.test/a"), Method = HttpMethod.Head };
        Assert.Equal(HttpMethod.Head, HttpRedirect.Next(head, HttpStatusCode.SeeOther, new Uri("/b", UriKind.Relative))!.Method);
        var put = head with { Method = HttpMethod.Put, Body = Body };
        Assert.Equal(HttpMethod.Get, HttpRedirect.Next(put, HttpStatusCode.SeeOther, new Uri("/b", UriKind.Relative))!.Method);
        // 302 changes only POST: a PUT stays a PUT with its body.
        var kept = HttpRedirect.Next(put, HttpStatusCode.Found, new Uri("/b", UriKind.Relative))!;
        Assert.Equal(HttpMethod.Put, kept.Method);
        Assert.Same(Body, kept.Body);
    }

    [Fact]
    public void Relative_location_resolves_against_the_request_and_inherits_its_fragment()
    {
        var r = new StackHttpRequest { Uri = new Uri("http://web.test:8080/dir/page?q=1#part") };
        Assert.Equal("http://web.test:8080/dir/next#part", HttpRedirect.Next(r, HttpStatusCode.Found, new Uri("next", UriKind.Relative))!.Uri.ToString());
        Assert.Equal("http://web.test:8080/top#other", HttpRedirect.Next(r, HttpStatusCode.Found, new Uri("/top#other", UriKind.Relative))!.Uri.ToString());
    }

    [Fact]
    public void Credentials_stay_with_their_origin()
    {
        var same = HttpRedirect.Next(Post(), HttpStatusCode.TemporaryRedirect, new Uri("http://WEB.test/again"))!;
        Assert.Contains(same.Headers, h => h.Key == "Authorization");
        var other = HttpRedirect.Next(Post(), HttpStatusCode.TemporaryRedirect, new Uri("http://elsewhere.test/"))!;
        Assert.DoesNotContain(other.Headers, h => h.Key is "Authorization" or "Cookie");
        Assert.Contains(other.Headers, h => h.Key == "X-Trace");
        var otherPort = HttpRedirect.Next(Post(), HttpStatusCode.TemporaryRedirect, new Uri("http://web.test:81/"))!;
        Assert.DoesNotContain(otherPort.Headers, h => h.Key == "Authorization");
    }

    [Theory]
    [InlineData(200)]
    [InlineData(300)]
    [InlineData(304)]
    [InlineData(404)]
    public void Other_statuses_do_not_redirect(int status) =>
        Assert.Null(HttpRedirect.Next(Post(), (HttpStatusCode)status, new Uri("http://web.test/x")));

    [Fact]
    public void A_redirect_without_location_is_the_answer() => Assert.Null(HttpRedirect.Next(Post(), HttpStatusCode.Found, null));

    [Fact]
    public void Https_to_http_and_other_schemes_are_refused()
    {
        var secure = new StackHttpRequest { Uri = new Uri("https://web.test/") };
        var e = Assert.Throws<HttpRedirectException>(() => HttpRedirect.Next(secure, HttpStatusCode.Found, new Uri("http://web.test/")));
        Assert.Contains("unencrypted", e.Message);
        Assert.Throws<HttpRedirectException>(() => HttpRedirect.Next(secure, HttpStatusCode.Found, new Uri("ftp://web.test/")));
        Assert.Equal("https://web.test/x", HttpRedirect.Next(new StackHttpRequest { Uri = new Uri("http://web.test/") }, HttpStatusCode.Found, new Uri("https://web.test/x"))!.Uri.ToString());
    }
}
