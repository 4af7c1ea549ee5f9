# Unit tests for netsec.http; run by pytest on CPython and by run.py on MicroPython.
from check import raises
from netsec import http

GET = b"GET /index.html HTTP/1.1\r\nHost: device\r\n\r\n"


def parse(data, step=0, **limits):
    """Parse a head fed whole (step=0) or step bytes at a time; -> (head, bytes used)."""
    parser = http.RequestParser(**limits)
    used = 0
    if not step:
        used = parser.feed(data)
    else:
        while parser.head is None and used < len(data):
            used += parser.feed(data, used, min(used + step, len(data)))
    return parser.head, used


def refused(data, step=0, **limits):
    """The HTTPError a head raises, whole and byte by byte (both must agree)."""
    e1 = raises(http.HTTPError, parse, data, 0, **limits)
    e2 = raises(http.HTTPError, parse, data, step or 1, **limits)
    assert (e1.status, e1.close) == (e2.status, e2.close), (e1, e2)
    assert e1.close
    return e1.status


def decode_body(head_and_body, step=0, limit=None):
    head, used = parse(head_and_body)
    decoder = head.body_decoder(limit)
    out = bytearray()
    pos = used
    end = len(head_and_body)
    while not decoder.done and pos < end:
        stop = min(pos + step, end) if step else end
        a, b, n = decoder.feed(head_and_body, pos, stop)
        out.extend(head_and_body[a:b])
        pos += n
    return decoder, bytes(out), head_and_body[pos:]


# --- request line and headers -------------------------------------------------------------

def test_simple_get_in_any_split():
    for step in (0, 1, 2, 7):
        head, used = parse(GET + b"NEXT", step)
        assert head.method == "GET"
        assert head.path == "/index.html"
        assert head.version == "HTTP/1.1"
        assert head.keep_alive
        assert head.content_length is None and not head.chunked
        assert used == len(GET)


def test_incomplete_head_returns_none_and_consumes_everything():
    parser = http.RequestParser()
    assert parser.feed(GET[:-1]) == len(GET) - 1
    assert parser.head is None
    assert parser.feed(GET[-1:]) == 1
    assert parser.head.path == "/index.html"


def test_headers_case_insensitive_and_repeats_kept():
    head, _ = parse(b"GET / HTTP/1.1\r\nHost: d\r\nAccept: a\r\nX-Tag:  one \r\nx-tag: two\r\n\r\n")
    assert head.headers.get("ACCEPT") == "a"
    assert head.headers.get("x-TAG") == "one"  # OWS trimmed
    assert head.headers.get_all("X-Tag") == ["one", "two"]
    assert "accept" in head.headers
    assert "missing" not in head.headers
    assert head.headers.get("missing", "dflt") == "dflt"
    assert len(head.headers) == 4


def test_leading_empty_lines_ignored():
    head, used = parse(b"\r\n\r\n" + GET)
    assert head.path == "/index.html" and used == len(GET) + 4


def test_parser_reset_reuses_for_next_request():
    parser = http.RequestParser()
    data = GET + b"POST /b HTTP/1.1\r\nHost: d\r\nContent-Length: 0\r\n\r\n"
    used = parser.feed(data)
    assert parser.head.method == "GET"
    parser.reset()
    parser.feed(data, used)
    assert parser.head.method == "POST" and parser.head.path == "/b"
    assert parser.head.content_length == 0


def test_started_only_after_request_bytes():
    parser = http.RequestParser()
    assert not parser.started()
    parser.feed(b"\r\n")
    assert not parser.started()
    parser.feed(b"GE")
    assert parser.started()


def test_http10_and_connection_rules():
    head, _ = parse(b"GET / HTTP/1.0\r\n\r\n")
    assert head.version == "HTTP/1.0" and not head.keep_alive
    head, _ = parse(b"GET / HTTP/1.0\r\nConnection: Keep-Alive\r\n\r\n")
    assert head.keep_alive
    head, _ = parse(b"GET / HTTP/1.1\r\nHost: d\r\nConnection: foo, Close\r\n\r\n")
    assert not head.keep_alive


