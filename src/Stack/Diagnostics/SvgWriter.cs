using System.Globalization;
using System.Net;
using System.Text;
using System.Text.Json;

namespace NetStack.Diagnostics;

/// <summary>A few SVG elements written as text with invariant numbers (the ladder and the time-sequence graph use it).</summary>
internal sealed class SvgWriter
{
    private readonly StringBuilder _sb = new();

    public SvgWriter(double width, double height, string title, string style)
    {
        _sb.Append("<svg xmlns=\"http://www.w3.org/2000/svg\" version=\"1.1\" width=\"").Append(N(width)).Append("\" height=\"").Append(N(height))
           .Append("\" viewBox=\"0 0 ").Append(N(width)).Append(' ').Append(N(height))
           .Append("\" font-family=\"DejaVu Sans Mono, Consolas, monospace\" font-size=\"12\">\n");
        _sb.Append("<title>").Append(Esc(title)).Append("</title>\n");
        _sb.Append("<style>").Append(style).Append("</style>\n");
        _sb.Append("<rect x=\"0\" y=\"0\" width=\"").Append(N(width)).Append("\" height=\"").Append(N(height)).Append("\" fill=\"#ffffff\"/>\n");
    }

    public static string N(double v) => Math.Round(v, 2).ToString(CultureInfo.InvariantCulture);
    public static string Esc(string s) => WebUtility.HtmlEncode(s);

    public SvgWriter Raw(string s) { _sb.Append(s); return this; }

    /// <summary>An arrowhead marker filled in <paramref name="colour"/>, referenced as url(#id).</summary>
    public SvgWriter ArrowMarker(string id, string colour) => Raw(
        $"<marker id=\"{id}\" viewBox=\"0 0 10 10\" refX=\"10\" refY=\"5\" markerWidth=\"8\" markerHeight=\"8\" orient=\"auto\" markerUnits=\"userSpaceOnUse\"><path d=\"M0,0 L10,5 L0,10 z\" fill=\"{colour}\"/></marker>\n");

    public SvgWriter Line(double x1, double y1, double x2, double y2, string? cls = null, string? extra = null)
    {
        _sb.Append("<line x1=\"").Append(N(x1)).Append("\" y1=\"").Append(N(y1)).Append("\" x2=\"").Append(N(x2)).Append("\" y2=\"").Append(N(y2)).Append('"');
        if (cls != null) _sb.Append(" class=\"").Append(cls).Append('"');
        if (extra != null) _sb.Append(' ').Append(extra);
        _sb.Append("/>\n");
        return this;
    }

    public SvgWriter Text(double x, double y, string text, string? cls = null, string anchor = "start", string? extra = null)
    {
        _sb.Append("<text x=\"").Append(N(x)).Append("\" y=\"").Append(N(y)).Append('"');
        if (anchor != "start") _sb.Append(" text-anchor=\"").Append(anchor).Append('"');
        if (cls != null) _sb.Append(" class=\"").Append(cls).Append('"');
        if (extra != null) _sb.Append(' ').Append(extra);
        _sb.Append('>').Append(Esc(text)).Append("</text>\n");
        return this;
    }

    public SvgWriter Rect(double x, double y, double w, double h, string? cls = null, string? extra = null)
    {
        _sb.Append("<rect x=\"").Append(N(x)).Append("\" y=\"").Append(N(y)).Append("\" width=\"").Append(N(Math.Max(0, w))).Append("\" height=\"").Append(N(Math.Max(0, h))).Append('"');
        if (cls != null) _sb.Append(" class=\"").Append(cls).Append('"');
        if (extra != null) _sb.Append(' ').Append(extra);
        _sb.Append("/>\n");
        return this;
    }

    public SvgWriter Polyline(IEnumerable<(double X, double Y)> points, string cls)
    {
        _sb.Append("<polyline class=\"").Append(cls).Append("\" fill=\"none\" points=\"");
        foreach (var (x, y) in points) _sb.Append(N(x)).Append(',').Append(N(y)).Append(' ');
        _sb.Append("\"/>\n");
        return this;
    }

    /// <summary>Opens a hoverable group: a class, a data-index into the page's field table, and a tooltip title.</summary>
    public SvgWriter OpenItem(string cls, int index, string tooltip)
    {
        _sb.Append("<g class=\"").Append(cls).Append("\" data-index=\"").Append(index.ToString(CultureInfo.InvariantCulture)).Append("\"><title>")
           .Append(Esc(tooltip)).Append("</title>\n");
        return this;
    }

