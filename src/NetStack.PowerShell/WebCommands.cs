using System.Collections;
using System.Management.Automation;
using System.Net;
using System.Security.Authentication;
using System.Text;
using NetStack.Http;

namespace NetStack.PowerShell;

/// <summary>The methods Invoke-StackWebRequest sends.</summary>
public enum StackWebRequestMethod { Get, Head, Post, Put, Delete, Patch, Options }

/// <summary>
/// Invoke-StackWebRequest: an HTTP/1.1 or HTTPS request over the stack, by .NET's HttpClient on the stack's TCP
/// (NetStack.Http.StackHttpClient). The result is shaped like Invoke-WebRequest's and also shows the connection used
/// and where the time went. Like Invoke-WebRequest, a status other than 2xx is a terminating error with the response
/// attached ($_.Exception.Response), unless -SkipHttpErrorCheck.
/// </summary>
[Cmdlet(VerbsLifecycle.Invoke, "StackWebRequest")]
[OutputType(typeof(StackWebResponse))]
public sealed class InvokeStackWebRequestCommand : StackScopedCmdlet
{
    private const long ProgressAfterBytes = 1024 * 1024;
    private long _received;
    private long _total = -1;

    /// <summary>http:// or https:// and a host name or IPv4 address; without a scheme, http:// is assumed.</summary>
    [Parameter(Mandatory = true, Position = 0, ValueFromPipeline = true, ValueFromPipelineByPropertyName = true)]
    [ValidateNotNullOrEmpty]
    public string Uri { get; set; } = "";

    [Parameter]
    public StackWebRequestMethod Method { get; set; } = StackWebRequestMethod.Get;

    [Parameter]
    public IDictionary? Headers { get; set; }

    /// <summary>A string (encoded by -ContentType's charset, UTF-8 if none), bytes, or a hashtable (form fields; a GET's query).</summary>
    [Parameter]
    public object? Body { get; set; }

    [Parameter]
    [ValidateNotNullOrEmpty]
    public string? ContentType { get; set; }

    /// <summary>Write the body to this file instead of the result (large downloads stream to it).</summary>
    [Parameter]
    [ValidateNotNullOrEmpty]
    public string? OutFile { get; set; }

    /// <summary>Send this file as the body, streamed from the disk (not read into memory first).</summary>
    [Parameter]
    [ValidateNotNullOrEmpty]
    public string? InFile { get; set; }

    /// <summary>multipart/form-data fields: a FileInfo (Get-Item) value is a file part, an array several fields of one name.</summary>
    [Parameter]
    [ValidateNotNull]
    public IDictionary? Form { get; set; }

    /// <summary>With -OutFile: continue a partial file with a Range request (the whole file again if the server ignores Range).</summary>
    [Parameter]
    public SwitchParameter Resume { get; set; }

    /// <summary>With -OutFile, output the result too.</summary>
    [Parameter]
    public SwitchParameter PassThru { get; set; }

    [Parameter]
    [ValidateRange(0, 100)]
    public int MaximumRedirection { get; set; } = 5;

    [Parameter]
    [ValidateRange(1, 86400)]
    public int TimeoutSec { get; set; } = 100;

    [Parameter]
    public SwitchParameter SkipCertificateCheck { get; set; }

    [Parameter]
    public SwitchParameter SkipHttpErrorCheck { get; set; }

    /// <summary>Save the session (kept-alive connections, cookies) in this variable for later -WebSession use.</summary>
    [Parameter]
    [ValidateNotNullOrEmpty]
    public string? SessionVariable { get; set; }

    [Parameter]
    public StackWebSession? WebSession { get; set; }

    protected override StackInstance? ImpliedStack() => WebSession?.StackInstance;

