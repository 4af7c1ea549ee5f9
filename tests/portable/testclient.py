# A socket-free client for netsec.server, on CPython and MicroPython: the server's own
# connection loop (Server.serve_stream) runs on an in-memory stream, so routing, responses,
# error paths and the connection state get fast tests. No TLS: real-socket tests keep that.
#
#     app = Server(); ...routes...
#     client = TestClient(app)
#     responses, closed = client.exchange(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
#     responses[0].status, responses[0].header("content-type"), responses[0].body
import asyncio
import sys
import time

if not hasattr(time, "ticks_ms"):  # CPython: the MicroPython names netsec.server uses
    import traceback

    time.ticks_ms = lambda: int(time.monotonic() * 1000)
    time.ticks_add = lambda ticks, delta: ticks + delta
    time.ticks_diff = lambda a, b: a - b
    asyncio.sleep_ms = lambda ms: asyncio.sleep(ms / 1000)
    sys.print_exception = traceback.print_exception
    import gc

    gc.freeze()  # the server's gc.collect() after each connection: milliseconds, not 0.3 s

from netsec import log  # noqa: E402

PEER = ("192.0.2.7", 50000)


class MemoryStream:
    """What netsec.server reads and writes: `incoming` bytes handed out at most `step` bytes
    per read, then end of stream (or, with hold=True, a wait for feed()/finish())."""

    def __init__(self, incoming=b"", step=None, hold=False):
        self.incoming = bytearray(incoming)
        self.step = step
        self.hold = hold
        self.out = bytearray()
        self.closed = False
        self.reads = 0
        self.s = self  # the "socket": the server closes it
        self._more = asyncio.Event()

    def feed(self, data):
        self.incoming.extend(data)
        self._more.set()

    def finish(self):
        self.hold = False
        self._more.set()

    async def readinto(self, buf):
        while not self.incoming and self.hold and not self.closed:
            self._more.clear()
            await self._more.wait()
        if self.closed:
            raise OSError(9, "closed")
        n = min(len(buf), len(self.incoming), self.step or len(buf))
        buf[:n] = self.incoming[:n]
        self.incoming[:n] = b""
        self.reads += 1
        await asyncio.sleep_ms(0)
        return n

    def write(self, data):
        if self.closed:
            raise OSError(9, "closed")
        self.out.extend(data)

    async def drain(self):
        await asyncio.sleep_ms(0)

    def close(self):
        self.closed = True
        self._more.set()

    def get_extra_info(self, name):
        return PEER if name == "peername" else None


class Reply:
    """One parsed response. framing: the framing headers it carried, by lowercase name."""

    def __init__(self, status, headers, body):
        self.status = status
        self.headers = headers
        self.body = body

    def header(self, name, default=None):
        values = self.all(name)
        return values[0] if values else default

    def all(self, name):
        name = name.lower()
        return [v for n, v in self.headers if n.lower() == name]


def parse_responses(data, methods=()):
    """Split the bytes a server wrote into Replies. Each must have exactly one framing
    (Content-Length, chunked, or close-delimited as the last one): AssertionError if not.
    methods: the request methods in order, so HEAD answers are read without a body."""
    replies = []
    pos = 0
    index = 0
    while pos < len(data):
        end = data.find(b"\r\n\r\n", pos)
        assert end >= 0, "incomplete response head: %r" % bytes(data[pos:pos + 200])
        lines = bytes(data[pos:end]).decode().split("\r\n")
        pos = end + 4
        status = int(lines[0].split(" ")[1])
        assert lines[0].startswith("HTTP/1.1 "), lines[0]
        headers = [tuple(part.strip() for part in line.split(":", 1)) for line in lines[1:]]
        reply = Reply(status, headers, b"")
        if status < 200:
            assert not reply.all("content-length") and not reply.all("transfer-encoding")
            continue  # an interim response (100 Continue)
        method = methods[index] if index < len(methods) else "GET"
        index += 1
        lengths = reply.all("content-length")
        chunked = reply.all("transfer-encoding")
        assert len(lengths) + len(chunked) <= 1, "two framings: %r" % headers
        assert len(reply.all("connection")) <= 1, "two Connection headers: %r" % headers
        if method == "HEAD" or status in (204, 304):
            pass
        elif lengths:
            size = int(lengths[0])
            assert pos + size <= len(data), "body shorter than Content-Length"
            reply.body = bytes(data[pos:pos + size])
            pos += size
        elif chunked:
            assert chunked == ["chunked"], chunked
            body = bytearray()
            while True:
                eol = data.find(b"\r\n", pos)
                size = int(bytes(data[pos:eol]), 16)
                pos = eol + 2
                body.extend(data[pos:pos + size])
                pos += size + 2
                if not size:
                    break
            reply.body = bytes(body)
        else:
            assert reply.header("connection") == "close", "no framing: %r" % headers
            reply.body = bytes(data[pos:])
            pos = len(data)
        replies.append(reply)
    return replies


def run(coro):
    return asyncio.run(coro)


class TestClient:
    __test__ = False  # not a pytest test class

    """Drives a netsec.server.Server (not started: no listener, no TLS) over MemoryStreams."""

    def __init__(self, app):
        self.app = app
        self.log = []  # the lines netsec.log wrote while this client ran the server

    async def serve(self, stream):
        output = log.output
        log.output = self.log.append
        try:
            await self.app.serve_stream(stream, PEER)
        finally:
            log.output = output

    def exchange(self, raw, step=None, methods=()):
        """Send raw on one connection, then end it; -> (replies, whether the server closed
        before reading everything that was sent)."""
        stream = MemoryStream(raw, step)
        run(self.serve(stream))
        return parse_responses(stream.out, methods), len(stream.incoming) > 0

    def request(self, method, path, body=b"", headers=()):
        """One request with Host and Content-Length; -> its Reply."""
        lines = ["%s %s HTTP/1.1" % (method, path), "Host: device"]
        lines += ["%s: %s" % h for h in headers]
        if body:
            lines.append("Content-Length: %d" % len(body))
        raw = ("\r\n".join(lines) + "\r\n\r\n").encode() + body
        replies, _ = self.exchange(raw, methods=(method,))
        assert len(replies) == 1, replies
        return replies[0]
