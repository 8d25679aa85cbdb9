using System.Diagnostics;
using System.Text;

namespace NetStack.Tests.Lab;

/// <summary>What a finished lab command printed.</summary>
public sealed record LabResult(string Command, int ExitCode, string Output, string Error)
{
    public LabResult EnsureSuccess() => ExitCode == 0 ? this
        : throw new InvalidOperationException($"'{Command}' exited with {ExitCode}: {Error.Trim()} {Output.Trim()}");
}

/// <summary>
/// A program the lab started (socat, ping, dnsmasq...): output is collected as it comes, waits are bounded,
/// and Dispose kills it (with its children) if it is still running.
/// </summary>
public sealed class LabProcess : IDisposable
{
    private readonly Process _process;
    private readonly StringBuilder _out = new();
    private readonly StringBuilder _err = new();
    private readonly object _gate = new();
    private int _openStreams = 2;

    private LabProcess(Process process, string command)
    {
        _process = process;
        Command = command;
    }

    public string Command { get; }
    public int Id => _process.Id;
    public bool HasExited => _process.HasExited;
    public int ExitCode => _process.ExitCode;

    public string Output { get { lock (_gate) return _out.ToString(); } }
    public string Error { get { lock (_gate) return _err.ToString(); } }

    public static LabProcess Start(string file, IEnumerable<string> arguments, string? display = null)
    {
        var psi = new ProcessStartInfo(file)
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            RedirectStandardInput = true,
            UseShellExecute = false,
        };
        foreach (var a in arguments) psi.ArgumentList.Add(a);
        var command = display ?? file + " " + string.Join(' ', psi.ArgumentList);
        var process = new Process { StartInfo = psi, EnableRaisingEvents = true };
        var lab = new LabProcess(process, command);
        process.OutputDataReceived += (_, e) => lab.Append(lab._out, e.Data);
        process.ErrorDataReceived += (_, e) => lab.Append(lab._err, e.Data);
        process.Start();
        process.BeginOutputReadLine();
        process.BeginErrorReadLine();
        return lab;
    }

    private void Append(StringBuilder to, string? line)
    {
        lock (_gate)
        {
            if (line is null) _openStreams--;
            else to.Append(line).Append('\n');
            Monitor.PulseAll(_gate);
        }
    }

    /// <summary>Writes a line to the program's standard input.</summary>
    public void WriteLine(string line)
    {
        _process.StandardInput.WriteLine(line);
        _process.StandardInput.Flush();
    }

    public void CloseInput() => _process.StandardInput.Close();

    /// <summary>Waits until the collected standard output satisfies <paramref name="condition"/>; false on timeout or exit.</summary>
    public bool WaitForOutput(Func<string, bool> condition, TimeSpan timeout)
    {
        var deadline = DateTime.UtcNow + timeout;
        lock (_gate)
        {
            while (true)
            {
                if (condition(_out.ToString())) return true;
                if (_openStreams == 0) return false;
                var left = deadline - DateTime.UtcNow;
                if (left <= TimeSpan.Zero) return false;
                Monitor.Wait(_gate, left);
            }
        }
    }

    /// <summary>Like <see cref="WaitForOutput"/>, over standard output and standard error together (daemons log to stderr).</summary>
    public bool WaitForAnyOutput(Func<string, bool> condition, TimeSpan timeout)
    {
        var deadline = DateTime.UtcNow + timeout;
        lock (_gate)
        {
            while (true)
            {
                if (condition(_out.ToString() + _err.ToString())) return true;
                if (_openStreams == 0) return false;
                var left = deadline - DateTime.UtcNow;
                if (left <= TimeSpan.Zero) return false;
                Monitor.Wait(_gate, left);
            }
        }
    }

    /// <summary>Waits for the program to exit and for its output to be read; false on timeout.</summary>
    public bool WaitForExit(TimeSpan timeout)
    {
        if (!_process.WaitForExit(timeout)) return false;
        _process.WaitForExit(); // drains the asynchronous output readers
        return true;
    }

    public void Kill()
    {
        try
        {
            if (!_process.HasExited) _process.Kill(entireProcessTree: true);
        }
        catch (InvalidOperationException) { }
        _process.WaitForExit(5000);
    }

    public void Dispose()
    {
        Kill();
        _process.Dispose();
    }

    /// <summary>Runs a program to completion with a bounded wait (killed if it takes longer).</summary>
    public static LabResult Run(string file, IEnumerable<string> arguments, TimeSpan? timeout = null, string? display = null)
    {
        using var p = Start(file, arguments, display);
        p.CloseInput();
        var limit = timeout ?? TimeSpan.FromSeconds(30);
        if (!p.WaitForExit(limit))
        {
            p.Kill();
            throw new TimeoutException($"'{p.Command}' did not finish within {limit.TotalSeconds:0.#} s. Output: {p.Output} {p.Error}");
        }
        return new LabResult(p.Command, p.ExitCode, p.Output, p.Error);
    }
}