    protected override void ProcessStack(StackInstance stack)
    {
        if (WebSession != null && SessionVariable != null)
            ThrowTerminatingError(new ErrorRecord(new ArgumentException("Give -WebSession or -SessionVariable, not both."), "SessionConflict", ErrorCategory.InvalidArgument, null));
        if (WebSession != null && !ReferenceEquals(WebSession.StackInstance, stack))
            ThrowTerminatingError(new ErrorRecord(new ArgumentException($"The -WebSession is on stack '{WebSession.Stack}', not '{stack.Name}'. Leave out -Stack, or make a session on '{stack.Name}' with -SessionVariable."),
                "SessionStackMismatch", ErrorCategory.InvalidArgument, WebSession));
        if (PassThru && OutFile is null)
            ThrowTerminatingError(new ErrorRecord(new ArgumentException("-PassThru goes with -OutFile: without -OutFile the result is output anyway."), "PassThruWithoutOutFile", ErrorCategory.InvalidArgument, null));

        if (Resume && OutFile is null)
            ThrowTerminatingError(new ErrorRecord(new ArgumentException("-Resume continues a file: give the file with -OutFile."), "ResumeWithoutOutFile", ErrorCategory.InvalidArgument, null));

        var request = BuildRequest();
        if (DnsResolution.NoDnsServer(stack, request.Uri.IdnHost) is { } noDns) ThrowTerminatingError(noDns);

        var session = WebSession;
        if (SessionVariable != null)
        {
            session = new StackWebSession(stack);
            SessionState.PSVariable.Set(SessionVariable, session);
        }
        var client = session?.Client ?? new StackHttpClient(stack.Core);
        var download = OutFile is null ? null : new Download(GetUnresolvedProviderPathFromPSPath(OutFile), Resume);
        if (download?.ResumeFrom > 0) request = request with { ResumeFrom = download.ResumeFrom };
        StackHttpResponse? response = null;
        try
        {
            response = Send(stack, client, request, download);
        }
        finally
        {
            download?.Dispose();
            if (response is null) download?.KeepPartial(); // a failed request leaves no empty file behind
            if (session is null) client.Dispose(); // a call of its own closes its connections
        }

        var result = new StackWebResponse(response, download?.Path, stack.Name);
        if (response.Resume is { } resumed) WriteVerbose(ResumeText(resumed, download!));
        if (response.Resume == HttpResumeOutcome.Mismatch)
            ThrowTerminatingError(new ErrorRecord(new InvalidOperationException($"{result.Uri} answered {result.StatusCode} with Content-Range '{ContentRange(result)}', " +
                    $"which does not continue {download!.Path} ({download.ResumeFrom:N0} bytes); it is left as it was. Download it again without -Resume."),
                "ResumeMismatch", ErrorCategory.InvalidResult, result.Uri));
        WriteVerbose($"{result.Method} {result.Uri}: {result.StatusCode} {result.StatusDescription}, {result.RawContentLength:N0} bytes over {result.Connection}; {result.Timing}");
        if (!response.IsSuccessStatusCode && !SkipHttpErrorCheck && !response.RedirectLimitReached && response.Resume != HttpResumeOutcome.AlreadyComplete)
        {
            download?.Discard();
            ThrowTerminatingError(StatusError(result));
        }
        download?.Keep();
        if (download is null || PassThru) WriteObject(result);
        if (response.RedirectLimitReached)
            WriteError(new ErrorRecord(new InvalidOperationException($"{result.Uri} redirects to {string.Join(", ", result.Headers.GetValueOrDefault("Location") ?? [])}, " +
                    $"but the maximum of {MaximumRedirection} redirections was reached; raise -MaximumRedirection to follow it."),
                "MaximumRedirectExceeded", ErrorCategory.InvalidOperation, result.Uri));
    }

    private StackHttpResponse Send(StackInstance stack, StackHttpClient client, StackHttpRequest request, Download? download)
    {
        var target = request.Uri.ToString();
        try
        {
            var task = client.SendAsync(request, download?.Stream, (got, total) =>
            {
                Volatile.Write(ref _total, total ?? -1);
                Volatile.Write(ref _received, got);
            }, StopToken);
            // On Ctrl+C the wait ends at once; the request is cancelled through StopToken, which closes its connection.
            task.ContinueWith(static t => _ = t.Exception, TaskContinuationOptions.OnlyOnFaulted);
            return Await(stack, () => task, () => Progress(target));
        }
        catch (OperationCanceledException) when (StopToken.IsCancellationRequested) { throw new PipelineStoppedException(); }
        catch (TimeoutException e)
        {
            var kept = download?.KeepPartial();
            ThrowTerminatingError(new ErrorRecord(new TimeoutException(e.Message + (kept != null ? $" The bytes received are in {kept}." : ""), e),
                "TimedOut", ErrorCategory.OperationTimeout, target));
        }
        catch (HttpRequestException e)
        {
            ThrowTerminatingError(RequestError(e, request));
        }
        catch (HttpRedirectException e)
        {
            ThrowTerminatingError(new ErrorRecord(e, "InsecureRedirect", ErrorCategory.SecurityError, target));
        }
        catch (Exception e) when (e is ArgumentException or StackException or ObjectDisposedException or IOException)
        {
            ThrowTerminatingError(ErrorFor(e, target));
        }
        throw new InvalidOperationException("not reached");
    }

    private static string? ContentRange(StackWebResponse r) => r.Headers.GetValueOrDefault("Content-Range") is { Length: > 0 } v ? v[0] : null;