def test_host_required_once_for_http11():
    assert refused(b"GET / HTTP/1.1\r\n\r\n") == 400
    assert refused(b"GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n") == 400
    head, _ = parse(b"GET / HTTP/1.0\r\n\r\n")
    assert head.host is None


def test_absolute_form_target():
    head, _ = parse(b"GET https://dev.local:8443/a%2Fb?q=1 HTTP/1.1\r\nHost: x\r\n\r\n")
    assert head.host == "dev.local:8443"
    assert head.path == "/a/b" and head.query == {"q": "1"}
    head, _ = parse(b"GET http://dev HTTP/1.1\r\nHost: dev\r\n\r\n")
    assert head.path == "/"
    assert refused(b"GET ftp://dev/ HTTP/1.1\r\nHost: dev\r\n\r\n") == 400
    assert refused(b"GET index.html HTTP/1.1\r\nHost: dev\r\n\r\n") == 400


def test_asterisk_only_for_options():
    head, _ = parse(b"OPTIONS * HTTP/1.1\r\nHost: d\r\n\r\n")
    assert head.path == "*"
    assert refused(b"GET * HTTP/1.1\r\nHost: d\r\n\r\n") == 400


def test_malformed_request_lines_are_400():
    for line in (b"GET /", b"GET  / HTTP/1.1", b"GET / HTTP/1.1 ", b" GET / HTTP/1.1",
                 b"GET / http/1.1", b"GET / HTTP/11", b"G(T / HTTP/1.1", b"GET /a b HTTP/1.1",
                 b"GET /\x7f HTTP/1.1", b"GET /#frag HTTP/1.1", b"GET /\xc3\xa9 HTTP/1.1"):
        assert refused(line + b"\r\nHost: d\r\n\r\n") == 400, line


def test_unknown_method_is_501_and_other_versions_505():
    assert refused(b"BREW / HTTP/1.1\r\nHost: d\r\n\r\n") == 501
    assert refused(b"get / HTTP/1.1\r\nHost: d\r\n\r\n") == 501  # methods are case-sensitive
    assert refused(b"CONNECT d:443 HTTP/1.1\r\nHost: d\r\n\r\n") == 501
    assert refused(b"GET / HTTP/2.0\r\nHost: d\r\n\r\n") == 505


def test_malformed_header_lines_are_400():
    for line in (b"NoColon", b": empty-name", b"Bad Name: x", b"Name : x", b"X: a\x00b",
                 b"X: a\rb", b"X: \x1b[31m", b"X: \xff\xfe"):
        assert refused(b"GET / HTTP/1.1\r\nHost: d\r\n" + line + b"\r\n\r\n") == 400, line


def test_bare_lf_is_400():
    assert refused(b"GET / HTTP/1.1\nHost: d\r\n\r\n") == 400
    assert refused(b"GET / HTTP/1.1\r\nHost: d\n\r\n") == 400


def test_obs_fold_is_400_and_closes():
    assert refused(b"GET / HTTP/1.1\r\nHost: d\r\nX: a\r\n b\r\n\r\n") == 400
    assert refused(b"GET / HTTP/1.1\r\nHost: d\r\nX: a\r\n\tb\r\n\r\n") == 400
    assert refused(b"GET / HTTP/1.1\r\n Host: d\r\n\r\n") == 400


def test_utf8_header_value_kept():
    head, _ = parse(b"GET / HTTP/1.1\r\nHost: d\r\nX-Name: caf\xc3\xa9\r\n\r\n")
    assert head.headers.get("x-name") == "caf\u00e9"


# --- limits ------------------------------------------------------------------------------

def test_line_limit_exact_fits():
    name_value = b"X: " + b"v" * (100 - 3)
    head, _ = parse(b"GET / HTTP/1.1\r\nHost: d\r\n" + name_value + b"\r\n\r\n", max_line=100)
    assert len(head.headers.get("x")) == 97


