"""The asyncio HTTPS server: routing, handlers, static files, Basic auth, session limit.

    from netsec.server import Server, Response
    app = Server(port=8443)

    @app.route("/sensors/<name>")
    async def sensor(request):
        return {"name": request.params["name"], "value": 21.5}   # -> JSON

    app.static("/", "/www")      # files from flash, with ETag, 304 and .gz siblings
    app.run()

Protocol work is netsec.http's; TLS contexts come from netsec.tls. Connections are kept alive
(HTTP/1.1), at most max_sessions are served at once and the rest wait to be accepted; a
watchdog closes connections whose handshake, request head or I/O takes too long.
"""
import asyncio
import gc
import json
import os
import sys
import time

from netsec import http, log
from netsec.http import HTTPError

BUFFER_SIZE = 1024  # per-connection read buffer, and the chunk size files are streamed in
_S_IFDIR = 0x4000
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
    body alone; None means 204 No Content."""

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


def _error_response(e):
    return Response("%d %s: %s\n" % (e.status, http.REASONS.get(e.status, ""), e.reason),
                    e.status, e.headers)


class Request:
    """What a handler gets: method, path, params, query, headers, and the body as a stream.

    path is percent-decoded and normalized; params holds the route's <name> parts; query is a
    dict ({"a": "1"}); headers.get(name) is case-insensitive. peer is (ip, port). With client
    certificates (client_auth), peer_cert is the client's certificate (DER) and peer_subject
    its subject once verified (else None). user is the name Basic auth accepted.
    """

    def __init__(self, connection, head, params, max_body):
        self.method = head.method
        self.path = head.path
        self.params = params
        self.query = head.query
        self.query_string = head.query_string
        self.headers = head.headers
        self.version = head.version
        self.peer = connection.peer
        self.peer_cert = connection.peer_cert
        self.peer_subject = connection.peer_subject
        self.user = None
        self._connection = connection
        self._head = head
        self._body = head.body_decoder(max_body)  # 413 here if Content-Length is over the limit
        self._continue_sent = False

    async def _payload(self, most):
        """Next body bytes as (start, stop) in the connection buffer; (0, 0) at the end."""
        conn = self._connection
        while not self._body.done:
            if conn.start == conn.end:
                if self._head.expect_continue and not self._continue_sent:
                    self._continue_sent = True  # the client waits for this before sending
                    await conn.send(b"HTTP/1.1 100 Continue\r\n\r\n")
                conn.arm(conn.server.idle_timeout)
                if not await conn.fill():
                    raise HTTPError(400, "client closed the connection inside the body", True)
            a, b, used = self._body.feed(conn.buf, conn.start, min(conn.end, conn.start + most))
            conn.start += used
            if b > a:
                return a, b
        return 0, 0

    async def readinto(self, buf):
        """Fill buf with the next body bytes; returns how many (0 at the end of the body)."""
        if not len(buf):
            return 0
        a, b = await self._payload(len(buf))
        buf[:b - a] = self._connection.view[a:b]
        return b - a

    async def read(self, size=-1):
        """Up to size bytes of the body (b"" at its end); size -1 reads all the rest."""
        if size == 0:
            return b""
        if size > 0:
            a, b = await self._payload(size)
            return bytes(self._connection.view[a:b])
        out = bytearray()
        while True:
            a, b = await self._payload(BUFFER_SIZE)
            if a == b:
                return bytes(out)
            out.extend(self._connection.view[a:b])

    async def json(self):
        """The body parsed as JSON; 400 if it is not."""
        try:
            return json.loads(await self.read())
        except ValueError:
            raise HTTPError(400, "body is not valid JSON")

    def body_done(self):
        return self._body.done


class BasicAuth:
    """HTTP Basic authentication against salted PBKDF2-SHA256 hashes (see hash_password).

    users: {"name": "pbkdf2-sha256$iterations$salt-hex$hash-hex"}. Plain passwords are never
    stored; a wrong user name costs the same hashing as a wrong password, so timing does not
    tell which names exist.
    """

    def __init__(self, users, realm="netsec"):
        iterations = "1000"
        for name, stored in users.items():
            parts = stored.split("$")
            if len(parts) != 4 or parts[0] != "pbkdf2-sha256" or not parts[1].isdigit():
                raise ValueError("password for user %r must be a hash from hash_password(), "
                                 "not the password itself" % name)
            iterations = parts[1]
        self.users = users
        self.realm = realm
        self._decoy = "pbkdf2-sha256$%s$00$00" % iterations  # checked for unknown names

    def check(self, headers, connection):
        """The user name if the request's credentials are right, else HTTPError 401."""
        value = headers.get("authorization", "")
        if value[:6].lower() == "basic ":
            cached = connection.authorized
            if cached and cached[0] == value and cached[1] is self:
                return cached[2]  # this connection proved the same credentials already
            name, password = _basic_credentials(value[6:])
            stored = self.users.get(name)
            if check_password(stored or self._decoy, password) and stored:
                connection.authorized = (value, self, name)
                return name
        raise HTTPError(401, "authentication required", False,
                        [("WWW-Authenticate", 'Basic realm="%s", charset="UTF-8"' % self.realm)])


