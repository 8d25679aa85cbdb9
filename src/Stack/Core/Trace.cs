using System.Runtime.CompilerServices;

namespace NetStack;

/// <summary>A protocol event narrated by the stack (what -Verbose shows): "SYN sent, ISN 12345".</summary>
public sealed record StackEvent(TimeSpan Time, string Layer, string Message);

/// <summary>
/// Builds a trace message only when someone listens: with no subscriber the interpolation holes are
/// never formatted, so tracing costs one branch on the per-packet path.
/// </summary>
[InterpolatedStringHandler]
internal ref struct TraceMessageHandler
{
    private DefaultInterpolatedStringHandler _inner;

    public TraceMessageHandler(int literalLength, int formattedCount, LayerContext context, out bool enabled)
    {
        enabled = context.TraceEnabled;
        _inner = enabled ? new DefaultInterpolatedStringHandler(literalLength, formattedCount) : default;
    }

    public void AppendLiteral(string s) => _inner.AppendLiteral(s);
    public void AppendFormatted<T>(T value) => _inner.AppendFormatted(value);
    public void AppendFormatted<T>(T value, string? format) => _inner.AppendFormatted(value, format);
    public string ToStringAndClear() => _inner.ToStringAndClear();
}