    private static string ResumeText(HttpResumeOutcome outcome, Download d) => outcome switch
    {
        HttpResumeOutcome.Continued => $"-Resume: {d.Path} continued from byte {d.ResumeFrom:N0}.",
        HttpResumeOutcome.Restarted => $"-Resume: the server ignored the range; {d.Path} was written again from the start.",
        HttpResumeOutcome.AlreadyComplete => $"-Resume: {d.Path} is already complete ({d.ResumeFrom:N0} bytes); nothing to download.",
        _ => $"-Resume: {d.Path} was left as it was.",
    };

    private ProgressRecord? Progress(string target)
    {
        var got = Volatile.Read(ref _received);
        if (got < ProgressAfterBytes) return null;
        var total = Volatile.Read(ref _total);
        return new ProgressRecord(4, "Invoke-StackWebRequest", total > 0 ? $"{target}: {got:N0} of {total:N0} bytes" : $"{target}: {got:N0} bytes")
        { PercentComplete = total > 0 ? (int)Math.Min(100, got * 100 / total) : -1 };
    }

    private StackHttpRequest BuildRequest()
    {
        var text = Uri.Trim();
        if (!text.Contains("://", StringComparison.Ordinal)) text = "http://" + text; // as Invoke-WebRequest does
        if (!System.Uri.TryCreate(text, UriKind.Absolute, out var uri) || (uri.Scheme != "http" && uri.Scheme != "https"))
            ThrowTerminatingError(new ErrorRecord(new ArgumentException($"'{Uri}' is not an http or https address; write one like http://192.0.2.1:8080/ or https://web.lab/."),
                "InvalidUri", ErrorCategory.InvalidArgument, Uri));
        var method = new HttpMethod(Method.ToString().ToUpperInvariant());
        var headers = new List<KeyValuePair<string, string>>();
        string? contentType = ContentType;
        if (Headers != null)
            foreach (DictionaryEntry h in Headers)
            {
                var name = h.Key.ToString()!;
                var value = (h.Value is PSObject p ? p.BaseObject : h.Value)?.ToString() ?? "";
                if (name.Equals("Content-Type", StringComparison.OrdinalIgnoreCase)) contentType ??= value;
                else headers.Add(new(name, value));
            }
        byte[]? body = null;
        Func<HttpContent>? content = null;
        var value0 = Body is PSObject pb ? pb.BaseObject : Body;
        if (Form != null || InFile != null)
        {
            var (first, second) = Form != null && InFile != null ? ("-Form", "-InFile") : (Form != null ? "-Form" : "-InFile", value0 != null ? "-Body" : null);
            if (second != null)
                ThrowTerminatingError(new ErrorRecord(new ArgumentException($"{first} and {second} both give the request body; give one of them."), "BodyConflict", ErrorCategory.InvalidArgument, null));
            if (Method is StackWebRequestMethod.Get or StackWebRequestMethod.Head)
                ThrowTerminatingError(new ErrorRecord(new ArgumentException($"A {Method.ToString().ToUpperInvariant()} request carries no body; give -Method Post or Put with {first}."),
                    "BodyNotAllowed", ErrorCategory.InvalidArgument, null));
            content = Form != null ? WebForm.Build(this, Form) : FileBody(GetUnresolvedProviderPathFromPSPath(InFile));
            if (InFile != null) contentType ??= "application/octet-stream";
        }
        if (value0 is IDictionary form)
        {
            var encoded = string.Join("&", form.Cast<DictionaryEntry>().Select(e =>
                $"{WebUtility.UrlEncode(e.Key.ToString())}={WebUtility.UrlEncode((e.Value is PSObject p ? p.BaseObject : e.Value)?.ToString() ?? "")}"));
            if (Method is StackWebRequestMethod.Get or StackWebRequestMethod.Head)
                uri = new UriBuilder(uri!) { Query = uri!.Query.Length > 1 ? uri.Query[1..] + "&" + encoded : encoded }.Uri;
            else
            {
                body = Encoding.ASCII.GetBytes(encoded);
                contentType ??= "application/x-www-form-urlencoded";
            }
        }
        else if (value0 != null)
        {
            if (Method is StackWebRequestMethod.Get or StackWebRequestMethod.Head)
                ThrowTerminatingError(new ErrorRecord(new ArgumentException($"A {Method.ToString().ToUpperInvariant()} request carries no body; give -Method Post or Put, or a hashtable -Body for query fields."),
                    "BodyNotAllowed", ErrorCategory.InvalidArgument, Body));
            (body, var defaultType) = value0 switch
            {
                byte[] b => (b, "application/octet-stream"),
                string s => (WebContent.EncodingOf(contentType).GetBytes(s), "text/plain; charset=utf-8"),
                _ => (WebContent.EncodingOf(contentType).GetBytes(value0.ToString() ?? ""), "text/plain; charset=utf-8"),
            };
            contentType ??= defaultType;
        }
        return new StackHttpRequest
        {
            Uri = uri!, Method = method, Headers = headers, Body = body, Content = content,
            ContentType = body is null && InFile is null ? null : contentType, // a form's own type carries its boundary
            MaximumRedirection = MaximumRedirection, Timeout = TimeSpan.FromSeconds(TimeoutSec), SkipCertificateCheck = SkipCertificateCheck,
        };
    }