    public SvgWriter Close() => Raw("</g>\n");

    public override string ToString() => _sb + "</svg>\n";

    /// <summary>A tooltip from decoded fields, one per line.</summary>
    public static string Tooltip(IEnumerable<KeyValuePair<string, string>> fields) => string.Join("\n", fields.Select(f => $"{f.Key}: {f.Value}"));
}

/// <summary>
/// One self-contained HTML page around an SVG picture: no network access needed. Hovering an element with a
/// data-index shows its decoded fields in a side panel. Opened with #selftest, the page hovers every element
/// itself and records the outcome in body[data-selftest] ("ok N" or "error: ..."), which a headless browser's
/// --dump-dom shows: that is how the tests check the script.
/// </summary>
internal static class HtmlPage
{
    public static string Wrap(string title, string svg, IReadOnlyList<IReadOnlyList<KeyValuePair<string, string>>> fields, string note)
    {
        var json = JsonSerializer.Serialize(fields.Select(f => f.Select(kv => new[] { kv.Key, kv.Value }).ToArray()).ToArray())
            .Replace("</", "<\\/", StringComparison.Ordinal);
        var sb = new StringBuilder();
        sb.Append("<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>").Append(SvgWriter.Esc(title)).Append("</title>\n");
        sb.Append("""
<style>
body { font-family: system-ui, sans-serif; margin: 1em; color: #222; }
h1 { font-size: 1.1em; margin: 0 0 .3em 0; }
p.note { margin: 0 0 .8em 0; color: #555; font-size: .9em; }
#wrap { display: flex; align-items: flex-start; gap: 1em; }
#picture { overflow: auto; border: 1px solid #ddd; }
#panel { position: sticky; top: 1em; min-width: 22em; max-width: 30em; font: 12px monospace; border: 1px solid #ccc; padding: .5em; background: #fafafa; }
#panel table { border-collapse: collapse; }
#panel td { padding: 1px 6px; vertical-align: top; }
#panel td:first-child { color: #666; white-space: nowrap; }
g[data-index] { cursor: pointer; }
g.hover line, g.hover rect, g.hover polyline { stroke-width: 3; }
g.hover text { font-weight: bold; }
</style></head><body>

""");
        sb.Append("<h1>").Append(SvgWriter.Esc(title)).Append("</h1>\n<p class=\"note\">").Append(SvgWriter.Esc(note)).Append("</p>\n");
        sb.Append("<div id=\"wrap\"><div id=\"picture\">\n").Append(svg).Append("</div>\n<div id=\"panel\">Hover over a segment to see its decoded fields.</div></div>\n");
        sb.Append("<script type=\"application/json\" id=\"fields\">").Append(json).Append("</script>\n");
        sb.Append("""
<script>
window.addEventListener('error', function (e) { document.body.setAttribute('data-selftest', 'error: ' + e.message); });
(function () {
  var fields = JSON.parse(document.getElementById('fields').textContent);
  var panel = document.getElementById('panel');
  var current = null;
  function show(g) {
    var i = parseInt(g.getAttribute('data-index'), 10);
    var rows = fields[i] || [];
    var table = document.createElement('table');
    rows.forEach(function (kv) {
      var tr = table.insertRow();
      tr.insertCell().textContent = kv[0];
      tr.insertCell().textContent = kv[1];
    });
    panel.replaceChildren(table);
    if (current) current.classList.remove('hover');
    current = g;
    g.classList.add('hover');
    return rows.length;
  }
  var items = Array.prototype.slice.call(document.querySelectorAll('g[data-index]'));
  items.forEach(function (g) { g.addEventListener('mouseover', function () { show(g); }); });
  if (location.hash === '#selftest') {
    try {
      var shown = 0;
      items.forEach(function (g) {
        g.dispatchEvent(new MouseEvent('mouseover', { bubbles: true }));
        if (panel.querySelectorAll('tr').length === 0 || current !== g) throw new Error('no fields shown for item ' + g.getAttribute('data-index'));
        shown++;
      });
      document.body.setAttribute('data-selftest', 'ok ' + shown);
    } catch (e) {
      document.body.setAttribute('data-selftest', 'error: ' + e.message);
    }
  }
})();
</script>
</body></html>

""");
        return sb.ToString();
    }
}
