using System.Net;
using System.Net.Sockets;

namespace NetStack.Bench;

/// <summary>
/// The kernel's peer, run inside K as its own process (<c>NetStack.Bench peer</c>): plain blocking kernel sockets,
/// one thread per bulk/echo connection so the peer is never what limits the kernel baseline.
/// </summary>
internal static class Peer
{
    public const int SourcePort = 5001;  // sends as fast as it can (we receive)
    public const int SinkPort = 5002;    // reads and discards (we send)
    public const int ClosePort = 5003;   // accepts, waits for the client's FIN, closes
    public const int EchoPort = 5004;    // echoes every byte (request/response)
    public const int HoldPort = 5005;    // accepts and holds idle connections until the client resets them
    public const int LossySinkPort = 5006;   // reads until the client's FIN, then answers with the byte count (8 bytes) and closes
    public const int LossySourcePort = 5007; // reads a byte count (8 bytes), sends that many bytes and closes
    /// <summary>Not served by the peer: the scale figures' listener, created by the harness in K per run and never accepted from.</summary>
    public const int ScaleHoldPort = 5008;
    /// <summary>The kernel's scale figures' listener, made by the harness in U per run and never accepted from (the mirror of 5008).</summary>
    public const int KernelScaleHoldPort = 5009;
    public const int ChunkSize = 128 * 1024;

    public static int Serve()
    {
        var listeners = new[] { SourcePort, SinkPort, ClosePort, EchoPort, HoldPort, LossySinkPort, LossySourcePort }.Select(Listen).ToArray();
        ServeThreads(listeners[0], Source);
        ServeThreads(listeners[1], Sink);
        ServeAsync(listeners[2], WaitForEnd);
        ServeThreads(listeners[3], Echo);
        ServeAsync(listeners[4], WaitForEnd);
        ServeThreads(listeners[5], CountingSink);
        ServeThreads(listeners[6], SizedSource);
        Console.WriteLine("ready");
        Console.Out.Flush();
        // Ends when the harness closes our standard input (or kills us).
        while (Console.In.ReadLine() is not null) { }
        return 0;
    }

    /// <summary>
    /// <c>NetStack.Bench hold SOURCE DEST PORT COUNT FIRSTPORT</c>, run in K: COUNT idle connections from SOURCE, local
    /// ports FIRSTPORT onwards, to DEST:PORT (the kernel's scale figures: U's listener holds them unaccepted), then
    /// "ready"; they are held until the harness closes our standard input (or kills us). One process holds what its
    /// descriptor limit allows, so the harness starts several. The ports are given, not bind(0)'s: its search for a free
    /// port grows with the ports an address already has (a second holder on one address took minutes for a few thousand).
    /// </summary>
    public static int Hold(string[] args)
    {
        var inv = System.Globalization.CultureInfo.InvariantCulture;
        var source = IPAddress.Parse(args[1]);
        var destination = new IPEndPoint(IPAddress.Parse(args[2]), int.Parse(args[3], inv));
        var count = int.Parse(args[4], inv);
        var firstPort = int.Parse(args[5], inv);
        var sockets = new Socket[count];
        var next = -1;
        Exception? failure = null;
        var threads = Enumerable.Range(0, 16).Select(_ => new Thread(() =>
        {
            try
            {
                int i;
                while ((i = Interlocked.Increment(ref next)) < count)
                {
                    var s = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
                    s.Bind(new IPEndPoint(source, firstPort + i));
                    s.Connect(destination);
                    sockets[i] = s;
                }
            }
            catch (Exception e) { failure ??= e; Interlocked.Exchange(ref next, count); }
        })).ToArray();
        foreach (var t in threads) t.Start();
        foreach (var t in threads) t.Join();
        if (failure != null)
        {
            Console.WriteLine($"failed: {failure.GetType().Name}: {failure.Message} ({sockets.Count(s => s != null)} connected)");
            return 1;
        }
        Console.WriteLine("ready");
        Console.Out.Flush();
        while (Console.In.ReadLine() is not null) { }
        GC.KeepAlive(sockets);
        return 0;
    }

    private static Socket Listen(int port)
    {
        var s = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
        s.SetSocketOption(SocketOptionLevel.Socket, SocketOptionName.ReuseAddress, true);
        s.Bind(new IPEndPoint(IPAddress.Any, port));
        s.Listen(16384);
        return s;
    }

    private static void ServeThreads(Socket listener, Action<Socket> handler) =>
        new Thread(() =>
        {
            while (true)
            {
                var c = listener.Accept();
                c.NoDelay = true;
                new Thread(() =>
                {
                    try { handler(c); }
                    catch (SocketException) { }
                    finally { c.Dispose(); }
                }) { IsBackground = true }.Start();
            }
        }) { IsBackground = true, Name = "accept " + ((IPEndPoint)listener.LocalEndPoint!).Port }.Start();

    private static void ServeAsync(Socket listener, Func<Socket, Task> handler) =>
        new Thread(() =>
        {
            while (true)
            {
                var c = listener.Accept();
                _ = Task.Run(async () =>
                {
                    try { await handler(c); }
                    catch (SocketException) { }
                    finally { c.Dispose(); }
                });
            }
        }) { IsBackground = true, Name = "accept " + ((IPEndPoint)listener.LocalEndPoint!).Port }.Start();

    private static void Source(Socket c)
    {
        var data = new byte[ChunkSize];
        new Random(1).NextBytes(data);
        while (true) c.Send(data);
    }

    private static void Sink(Socket c)
    {
        var buffer = new byte[ChunkSize];
        while (c.Receive(buffer) > 0) { }
    }

    private static void Echo(Socket c)
    {
        var buffer = new byte[4096];
        int n;
        while ((n = c.Receive(buffer)) > 0) c.Send(buffer.AsSpan(0, n));
    }

    private static void CountingSink(Socket c)
    {
        var buffer = new byte[ChunkSize];
        long total = 0;
        int n;
        while ((n = c.Receive(buffer)) > 0) total += n;
        BitConverter.TryWriteBytes(buffer, total);
        c.Send(buffer.AsSpan(0, 8));
        c.Shutdown(SocketShutdown.Send);
    }

    private static void SizedSource(Socket c)
    {
        var size = new byte[8];
        for (int got = 0; got < 8;)
        {
            var n = c.Receive(size.AsSpan(got));
            if (n == 0) return;
            got += n;
        }
        var left = BitConverter.ToInt64(size);
        var data = new byte[ChunkSize];
        new Random(3).NextBytes(data);
        while (left > 0) left -= c.Send(data.AsSpan(0, (int)Math.Min(left, data.Length)));
        c.Shutdown(SocketShutdown.Send);
        while (c.Receive(data) > 0) { } // until the client closes
    }

    private static async Task WaitForEnd(Socket c)
    {
        var buffer = new byte[64];
        while (await c.ReceiveAsync(buffer, SocketFlags.None) > 0) { }
    }
}
