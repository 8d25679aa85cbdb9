#!/usr/bin/env python3
"""The kernel lab's web peer: python's own http.server (HTTP/1.1, keep-alive), with a few routes for the tests
of Invoke-StackWebRequest and NetStack.Http. Serves --directory as files besides:

  /status/<code>          that status, body "status <code>"
  /redirect/<n>           302 to /redirect/<n-1> (?code=301|303|307|308 for another), /redirect/0 answers 200
  /redirect-to?url=<u>    302 to <u>
  /chunked/<n>            n bytes (a-z repeating) in chunks of 1000 (Transfer-Encoding: chunked)
  /bytes/<n>              n bytes (a-z repeating) with a Content-Length
  /peer                   the client's address and port, "a.b.c.d:port" (same port twice = a kept-alive connection)
  /stall                  announces 10,000,000 bytes, sends 65,536, then waits (for cancellation tests)
  /echo                   any method: the request body back, with its Content-Type; X-Method names the method

--cert/--key make it HTTPS. Prints "ready" once listening.
"""
import argparse
import http.server
import ssl
import sys
import time
from urllib.parse import parse_qs, urlsplit


def pattern(n):
    return bytes(97 + i % 26 for i in range(n))


class Handler(http.server.SimpleHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, fmt, *args):
        sys.stderr.write("%s %s\n" % (self.address_string(), fmt % args))

    def reply(self, code, body=b"", content_type="text/plain; charset=utf-8", headers=()):
        self.send_response(code)
        for name, value in headers:
            self.send_header(name, value)
        if code not in (204, 304):
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD" and code not in (204, 304):
            self.wfile.write(body)

    def request_body(self):
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length else b""

    def route(self):
        body = self.request_body()  # always read: what is left unread would be taken for the next request
        url = urlsplit(self.path)
        query = parse_qs(url.query)
        parts = url.path.strip("/").split("/")
        head, arg = parts[0], (parts[1] if len(parts) > 1 else "")
        if head == "echo":
            self.reply(200, body, self.headers.get("Content-Type") or "application/octet-stream", [("X-Method", self.command)])
        elif head == "status" and arg.isdigit():
            self.reply(int(arg), b"status %s\n" % arg.encode())
        elif head == "redirect" and arg.isdigit():
            n = int(arg)
            if n == 0:
                self.reply(200, b"redirects done\n")
            else:
                code = int(query.get("code", ["302"])[0])
                suffix = "?" + url.query if url.query else ""
                self.reply(code, b"see /redirect/%d\n" % (n - 1), headers=[("Location", "/redirect/%d%s" % (n - 1, suffix))])
        elif head == "redirect-to":
            self.reply(302, b"", headers=[("Location", query["url"][0])])
        elif head == "chunked" and arg.isdigit():
            data = pattern(int(arg))
            self.send_response(200)
            self.send_header("Content-Type", "text/plain")
            self.send_header("Transfer-Encoding", "chunked")
            self.end_headers()
            if self.command != "HEAD":
                for i in range(0, len(data), 1000):
                    chunk = data[i:i + 1000]
                    self.wfile.write(b"%x\r\n%s\r\n" % (len(chunk), chunk))
                self.wfile.write(b"0\r\n\r\n")
        elif head == "bytes" and arg.isdigit():
            self.reply(200, pattern(int(arg)), "application/octet-stream")
        elif head == "peer":
            self.reply(200, ("%s:%d" % self.client_address[:2]).encode())
        elif head == "stall":
            self.send_response(200)
            self.send_header("Content-Type", "application/octet-stream")
            self.send_header("Content-Length", "10000000")
            self.end_headers()
            self.wfile.write(pattern(65536))
            self.wfile.flush()
            time.sleep(120)
            self.close_connection = True
        else:
            return False
        return True

    def do_GET(self):
        if not self.route():
            super().do_GET()

    def do_HEAD(self):
        if not self.route():
            super().do_HEAD()

    do_POST = do_PUT = do_DELETE = do_PATCH = route


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--address", default="0.0.0.0")
    p.add_argument("--port", type=int, default=8080)
    p.add_argument("--directory", default=".")
    p.add_argument("--cert")
    p.add_argument("--key")
    a = p.parse_args()
    handler = lambda *args, **kw: Handler(*args, directory=a.directory, **kw)
    server = http.server.ThreadingHTTPServer((a.address, a.port), handler)
    server.daemon_threads = True
    if a.cert:
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(a.cert, a.key)
        server.socket = context.wrap_socket(server.socket, server_side=True)
    print("ready", flush=True)
    server.serve_forever()


if __name__ == "__main__":
    main()
