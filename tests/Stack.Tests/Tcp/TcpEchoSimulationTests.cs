using System.Security.Cryptography;
using NetStack;
using NetStack.Link;
using NetStack.Sockets;
using NetStack.Tcp;

namespace Stack.Tests.Tcp;

/// <summary>
/// A client that sends a bulk while it reads the echo back, through a relay that (like socat) reads only when its
/// previous write has been taken: the two directions are coupled, so both windows close and must reopen. This is
/// the situation of the kernel lab's socat echo, in virtual time.
/// </summary>
public class TcpEchoSimulationTests
{
    /// <summary>socat -b 4096: read at most 4 KiB, write it all, only then read again.</summary>
    private sealed class Relay(TcpSocket s)
    {
        private readonly byte[] _buffer = new byte[4096];
        private Task<int>? _recv;
        private Task? _send;
        public bool Ended { get; private set; }

        public bool Pump()
        {
            if (Ended) return false;
            if (_send is { IsCompleted: true } st) { st.GetAwaiter().GetResult(); _send = null; }
            if (_send != null) return false;
            if (_recv is { IsCompleted: true } rt)
            {
                var n = rt.GetAwaiter().GetResult();
                _recv = null;
                if (n == 0) { Ended = true; return true; }
                _send = s.SendAsync(_buffer.AsMemory(0, n).ToArray());
                return true;
            }
            if (_recv != null) return false;
            _recv = s.ReceiveAsync(_buffer).AsTask();
            return true;
        }
    }

    /// <summary>From <paramref name="startAt"/>, takes at most <paramref name="perMillisecond"/> bytes each millisecond of virtual time.</summary>
    private sealed class SlowReader(TcpSocket s, int size, int perMillisecond, TimeSpan startAt)
    {
        private Task<int>? _recv;
        public byte[] Back { get; } = new byte[size];
        public int Got { get; private set; }
        public TimeSpan ReadAt { get; private set; } = startAt;
        public bool WantsTime => _recv is null && Got < size;

        public bool Pump(TimeSpan now)
        {
            if (_recv is { IsCompleted: true } rt)
            {
                Got += rt.GetAwaiter().GetResult();
                _recv = null;
            }
            if (!WantsTime || now < ReadAt) return false;
            ReadAt = now + TimeSpan.FromMilliseconds(1);
            _recv = s.ReceiveAsync(Back.AsMemory(Got, Math.Min(perMillisecond, size - Got))).AsTask();
            return true;
        }
    }

    [Theory]
    [InlineData(1, 1 << 20, 64 * 1024, 2000)] // nobody reads for 2 s: both windows shut, then the reader drains
    [InlineData(2, 1 << 18, 256, 0)]          // readers slower than the sender: the windows dwindle to a few bytes
    [InlineData(3, 1 << 18, 100, 0)]
    [InlineData(4, 1 << 20, 64 * 1024, 0)]    // a reader that keeps up, as in the kernel lab's socat echo
    public void Bulk_echo_through_a_coupled_relay_reopens_both_windows_without_waiting_for_the_persist_timer(int seed, int size, int readPerMillisecond, int pauseMs)
    {
        using var sim = new Simulation(seed, new WireFaults { Delay = TimeSpan.FromMilliseconds(1) });
        // Buffers of fixed sizes (no auto-tuning: the maxima are the sizes), so that the windows do close.
        var ours = sim.AddStack("192.0.2.1/24", c => c with { Tcp = c.Tcp with { ReceiveBufferSize = 64 * 1024, ReceiveBufferMax = 64 * 1024, SendBufferMax = c.Tcp.SendBufferSize } });
        // The relay's end sized like a fresh kernel socket: tcp_wmem[1] = 16 KiB to send, a 64 KiB window.
        var relayEnd = sim.AddStack("192.0.2.2/24", c => c with { Tcp = c.Tcp with { SendBufferSize = 16 * 1024, SendBufferMax = 16 * 1024, ReceiveBufferSize = 64 * 1024, ReceiveBufferMax = 64 * 1024 } });
        var (c, s) = TcpSim.Connect(sim, ours, relayEnd);
        var relay = new Relay(s);
        var data = TcpSim.Data(size, seed);
        var send = c.SendAsync(data);
        var start = sim.Now;
        var pause = TimeSpan.FromMilliseconds(pauseMs);
        var reader = new SlowReader(c, size, readPerMillisecond, start + pause);

        // As TcpSim.Drive, but time also stops at the reader's next millisecond.
        uint ourLeast = uint.MaxValue, relayLeast = uint.MaxValue;
        var end = start + TimeSpan.FromSeconds(30);
        while (sim.Now < end)
        {
            var issued = relay.Pump() | reader.Pump(sim.Now);
            if (reader.Got == size) break;
            var next = sim.Step();
            // The windows each side last offered, between steps.
            relayLeast = Math.Min(relayLeast, c.Tcb.Snd.Wnd);
            ourLeast = Math.Min(ourLeast, s.Tcb.Snd.Wnd);
            if (issued) continue;
            var target = next ?? end;
            if (reader.WantsTime && reader.ReadAt < target) target = reader.ReadAt;
            sim.Clock.Now = target > sim.Now ? target : sim.Now + TimeSpan.FromTicks(1);
        }
        var took = sim.Now - start;
        Assert.True(reader.Got == size, $"echo stalled: {reader.Got} bytes back of {size}, send {send.Status}\n{TcpSim.Dump(sim)}");
        sim.Run(send); // all echoed, so all taken: it must not have failed
        Assert.Equal(SHA256.HashData(data), SHA256.HashData(reader.Back));
        var mss = (uint)c.Tcb.SndMss;
        if (pause > TimeSpan.Zero) Assert.True(ourLeast == 0 && relayLeast == 0, $"the least windows offered were {ourLeast} (ours) and {relayLeast} (the relay's): both should have shut");
        else if (readPerMillisecond < 1024) Assert.True(ourLeast < mss && relayLeast < mss, $"the least windows offered were {ourLeast} (ours) and {relayLeast} (the relay's): the case did not arise");
        // Window updates (RFC 9293 3.8.6.2.2) reopen each direction as soon as its reader makes room; the persist
        // timer (RFC 9293 3.8.6.1, at least 200 ms, backing off) is only the safety net. So the echo takes as long
        // as the reader needs (plus the 1 ms wire), and a single update lost or held back costs 200 ms or more.
        var readerNeeds = pause + TimeSpan.FromMilliseconds((double)size / readPerMillisecond);
        Assert.True(took < readerNeeds + TimeSpan.FromMilliseconds(200), $"took {took} of virtual time, the reader needs {readerNeeds}\n{TcpSim.Dump(sim)}");
    }
}
