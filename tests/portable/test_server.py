# netsec.server through the socket-free TestClient, on CPython (pytest) and MicroPython
# (run.py, the unix and QEMU images): request framing, routing, handler mistakes, headers.
from check import raises
from testclient import MemoryStream, TestClient, parse_responses, run

from netsec import http
from netsec.redirect import https_location
from netsec.server import BasicAuth, HTTPError, Response, Server, hash_password

SMUGGLED = b"GET /open HTTP/1.1\r\nHost: localhost\r\n\r\n"
_HASH = hash_password("s3cret", iterations=2, salt=b"0123456789abcdef")


def make_app(**options):
    app = Server(**options)
    seen = app.seen = []

    @app.route("/open")
    async def open_(request):
        seen.append("open")
        return "open"

    @app.route("/secret")
    async def secret(request):
        seen.append("secret")
        return "the secret"

    @app.route("/echo", methods=("POST",))
    async def echo(request):
        return Response(await request.read(), content_type="application/octet-stream")

    @app.route("/part", methods=("POST",))
    async def part(request):
        return str(len(await request.read(1)))

    @app.route("/ignore", methods=("POST",))
    async def ignore(request):
        return "ignored"

    @app.route("/refuse", methods=("POST",))
    async def refuse(request):
        raise HTTPError(403, "no")

    @app.route("/small", methods=("POST",), max_body=10)
    async def small(request):
        return await request.read()

    app.protect("/secret", BasicAuth({"admin": _HASH}))
    app.protect("/admin", BasicAuth({"admin": _HASH}))
    return app


def post(path, body, extra=b""):
    return (b"POST " + path + b" HTTP/1.1\r\nHost: localhost\r\n" + extra
            + b"Content-Length: %d\r\n\r\n" % len(body) + body)


# --- 1. request framing: a body is never read as the next request ---------------------------

def test_refused_before_the_body_is_read_never_parses_the_body_as_a_request():
    # 404, 405, 401 from protect(), an HTTPError before reading, a handler that ignores it:
    # the body is a whole request, and it must never be answered.
    for path in (b"/nope", b"/open", b"/secret", b"/refuse", b"/ignore"):
        app = make_app()
        replies, _ = TestClient(app).exchange(post(path, SMUGGLED) + b"GET /open HTTP/1.1\r\n"
                                              b"Host: localhost\r\nConnection: close\r\n\r\n")
        assert app.seen == ["open"], (path, app.seen)  # only the real second request
        assert [r.status for r in replies][1:] == [200], (path, [r.status for r in replies])


def test_a_small_unread_body_is_drained_and_the_connection_kept():
    app = make_app()
    raw = post(b"/ignore", b"x" * 100) + post(b"/part", b"abcdef") + post(b"/echo", b"end")
    replies, _ = TestClient(app).exchange(raw, step=7)
    assert [(r.status, r.body) for r in replies] == [(200, b"ignored"), (200, b"1"),
                                                     (200, b"end")]
    assert all(r.header("connection") is None for r in replies)


