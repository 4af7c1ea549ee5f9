"""The asyncio HTTPS server: routes, static files, Basic auth, a session limit.

    from netsec.server import Server, Response
    app = Server(port=8443)

    @app.route("/sensors/<name>")
    async def sensor(request):
        return {"name": request.params["name"], "value": 21.5}   # -> JSON

    app.static("/", "/www")      # files from flash, with ETag, 304 and .gz siblings
    app.run()

Protocol work is netsec.http's; TLS contexts come from netsec.tls. The parts: routing
(netsec.routing), static files (netsec.static), Basic auth (netsec.auth), requests and
responses (netsec.message), one connection's loop (netsec.session), the plain-HTTP redirect
(netsec.redirect). This module listens, hands out the max_sessions session slots, and runs the
watchdog that closes connections which are too slow, or idle while a client waits for a slot.
"""
import asyncio
import gc
import time

from netsec import clock, http, log
from netsec.auth import BasicAuth, check_password, hash_password  # noqa: F401 (public API)
from netsec.http import HTTPError  # noqa: F401 (public API)
from netsec.message import Request, Response, guess_type  # noqa: F401 (public API)
from netsec.redirect import redirect_one
from netsec.routing import Router
from netsec.session import Session, log_fault

# A connection idle this long (ms) may be closed to give its slot to a waiting client.
RECLAIM_IDLE_MS = 1000
DROP_LOG_MS = 10000  # at most one "backlog full" line per this many ms

def url(scheme, host, port):
    """scheme://host:port/, an IPv6 address in brackets (RFC 3986 3.2.2)."""
    return "%s://%s:%d/" % (scheme, "[%s]" % host if ":" in host else host, port)


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


