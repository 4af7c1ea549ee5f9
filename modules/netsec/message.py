"""What a handler gets and gives: Request (method, path, headers, the body as a stream) and
Response (status, headers, body). Used by netsec.server; see its docstring for an example."""
import json
import os

from netsec import http
from netsec.http import HTTPError

BUFFER_SIZE = 1024  # per-connection read buffer, and the chunk size files are streamed in
_CONTENT_TYPES = {
    "html": "text/html; charset=utf-8", "htm": "text/html; charset=utf-8",
    "css": "text/css", "js": "text/javascript", "json": "application/json",
    "txt": "text/plain; charset=utf-8", "csv": "text/csv", "xml": "application/xml",
    "svg": "image/svg+xml", "png": "image/png", "jpg": "image/jpeg", "jpeg": "image/jpeg",
    "gif": "image/gif", "ico": "image/x-icon", "webp": "image/webp", "pdf": "application/pdf",
    "wasm": "application/wasm", "woff2": "font/woff2", "bin": "application/octet-stream",
}


def guess_type(path):
    """The Content-Type for a file name, by extension (application/octet-stream if unknown)."""
    dot = path.rfind(".")
    return _CONTENT_TYPES.get(path[dot + 1:].lower(), "application/octet-stream") \
        if dot > path.rfind("/") else "application/octet-stream"


class Response:
    """Status, headers and a body: bytes, str, dict/list (JSON), an async or plain iterator of
    bytes (sent chunked), or a binary file object (streamed). Handlers may also return the
    body alone; None means 204 No Content. The server writes the framing headers
    (Content-Length, Transfer-Encoding, Connection); see netsec.session for what a handler's
    own copy of them does."""

    def __init__(self, body=b"", status=200, headers=None, content_type=None):
        self.status = status
        self.headers = list(headers or ())
        self.length = None  # bytes the body will have, when known in advance
        if isinstance(body, str):
            body = body.encode()
            content_type = content_type or "text/plain; charset=utf-8"
        elif isinstance(body, (dict, list)):
            body = json.dumps(body).encode()
            content_type = content_type or "application/json"
        if isinstance(body, (bytes, bytearray, memoryview)):
            self.length = len(body)
        elif not (hasattr(body, "readinto") or hasattr(body, "__aiter__")
                  or hasattr(body, "__next__") or isinstance(body, tuple)):
            raise TypeError("a response body must be bytes, str, dict, list, an iterator or a "
                            "file, not %s" % type(body).__name__)
        if content_type:
            self.headers.append(("Content-Type", content_type))
        self.body = body

    @classmethod
    def file(cls, path, content_type=None, headers=None, size=None):
        """Stream a file in small chunks; it is never read into RAM whole. 404 if missing.
        size: the file's size when the caller has stat'ed it already (saves a second stat)."""
        try:
            if size is None:
                size = os.stat(path)[6]
            f = open(path, "rb")
        except OSError:
            raise HTTPError(404, "no such file")
        response = cls(f, 200, headers, content_type or guess_type(path))
        response.length = size
        return response

    @classmethod
    def redirect(cls, location, status=302):
        return cls(b"", status, [("Location", location)])


def error_response(e):
    """The plain-text response for an HTTPError."""
    return Response("%d %s: %s\n" % (e.status, http.REASONS.get(e.status, ""), e.reason),
                    e.status, e.headers)


class Request:
    """What a handler gets: method, path, params, query, headers, and the body as a stream.

    path is percent-decoded and normalized; params holds the route's <name> parts; query is a
    dict ({"a": "1"}); headers.get(name) is case-insensitive. peer is (ip, port). With client
    certificates (client_auth), peer_cert is the client's certificate (DER) and peer_subject
    its subject once verified (else None). user is the name Basic auth accepted.
    """

    def __init__(self, session, head, params, max_body):
        self.method = head.method
        self.path = head.path
        self.params = params
        self.query = head.query
        self.query_string = head.query_string
        self.headers = head.headers
        self.version = head.version
        self.peer = session.peer
        self.peer_cert = session.peer_cert
        self.peer_subject = session.peer_subject
        self.user = None
        self._session = session
        session.http.open_body(max_body)  # 413 here if Content-Length is over the limit

    async def _payload(self, most):
        """Next body bytes as (start, stop) in the session's buffer; (0, 0) at the end."""
        session = self._session
        state = session.http
        while not state.body.done:
            if session.start == session.end:
                if state.wants_continue():  # the client waits for this before sending
                    await session.send(b"HTTP/1.1 100 Continue\r\n\r\n")
                if not await session.fill():
                    raise HTTPError(400, "client closed the connection inside the body", True)
                session.progress(session.end)
            a, b, used = state.receive_body(session.buf, session.start,
                                            min(session.end, session.start + most))
            session.start += used
            if b > a:
                return a, b
        return 0, 0

    async def readinto(self, buf):
        """Fill buf with the next body bytes; returns how many (0 at the end of the body)."""
        if not len(buf):
            return 0
        a, b = await self._payload(len(buf))
        buf[:b - a] = self._session.view[a:b]
        return b - a

    async def read(self, size=-1):
        """Up to size bytes of the body (b"" at its end); size -1 reads all the rest."""
        if size == 0:
            return b""
        if size > 0:
            a, b = await self._payload(size)
            return bytes(self._session.view[a:b])
        out = bytearray()
        while True:
            a, b = await self._payload(BUFFER_SIZE)
            if a == b:
                return bytes(out)
            out.extend(self._session.view[a:b])

    async def json(self):
        """The body parsed as JSON; 400 if it is not."""
        try:
            return json.loads(await self.read())
        except ValueError:
            raise HTTPError(400, "body is not valid JSON")

    def body_done(self):
        return self._session.http.body.done