def _basic_credentials(encoded):
    import binascii
    try:
        decoded = binascii.a2b_base64(encoded.strip().encode()).decode()
    except ValueError:
        return "", ""
    colon = decoded.find(":")
    return (decoded[:colon], decoded[colon + 1:]) if colon >= 0 else ("", "")


def _pbkdf2_sha256(password, salt, iterations):
    # PBKDF2-HMAC-SHA256 with one 32-byte block (RFC 8018), from hashlib alone: MicroPython
    # has no hmac module. Same result as CPython's hashlib.pbkdf2_hmac("sha256", ...).
    import hashlib
    key = password
    if len(key) > 64:
        key = hashlib.sha256(key).digest()
    key = key + bytes(64 - len(key))
    inner = bytes(b ^ 0x36 for b in key)
    outer = bytes(b ^ 0x5C for b in key)

    def hmac(message):
        return hashlib.sha256(outer + hashlib.sha256(inner + message).digest()).digest()

    u = hmac(salt + b"\x00\x00\x00\x01")
    result = int.from_bytes(u, "big")  # one big-int XOR per round beats 32 byte XORs
    for _ in range(iterations - 1):
        u = hmac(u)
        result ^= int.from_bytes(u, "big")
    return result.to_bytes(32, "big")


def hash_password(password, iterations=1000, salt=None):
    """The string to store for a password: 'pbkdf2-sha256$iterations$salt$hash' (hex)."""
    import binascii
    salt = salt or os.urandom(16)
    digest = _pbkdf2_sha256(password.encode(), salt, iterations)
    return "pbkdf2-sha256$%d$%s$%s" % (iterations, binascii.hexlify(salt).decode(),
                                       binascii.hexlify(digest).decode())


def check_password(stored, password):
    """True if password matches a hash_password() string; constant time in the comparison."""
    import binascii
    _, iterations, salt, digest = stored.split("$")
    want = binascii.unhexlify(digest)
    got = _pbkdf2_sha256(password.encode(), binascii.unhexlify(salt), int(iterations))
    return _same(got, want)


def _same(a, b):
    # Constant-time: every byte is looked at whatever the first difference is.
    diff = len(a) ^ len(b)
    for x, y in zip(a, b):
        diff |= x ^ y
    return diff == 0


class _Route:
    def __init__(self, methods, pattern, handler, auth, max_body):
        if not pattern.startswith("/"):
            raise ValueError("route %r must start with '/'" % pattern)
        self.methods = (methods,) if isinstance(methods, str) else tuple(methods)
        self.parts = pattern[1:].split("/")
        for i, part in enumerate(self.parts):
            if part.startswith("<path:") and i != len(self.parts) - 1:
                raise ValueError("<path:...> must be the last part of route %r" % pattern)
        self.handler = handler
        self.auth = auth
        self.max_body = max_body

    def match(self, got):
        """params dict if the path's segments (path[1:].split("/")) fit the pattern, else None."""
        params = {}
        for i, part in enumerate(self.parts):
            if part.startswith("<path:"):
                params[part[6:-1]] = "/".join(got[i:])
                return params
            if i >= len(got):
                return None
            if part.startswith("<") and part.endswith(">"):
                if not got[i]:
                    return None
                params[part[1:-1]] = got[i]
            elif part != got[i]:
                return None
        return params if len(got) == len(self.parts) else None

    def allows(self, method):
        return method in self.methods or (method == "HEAD" and "GET" in self.methods)