def test_a_large_unread_body_closes_the_connection_after_the_response():
    app = make_app()
    body = SMUGGLED * (http.DRAIN_MAX // len(SMUGGLED) + 1)
    replies, _ = TestClient(app).exchange(post(b"/nope", body) + SMUGGLED)
    assert [r.status for r in replies] == [404]
    assert replies[0].header("connection") == "close"
    assert app.seen == []


def test_an_unread_chunked_body_closes_the_connection():
    app = make_app()
    chunked = (b"POST /nope HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
               b"%x\r\n" % len(SMUGGLED) + SMUGGLED + b"\r\n0\r\n\r\n")
    replies, _ = TestClient(app).exchange(chunked + SMUGGLED)
    assert [r.status for r in replies] == [404] and replies[0].header("connection") == "close"
    assert app.seen == []


def test_a_body_held_back_for_100_continue_closes_instead_of_draining():
    app = make_app()
    raw = post(b"/secret", SMUGGLED, b"Expect: 100-continue\r\n")
    replies, _ = TestClient(app).exchange(raw)
    assert [r.status for r in replies] == [401] and replies[0].header("connection") == "close"
    assert app.seen == []


def test_a_body_over_max_body_is_413_and_close():
    app = make_app()
    replies, _ = TestClient(app).exchange(post(b"/small", b"y" * 11) + SMUGGLED)
    assert [r.status for r in replies] == [413] and replies[0].header("connection") == "close"
    assert app.seen == []


def test_connection_state_is_explicit():
    conn = http.ServerConnection()
    raw = post(b"/x", b"12345")
    used = conn.receive_head(raw, 0, len(raw))
    assert conn.state == http.BODY and len(raw) - used == 5
    framing, chunked = conn.frame("POST", 200, 2)
    assert framing == [("Content-Length", 2)] and not chunked
    conn.response_done()
    assert conn.state == http.DONE and not conn.can_reuse()  # 5 body bytes unread
    assert conn.discard(raw, used, len(raw)) == 5 and conn.can_reuse()
    conn.next_request()
    raises(http.HTTPError, conn.receive_head, b"BAD\r\n\r\n", 0, 7)
    assert conn.state == http.MUST_CLOSE and not conn.can_reuse()


# --- routing, responses, errors ---------------------------------------------------------------

def test_routes_keep_alive_and_head():
    app = make_app()
    raw = (b"GET /open HTTP/1.1\r\nHost: x\r\n\r\nHEAD /open HTTP/1.1\r\nHost: x\r\n\r\n"
           b"GET /nothing HTTP/1.1\r\nHost: x\r\n\r\n")
    replies, _ = TestClient(app).exchange(raw, methods=("GET", "HEAD", "GET"))
    assert [(r.status, r.body) for r in replies] == [(200, b"open"), (200, b""),
                                                     (404, b"404 Not Found: nothing at /nothing\n")]
    assert replies[1].header("content-length") == "4"


def test_every_response_says_nosniff_and_app_headers():
    app = make_app()
    app.add_header("Content-Security-Policy", "default-src 'self'")
    reply = TestClient(app).request("GET", "/open")
    assert reply.header("x-content-type-options") == "nosniff"
    assert reply.header("content-security-policy") == "default-src 'self'"
    assert TestClient(app).request("GET", "/none").header("x-content-type-options") == "nosniff"
    raises(ValueError, app.add_header, "X-Bad", "a\r\nSet-Cookie: x")
    raises(ValueError, app.add_header, "Content-Length", "1")


# --- 5. handler mistakes ----------------------------------------------------------------------

def handler_app():
    app = Server()

    @app.route("/cl")
    async def cl(request):
        return Response(b"abc", headers=[("Content-Length", "3")])

    @app.route("/cl-wrong")
    async def cl_wrong(request):
        return Response(b"abc", headers=[("Content-Length", "10")])

    @app.route("/te")
    async def te(request):
        return Response(b"abc", headers=[("Transfer-Encoding", "chunked")])

    @app.route("/close")
    async def close(request):
        return Response(b"bye", headers=[("Connection", "close")])

    @app.route("/upgrade")
    async def upgrade(request):
        return Response(b"", headers=[("Connection", "upgrade")])

    @app.route("/split")
    async def split(request):
        return Response(b"", headers=[("X-A", "a\r\nSet-Cookie: evil=1")])

    @app.route("/status")
    async def status(request):
        return Response(b"", 101)

    @app.route("/gen")
    def gen(request):
        return (b"piece %d\n" % i for i in range(3))

    @app.route("/yields")
    def yields(request):
        yield b"data"

    @app.route("/plain")
    def plain(request):
        return b"plain"

    @app.route("/int")
    async def integer(request):
        return 42

    @app.route("/ok")
    async def ok(request):
        return "ok"
    return app


def test_handler_framing_headers_are_owned_by_the_server():
    app = handler_app()
    client = TestClient(app)
    reply = client.request("GET", "/cl")
    assert reply.status == 200 and reply.all("content-length") == ["3"]
    for path in ("/cl-wrong", "/te", "/upgrade", "/split", "/status"):
        reply = client.request("GET", path)
        assert reply.status == 500 and reply.header("connection") == "close", path
    assert any("Content-Length" in line for line in client.log)
    assert any("Transfer-Encoding" in line for line in client.log)
    get = b"GET /%s HTTP/1.1\r\nHost: x\r\n\r\n"
    replies, _ = client.exchange(get % b"close" + get % b"ok")
    assert [r.status for r in replies] == [200]  # closed after the body, as the handler asked
    assert replies[0].all("connection") == ["close"] and replies[0].body == b"bye"


def test_a_file_that_changed_size_since_its_stat_never_breaks_the_framing():
    # Response.file sends the size stat() gave: a file written meanwhile (an upload into a
    # served directory) has more or fewer bytes by the time it is read. More were sent after
    # the body, where the client reads the next response; with fewer, the client waited for
    # bytes that never came while the server answered its next request.
    import io

    app = Server()

    @app.route("/file/<size>")
    async def file(request):
        response = Response(io.BytesIO(b"0123456789"), content_type="text/plain")
        response.length = int(request.params["size"])  # what Response.file's stat said
        return response

    @app.route("/open")
    async def open_(request):
        return "open"

    next_request = b"GET /open HTTP/1.1\r\nHost: a\r\n\r\n"
    replies, _ = TestClient(app).exchange(b"GET /file/4 HTTP/1.1\r\nHost: a\r\n\r\n"
                                          + next_request)
    assert [(r.status, r.body) for r in replies] == [(200, b"0123"), (200, b"open")]
    stream = MemoryStream(b"GET /file/20 HTTP/1.1\r\nHost: a\r\n\r\n" + next_request)
    run(TestClient(app).serve(stream))
    assert bytes(stream.out).endswith(b"\r\n\r\n0123456789"), bytes(stream.out)
    assert stream.closed  # the body is short of its Content-Length: only closing says so


def test_every_handler_return_value_works_or_is_a_500():
    client = TestClient(handler_app())
    reply = client.request("GET", "/gen")
    assert (reply.status, reply.body) == (200, b"piece 0\npiece 1\npiece 2\n")
    assert client.request("GET", "/plain").body == b"plain"
    assert client.request("GET", "/yields").body == b"data"  # a generator handler: its body
    reply = client.request("GET", "/int")
    assert reply.status == 500
    assert client.request("GET", "/ok").body == b"ok"  # and the server goes on


# --- 3. Host and authority syntax -------------------------------------------------------------

BAD_HOSTS = (b"evil.example/phish?", b"user@evil.example", b"a b", b"dev.example:80x",
             b"[::1", b"evil.example%2F", b"dev.example:99999")


def test_hosts_that_are_not_host_port_are_refused():
    app = make_app()
    for host in BAD_HOSTS:
        replies, _ = TestClient(app).exchange(b"GET /open HTTP/1.1\r\nHost: " + host
                                              + b"\r\n\r\n" + SMUGGLED)
        assert [r.status for r in replies] == [400], host
        assert replies[0].header("connection") == "close" and not replies[0].header("location")
    replies, _ = TestClient(app).exchange(b"GET http://user@evil.example/x HTTP/1.1\r\n"
                                          b"Host: evil.example\r\n\r\n")
    assert [r.status for r in replies] == [400]
    assert app.seen == []


def test_split_authority():
    assert http.split_authority("dev.example:8080") == ("dev.example", 8080)
    assert http.split_authority("[::1]:8080") == ("[::1]", 8080)
    assert http.split_authority("192.0.2.1") == ("192.0.2.1", None)
    assert http.split_authority("dev.example:") == ("dev.example", None)


def test_the_redirect_keeps_an_absolute_form_target_as_sent():
    # Its path and query still percent-encoded, as for origin-form: decoded, %3f became a '?',
    # the query was dropped, and %0d%0a put CR LF in Location (the client got no answer).
    for target, location in ((b"http://dev/x?q=1", "https://dev:8443/x?q=1"),
                             (b"http://dev/x%3fy", "https://dev:8443/x%3fy"),
                             (b"http://dev/%0d%0aSet-Cookie:a",
                              "https://dev:8443/%0d%0aSet-Cookie:a"),
                             (b"http://dev?q=1", "https://dev:8443/?q=1"),
                             (b"/x%20y?q=%41", "https://dev:8443/x%20y?q=%41")):
        parser = http.RequestParser()
        raw = b"GET " + target + b" HTTP/1.1\r\nHost: dev\r\n\r\n"
        parser.feed(raw, 0, len(raw))
        assert https_location(parser.head, 8443) == location, target


# --- 4. paths that name something else on FAT or littlefs --------------------------------------

def test_paths_that_fat_reads_differently_are_refused():
    app = make_app()
    for target in (b"/static/..\\netsec-credentials", b"/static/..%5Cx", b"/a%00b", b"/C:/x",
                   b"/admin./x", b"/admin%20/x", b"/ADMINI~1/x"):
        replies, _ = TestClient(app).exchange(b"GET " + target + b" HTTP/1.1\r\nHost: x\r\n\r\n")
        assert [r.status for r in replies] == [400], target


def test_protect_ignores_letter_case():
    app = make_app()
    app.add_route("GET", "/ADMIN/x", lambda request: "admin's")
    assert TestClient(app).request("GET", "/ADMIN/x").status == 401
    assert TestClient(app).request("GET", "/Secret").status == 401


# --- 6. idle and slow clients -------------------------------------------------------------------

def test_an_idle_session_is_closed_for_a_waiting_client_but_never_a_busy_one():
    app = make_app(max_sessions=2)

    async def scenario():
        import asyncio
        import time
        idle = MemoryStream(b"GET /open HTTP/1.1\r\nHost: x\r\n\r\n", hold=True)
        busy = MemoryStream(b"POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 9\r\n\r\nabc",
                            hold=True)
        tasks = [asyncio.create_task(app.serve_stream(s, ("192.0.2.1", 1))) for s in (idle, busy)]
        for _ in range(20):
            await asyncio.sleep_ms(1)
        assert app.stats["active"] == 2
        app.stats["waiting"] = 1  # a client waits for a slot
        app.check_sessions(time.ticks_add(time.ticks_ms(), 1500))
        assert idle.closed and not busy.closed
        assert app.stats["reclaimed"] == 1 and app.stats["active"] == 1
        app.stats["waiting"] = 0
        busy.feed(b"defghi")
        busy.finish()
        for task in tasks:
            await task
        return idle, busy

    idle, busy = run(scenario())
    assert [r.body for r in parse_responses(idle.out)] == [b"open"]
    assert [r.body for r in parse_responses(busy.out)] == [b"abcdefghi"]


def test_a_trickling_body_is_closed_when_it_falls_below_min_rate():
    app = make_app(idle_timeout=1, min_rate=1000)

    async def scenario():
        import asyncio
        import time
        stream = MemoryStream(b"POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 99\r\n\r\n",
                              hold=True)
        task = asyncio.create_task(app.serve_stream(stream, ("192.0.2.1", 1)))
        start = time.ticks_ms()
        late = False
        for i in range(30):  # one byte per step: each step is within idle_timeout
            stream.feed(b"x")
            await asyncio.sleep_ms(1)
            now = time.ticks_add(start, 900 * (i + 1))  # as if 0.9 s passed per byte
            app.check_sessions(now)
            if stream.closed:
                late = True
                break
        stream.finish()
        await task
        return late, i

    late, steps = run(scenario())
    assert late and steps < 5, steps


def test_the_watchdog_ends_a_stuck_handler_and_frees_its_slot_at_once():
    app = make_app(max_sessions=1)

    @app.route("/stuck")
    async def stuck(request):
        import asyncio
        await asyncio.Event().wait()

    async def scenario():
        import asyncio
        import time
        stream = MemoryStream(b"GET /stuck HTTP/1.1\r\nHost: x\r\n\r\n", hold=True)
        task = asyncio.create_task(app.serve_stream(stream, ("192.0.2.1", 1)))
        for _ in range(10):
            await asyncio.sleep_ms(1)
        assert app.stats["active"] == 1
        app.check_sessions(time.ticks_add(time.ticks_ms(), app.idle_timeout * 1000 + 1))
        assert stream.closed and app.stats["active"] == 0  # before the task even runs again
        assert app.stats["timed_out"] == 1
        await task
        return app.stats["active"]

    assert run(scenario()) == 0
