"""Fuzz target for netsec.http, driven by hypothesis (no atheris needed).

fuzz_one(data) is the target: its first byte picks a split stride, the rest is the stream a
client sent. Whatever the bytes, the parser and body decoder raise nothing but HTTPError, give
the same answer whole as split, and hold no more than one line of partial input.
"""
from hypothesis import given, settings, strategies as st

from netsec import http

MAX_LINE = 64  # small limits so random input reaches them
LIMITS = dict(max_line=MAX_LINE, max_headers=6, max_head=256)


def outcome(stream, stride):
    """Parse a head then its body, fed `stride` bytes at a time (0: all at once)."""
    parser = http.RequestParser(**LIMITS)
    pos, end = 0, len(stream)
    try:
        while parser.head is None and pos < end:
            stop = min(pos + stride, end) if stride else end
            used = parser.feed(stream, pos, stop)
            assert parser._lines.pending() <= MAX_LINE + 1  # bounded memory
            # An incomplete head swallows all it is given; a complete one stops at its end.
            assert used == stop - pos if parser.head is None else 0 < used <= stop - pos
            pos += used
        head = parser.head
        if head is None:
            return ("incomplete",)
        summary = (head.method, head.path, head.query, list(head.headers), head.keep_alive,
                   head.content_length, head.chunked)
        decoder = head.body_decoder(limit=1000)
        body = bytearray()
        while not decoder.done and pos < end:
            stop = min(pos + stride, end) if stride else end
            while pos < stop and not decoder.done:
                a, b, used = decoder.feed(stream, pos, stop)
                assert pos <= a <= b <= pos + used <= stop
                body += stream[a:b]
                pos += used
        return ("parsed", summary, bytes(body), decoder.done, stream[pos:])
    except http.HTTPError as e:
        assert e.close and e.status in http.REASONS
        return ("refused", e.status)


def fuzz_one(data):
    if not data:
        return
    stride, stream = data[0] % 17, data[1:]
    assert outcome(stream, stride) == outcome(stream, 0)


# Fragments of requests: random lines of them reach deep parser states.
PIECES = [b"GET ", b"POST ", b"BREW ", b" HTTP/2.0", b"Content-Length: 2000", b"fffff",
          b"/a", b"/../", b"%2e", b"%", b"?q=1&r", b" HTTP/1.1", b" HTTP/1.0",
          b"\r\n", b"\n", b"\r", b" ", b"\t", b":", b"Host: d", b"Content-Length: 5",
          b"Content-Length: 05", b"Content-Length: 6", b"Transfer-Encoding: chunked",
          b"Connection: close", b"X: \xc3\xa9", b"\x00", b"\xff", b"5", b"0", b"a;x=y",
          b"hello", b"\r\n\r\n", b"x" * 70]


@settings(max_examples=3000, deadline=None)
@given(st.binary(max_size=400))
def test_fuzz_arbitrary_bytes(data):
    fuzz_one(data)


piece = st.sampled_from(PIECES)
fragments = st.lists(piece, max_size=5).map(b"".join)
request_line = st.one_of(st.sampled_from([b"GET / HTTP/1.1", b"POST /u?a=%41 HTTP/1.1",
                                          b"GET /x HTTP/1.0", b"BREW / HTTP/1.1",
                                          b"GET / HTTP/2.0"]), fragments)
header_line = st.one_of(st.sampled_from([b"Host: d", b"Content-Length: 5", b"Connection: close",
                                         b"Transfer-Encoding: chunked", b"X: y"]), fragments)
shaped_request = st.tuples(request_line, st.lists(header_line, max_size=9), fragments).map(
    lambda t: t[0] + b"\r\n" + b"".join(h + b"\r\n" for h in t[1]) + b"\r\n" + t[2])


@settings(max_examples=3000, deadline=None)
@given(st.integers(0, 255), shaped_request)
def test_fuzz_request_shaped_bytes(stride, stream):
    fuzz_one(bytes([stride]) + stream)


@settings(max_examples=1500, deadline=None)
@given(st.integers(0, 255), st.lists(st.tuples(st.integers(0, 200), st.binary(max_size=3)),
                                     max_size=4))
def test_fuzz_mutated_valid_requests(stride, mutations):
    stream = bytearray(b"POST /up?x=1 HTTP/1.1\r\nHost: d\r\nTransfer-Encoding: chunked\r\n\r\n"
                       b"5\r\nhello\r\n3;e=1\r\nabc\r\n0\r\nT: v\r\n\r\nGET / HTTP/1.1\r\n")
    for at, replacement in mutations:
        at %= len(stream)
        stream[at:at + 1] = replacement
    fuzz_one(bytes([stride]) + bytes(stream))