class _Static:
    """GET handler for files under a directory; the normalized request path cannot leave it."""

    def __init__(self, directory, cache_control):
        self.directory = directory.rstrip("/")
        self.cache_control = cache_control

    async def __call__(self, request):
        path = self.directory + "/" + request.params["path"]
        stat = _stat(path)
        if stat and stat[0] & _S_IFDIR:
            path = path.rstrip("/") + "/index.html"
            stat = _stat(path)
        ctype = guess_type(path)
        gz = _stat(path + ".gz")
        headers = [("Cache-Control", self.cache_control)]
        if gz:
            headers.append(("Vary", "Accept-Encoding"))
            if "gzip" in _accepted_codings(request.headers):
                headers.append(("Content-Encoding", "gzip"))
                path, stat = path + ".gz", gz
        if not stat or stat[0] & _S_IFDIR:
            raise HTTPError(404, "no such file")
        etag = '"%x-%x"' % (stat[6], stat[8])
        headers.append(("ETag", etag))
        if _etag_matches(request.headers.get("if-none-match"), etag):
            return Response(b"", 304, headers)
        return Response.file(path, ctype, headers, stat[6])


def _stat(path):
    try:
        return os.stat(path)
    except OSError:
        return None


def _accepted_codings(headers):
    out = []
    for item in headers.tokens("accept-encoding"):
        semi = item.find(";")
        name = item[:semi].strip() if semi >= 0 else item
        if semi >= 0 and item[semi + 1:].replace(" ", "") in ("q=0", "q=0.0", "q=0.00",
                                                               "q=0.000"):
            continue  # explicitly refused
        out.append(name)
    return out


def _etag_matches(header, etag):
    if not header:
        return False
    for tag in header.split(","):
        tag = tag.strip()
        if tag == "*" or tag == etag or tag == "W/" + etag:
            return True
    return False


class _Connection:
    """One client: its socket, read buffer, deadline, and the keep-alive request loop."""

    def __init__(self, server, stream, peer):
        self.server = server
        self.stream = stream
        self.peer = peer
        self.peer_cert = None
        self.peer_subject = None
        self.authorized = None  # (Authorization value, BasicAuth, user) proved on this connection
        self.buf = bytearray(BUFFER_SIZE)
        self.view = memoryview(self.buf)
        self.start = self.end = 0  # unconsumed bytes are buf[start:end]
        self.deadline = None
        self.timed_out = False
        self.task = asyncio.current_task()

    def arm(self, seconds):
        """Give the next step `seconds`; the server's watchdog cancels this task after that."""
        self.deadline = time.ticks_add(time.ticks_ms(), int(seconds * 1000))

    async def fill(self):
        """Refill the buffer once everything in it was consumed; False at end of stream."""
        while True:
            n = await self.stream.readinto(self.buf)
            if n is not None:  # None: a TLS record is still incomplete
                self.start, self.end = 0, n
                return n > 0

    async def send(self, data):
        self.arm(self.server.idle_timeout)
        self.stream.write(data)
        await self.stream.drain()

    async def run(self, parser):
        server = self.server
        first = True
        while True:
            parser.reset()
            self.arm(server.handshake_timeout if first else server.idle_timeout)
            try:
                while parser.head is None:
                    if self.start == self.end and not await self.fill():
                        return
                    if first:
                        first = False
                        server._handshake_done(self)
                    if not parser.started():
                        self.arm(server.head_timeout)
                    self.start += parser.feed(self.buf, self.start, self.end)
            except HTTPError as e:
                log.info("%s: refused request: %s" % (_address(self.peer), e))
                await self.respond(None, _error_response(e), True)
                return
            if not await self.handle(parser.head):
                return

    async def handle(self, head):
        """Answer one request; False when the connection must close afterwards."""
        server = self.server
        server.stats["requests"] += 1
        request = user = None
        try:
            # A protected prefix asks for credentials before saying what exists under it.
            protection = server._protection(head.path)
            if protection:
                user = protection.check(head.headers, self)
            route, params = server._find_route(head)
            request = Request(self, head, params, route.max_body)
            if route.auth:
                user = route.auth.check(head.headers, self)
            request.user = user
            self.arm(server.idle_timeout)
            result = route.handler(request)
            if hasattr(result, "send"):  # a coroutine (async def handler)
                result = await result
            response = result if isinstance(result, Response) else \
                Response(b"", 204) if result is None else Response(result)
        except HTTPError as e:
            close = e.close or (request is not None and not request.body_done())
            return await self.respond(head, _error_response(e), close)
        except MemoryError:
            raise
        except Exception as e:  # a handler bug: 500 for this request, the server goes on
            log.error("%s: handler for %s %s failed: %r" % (_address(self.peer), head.method,
                                                             head.path, e))
            sys.print_exception(e)
            return await self.respond(head, _error_response(HTTPError(500, "handler failed")),
                                      True)
        # A body the handler did not read is still on the wire: closing is the safe way out.
        return await self.respond(head, response, not request.body_done())

    async def respond(self, head, response, close):
        server = self.server
        status = response.status
        length = response.length
        framing, chunked, keep_alive = http.frame_response(head, status, length, close)
        headers = response.headers + framing + server.extra_headers
        body = response.body
        no_body = (head is not None and head.method == "HEAD") or status == 204 or status == 304
        out = http.response_head(status, headers)
        try:
            if no_body or length == 0:
                await self.send(out)
            elif isinstance(body, (bytes, bytearray, memoryview)):
                if len(body) <= BUFFER_SIZE:
                    await self.send(out + body)  # one TLS record for small responses
                else:
                    await self.send(out)
                    await self.send(body)
            else:
                await self.send(out)
                await self._send_stream(body, chunked)
        finally:
            if hasattr(body, "close"):
                body.close()
        return keep_alive

    async def _send_stream(self, body, chunked):
        if hasattr(body, "readinto"):  # a file: stream it through a small buffer
            chunk = bytearray(BUFFER_SIZE)
            view = memoryview(chunk)
            while True:
                n = body.readinto(chunk)
                if not n:
                    break
                if chunked:
                    await self.send(http.chunk_head(n) + view[:n] + b"\r\n")
                else:
                    await self.send(view[:n])
        else:
            async_iter = hasattr(body, "__aiter__")
            iterator = body.__aiter__() if async_iter else iter(body)
            while True:
                try:
                    piece = await iterator.__anext__() if async_iter else next(iterator)
                except (StopAsyncIteration, StopIteration):
                    break
                if isinstance(piece, str):
                    piece = piece.encode()
                if not piece:
                    continue
                await self.send(http.chunk_head(len(piece)) + piece + b"\r\n" if chunked
                                else piece)
        if chunked:
            await self.send(http.LAST_CHUNK)