class Server(Router):
    """An HTTPS server. routes: [(methods, pattern, handler), ...] or use @route.

    tls: an SSLContext; by default netsec.tls.server_context(client_auth) from Net_Security.
    host: an IPv4 or IPv6 address ("::" for every IPv6 one, where the network stack has IPv6).
    max_sessions connections are served at once; up to backlog more wait to be served, and an
    idle one is closed when a client waits. Timeouts (seconds): TLS handshake, one request
    head, and idle keep-alive / stalled I/O; a request body or response slower than min_rate
    bytes per second after its first idle_timeout is closed too.
    redirect_port: also listen for plain HTTP there, answering only with a 301 to HTTPS.
    hsts: max-age for Strict-Transport-Security on every HTTPS response (None: not sent).
    Every response carries X-Content-Type-Options: nosniff and, once the clock is set, Date;
    add_header() adds more (Content-Security-Policy, X-Frame-Options...).
    """

    def __init__(self, routes=(), tls=None, host="0.0.0.0", port=443, client_auth="none",
                 max_sessions=4, backlog=16, max_body=16384, handshake_timeout=15,
                 head_timeout=10, idle_timeout=20, redirect_port=None, hsts=None, min_rate=500):
        if tls is not None and client_auth != "none":
            raise ValueError("client_auth applies to the default TLS context; with tls= "
                             "configure client certificates on that context instead")
        if max_sessions < 1:
            raise ValueError("max_sessions must be at least 1")
        Router.__init__(self, max_body)
        self.tls = tls
        self.client_auth = client_auth
        self.host = host
        self.port = port
        self.max_sessions = max_sessions
        self.backlog = backlog
        self.handshake_timeout = handshake_timeout
        self.head_timeout = head_timeout
        self.idle_timeout = idle_timeout
        self.min_rate = min_rate
        self.redirect_port = redirect_port
        self.extra_headers = [("X-Content-Type-Options", "nosniff")]
        if hsts is not None:
            self.add_header("Strict-Transport-Security", "max-age=%d" % hsts)
        self.stats = {"connections": 0, "handshakes": 0, "handshake_failures": 0,
                      "requests": 0, "active": 0, "waiting": 0, "dropped": 0, "reclaimed": 0,
                      "timed_out": 0}
        self._sessions = []
        self._redirecting = 0  # plain-HTTP connections being redirected
        self._slot_freed = asyncio.Event()
        self._listeners = []
        self._running = False
        self._tasks = []
        self._date = (None, None)  # (time.time() second, its Date header)
        self._drops_logged = (None, 0)  # (ticks_ms of the last line, drops counted by then)
        for methods, pattern, handler in routes:
            self.add_route(methods, pattern, handler)

    # --- configuration -------------------------------------------------------------------

    def add_header(self, name, value):
        """Send name: value on every HTTPS response; ValueError if it cannot be sent or is a
        framing header (the server writes those)."""
        value = str(value)
        http.check_field(name, value)
        if name.lower() in ("content-length", "transfer-encoding", "connection", "date"):
            raise ValueError("%s is written by the server, not by add_header()" % name)
        self.extra_headers.append((name, value))

    def common_headers(self):
        """The headers every response gets: Date (when the clock is set) and extra_headers."""
        if not clock.is_set():
            return self.extra_headers
        now = int(time.time())
        if self._date[0] != now:
            self._date = (now, ("Date", http.http_date(clock.utc())))
        return [self._date[1]] + self.extra_headers

    # --- running -------------------------------------------------------------------------

    async def start(self):
        """Open the listeners and return; the server runs in background tasks. A listener
        that cannot open raises OSError with one line naming the URL and the cause."""
        if self.tls is None:
            from netsec import tls
            self.tls = tls.server_context(client_auth=self.client_auth)
        self._running = True
        self._listen(self.port, self._accept, "https")
        log.info("netsec https server on %s (%d sessions)"
                 % (url("https", self.host, self.port), self.max_sessions))
        if self.redirect_port is not None:
            self._listen(self.redirect_port, self._redirect, "http")
            log.info("plain http on %s only redirects to https"
                     % url("http", self.host, self.redirect_port))
        self._tasks.append(asyncio.create_task(self._watchdog()))

    def _listen(self, port, handler, scheme):
        # asyncio.start_server() makes an IPv4 socket whatever the address; this one takes
        # the address family getaddrinfo() gives for host.
        import socket
        s = None
        try:
            ai = socket.getaddrinfo(self.host, port)[0]
            s = socket.socket(ai[0], socket.SOCK_STREAM)
            s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            s.bind(ai[-1])
            s.listen(self.backlog)
            s.setblocking(False)
        except OSError as e:
            if s is not None:
                s.close()
            self._running = False
            raise OSError("cannot listen on %s: %s" % (url(scheme, self.host, port),
                                                       _listen_error(e)))
        from asyncio.stream import Server as Listener  # what start_server() returns
        listener = Listener()
        listener.task = asyncio.create_task(listener._serve(s, handler, None))
        self._listeners.append(listener)

    async def serve(self):
        """Start and serve until the task is cancelled."""
        await self.start()
        try:
            while True:
                await asyncio.sleep(3600)
        finally:
            await self.stop()

    def run(self):
        """Serve until interrupted; a start-up failure is one logged line and SystemExit(1)."""
        try:
            asyncio.run(self.serve())
        except OSError as e:
            if self._running:
                raise
            log.error("netsec server: %s" % e.args[0])
            raise SystemExit(1)

    async def stop(self):
        self._running = False
        for listener in self._listeners:
            listener.close()
            await listener.wait_closed()
        for task in self._tasks:
            task.cancel()
        for session in list(self._sessions):
            session.expire("server stopped")
        self._listeners = []
        self._tasks = []
        self._slot_freed.set()  # waiting clients see the server stopped

    async def _watchdog(self):
        while True:
            await asyncio.sleep_ms(100)
            self.check_sessions(time.ticks_ms())

    def check_sessions(self, now):
        """Close sessions past their deadline and, when a client waits for a slot, the one
        idle longest (at least RECLAIM_IDLE_MS)."""
        idlest = None
        for session in list(self._sessions):
            if session.deadline is not None and time.ticks_diff(now, session.deadline) >= 0:
                if session.lingering:  # the end of a linger: no fault
                    self._end(session, None)
                    continue
                self.stats["timed_out"] += 1
                self._end(session, _why_late(session, now))
            elif session.idle_since is not None and (
                    idlest is None or time.ticks_diff(idlest.idle_since, session.idle_since) > 0):
                idlest = session
        if (idlest is not None and self.stats["waiting"]
                and time.ticks_diff(now, idlest.idle_since) >= RECLAIM_IDLE_MS):
            self.stats["reclaimed"] += 1
            log.info("%s: idle connection closed: a client is waiting for a session slot"
                     % idlest.who)
            self._end(idlest, None)

    def _end(self, session, why):
        # Ends the session in any state, its task too, even one parked where cancel() cannot
        # reach it: its slot is freed here, not when (or if) the task runs again.
        session.expire(why)
        self._release(session)

    def _release(self, session):
        if session in self._sessions:
            self._sessions.remove(session)
            self.stats["active"] -= 1
            self._slot_freed.set()

    async def serve_stream(self, stream, peer, established=None):
        """Serve one connection on an asyncio stream (readinto, write, drain, and .s to close)
        in a session slot; returns when it is closed. established(session) is called once
        a TLS handshake is complete. netsec's test client drives the server through this."""
        stats = self.stats
        stats["active"] += 1
        stats["connections"] += 1
        session = None
        try:
            session = Session(self, stream, peer, established)
            self._sessions.append(session)
            await session.run()
        except BaseException as e:
            if session is not None and session.handshaking() and not session.timed_out:
                stats["handshake_failures"] += 1
            log_fault(session, peer, e)
            if isinstance(e, (KeyboardInterrupt, SystemExit)):
                raise
        finally:
            if session is None:
                stats["active"] -= 1
                stream.s.close()
            else:
                session.close()
                if session in self._sessions:
                    self._release(session)
            session = None
            if stats["active"] == 0:
                gc.collect()  # return the session's TLS buffers to the heap promptly

    async def _accept(self, stream, _):
        # Accepted sockets stay plain TCP until a session slot is free: a waiting client
        # costs a socket, not a TLS context.
        sock = stream.s
        peer = _peer(stream.get_extra_info("peername"))
        stats = self.stats
        if stats["waiting"] >= self.backlog:
            stats["dropped"] += 1
            self._log_drops()
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
        try:
            _set_nodelay(sock)
            tls_sock = self.tls.wrap_socket(sock, server_side=True, do_handshake_on_connect=False)
        except Exception as e:
            log_fault(None, peer, e)
            sock.close()
            return
        tls_stream = asyncio.StreamReader(tls_sock, {"peername": peer})
        await self.serve_stream(tls_stream, peer, self._established)

    def _log_drops(self):
        # Rate-limited: a flood must not become a flood of log lines.
        now = time.ticks_ms()
        last, counted = self._drops_logged
        if last is None or time.ticks_diff(now, last) >= DROP_LOG_MS:
            log.warning("%d connection(s) refused: %d sessions busy and %d waiting (backlog)"
                        % (self.stats["dropped"] - counted, self.max_sessions, self.backlog))
            self._drops_logged = (now, self.stats["dropped"])

    def _established(self, session):
        self.stats["handshakes"] += 1
        sock = session.stream.s
        try:
            session.peer_cert = sock.getpeercert(True)
        except (AttributeError, NotImplementedError, OSError):
            pass
        from netsec import tls
        session.peer_subject = tls.log_connection(sock, "https client " + session.who,
                                                  self.tls)

    async def _redirect(self, stream, _):
        # At most max_sessions plain connections at once, each holding a buffer and a parser:
        # a flood of them must not take the heap the HTTPS sessions need. Extra ones are closed.
        if self._redirecting >= self.max_sessions:
            stream.s.close()
            return
        self._redirecting += 1
        try:
            await redirect_one(self, stream)
        finally:
            self._redirecting -= 1


def _why_late(session, now):
    if session.idle_since is None:
        return "too slow: no progress within the timeout"
    seconds = time.ticks_diff(now, session.idle_since) // 1000
    if session.handshaking():
        return "TLS handshake not completed in %d s" % seconds
    return "idle for %d s with no request" % seconds


def _listen_error(e):
    import errno
    code = e.args[0] if e.args else None
    if code == errno.EADDRINUSE:
        return "the port is in use (EADDRINUSE)"
    if code == getattr(errno, "EAFNOSUPPORT", 97):
        return "this network stack has no IPv6 (EAFNOSUPPORT)"
    if code == errno.EACCES:
        return "permission denied: ports below 1024 need privileges (EACCES)"
    return "%r" % (e,)