    /// <summary>-InFile: the file streamed as the body, opened afresh for each send (a 307 sends it again).</summary>
    private Func<HttpContent> FileBody(string path)
    {
        if (!File.Exists(path))
            ThrowTerminatingError(new ErrorRecord(new FileNotFoundException($"-InFile: there is no file '{path}'; give the path of an existing file.", path),
                "InFileNotFound", ErrorCategory.ObjectNotFound, path));
        return () => WebForm.FileContent(path);
    }

    /// <summary>A status other than 2xx: Invoke-WebRequest's terminating error, the response in Exception.Response and a text body in ErrorDetails.</summary>
    private static ErrorRecord StatusError(StackWebResponse result)
    {
        var e = new StackWebResponseException($"Response status code does not indicate success: {result.StatusCode} ({result.StatusDescription}).", result);
        var error = new ErrorRecord(e, "HttpStatusError", ErrorCategory.InvalidOperation, result.Uri);
        if (result.Content is string { Length: > 0 } text) error.ErrorDetails = new ErrorDetails(text.Length > 4096 ? text[..4096] + "..." : text);
        return error;
    }

    private static ErrorRecord RequestError(HttpRequestException e, StackHttpRequest request)
    {
        var target = request.Uri.ToString();
        for (Exception? inner = e; inner != null; inner = inner.InnerException)
        {
            switch (inner)
            {
                case StackException se:
                    return ErrorFor(new StackException(se.Error, $"{request.Method} {target}: {se.Message}", se), se.Error == StackError.NameNotFound ? request.Uri.IdnHost : target);
                case AuthenticationException ae:
                    return new ErrorRecord(new AuthenticationException($"{target}: the TLS handshake failed: {ae.Message} " +
                        "If the server's certificate is self-signed or for another name (a lab), -SkipCertificateCheck accepts it.", ae), "TlsHandshakeFailed", ErrorCategory.SecurityError, target);
                case OperationCanceledException:
                    return new ErrorRecord(new TimeoutException($"{target}: no connection within the handler's connect limit.", e), "TimedOut", ErrorCategory.OperationTimeout, target);
            }
        }
        return new ErrorRecord(new HttpRequestException($"{request.Method} {target}: {e.Message}{(e.InnerException is { } i ? " " + i.Message : "")}", e),
            "HttpRequestFailed", ErrorCategory.ConnectionError, target);
    }

    /// <summary>-OutFile: the body streams into a partial file beside the target, renamed to it once the answer is a success.</summary>
    /// <remarks>With -Resume the target itself is written (continued, or rewritten if the server ignores Range) and never deleted.</remarks>
    private sealed class Download : IDisposable
    {
        public Download(string path, bool resume)
        {
            Path = path;
            Partial = resume ? path : path + ".partial";
            Resuming = resume;
            Stream = new FileStream(Partial, resume ? FileMode.OpenOrCreate : FileMode.Create, FileAccess.ReadWrite, FileShare.Read, 1 << 16, useAsync: true);
            ResumeFrom = resume ? Stream.Length : 0;
        }

        public string Path { get; }
        public string Partial { get; }
        public bool Resuming { get; }
        public long ResumeFrom { get; }
        public FileStream Stream { get; }

        public void Dispose() => Stream.Dispose();
        public void Keep() { if (!Resuming) File.Move(Partial, Path, overwrite: true); }
        public void Discard() { if (!Resuming) File.Delete(Partial); }

        /// <summary>After a timeout: the partial file stays, for the user to look at or resume from; null if it is empty.</summary>
        public string? KeepPartial()
        {
            Stream.Dispose();
            if (new FileInfo(Partial).Length > 0) return Partial;
            File.Delete(Partial); // empty: nothing to keep (also with -Resume, where it was empty or new)
            return null;
        }
    }
}

/// <summary>The error of a non-success status; <see cref="Response"/> is the whole result, as with Invoke-WebRequest.</summary>
public sealed class StackWebResponseException : Exception
{
    public StackWebResponseException(string message, StackWebResponse response) : base(message) => Response = response;
    public StackWebResponse Response { get; }
}
