using System.Collections;
using System.Management.Automation;
using System.Net.Http.Headers;

namespace NetStack.PowerShell;

/// <summary>
/// Invoke-StackWebRequest -Form: a hashtable as multipart/form-data (RFC 7578) by .NET's MultipartFormDataContent, as
/// Invoke-WebRequest -Form does: a FileInfo (Get-Item) value is a file part with its name, an array or list gives one
/// field per element, anything else is a text field.
/// </summary>
internal static class WebForm
{
    private abstract record Field(string Name);
    private sealed record TextField(string Name, string Value) : Field(Name);
    private sealed record FileField(string Name, FileInfo File) : Field(Name);

    /// <summary>Checks the fields now (a missing file is the caller's error) and returns a maker of the body for each send.</summary>
    public static Func<HttpContent> Build(PSCmdlet cmdlet, IDictionary form)
    {
        var fields = new List<Field>();
        foreach (DictionaryEntry e in form)
        {
            var name = e.Key?.ToString() ?? "";
            var value = Unwrap(e.Value);
            if (value is IEnumerable list and not string)
                foreach (var item in list) fields.Add(FieldOf(cmdlet, name, Unwrap(item)));
            else fields.Add(FieldOf(cmdlet, name, value));
        }
        return () =>
        {
            var content = new MultipartFormDataContent();
            foreach (var f in fields)
            {
                switch (f)
                {
                    case TextField t:
                        content.Add(new StringContent(t.Value), t.Name);
                        break;
                    case FileField file:
                        var part = FileContent(file.File.FullName);
                        part.Headers.ContentType = new MediaTypeHeaderValue("application/octet-stream");
                        content.Add(part, file.Name, file.File.Name);
                        break;
                }
            }
            return content;
        };
    }

    /// <summary>A file streamed from the disk as a body or a part (-InFile, a -Form file).</summary>
    public static StreamContent FileContent(string path) =>
        new(new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.Read, 1 << 16, useAsync: true), 1 << 16);

    private static object? Unwrap(object? value) => value is PSObject p ? p.BaseObject : value;

    private static Field FieldOf(PSCmdlet cmdlet, string name, object? value)
    {
        if (value is not FileInfo file) return new TextField(name, value?.ToString() ?? "");
        if (!file.Exists)
            cmdlet.ThrowTerminatingError(new ErrorRecord(new FileNotFoundException($"-Form field '{name}': there is no file '{file.FullName}'; give an existing file (Get-Item <path>).", file.FullName),
                "FormFileNotFound", ErrorCategory.ObjectNotFound, file));
        return new FileField(name, file);
    }
}
