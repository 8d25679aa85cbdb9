using System.Text.RegularExpressions;

namespace NetStack.Tests.Lab;

/// <summary>
/// A paced flood from a Python raw socket in K (issue 14's fragment and SYN floods). argv: RATE SECONDS, then the
/// flood's own. The script sends RATE datagrams per second to 192.0.2.2 for SECONDS, paced in 1 ms steps, each from
/// the <c>packet()</c> the flood defines (the whole IPv4 datagram: IP_HDRINCL, the kernel fills in the IP checksum,
/// nothing else); it prints "ready" when it starts and "sent N in S s" at the end.
/// </summary>
internal static partial class RawFlood
{
    private const string Header = """
import socket, struct, sys, time, random
rate, seconds = int(sys.argv[1]), float(sys.argv[2])
s = socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_RAW)
dst = socket.inet_aton('192.0.2.2')

""";

    private const string Loop = """

print('ready', flush=True)
start = time.monotonic()
sent = 0
while True:
    elapsed = time.monotonic() - start
    if elapsed >= seconds: break
    due = int(elapsed * rate)
    while sent < due:
        s.sendto(packet(), ('192.0.2.2', 0))
        sent += 1
    time.sleep(0.001)
print('sent %d in %.2f s' % (sent, time.monotonic() - start), flush=True)
""";

    /// <summary>The whole script around <paramref name="packet"/>, Python that defines <c>packet()</c> (and reads its own argv from 3 on).</summary>
    public static string Script(string packet) => Header + packet + Loop;

    /// <summary>The script's last line: how many it sent, in how long.</summary>
    [GeneratedRegex(@"sent (\d+) in ([\d.]+) s")]
    public static partial Regex Summary();
}
