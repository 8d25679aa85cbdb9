using NetStack.Tcp;

namespace NetStack.Sockets;

/// <summary>
/// How the DNS resolver gets its TCP connections: real <see cref="TcpSocket"/>s of the stack (with descriptors, shown by
/// Get-StackConnection), driven from the loop. The connection's tasks complete on the loop; each outcome is posted to the
/// loop's next turn before the receiver hears it, so the receiver never runs inside TCP's own processing.
/// </summary>
internal sealed class TcpSocketClientPorts(NetworkStack stack) : ITcpClientPorts
{
    public ITcpClient Connect(Ipv4Address remote, ushort port, ITcpClientReceiver receiver, TimeSpan now)
    {
        var client = new Client(stack, receiver);
        client.Start(remote, port, now);
        return client;
    }

    private sealed class Client(NetworkStack stack, ITcpClientReceiver receiver) : ITcpClient
    {
        private readonly TcpSocket _socket = new(stack);
        private readonly byte[] _buffer = new byte[4096];
        private bool _ended;

        public void Start(Ipv4Address remote, ushort port, TimeSpan now)
        {
            Task connect;
            try { connect = _socket.Tcb.Connect(remote, port, now); }
            catch (StackException e)
            {
                Later(n => End(e.Error, n));
                return;
            }
            After(connect, n =>
            {
                receiver.OnTcpConnected(this, n);
                if (!_ended) ReceiveNext(n);
            });
        }

        public void Send(ReadOnlySpan<byte> data, TimeSpan now)
        {
            if (_ended) return;
            try { After(_socket.Tcb.Send(data.ToArray(), now), _ => { }); }
            catch (StackException e) { Later(n => End(e.Error, n)); }
        }

        public void Close(bool abort, TimeSpan now)
        {
            if (_ended) return;
            _ended = true;
            if (abort) _socket.Tcb.Abort(now);
            else _ = _socket.Tcb.Close(now);
        }

        private void ReceiveNext(TimeSpan now)
        {
            Task<int> receive;
            try { receive = _socket.Tcb.Receive(_buffer, now); }
            catch (StackException e)
            {
                End(e.Error, now);
                return;
            }
            After(receive, n =>
            {
                var count = receive.Result;
                if (count == 0)
                {
                    End(StackError.None, n);
                    return;
                }
                receiver.OnTcpData(this, _buffer.AsSpan(0, count), n);
                if (!_ended) ReceiveNext(n);
            });
        }

        /// <summary>Runs <paramref name="then"/> on the loop's next turn after <paramref name="task"/> succeeds; a failure ends the connection.</summary>
        private void After(Task task, Action<TimeSpan> then) =>
            task.ContinueWith(t => Later(n =>
            {
                if (_ended) return;
                if (t.IsCompletedSuccessfully) then(n);
                else End(t.Exception?.InnerException is StackException e ? e.Error : StackError.ConnectionAborted, n);
            }), CancellationToken.None, TaskContinuationOptions.ExecuteSynchronously, TaskScheduler.Default);

        private void Later(Action<TimeSpan> work)
        {
            try { stack.Post(work); }
            catch (StackException) { /* the stack stopped: the resolver was failed by its Dispose */ }
        }

        private void End(StackError error, TimeSpan now)
        {
            if (_ended) return;
            _ended = true;
            _socket.Tcb.Abort(now);
            receiver.OnTcpEnded(this, error, now);
        }
    }
}
