"""Property tests for netsec.http (CPython + hypothesis): valid requests round-trip through the
parser in any split, path normalisation never escapes its root, responses cannot be split."""
import posixpath
from urllib.parse import quote

from hypothesis import given, settings, strategies as st

from netsec import http

TCHARS = "!#$%&'*+-.^_`|~0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
token = st.text(alphabet=TCHARS, min_size=1, max_size=20)
# Field values: visible ASCII and inner spaces; OWS around a value is trimmed, so none here.
field_value = st.text(alphabet=st.characters(min_codepoint=0x20, max_codepoint=0x7E),
                      max_size=40).map(str.strip)
text = st.text(alphabet=st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00"))
segment = text.filter(lambda s: s and "/" not in s).map(lambda s: s[:12])
# What a file system could read as something else is refused (see the test below): '\\' and
# NUL, drive-like "C:", trailing dots and spaces, FAT short aliases ("~1").
servable = segment.filter(lambda s: "\\" not in s and "~" not in s and s[-1] not in ". "
                          and not (len(s) == 2 and s[1] == ":"))
FRAMING = {"host", "content-length", "transfer-encoding", "connection", "expect"}
header = st.tuples(token.filter(lambda n: n.lower() not in FRAMING), field_value)


def splits(data, cuts):
    """data cut at the given (sorted, in-range) positions."""
    points = sorted({c % (len(data) + 1) for c in cuts}) + [len(data)]
    out, last = [], 0
    for p in points:
        out.append(data[last:p])
        last = p
    return out


def feed_head(pieces):
    parser = http.RequestParser()
    buf = b"".join(pieces)
    pos = 0
    for piece in pieces:
        if parser.head is not None:
            break
        pos += parser.feed(buf, pos, pos + len(piece))
    return parser.head, buf[pos:]


def feed_body(decoder, data, cuts):
    out = bytearray()
    pos = 0
    for piece in splits(data, cuts):
        end = pos + len(piece)
        while pos < end and not decoder.done:
            a, b, used = decoder.feed(data, pos, end)
            out += data[a:b]
            pos += used
        if decoder.done:
            break
    return bytes(out), data[pos:]


def chunked(body, sizes):
    out, pos = bytearray(), 0
    for size in sizes:
        if pos >= len(body):
            break
        piece = body[pos:pos + size]
        out += b"%x\r\n" % len(piece) + piece + b"\r\n"
        pos += len(piece)
    if pos < len(body):
        out += b"%x\r\n" % (len(body) - pos) + body[pos:] + b"\r\n"
    return bytes(out)


@st.composite
def requests(draw):
    method = draw(st.sampled_from(http.METHODS))
    segments = draw(st.lists(servable, max_size=4))
    query = draw(st.dictionaries(text.filter(bool).map(lambda s: s[:8]), text.map(lambda s: s[:8]),
                                 max_size=3))
    headers = draw(st.lists(header, max_size=8))
    body = draw(st.binary(max_size=300))
    use_chunked = draw(st.booleans())
    sizes = draw(st.lists(st.integers(1, 64), max_size=8))
    trailers = draw(st.lists(header, max_size=2)) if use_chunked else []
    keep_alive = draw(st.booleans())
    return method, segments, query, headers, body, use_chunked, sizes, trailers, keep_alive


def serialize(method, segments, query, headers, body, use_chunked, sizes, trailers, keep_alive):
    target = "/" + "/".join(quote(s, safe="") for s in segments)
    if query:
        target += "?" + "&".join(quote(k, safe="") + "=" + quote(v, safe="")
                                 for k, v in query.items())
    lines = ["%s %s HTTP/1.1" % (method, target), "Host: device.local"]
    lines += ["%s: %s" % h for h in headers]
    if not keep_alive:
        lines.append("Connection: close")
    if use_chunked:
        lines.append("Transfer-Encoding: chunked")
        framed = chunked(body, sizes) + b"0\r\n" + b"".join(
            ("%s: %s\r\n" % t).encode() for t in trailers) + b"\r\n"
    else:
        lines.append("Content-Length: %d" % len(body))
        framed = body
    return ("\r\n".join(lines) + "\r\n\r\n").encode(), framed


@settings(max_examples=400, deadline=None)
@given(requests(), st.lists(st.integers(0, 10000), max_size=12),
       st.lists(st.integers(0, 10000), max_size=12))
def test_valid_requests_round_trip_in_any_split(req, head_cuts, body_cuts):
    method, segments, query, headers, body, use_chunked, sizes, trailers, keep_alive = req
    head_bytes, framed = serialize(*req)
    after = b"GET /next HTTP/1.1\r\n"
    head, rest = feed_head(splits(head_bytes + framed + after, head_cuts))
    assert head is not None
    assert head.method == method
    assert head.path == http.normalize_path("/" + "/".join(segments))
    assert head.query == query
    assert head.keep_alive == keep_alive
    assert head.chunked == use_chunked
    for name, value in headers:
        assert value in head.headers.get_all(name)
    got, leftover = feed_body(head.body_decoder(), rest, body_cuts)
    assert got == body
    assert leftover == after
    if use_chunked:
        decoder = head.body_decoder()
        feed_body(decoder, rest, [])
        assert [(n.lower(), v) for n, v in trailers] == list(decoder.trailers)


@settings(max_examples=400, deadline=None)
@given(st.lists(st.sampled_from(["a", "b", ".", "..", "", "...", "%2e%2e", "c d"]), max_size=10))
def test_normalized_path_never_escapes_root(parts):
    raw = "/" + "/".join(parts)
    path = http.normalize_path(raw)
    assert path.startswith("/")
    assert ".." not in path.split("/") and "." not in path.split("/")
    assert http.normalize_path(path) == path  # idempotent
    root = "/srv/www"
    joined = posixpath.normpath(root + path)
    assert joined == root or joined.startswith(root + "/")


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=60))
def test_unquote_inverts_quote(raw):
    assert http.unquote(quote(raw, safe="").encode()) == raw


@settings(max_examples=300, deadline=None)
@given(st.lists(st.tuples(st.one_of(token, st.text(max_size=12)),
                          st.text(alphabet="ab: \t\r\n\x00\x7f\u00e9", max_size=12)), max_size=5),
       st.integers(100, 599))
def test_response_head_is_never_split(headers, status):
    try:
        out = http.response_head(status, headers)
    except ValueError:
        return
    lines = out.split(b"\r\n")
    assert lines[-2:] == [b"", b""]
    assert len(lines) == len(headers) + 3  # status line, one per header, blank, trailing ""
    assert b"\n" not in out.replace(b"\r\n", b"")
    assert b"\r" not in out.replace(b"\r\n", b"")


@given(st.lists(servable, max_size=3), st.sampled_from(["\\", "a\\b", "C:", "x.", "x ", "ADMINI~1"]),
       st.lists(servable, max_size=3))
def test_a_segment_a_file_system_reads_differently_is_400(before, bad, after):
    target = "/" + "/".join(quote(s, safe="") for s in before + [bad] + after)
    raw = ("GET %s HTTP/1.1\r\nHost: d\r\n\r\n" % target).encode()
    try:
        http.RequestParser().feed(raw)
    except http.HTTPError as e:
        assert e.status == 400 and e.close
    else:
        raise AssertionError("%r was accepted" % target)