def test_header_line_too_long_is_431():
    line = b"X: " + b"v" * 98
    assert refused(b"GET / HTTP/1.1\r\nHost: d\r\n" + line + b"\r\n\r\n", max_line=100) == 431
    # Also refused while still arriving, before any LF: memory stays bounded.
    e = raises(http.HTTPError, parse, b"GET / HTTP/1.1\r\nHost: d\r\nX: " + b"v" * 5000)
    assert e.status == 431


def test_default_line_limit_is_2k():
    ok = b"X: " + b"v" * (2048 - 3)
    parse(b"GET / HTTP/1.1\r\nHost: d\r\n" + ok + b"\r\n\r\n")
    assert refused(b"GET / HTTP/1.1\r\nHost: d\r\n" + ok + b"v\r\n\r\n") == 431


def test_long_uri_is_414():
    uri = b"/" + b"a" * 3000
    assert refused(b"GET " + uri + b" HTTP/1.1\r\nHost: d\r\n\r\n") == 414
    e = raises(http.HTTPError, parse, b"GET " + uri)  # no line end yet
    assert e.status == 414


def test_overlong_garbage_first_line_is_400():
    assert refused(b"x" * 3000 + b"\r\n\r\n") == 400
    assert refused(b"GET / HTTP/1.1" + b"1" * 3000 + b"\r\n\r\n") == 400


def test_header_count_limit_is_431():
    many = b"".join(b"X%d: v\r\n" % i for i in range(9))
    assert refused(b"GET / HTTP/1.1\r\nHost: d\r\n" + many + b"\r\n", max_headers=9) == 431
    head, _ = parse(b"GET / HTTP/1.1\r\nHost: d\r\n" + many + b"\r\n", max_headers=10)
    assert len(head.headers) == 10


def test_total_head_limit_is_431():
    many = b"".join(b"X%d: %s\r\n" % (i, b"v" * 100) for i in range(10))
    assert refused(b"GET / HTTP/1.1\r\nHost: d\r\n" + many + b"\r\n", max_head=1000) == 431
    assert refused(b"\r\n" * 600, max_head=1000) == 431  # empty lines count too


# --- body framing and smuggling ------------------------------------------------------------

def test_content_length_body_any_split():
    data = b"POST /u HTTP/1.1\r\nHost: d\r\nContent-Length: 11\r\n\r\nhello worldGET"
    for step in (0, 1, 3):
        decoder, body, rest = decode_body(data, step)
        assert decoder.done and body == b"hello world" and rest == b"GET"
        assert decoder.received == 11


def test_no_body_without_framing_headers():
    head, _ = parse(GET)
    assert head.body_decoder().done


def test_identical_duplicate_content_length_accepted():
    head, _ = parse(b"POST / HTTP/1.1\r\nHost: d\r\nContent-Length: 5\r\nContent-Length: 5\r\n\r\n")
    assert head.content_length == 5
    head, _ = parse(b"POST / HTTP/1.1\r\nHost: d\r\nContent-Length: 5, 5\r\n\r\n")
    assert head.content_length == 5


def test_differing_content_length_is_400():
    assert refused(b"POST / HTTP/1.1\r\nHost: d\r\nContent-Length: 5\r\n"
                   b"Content-Length: 6\r\n\r\n") == 400
    assert refused(b"POST / HTTP/1.1\r\nHost: d\r\nContent-Length: 5, 6\r\n\r\n") == 400


def test_bad_content_length_is_400():
    for value in (b"", b"-1", b"+5", b"0x10", b"5 5", b"1e3", b"\xd9\xa3"):
        assert refused(b"POST / HTTP/1.1\r\nHost: d\r\nContent-Length: " + value
                       + b"\r\n\r\n") == 400, value


def test_huge_content_length_is_413():
    assert refused(b"POST / HTTP/1.1\r\nHost: d\r\nContent-Length: 99999999999\r\n\r\n") == 413


