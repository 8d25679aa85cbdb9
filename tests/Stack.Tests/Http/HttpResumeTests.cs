using System.Net;
using NetStack.Http;

namespace Stack.Tests.Http;

/// <summary>The resume rule (RFC 9110 14.2, 14.4, 15.3.7, 15.5.17) on its own: what an answer to Range: bytes=N- means.</summary>
public class HttpResumeTests
{
    [Theory]
    [InlineData(206, "bytes 1000-4999/5000", 1000, HttpResumeOutcome.Continued)]
    [InlineData(206, "bytes 0-4999/*", 0, HttpResumeOutcome.Continued)]
    [InlineData(206, "bytes 2000-4999/5000", 1000, HttpResumeOutcome.Mismatch)]   // another range: not a continuation
    [InlineData(206, null, 1000, HttpResumeOutcome.Mismatch)]                     // a 206 without Content-Range cannot be placed
    [InlineData(200, null, 1000, HttpResumeOutcome.Restarted)]                    // Range ignored: the whole file
    [InlineData(416, "bytes */1000", 1000, HttpResumeOutcome.AlreadyComplete)]
    [InlineData(416, "bytes */5000", 1000, HttpResumeOutcome.Mismatch)]           // the file is longer than the server's
    [InlineData(416, null, 1000, HttpResumeOutcome.Mismatch)]
    [InlineData(404, null, 1000, HttpResumeOutcome.NotWritten)]
    [InlineData(500, "bytes */1000", 1000, HttpResumeOutcome.NotWritten)]
    public void Answers_to_a_range_request(int status, string? contentRange, long offset, HttpResumeOutcome expected) =>
        Assert.Equal(expected, HttpResume.Decide((HttpStatusCode)status, contentRange, offset));

    [Theory]
    [InlineData("bytes 0-9/10", 0, 10, true)]
    [InlineData("BYTES 5-9/*", 5, -1, true)]
    [InlineData("bytes */42", -1, 42, true)]
    [InlineData("bytes 9-5/10", 9, 10, false)]
    [InlineData("bytes */*", -1, -1, false)]
    [InlineData("items 0-9/10", -1, -1, false)]
    [InlineData("bytes 0-9", -1, -1, false)]
    public void Content_range_parsing(string value, long first, long complete, bool ok)
    {
        Assert.Equal(ok, HttpResume.TryParse(value, out var f, out var c));
        if (!ok) return;
        Assert.Equal(first, f);
        Assert.Equal(complete, c);
    }

    [Fact]
    public void A_redirect_keeping_the_body_keeps_the_content_maker_and_a_303_drops_it()
    {
        Func<HttpContent> maker = () => new StringContent("x");
        var post = new StackHttpRequest { Uri = new Uri("http://web.test/up"), Method = HttpMethod.Post, Content = maker, ResumeFrom = 7 };
        var kept = HttpRedirect.Next(post, HttpStatusCode.TemporaryRedirect, new Uri("/there", UriKind.Relative))!;
        Assert.Same(maker, kept.Content);
        Assert.Equal(7, kept.ResumeFrom);
        Assert.Null(HttpRedirect.Next(post, HttpStatusCode.SeeOther, new Uri("/there", UriKind.Relative))!.Content);
    }
}
