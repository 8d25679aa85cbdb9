using System.Net;
using System.Text;
using NetStack.Http;
using NetStack.Services;

namespace Stack.Tests.Services;

/// <summary>
/// The service host's range requests (Services/HttpRange.cs) and StackHttpClient's -Resume and body makers against it:
/// a file continued from its length, a complete file left alone, a server ignoring Range, multipart and streamed bodies.
/// </summary>
public class HttpRangeTests
{
    private static readonly TimeSpan Limit = TimeSpan.FromSeconds(30);

    [Theory]
    [InlineData("bytes=100-", 100, long.MaxValue, true)]
    [InlineData("bytes=100-199", 100, 199, true)]
    [InlineData("bytes=-100", 0, 0, false)]       // a suffix range: answered with the whole body
    [InlineData("bytes=0-1,5-6", 0, 0, false)]   // several ranges: likewise
    [InlineData("bytes=9-5", 0, 0, false)]
    [InlineData("lines=1-", 0, 0, false)]
    public void Range_header_parsing(string value, long first, long last, bool ok)
    {
        Assert.Equal(ok, HttpRange.TryParse(value, out var f, out var l));
        if (!ok) return;
        Assert.Equal(first, f);
        Assert.Equal(last, l);
    }

    private static StackHttpRequest Get(string path, long? from = null) =>
        new() { Uri = new Uri("http://192.0.2.1" + path), ResumeFrom = from, Timeout = Limit };

    [Fact]
    public async Task Resume_continues_a_partial_download_and_leaves_a_complete_one_alone()
    {
        using var lab = new LabRig();
        using var http = new StackHttpClient(lab.Client);
        var whole = ChargenService.Pattern(HttpService.DownloadSize);
        var file = new MemoryStream();
        file.Write(whole, 0, 123_457); // an odd length: the continuation starts mid-line of the pattern

        var r = await http.SendAsync(Get("/download", file.Length), file, cancellationToken: lab.Token).WaitAsync(Limit * 2);
        Assert.Equal(HttpStatusCode.PartialContent, r.StatusCode);
        Assert.Equal(HttpResumeOutcome.Continued, r.Resume);
        Assert.Equal($"bytes 123457-{HttpService.DownloadSize - 1}/{HttpService.DownloadSize}", r.Headers["Content-Range"][0]);
        Assert.Equal(HttpService.DownloadSize - 123_457, r.BodyLength);
        Assert.Equal(whole, file.ToArray());

        var again = await http.SendAsync(Get("/download", file.Length), file, cancellationToken: lab.Token).WaitAsync(Limit * 2);
        Assert.Equal(HttpStatusCode.RequestedRangeNotSatisfiable, again.StatusCode);
        Assert.Equal(HttpResumeOutcome.AlreadyComplete, again.Resume);
        Assert.Equal(whole, file.ToArray());
    }

    [Fact]
    public async Task A_server_ignoring_range_rewrites_the_file_and_an_error_leaves_it()
    {
        using var lab = new LabRig();
        using var http = new StackHttpClient(lab.Client);
        var file = new MemoryStream();
        file.Write(new byte[5000]); // longer than the answer: truncated, not overlaid
        var r = await http.SendAsync(Get("/bytes/3000", file.Length), file, cancellationToken: lab.Token).WaitAsync(Limit * 2);
        Assert.Equal(HttpResumeOutcome.Restarted, r.Resume);
        Assert.Equal(ChargenService.Pattern(3000), file.ToArray());

        var missing = await http.SendAsync(Get("/nothing", file.Length), file, cancellationToken: lab.Token).WaitAsync(Limit * 2);
        Assert.Equal(HttpResumeOutcome.NotWritten, missing.Resume);
        Assert.Equal(ChargenService.Pattern(3000), file.ToArray());
        Assert.StartsWith("No page at /nothing", Encoding.UTF8.GetString(missing.Body!));
    }

    [Fact]
    public async Task Content_makers_send_a_multipart_form_and_a_stream()
    {
        using var lab = new LabRig();
        using var http = new StackHttpClient(lab.Client);
        var form = new StackHttpRequest
        {
            Uri = new Uri("http://192.0.2.1/echo"), Method = HttpMethod.Post, Timeout = Limit,
            Content = () => new MultipartFormDataContent("b0undary") { { new StringContent("holiday"), "title" }, { new ByteArrayContent([1, 2, 3]), "file", "p.bin" } },
        };
        var r = await http.SendAsync(form, cancellationToken: lab.Token).WaitAsync(Limit * 2);
        Assert.Equal("multipart/form-data; boundary=\"b0undary\"", r.ContentType);
        var text = Encoding.Latin1.GetString(r.Body!);
        Assert.Contains("Content-Disposition: form-data; name=title\r\n\r\nholiday\r\n--b0undary", text);
        Assert.Contains("Content-Disposition: form-data; name=file; filename=p.bin; filename*=utf-8''p.bin\r\n\r\n\u0001\u0002\u0003\r\n--b0undary--", text);

        var streamed = await http.SendAsync(form with { Content = () => new StreamContent(new MemoryStream(ChargenService.Pattern(200_000))), ContentType = "application/x-test" },
            cancellationToken: lab.Token).WaitAsync(Limit * 2);
        Assert.Equal("application/x-test", streamed.ContentType);
        Assert.Equal(ChargenService.Pattern(200_000), streamed.Body);
    }
}
