using System.Buffers.Binary;
using System.IO.Compression;
using NetStack.Tests.Lab;

namespace Stack.Tests.Diagnostics;

/// <summary>The real programs that check our pictures: rsvg-convert (librsvg2-bin) and a headless Chromium.</summary>
public static class Renderers
{
    public static string? RsvgConvert => KernelLab.FindProgram("rsvg-convert");

    public static string? Chromium =>
        new[] { "chromium-headless-shell", "chromium", "chromium-browser", "google-chrome" }.Select(KernelLab.FindProgram).FirstOrDefault(p => p != null);

    /// <summary>Renders <paramref name="svgPath"/> to PNG on white and returns the pixels (RGB, row-major) and the size.</summary>
    public static (byte[] Rgb, int Width, int Height) RenderSvg(string svgPath)
    {
        var png = Path.ChangeExtension(svgPath, ".png");
        var r = LabProcess.Run(RsvgConvert!, ["--background-color=white", "-o", png, svgPath], TimeSpan.FromSeconds(60));
        Assert.True(r.ExitCode == 0, $"rsvg-convert failed: {r.Error}");
        return DecodePng(File.ReadAllBytes(png));
    }

    /// <summary>Loads a page in headless Chromium (#selftest) and returns the body's data-selftest attribute as the script left it.</summary>
    public static string SelfTest(string htmlPath)
    {
        var profile = Directory.CreateTempSubdirectory("netstack-chromium-").FullName;
        try
        {
            var r = LabProcess.Run(Chromium!, ["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", $"--user-data-dir={profile}",
                "--dump-dom", new Uri(htmlPath).AbsoluteUri + "#selftest"], TimeSpan.FromSeconds(120));
            Assert.True(r.ExitCode == 0, $"chromium failed ({r.ExitCode}): {r.Error}");
            var m = System.Text.RegularExpressions.Regex.Match(r.Output, "data-selftest=\"([^\"]*)\"");
            return m.Success ? System.Net.WebUtility.HtmlDecode(m.Groups[1].Value) : "no data-selftest attribute: the script did not run";
        }
        finally { Directory.Delete(profile, recursive: true); }
    }

    /// <summary>A minimal PNG decoder (8-bit RGB or RGBA, not interlaced): what rsvg-convert writes.</summary>
    public static (byte[] Rgb, int Width, int Height) DecodePng(byte[] png)
    {
        int width = 0, height = 0, channels = 0;
        var idat = new MemoryStream();
        for (int i = 8; i + 8 <= png.Length;)
        {
            var len = (int)BinaryPrimitives.ReadUInt32BigEndian(png.AsSpan(i));
            var type = System.Text.Encoding.ASCII.GetString(png, i + 4, 4);
            var data = png.AsSpan(i + 8, len);
            if (type == "IHDR")
            {
                width = (int)BinaryPrimitives.ReadUInt32BigEndian(data);
                height = (int)BinaryPrimitives.ReadUInt32BigEndian(data[4..]);
                Assert.Equal(8, data[8]);
                channels = data[9] switch { 2 => 3, 6 => 4, var c => throw new NotSupportedException($"PNG colour type {c}") };
                Assert.Equal(0, data[12]);
            }
            else if (type == "IDAT") idat.Write(data);
            i += 12 + len;
        }
        idat.Position = 0;
        var raw = new MemoryStream();
        using (var z = new ZLibStream(idat, CompressionMode.Decompress)) z.CopyTo(raw);
        var bytes = raw.ToArray();
        var stride = width * channels;
        var cur = new byte[stride];
        var prev = new byte[stride];
        var rgb = new byte[width * height * 3];
        for (int y = 0; y < height; y++)
        {
            var filter = bytes[y * (stride + 1)];
            Array.Copy(bytes, y * (stride + 1) + 1, cur, 0, stride);
            for (int x = 0; x < stride; x++)
            {
                int a = x >= channels ? cur[x - channels] : 0, b = prev[x], c = x >= channels ? prev[x - channels] : 0;
                cur[x] = (byte)(cur[x] + filter switch
                {
                    0 => 0, 1 => a, 2 => b, 3 => (a + b) / 2,
                    4 => Paeth(a, b, c),
                    _ => throw new InvalidDataException($"PNG filter {filter}"),
                });
            }
            for (int x = 0; x < width; x++)
                for (int k = 0; k < 3; k++) rgb[(y * width + x) * 3 + k] = cur[x * channels + k];
            (prev, cur) = (cur, prev);
        }
        return (rgb, width, height);
    }

    private static int Paeth(int a, int b, int c)
    {
        int p = a + b - c, pa = Math.Abs(p - a), pb = Math.Abs(p - b), pc = Math.Abs(p - c);
        return pa <= pb && pa <= pc ? a : pb <= pc ? b : c;
    }
}

/// <summary>A test that needs a program (rsvg-convert, a headless Chromium): skipped, naming the package, when it is missing.</summary>
public sealed class RendererFactAttribute : FactAttribute
{
    public RendererFactAttribute(string program)
    {
        if (program == "chromium" ? Renderers.Chromium is null : KernelLab.FindProgram(program) is null)
            Skip = program == "chromium"
                ? "no headless Chromium is installed (apt-get install chromium-headless-shell, or chromium): the HTML hover check needs one"
                : $"{program} is not installed (apt-get install librsvg2-bin; build.ps1 -Task Test installs it as root)";
    }
}