def _address(peer):
    return "%s:%d" % peer


def _peer(addr):
    """(ip, port) for an accepted socket's address: lwIP ports give that tuple already, the
    unix port gives raw sockaddr bytes that socket.sockaddr() decodes."""
    if isinstance(addr, tuple):
        return addr[0], addr[1]
    import socket
    decoded = socket.sockaddr(addr)
    ip = decoded[1]
    if len(ip) == 4:
        return "%d.%d.%d.%d" % tuple(ip), decoded[2]
    return ":".join("%x" % (ip[i] << 8 | ip[i + 1]) for i in range(0, len(ip), 2)), decoded[2]


def _set_nodelay(sock):
    # Responses are written whole, so Nagle's algorithm only adds latency. The unix port's
    # socket module lacks the constants: IPPROTO_TCP=6 and TCP_NODELAY=1 everywhere.
    import socket
    try:
        sock.setsockopt(getattr(socket, "IPPROTO_TCP", 6), getattr(socket, "TCP_NODELAY", 1), 1)
    except (OSError, AttributeError):
        pass


class Server:
    """An HTTPS server. routes: [(methods, pattern, handler), ...] or use @route.

    tls: an SSLContext; by default netsec.tls.server_context(client_auth) from Net_Security.
    max_sessions connections are served at once; up to backlog more wait to be served.
    Timeouts (seconds): TLS handshake, one request head, and idle keep-alive / stalled I/O.
    redirect_port: also listen for plain HTTP there, answering only with a 301 to HTTPS.
    hsts: max-age for Strict-Transport-Security on every HTTPS response (None: not sent).
    """

    def __init__(self, routes=(), tls=None, host="0.0.0.0", port=443, client_auth="none",
                 max_sessions=4, backlog=16, max_body=16384, handshake_timeout=15,
                 head_timeout=10, idle_timeout=20, redirect_port=None, hsts=None):
        if tls is not None and client_auth != "none":
            raise ValueError("client_auth applies to the default TLS context; with tls= "
                             "configure client certificates on that context instead")
        if max_sessions < 1:
            raise ValueError("max_sessions must be at least 1")
        self.tls = tls
        self.client_auth = client_auth
        self.host = host
        self.port = port
        self.max_sessions = max_sessions
        self.backlog = backlog
        self.max_body = max_body
        self.handshake_timeout = handshake_timeout
        self.head_timeout = head_timeout
        self.idle_timeout = idle_timeout
        self.redirect_port = redirect_port
        self.extra_headers = []
        if hsts is not None:
            self.extra_headers.append(("Strict-Transport-Security", "max-age=%d" % hsts))
        self.stats = {"connections": 0, "requests": 0, "active": 0, "waiting": 0, "dropped": 0}
        self._routes = []
        self._statics = []
        self._protected = []  # (path prefix, BasicAuth)
        self._connections = []
        self._redirecting = 0  # plain-HTTP connections being redirected
        self._slot_freed = asyncio.Event()
        self._listeners = []
        self._running = False
        self._tasks = []
        for methods, pattern, handler in routes:
            self.add_route(methods, pattern, handler)

    # --- configuration -------------------------------------------------------------------

    def add_route(self, methods, pattern, handler, auth=None, max_body=None):
        """Serve pattern ('/a/<name>/<path:rest>') for methods with handler(request)."""
        self._routes.append(_Route(methods, pattern, handler, auth,
                                   self.max_body if max_body is None else max_body))

    def route(self, pattern, methods=("GET",), auth=None, max_body=None):
        """Decorator form of add_route: @app.route("/x", methods=("POST",))."""
        def register(handler):
            self.add_route(methods, pattern, handler, auth, max_body)
            return handler
        return register

    def static(self, prefix, directory, cache_control="max-age=300"):
        """Serve the files under directory at prefix (GET and HEAD). Routes are tried first,
        so static("/", ...) can serve a whole site around an API."""
        self._statics.append(_Route("GET", prefix.rstrip("/") + "/<path:path>",
                                    _Static(directory, cache_control), None, 0))

    def protect(self, prefix, auth):
        """Require auth (a BasicAuth) for every path at or under prefix."""
        self._protected.append((prefix.rstrip("/"), auth))

    def _protection(self, path):
        for prefix, auth in self._protected:
            if path == prefix or path.startswith(prefix + "/") or not prefix:
                return auth
        return None

    def _find_route(self, head):
        if head.path == "*":
            raise HTTPError(404, "no resource is named *")
        allowed = []
        got = head.path[1:].split("/")  # once per request, not once per route
        for routes in (self._routes, self._statics):
            for route in routes:
                params = route.match(got)
                if params is None:
                    continue
                if route.allows(head.method):
                    return route, params
                allowed.extend(route.methods)
        if allowed:
            raise HTTPError(405, head.method + " is not allowed here", False,
                            [("Allow", ", ".join(allowed))])
        raise HTTPError(404, "nothing at " + head.path)

    # --- running -------------------------------------------------------------------------

    async def start(self):
        """Open the listeners and return; the server runs in background tasks."""
        if self.tls is None:
            from netsec import tls
            self.tls = tls.server_context(client_auth=self.client_auth)
        self._running = True
        self._listeners.append(await asyncio.start_server(self._accept, self.host, self.port,
                                                          self.backlog))
        log.info("netsec https server on %s:%d (%d sessions)" % (self.host, self.port,
                                                                 self.max_sessions))
        if self.redirect_port is not None:
            self._listeners.append(await asyncio.start_server(
                self._redirect, self.host, self.redirect_port, self.backlog))
            log.info("plain http on %s:%d only redirects to https" % (self.host,
                                                                      self.redirect_port))
        self._tasks.append(asyncio.create_task(self._watchdog()))

    async def serve(self):
        """Start and serve until the task is cancelled."""
        await self.start()
        try:
            while True:
                await asyncio.sleep(3600)
        finally:
            await self.stop()

    def run(self):
        asyncio.run(self.serve())

    async def stop(self):
        self._running = False
        for listener in self._listeners:
            listener.close()
            await listener.wait_closed()
        for task in self._tasks:
            task.cancel()
        for conn in list(self._connections):
            conn.task.cancel()
        self._listeners = []
        self._tasks = []
        self._slot_freed.set()  # waiting clients see the server stopped

    async def _watchdog(self):
        while True:
            await asyncio.sleep_ms(100)
            now = time.ticks_ms()
            for conn in self._connections:
                if conn.deadline is not None and time.ticks_diff(now, conn.deadline) >= 0:
                    conn.deadline = None
                    conn.timed_out = True
                    conn.task.cancel()

    async def _accept(self, stream, _):
        # Accepted sockets stay plain TCP until a session slot is free: a waiting client
        # costs a socket, not a TLS context.
        sock = stream.s
        peer = _peer(stream.get_extra_info("peername"))
        stats = self.stats
        if stats["waiting"] >= self.backlog:
            stats["dropped"] += 1
            sock.close()
            return
        stats["waiting"] += 1
        try:
            while stats["active"] >= self.max_sessions and self._running:
                self._slot_freed.clear()
                await self._slot_freed.wait()
        finally:
            stats["waiting"] -= 1
        if not self._running:  # stopped while this client waited
            sock.close()
            return
        stats["active"] += 1
        stats["connections"] += 1
        conn = tls_sock = None
        try:
            _set_nodelay(sock)
            tls_sock = self.tls.wrap_socket(sock, server_side=True, do_handshake_on_connect=False)
            tls_stream = asyncio.StreamReader(tls_sock, {"peername": peer})
            conn = _Connection(self, tls_stream, peer)
            self._connections.append(conn)
            await conn.run(http.RequestParser())
        except BaseException as e:
            _log_fault(conn, peer, e)
            if isinstance(e, (KeyboardInterrupt, SystemExit)):
                raise
        finally:
            if conn is not None:
                self._connections.remove(conn)
            # Closing the TLS socket sends close_notify and closes the TCP socket, after a failed
            # handshake too (firmware/patches/0001 and 0003).
            if tls_sock is not None:
                tls_sock.close()
            else:
                sock.close()
            stats["active"] -= 1
            self._slot_freed.set()
            conn = None
            if stats["active"] == 0:
                gc.collect()  # return the session's TLS buffers to the heap promptly

    def _handshake_done(self, conn):
        sock = conn.stream.s
        try:
            conn.peer_cert = sock.getpeercert(True)
        except (AttributeError, NotImplementedError, OSError):
            pass
        from netsec import tls
        conn.peer_subject = tls.log_connection(sock, "https client " + _address(conn.peer))

    async def _redirect(self, stream, _):
        # At most max_sessions plain connections at once, each holding a buffer and a parser:
        # a flood of them must not take the heap the HTTPS sessions need. Extra ones are closed.
        if self._redirecting >= self.max_sessions:
            stream.s.close()
            return
        self._redirecting += 1
        try:
            await self._redirect_one(stream)
        finally:
            self._redirecting -= 1

    async def _redirect_one(self, stream):
        # Plain HTTP: read one request head, answer 301 to the same URL over HTTPS, close.
        sock = stream.s
        try:
            parser = http.RequestParser()
            head = None
            buf = bytearray(512)
            while head is None:
                n = await asyncio.wait_for(stream.readinto(buf), self.head_timeout)
                if n is None:
                    continue
                if not n:
                    sock.close()
                    return
                parser.feed(buf, 0, n)
                head = parser.head
            host = head.host or ""
            if host.startswith("["):
                host = host[:host.find("]") + 1]
            elif ":" in host:
                host = host[:host.find(":")]
            if not host:
                raise HTTPError(400, "no Host to redirect to", True)
            port = "" if self.port == 443 else ":%d" % self.port
            # The target as sent (still encoded, with its query) unless it was absolute-form.
            target = head.target if head.target[:1] == "/" else head.path
            response = Response.redirect("https://" + host + port + target, 301)
        except HTTPError as e:
            response, head = _error_response(e), None
        except Exception:  # timeouts, resets: nothing to answer
            sock.close()
            return
        try:
            framing, _, _ = http.frame_response(head, response.status, response.length, True)
            stream.write(http.response_head(response.status, response.headers + framing)
                         + response.body)
            await asyncio.wait_for(stream.drain(), self.idle_timeout)
        except Exception:
            pass
        sock.close()


def _log_fault(conn, peer, e):
    who = _address(peer)
    if isinstance(e, asyncio.CancelledError):
        if conn is not None and conn.timed_out:
            log.info("%s: closed after a timeout" % who)
        return
    if isinstance(e, MemoryError):
        gc.collect()
        log.error("%s: out of memory; connection closed (free heap now %s)"
                  % (who, _free_heap()))
        return
    if isinstance(e, OSError) and e.args and isinstance(e.args[0], int) and e.args[0] < 0:
        from netsec import tls  # mbedTLS error codes are negative
        log.warning("%s: TLS error: %s" % (who, tls.explain(e)))
        return
    if isinstance(e, OSError):
        log.info("%s: connection ended: %r" % (who, e))
        return
    log.error("%s: connection failed: %r" % (who, e))
    sys.print_exception(e)


def _free_heap():
    try:
        return gc.mem_free()
    except AttributeError:
        return "unknown"