def test_content_length_and_transfer_encoding_is_400():
    assert refused(b"POST / HTTP/1.1\r\nHost: d\r\nContent-Length: 5\r\n"
                   b"Transfer-Encoding: chunked\r\n\r\n") == 400


def test_transfer_encoding_rules():
    assert refused(b"POST / HTTP/1.1\r\nHost: d\r\nTransfer-Encoding: chunked, gzip\r\n\r\n") == 400
    assert refused(b"POST / HTTP/1.1\r\nHost: d\r\nTransfer-Encoding: xchunked\r\n\r\n") == 400
    assert refused(b"POST / HTTP/1.1\r\nHost: d\r\nTransfer-Encoding: chunked\r\n"
                   b"Transfer-Encoding: chunked\r\n\r\n") == 400
    assert refused(b"POST / HTTP/1.1\r\nHost: d\r\nTransfer-Encoding: gzip, chunked\r\n\r\n") == 501
    assert refused(b"POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n") == 400
    head, _ = parse(b"POST / HTTP/1.1\r\nHost: d\r\nTransfer-Encoding: Chunked\r\n\r\n")
    assert head.chunked


CHUNKED = (b"POST /u HTTP/1.1\r\nHost: d\r\nTransfer-Encoding: chunked\r\n\r\n"
           b"5\r\nhello\r\n6;name=val\r\n world\r\n0\r\nX-Sum: 42\r\n\r\nNEXT")


def test_chunked_body_with_extension_and_trailer_any_split():
    for step in (0, 1, 2, 5):
        decoder, body, rest = decode_body(CHUNKED, step)
        assert decoder.done and body == b"hello world" and rest == b"NEXT", step
        assert decoder.trailers.get("x-sum") == "42"


def test_chunk_size_leading_zeros_and_uppercase():
    data = (b"POST / HTTP/1.1\r\nHost: d\r\nTransfer-Encoding: chunked\r\n\r\n"
            b"000A\r\n0123456789\r\n0\r\n\r\n")
    decoder, body, _ = decode_body(data)
    assert body == b"0123456789"


def chunked_request(body_framing):
    return b"POST / HTTP/1.1\r\nHost: d\r\nTransfer-Encoding: chunked\r\n\r\n" + body_framing


def test_invalid_chunk_sizes_are_400():
    for framing in (b"g\r\n", b"-1\r\n", b" 5\r\n", b"0x5\r\n", b"\r\n", b"5 \r\n", b"+5\r\n",
                    b"5\nhello", b"5\r\nhelloXX", b"5;a\x00\r\n"):
        e = raises(http.HTTPError, decode_body, chunked_request(framing))
        assert e.status == 400 and e.close, framing


def test_chunk_size_overflow_is_413():
    e = raises(http.HTTPError, decode_body, chunked_request(b"1" + b"0" * 40 + b"\r\n"))
    assert e.status == 413


def test_body_limit_is_413():
    head, _ = parse(b"POST / HTTP/1.1\r\nHost: d\r\nContent-Length: 11\r\n\r\n")
    e = raises(http.HTTPError, head.body_decoder, 10)
    assert e.status == 413 and e.close
    assert head.body_decoder(11) is not None
    e = raises(http.HTTPError, decode_body, CHUNKED, 0, 10)
    assert e.status == 413


def test_chunked_trailer_with_obs_fold_is_400():
    e = raises(http.HTTPError, decode_body, chunked_request(b"0\r\nX: a\r\n b\r\n\r\n"), 1)
    assert e.status == 400


# --- decoding and normalisation ------------------------------------------------------------

def test_percent_decoding_of_path_and_query():
    head, _ = parse(b"GET /caf%C3%A9/a%20b?name=J%C3%BCrg+en&x=%26&flag HTTP/1.1\r\n"
                    b"Host: d\r\n\r\n")
    assert head.path == "/caf\u00e9/a b"
    assert head.query == {"name": "J\u00fcrg en", "x": "&", "flag": ""}
    assert head.query_string == "name=J%C3%BCrg+en&x=%26&flag"
    assert head.target == "/caf%C3%A9/a%20b?name=J%C3%BCrg+en&x=%26&flag"


