using System.Diagnostics;
using System.Text;
using NetStack.Tcp;
using Xunit.Abstractions;

namespace NetStack.Tests.Lab;

/// <summary>TCP between our stack (192.0.2.2, namespace U) and the Linux kernel's TCP (192.0.2.1, namespace K).</summary>
[Collection(KernelLabCollection.Name)]
public sealed class KernelTcpInteropTests(ITestOutputHelper output)
{
    private static readonly TimeSpan Generous = TimeSpan.FromSeconds(30);

    private static NetworkStack StartStack(KernelLab lab, int? bufferSize = null)
    {
        var config = new StackConfig { Address = KernelLab.StackAddress, PrefixLength = KernelLab.PrefixLength };
        if (bufferSize is { } b) config = config with { Tcp = config.Tcp with { SendBufferSize = b, ReceiveBufferSize = b } };
        var stack = new NetworkStack(lab.OpenStackDevice(), config, name: "lab");
        stack.Start();
        return stack;
    }

    // A kernel TCP echo server for one connection: prints "ready" once listening, echoes until EOF, then closes.
    private const string EchoServer =
        "import socket\n" +
        "l = socket.socket()\n" +
        "l.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)\n" +
        "l.bind(('192.0.2.1', 7100))\n" +
        "l.listen(1)\n" +
        "print('ready', flush=True)\n" +
        "c, peer = l.accept()\n" +
        "print('accepted', peer[0], peer[1], flush=True)\n" +
        "n = 0\n" +
        "while True:\n" +
        "    d = c.recv(65536)\n" +
        "    if not d: break\n" +
        "    c.sendall(d)\n" +
        "    n += len(d)\n" +
        "c.close()\n" +
        "print('echoed', n, flush=True)\n";

    /// <summary>CPU time used so far by the stack's loop thread ("NetStack loop ..."), from /proc (10 ms resolution).</summary>
    internal static TimeSpan LoopThreadCpu()
    {
        foreach (var task in Directory.GetDirectories("/proc/self/task"))
        {
            string comm;
            try { comm = File.ReadAllText(Path.Combine(task, "comm")).Trim(); }
            catch (IOException) { continue; }
            if (!comm.StartsWith("NetStack loop", StringComparison.Ordinal)) continue;
            var stat = File.ReadAllText(Path.Combine(task, "stat"));
            var fields = stat[(stat.LastIndexOf(')') + 2)..].Split(' ');
            return TimeSpan.FromMilliseconds((long.Parse(fields[11]) + long.Parse(fields[12])) * 10); // utime, stime in 1/100 s
        }
        return TimeSpan.Zero;
    }

    private static async Task<byte[]> ReadExactly(TcpSocket socket, int count)
    {
        var data = new byte[count];
        int got = 0;
        while (got < count)
        {
            var n = await socket.ReceiveAsync(data.AsMemory(got)).WaitAsync(Generous);
            if (n == 0) throw new EndOfStreamException($"EOF after {got} of {count} bytes");
            got += n;
        }
        return data;
    }

    [KernelFact(Programs = ["python3"])]
    public async Task OurStackConnectsToTheKernel_EchoesData_AndClosesCleanly()
    {
        using var lab = new KernelLab();
        using var stack = StartStack(lab);
        var server = lab.StartProgramInKernel("python3", "-u", "-c", EchoServer);
        Assert.True(server.WaitForOutput(o => o.Contains("ready"), Generous), server.Error);

        using var socket = await stack.ConnectTcpAsync(KernelLab.KernelAddress, 7100).WaitAsync(Generous);
        Assert.Equal(TcpState.Established, socket.State);
        Assert.True(server.WaitForOutput(o => o.Contains($"accepted {KernelLab.StackAddress}"), Generous));

        var data = new byte[200_000];
        new Random(1).NextBytes(data);
        var send = socket.SendAsync(data);
        var echoed = await ReadExactly(socket, data.Length);
        await send.WaitAsync(Generous);
        Assert.Equal(data, echoed);

        socket.ShutdownSend();
        var buffer = new byte[16];
        Assert.Equal(0, await socket.ReceiveAsync(buffer).WaitAsync(Generous)); // the kernel closed after our FIN
        await socket.CloseAsync().WaitAsync(Generous);
        Assert.True(server.WaitForExit(Generous));
        Assert.Contains($"echoed {data.Length}", server.Output);
        Assert.Equal(0, server.ExitCode);
    }

    [KernelFact(Programs = ["python3"])]
    public async Task TheKernelConnectsToOurListener()
    {
        using var lab = new KernelLab();
        using var stack = StartStack(lab);
        using var listener = await stack.ListenAsync(8080).WaitAsync(Generous);
        var client = lab.StartProgramInKernel("python3", "-u", "-c",
            "import socket\n" +
            "s = socket.create_connection(('192.0.2.2', 8080), timeout=10)\n" +
            "s.sendall(b'hello from the kernel\\n')\n" +
            "s.shutdown(socket.SHUT_WR)\n" +
            "reply = b''\n" +
            "while True:\n" +
            "    d = s.recv(4096)\n" +
            "    if not d: break\n" +
            "    reply += d\n" +
            "print(reply.decode(), end='', flush=True)\n");
        using var conn = await listener.AcceptAsync().WaitAsync(Generous);
        Assert.Equal(KernelLab.KernelAddress, conn.RemoteEndPoint.Address);
        var buffer = new byte[4096];
        var text = new StringBuilder();
        int n;
        while ((n = await conn.ReceiveAsync(buffer).WaitAsync(Generous)) > 0) text.Append(Encoding.ASCII.GetString(buffer, 0, n));
        Assert.Equal("hello from the kernel\n", text.ToString());
        await conn.SendAsync(Encoding.ASCII.GetBytes("hello from the stack\n")).WaitAsync(Generous);
        await conn.CloseAsync().WaitAsync(Generous);
        Assert.True(client.WaitForExit(Generous), client.Error);
        Assert.Equal(0, client.ExitCode);
        Assert.Equal("hello from the stack\n", client.Output);
    }

