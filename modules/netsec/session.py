"""One client connection of netsec.server: its stream, read buffer, deadlines, HTTP state
(netsec.http.ServerConnection) and the keep-alive loop that calls handlers and writes responses.

The server owns a response's framing: Content-Length, Transfer-Encoding and Connection come
from netsec.http, never from a handler. A handler's own Connection: close is honoured (the
connection closes after the body); a handler's Content-Length equal to the body's length is
dropped as redundant; any other framing header, or a header that cannot be written, is a 500
and a log line naming it.
"""
import asyncio
import errno
import gc
import sys
import time

from netsec import http, log
from netsec.http import HTTPError
from netsec.message import BUFFER_SIZE, Request, Response, error_response

LINGER = 2  # seconds at most an error response's connection keeps reading before it closes
LINGER_QUIET_MS = 500  # ...and no longer than this once nothing more arrives


class Session:
    """One client: its stream, read buffer, deadline, and the keep-alive request loop.

    idle_since is the ticks_ms since which it waits for a request with nothing in progress
    (None while a request or response is under way): the server may close it for a waiting
    client then, and only then.
    """

    def __init__(self, server, stream, peer, established=None):
        self.server = server
        self.stream = stream
        self.peer = peer
        self.who = "%s:%d" % peer
        self.peer_cert = None
        self.peer_subject = None
        self.authorized = None  # (Authorization value, BasicAuth, user) proved on this connection
        self.buf = bytearray(BUFFER_SIZE)
        self.view = memoryview(self.buf)
        self.start = self.end = 0  # unconsumed bytes are buf[start:end]
        self.http = http.ServerConnection()
        self.deadline = None
        self.timed_out = None  # what was too slow, once the watchdog closed the connection
        self.idle_since = time.ticks_ms()
        self.closed = False
        self.lingering = False
        self.task = asyncio.current_task()
        self._established = established  # called once the TLS handshake is complete
        self._phase = self._moved = 0

    def handshaking(self):
        """True until the TLS handshake is complete (always False without TLS)."""
        return self._established is not None

    def arm(self, seconds):
        """Give the next step `seconds`; the server's watchdog closes the connection after that."""
        self.deadline = time.ticks_add(time.ticks_ms(), int(seconds * 1000))

    def begin_phase(self):
        """A request body or response starts: progress() counts its bytes from here."""
        self._phase = time.ticks_ms()
        self._moved = 0
        self.arm(self.server.idle_timeout)

    def progress(self, count):
        """count more bytes moved: each wait gets idle_timeout, but the phase as a whole only
        idle_timeout plus its bytes at min_rate, so a trickle cannot keep the slot for ever."""
        server = self.server
        self._moved += count
        idle_ms = server.idle_timeout * 1000
        step = time.ticks_add(time.ticks_ms(), idle_ms)
        whole = time.ticks_add(self._phase, idle_ms + self._moved * 1000 // server.min_rate)
        self.deadline = whole if time.ticks_diff(step, whole) > 0 else step

    def expire(self, why):
        """The watchdog's end for a connection in any state: stop its task wherever it waits
        and close the socket (close_notify, then FIN)."""
        self.timed_out = why
        self.deadline = None
        try:
            self.task.cancel()
        except RuntimeError:  # the task is the one running (cannot happen from the watchdog)
            pass
        self.close()

    def close(self):
        if not self.closed:
            self.closed = True
            try:
                self.stream.s.close()
            except OSError:
                pass

    async def fill(self):
        """Refill the buffer once everything in it was consumed; False at end of stream."""
        while True:
            n = await self.stream.readinto(self.buf)
            if n is not None:  # None: a TLS record is still incomplete, or only a handshake ran
                self.start, self.end = 0, n
                if self._established:
                    self._check_established()
                return n > 0
            if self._established:
                self._check_established()

    def _check_established(self):
        # A TLS socket reports its cipher suite once the handshake is complete (ENOTCONN
        # before, firmware/patches/0002): then the connection is logged, even if no request
        # ever follows (a browser's preconnect).
        try:
            self.stream.s.cipher()
        except OSError:
            return
        established, self._established = self._established, None
        established(self)

    async def send(self, data):
        self.progress(len(data))
        self.stream.write(data)
        await self.stream.drain()

    async def run(self):
        server = self.server
        state = self.http
        first = True
        while True:
            state.next_request()
            self.idle_since = time.ticks_ms()
            self.arm(server.handshake_timeout if first else server.idle_timeout)
            try:
                while state.head is None:
                    if self.start == self.end and not await self.fill():
                        return
                    first = False
                    if not state.parser.started():
                        self.arm(server.head_timeout)  # the head's clock starts at its first byte
                    self.start += state.receive_head(self.buf, self.start, self.end)
                    if state.parser.started():
                        self.idle_since = None
            except HTTPError as e:
                log.info("%s: refused request: %s" % (self.who, e))
                await self.respond(None, error_response(e), True)
                await self.linger()
                return
            self.idle_since = None
            await self.handle()
            if not await self.drain_body():
                await self.linger()
                return

    async def handle(self):
        """Answer the request whose head was received."""
        server = self.server
        head = self.http.head
        server.stats["requests"] += 1
        self.begin_phase()
        close = False
        try:
            route, params, user = server.dispatch(head, self)
            request = Request(self, head, params, route.max_body)
            request.user = user
            response = await _call(route.handler, request)
            close = _own_framing(response)
        except HTTPError as e:
            response, close = error_response(e), e.close
        except MemoryError:
            raise
        except Exception as e:  # a handler bug: 500 for this request, the server goes on
            log.error("%s: handler for %s %s failed: %r" % (self.who, head.method, head.path, e))
            if not isinstance(e, ResponseError):
                sys.print_exception(e)
            response, close = error_response(HTTPError(500, "handler failed")), True
        await self.respond(head.method, response, close)

    async def drain_body(self):
        """After a response: read away a small unread body (netsec.http.DRAIN_MAX, head_timeout);
        True when the next request can be read, False when the connection must close."""
        state = self.http
        if state.state != http.DONE:
            return False
        self.arm(self.server.head_timeout)
        while not state.body.done:
            if self.start == self.end and not await self.fill():
                return False
            self.start += state.discard(self.buf, self.start, self.end)
        return state.can_reuse()

    async def linger(self):
        """Before closing with request bytes perhaps still coming: read and drop them until
        the client closes or pauses (LINGER_QUIET_MS), for LINGER seconds at most, so that closing with unread data does
        not reset the connection and destroy the response already sent (RFC 9112 9.6)."""
        if self.http.head is not None and self.http.body.done:
            return  # the request was read whole: nothing more is coming
        end = time.ticks_add(time.ticks_ms(), LINGER * 1000)
        self.lingering = True  # its deadline is the linger's end, not a fault
        try:
            while True:
                # Until the client closes, stays quiet for LINGER_QUIET, or LINGER is over.
                quiet = time.ticks_add(time.ticks_ms(), LINGER_QUIET_MS)
                self.deadline = quiet if time.ticks_diff(end, quiet) > 0 else end
                if not await self.fill():
                    break
                self.start = self.end
        except (OSError, asyncio.CancelledError):
            pass

    async def respond(self, method, response, close):
        server = self.server
        status = response.status
        length = response.length
        framing, chunked = self.http.frame(method, status, length, close)
        body = response.body
        no_body = method == "HEAD" or status == 204 or status == 304
        self.begin_phase()
        try:
            out = http.response_head(status, response.headers + server.common_headers()
                                     + framing)
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
                if not await self._send_stream(body, chunked, length):
                    log.error("%s: response body for %s ended short of its Content-Length %d;"
                              " connection closed" % (self.who, self.http.head.path, length))
                    return  # not sent whole: the connection stays unusable, and closes
        finally:
            if hasattr(body, "close"):
                body.close()
        self.http.response_done()

    async def _send_stream(self, body, chunked, left):
        """Send a file's or an iterator's pieces, as chunks or until the stream ends; with a
        Content-Length (left) exactly that many bytes: a file that grew since its stat is cut
        there. False when the body ended short of it: only closing can tell the client then."""
        if hasattr(body, "readinto"):  # a file: stream it through a small buffer
            chunk = bytearray(BUFFER_SIZE)
            view = memoryview(chunk)
            while left != 0:
                n = body.readinto(chunk)
                if not n:
                    break
                left = await self._send_piece(view[:n], chunked, left)
        else:
            async_iter = hasattr(body, "__aiter__")
            iterator = body.__aiter__() if async_iter else iter(body)
            while left != 0:
                try:
                    piece = await iterator.__anext__() if async_iter else next(iterator)
                except (StopAsyncIteration, StopIteration):
                    break
                if isinstance(piece, str):
                    piece = piece.encode()
                if piece:
                    left = await self._send_piece(piece, chunked, left)
        if chunked:
            await self.send(http.LAST_CHUNK)
        return not left

    async def _send_piece(self, piece, chunked, left):
        # One piece, as a chunk or at most the left bytes of it; -> what is left (None: no limit).
        if chunked:
            await self.send(http.chunk_head(len(piece)) + piece + b"\r\n")
            return None
        if left is not None and len(piece) > left:
            piece = piece[:left]
        await self.send(piece)
        return None if left is None else left - len(piece)


# On MicroPython a coroutine and a generator are the same type; on CPython they differ.
async def _sample():
    pass


_sample = _sample()
_COROUTINE = type(_sample)
_sample.close()
_GENERATOR = type(x for x in ())


async def _call(handler, request):
    """A handler's result as a Response. What it returns: a Response, its body alone, None
    (204), or a coroutine giving one of these. Anything else raises TypeError (a 500)."""
    result = handler(request)
    if type(result) is _COROUTINE:
        result = await (_awaited(result) if _COROUTINE is _GENERATOR else result)
    elif type(result) is _GENERATOR:
        result = Response(result)  # a plain handler's generator: its body, sent chunked
    if isinstance(result, Response):
        return result
    return Response(b"", 204) if result is None else Response(result)


def _awaited(coro):
    # MicroPython: await coro, unless it turns out to be a generator of body pieces (a plain
    # handler written with yield): awaiting that would park the task outside asyncio's queues
    # for ever, as what it yields is no event asyncio knows. asyncio's own awaitables yield
    # None to its scheduler; a first yield of anything else is the body's first piece.
    value = error = None
    first = True
    while True:
        try:
            out = coro.throw(error) if error is not None else coro.send(value)
        except StopIteration as e:
            return e.value
        if out is not None:
            if first:
                return Response(_pieces(out, coro))
            coro.close()
            raise TypeError("handler awaited and then yielded %r: return a Response(generator) "
                            "instead" % (out,))
        first = False
        try:
            value, error = (yield), None
        except BaseException as e:  # a cancellation, passed on to the coroutine
            value, error = None, e


def _pieces(first, rest):
    yield first
    for piece in rest:
        yield piece


class ResponseError(ValueError):
    """A handler's response that cannot be sent as it is (the log line says why)."""


_FRAMING = ("content-length", "transfer-encoding", "connection")


def _own_framing(response):
    """True when the handler asked for Connection: close. Takes the handler's framing headers
    out of the response; TypeError/ValueError (a 500) for one that would contradict the
    server's, and for a status or header that cannot be sent."""
    status = response.status
    if not isinstance(status, int) or not 200 <= status <= 599:
        raise ResponseError("handler returned status %r: a final status is 200-599" % (status,))
    close = False
    kept = []
    for name, value in response.headers:
        if not isinstance(name, str):
            raise ResponseError("header name %r is not a str" % (name,))
        lower = name.lower()
        text = str(value)
        if lower == "connection" and text.strip().lower() == "close":
            close = True
        elif lower == "content-length" and response.length is not None \
                and text.strip() == str(response.length):
            pass
        elif lower in _FRAMING:
            raise ResponseError("handler set %s: %s; the server frames responses (drop it, or "
                             "Connection: close)" % (name, text))
        else:
            try:
                http.check_field(name, text)
            except ValueError as e:
                raise ResponseError(e.args[0])
            kept.append((name, value))
    response.headers = kept
    return close


def log_fault(session, peer, e):
    who = "%s:%d" % peer
    if isinstance(e, asyncio.CancelledError) or (session is not None and session.timed_out):
        if session is not None and session.timed_out:
            log.info("%s: closed: %s" % (who, session.timed_out))
        return
    if isinstance(e, MemoryError) or (isinstance(e, OSError) and e.args
                                       and e.args[0] == errno.ENOMEM):  # TLS: patch 0017
        gc.collect()
        log.error("%s: out of memory; connection closed (free heap now %s)"
                  % (who, _free_heap()))
        return
    if isinstance(e, OSError) and e.args and isinstance(e.args[0], int) and e.args[0] < 0:
        from netsec import tls  # mbedTLS error codes are negative
        log.warning("%s: TLS error: %s" % (who, tls.explain(e)))
        return
    if isinstance(e, OSError):
        log.info("%s: connection ended: %s" % (who, _os_error_text(e)))
        return
    log.error("%s: connection failed: %r" % (who, e))
    sys.print_exception(e)


_ERRNO_NAMES = {32: "the peer closed the connection (EPIPE)",  # MicroPython's errno lacks EPIPE
                errno.ECONNRESET: "the peer reset the connection (ECONNRESET)",
                errno.EBADF: "the socket was closed (EBADF)",
                errno.ETIMEDOUT: "timed out (ETIMEDOUT)"}


def _os_error_text(e):
    code = e.args[0] if e.args else None
    return _ERRNO_NAMES.get(code, "%r" % (e,))


def _free_heap():
    try:
        return gc.mem_free()
    except AttributeError:
        return "unknown"
