"""Property test of netsec.server's request framing through the socket-free TestClient: for any
sequence of requests with bodies (which themselves look like requests), any split of the
bytes, and any handler behaviour (reads all, part or none of the body, raises before or after
reading), no body byte is ever parsed as a request head, every response has exactly one
framing, and the requests answered are exactly the ones sent, in order, up to a close."""
from hypothesis import given, settings, strategies as st
from testclient import TestClient

from netsec.server import HTTPError, Server

CANARY = b"GET /canary HTTP/1.1\r\nHost: x\r\n\r\n"
BEHAVIOURS = ("all", "part", "none", "raise", "raise_after_part")


def make_app():
    app = Server(max_body=3000)
    seen = app.seen = []

    @app.route("/canary")
    async def canary(request):
        seen.append("CANARY")
        return "canary"

    @app.route("/do/<behaviour>/<n>", methods=("POST", "GET"))
    async def do(request):
        seen.append(int(request.params["n"]))
        behaviour = request.params["behaviour"]
        if behaviour == "raise":
            raise HTTPError(409, "refused before reading")
        if behaviour in ("part", "raise_after_part"):
            await request.read(5)
            if behaviour == "raise_after_part":
                raise HTTPError(422, "refused after part")
        elif behaviour == "all":
            await request.read()
        return "done %s" % request.params["n"]
    return app


body = st.tuples(st.binary(max_size=300), st.integers(0, 3)).map(
    lambda b: b[0][:len(b[0]) // 2] + CANARY * b[1] + b[0][len(b[0]) // 2:])
request = st.tuples(st.sampled_from(BEHAVIOURS), body, st.sampled_from(("length", "chunked")),
                    st.booleans())


def encode(n, behaviour, payload, framing, expect):
    head = b"POST /do/%s/%d HTTP/1.1\r\nHost: x\r\n" % (behaviour.encode(), n)
    if expect:
        head += b"Expect: 100-continue\r\n"
    if framing == "chunked":
        pieces = [payload[i:i + 97] for i in range(0, len(payload), 97)]
        return (head + b"Transfer-Encoding: chunked\r\n\r\n"
                + b"".join(b"%x\r\n%s\r\n" % (len(p), p) for p in pieces) + b"0\r\n\r\n")
    return head + b"Content-Length: %d\r\n\r\n" % len(payload) + payload


@settings(max_examples=60, deadline=None)
@given(st.lists(request, min_size=1, max_size=6), st.integers(1, 300))
def test_no_body_byte_is_ever_a_request_head(requests, step):
    app = make_app()
    raw = b"".join(encode(n, *r) for n, r in enumerate(requests))
    replies, _ = TestClient(app).exchange(raw, step=step)  # one framing each, or it raises
    assert "CANARY" not in app.seen
    # The requests answered are the first ones sent, in order; the last answered one is the
    # last request, or its response said the connection closes.
    assert app.seen == list(range(len(app.seen)))
    assert len(replies) == len(app.seen)
    for n, reply in enumerate(replies):
        assert reply.status in (200, 409, 422), reply.status
        if reply.status == 200:
            assert reply.body == b"done %d" % n
    if len(replies) < len(requests):
        assert replies[-1].header("connection") == "close"
    for reply in replies[:-1]:
        assert reply.header("connection") is None