def test_plus_in_path_is_literal():
    head, _ = parse(b"GET /a+b HTTP/1.1\r\nHost: d\r\n\r\n")
    assert head.path == "/a+b"


def test_bad_escapes_and_nul_are_400():
    for target in (b"/%", b"/%2", b"/%zz", b"/a%00b", b"/%C3%28", b"/?q=%", b"/?q=%ff"):
        assert refused(b"GET " + target + b" HTTP/1.1\r\nHost: d\r\n\r\n") == 400, target


def test_normalize_path():
    cases = [("/", "/"), ("/a/b", "/a/b"), ("/a/./b", "/a/b"), ("/a/../b", "/b"),
             ("/../../etc/passwd", "/etc/passwd"), ("/a/b/..", "/a/"), ("//a//b/", "/a/b/"),
             ("/a/.", "/a/"), ("/..", "/"), ("/...", "/..."), ("/a/..b", "/a/..b")]
    for raw, want in cases:
        assert http.normalize_path(raw) == want, raw


def test_encoded_dot_dot_cannot_escape():
    for target in (b"/%2e%2e/%2e%2e/etc/passwd", b"/static/..%2f..%2fsecret", b"/a/%2E%2E%2F"):
        head, _ = parse(b"GET " + target + b" HTTP/1.1\r\nHost: d\r\n\r\n")
        assert ".." not in head.path.split("/"), head.path
        assert head.path.startswith("/")


def test_unquote():
    assert http.unquote(b"a%2Fb%2f") == b"a/b/"
    assert http.unquote(b"a+b") == b"a+b"
    assert http.unquote(b"a+b", True) == b"a b"


# --- response side -------------------------------------------------------------------------

def test_response_head_bytes():
    assert http.response_head(404, [("Content-Length", 0)]) == \
        b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n"
    assert http.response_head(299).startswith(b"HTTP/1.1 299 Unknown\r\n")


def test_response_head_refuses_splitting():
    raises(ValueError, http.response_head, 200, [("X", "a\r\nSet-Cookie: evil=1")])
    raises(ValueError, http.response_head, 200, [("X", "a\nb")])
    raises(ValueError, http.response_head, 200, [("Bad Name", "v")])


def test_frame_response_rules():
    h11, _ = parse(GET)
    assert http.frame_response(h11, 200, 5) == ([("Content-Length", 5)], False, True)
    assert http.frame_response(h11, 200, None) == ([("Transfer-Encoding", "chunked")], True, True)
    assert http.frame_response(h11, 304, None) == ([], False, True)
    assert http.frame_response(h11, 200, 5, close=True) == \
        ([("Content-Length", 5), ("Connection", "close")], False, False)
    h10, _ = parse(b"GET / HTTP/1.0\r\n\r\n")
    assert http.frame_response(h10, 200, None) == ([("Connection", "close")], False, False)
    h10ka, _ = parse(b"GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n")
    assert http.frame_response(h10ka, 200, 3) == \
        ([("Content-Length", 3), ("Connection", "keep-alive")], False, True)
    assert http.frame_response(h10ka, 200, None)[2] is False  # body ends at close
    assert http.frame_response(None, 400, 0) == \
        ([("Content-Length", 0), ("Connection", "close")], False, False)


def test_expect_continue():
    head, _ = parse(b"PUT / HTTP/1.1\r\nHost: d\r\nContent-Length: 3\r\n"
                    b"Expect: 100-Continue\r\n\r\n")
    assert head.expect_continue
    head, _ = parse(GET)
    assert not head.expect_continue


def test_chunk_framing():
    assert http.chunk_head(255) == b"ff\r\n"
    assert http.LAST_CHUNK == b"0\r\n\r\n"


def test_error_carries_status_reason_close():
    e = http.HTTPError(404, "no such sensor")
    assert (e.status, e.reason, e.close) == (404, "no such sensor", False)
    assert "404" in str(e)