    [KernelFact(Programs = ["python3"])]
    public async Task ClosedPorts_AreRefused_BothWays()
    {
        using var lab = new KernelLab();
        using var stack = StartStack(lab);
        var e = await Assert.ThrowsAsync<StackException>(() => stack.ConnectTcpAsync(KernelLab.KernelAddress, 7199).WaitAsync(Generous));
        Assert.Equal(StackError.ConnectionRefused, e.Error);

        var r = lab.RunProgramInKernel("python3", ["-c",
            "import socket\n" +
            "try:\n" +
            "    socket.create_connection(('192.0.2.2', 8199), timeout=10)\n" +
            "    print('connected')\n" +
            "except ConnectionRefusedError:\n" +
            "    print('refused')\n"], Generous);
        Assert.Equal("refused", r.Output.Trim());
    }

    /// <summary>Bulk transfer, both directions, against the kernel's TCP: the figure the stack is judged by.</summary>
    [KernelTheory(Programs = ["python3"])]
    [Trait("Category", "Performance")]
    [InlineData(0)]               // the default buffers (256 KiB)
    [InlineData(4 * 1024 * 1024)]
    public async Task BulkTransfer_BothWays(int bufferSize)
    {
        const int Megabytes = 64;
        using var lab = new KernelLab();
        using var stack = StartStack(lab, bufferSize == 0 ? null : bufferSize);
        output.WriteLine($"TCP buffers: {(bufferSize == 0 ? "default" : $"{bufferSize >> 10} KiB")}");

        // Kernel -> us: python3 in K writes Megabytes MiB as fast as it can; our socket reads.
        using var listener = await stack.ListenAsync(8081).WaitAsync(Generous);
        var sender = lab.StartProgramInKernel("python3", "-u", "-c",
            "import socket, time\n" +
            "s = socket.create_connection(('192.0.2.2', 8081), timeout=30)\n" +
            "b = bytes(1 << 20)\n" +
            "t = time.perf_counter()\n" +
            $"for i in range({Megabytes}): s.sendall(b)\n" +
            "s.close()\n" +
            "print(round(time.perf_counter() - t, 4), flush=True)\n");
        using (var conn = await listener.AcceptAsync().WaitAsync(Generous))
        {
            var buffer = new byte[1 << 20];
            long total = 0;
            var cpu0 = LoopThreadCpu();
            var sw = Stopwatch.StartNew();
            int n;
            while ((n = await conn.ReceiveAsync(buffer).WaitAsync(Generous)) > 0) total += n;
            var elapsed = sw.Elapsed;
            Assert.Equal((long)Megabytes << 20, total);
            Assert.True(sender.WaitForExit(Generous));
            var cpu = LoopThreadCpu() - cpu0;
            output.WriteLine($"kernel -> stack: {Megabytes} MiB in {elapsed.TotalMilliseconds:0} ms = {total * 8 / elapsed.TotalSeconds / 1e9:0.00} Gbit/s (LAB.md: kernel 7.9, lwIP 1.9); " +
                             $"loop thread busy {cpu.TotalMilliseconds / elapsed.TotalMilliseconds:P0}");
            await conn.CloseAsync().WaitAsync(Generous);
        }

        // Us -> kernel: python3 in K reads and discards; we write.
        var sink = lab.StartProgramInKernel("python3", "-u", "-c",
            "import socket\n" +
            "l = socket.socket()\n" +
            "l.bind(('192.0.2.1', 7101))\n" +
            "l.listen(1)\n" +
            "print('ready', flush=True)\n" +
            "c, _ = l.accept()\n" +
            "buf = bytearray(1 << 20)\n" +
            "n = 0\n" +
            "while True:\n" +
            "    k = c.recv_into(buf)\n" +
            "    if not k: break\n" +
            "    n += k\n" +
            "print('received', n, flush=True)\n");
        Assert.True(sink.WaitForOutput(o => o.Contains("ready"), Generous), sink.Error);
        using (var socket = await stack.ConnectTcpAsync(KernelLab.KernelAddress, 7101).WaitAsync(Generous))
        {
            var chunk = new byte[1 << 20];
            var cpu0 = LoopThreadCpu();
            var sw = Stopwatch.StartNew();
            for (int i = 0; i < Megabytes; i++) await socket.SendAsync(chunk).WaitAsync(Generous);
            await socket.CloseAsync().WaitAsync(Generous); // completes when the kernel has acknowledged our FIN
            var elapsed = sw.Elapsed;
            Assert.True(sink.WaitForOutput(o => o.Contains("received"), Generous), sink.Error);
            Assert.Contains($"received {(long)Megabytes << 20}", sink.Output);
            var cpu = LoopThreadCpu() - cpu0;
            output.WriteLine($"stack -> kernel: {Megabytes} MiB in {elapsed.TotalMilliseconds:0} ms = {((long)Megabytes << 20) * 8 / elapsed.TotalSeconds / 1e9:0.00} Gbit/s (LAB.md: kernel 7.6, lwIP 2.5); " +
                             $"loop thread busy {cpu.TotalMilliseconds / elapsed.TotalMilliseconds:P0}");
        }
        var stats = await stack.GetStatisticsAsync().WaitAsync(Generous);
        output.WriteLine(string.Join(", ", stats.Where(c => c.Value != 0 && c.Layer is "Tcp" or "Link").Select(c => $"{c.Layer}.{c.Name}={c.Value}")));
    }
}
