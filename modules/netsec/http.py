"""Sans-IO HTTP/1.1 (RFC 9112) for the netsec server: bytes in, objects out, no sockets.

RequestParser turns a request head fed in any split into a RequestHead; BodyDecoder unframes
the body (Content-Length or chunked); response_head / frame_response / chunk_head write the
response side. Every refusal is an HTTPError carrying the status to send and whether the
connection must close. Runs unchanged on CPython and MicroPython.
"""

MAX_LINE = 2048  # request line and each header line, CRLF excluded
MAX_HEADERS = 32
MAX_HEAD = 8192  # request line + headers + CRLFs
METHODS = ("GET", "HEAD", "POST", "PUT", "DELETE", "OPTIONS", "PATCH")

REASONS = {
    100: "Continue", 200: "OK", 201: "Created", 204: "No Content",
    301: "Moved Permanently", 302: "Found", 303: "See Other", 304: "Not Modified",
    307: "Temporary Redirect", 308: "Permanent Redirect",
    400: "Bad Request", 401: "Unauthorized", 403: "Forbidden", 404: "Not Found",
    405: "Method Not Allowed", 408: "Request Timeout", 409: "Conflict", 411: "Length Required",
    413: "Content Too Large", 414: "URI Too Long", 415: "Unsupported Media Type",
    429: "Too Many Requests", 431: "Request Header Fields Too Large",
    500: "Internal Server Error", 501: "Not Implemented", 503: "Service Unavailable",
    505: "HTTP Version Not Supported",
}

# Content-Length values above this many digits are refused outright: they cannot be a body a
# device accepts, and 9 digits stay a small int on 32-bit MicroPython.
_MAX_LENGTH_DIGITS = 9
_MAX_CHUNK_DIGITS = 7  # 0xFFFFFFF: likewise a small int everywhere


class HTTPError(Exception):
    """A request the server refuses: the status to answer, a short reason, whether to close,
    and headers the answer needs (Allow for 405, WWW-Authenticate for 401).

    The parser always sets close=True: after a bad head the byte stream cannot be trusted.
    Handlers may raise HTTPError(404, "no such sensor") and the connection stays open.
    """

    def __init__(self, status, reason, close=False, headers=()):
        super().__init__("%d %s" % (status, reason))
        self.status = status
        self.reason = reason
        self.close = close
        self.headers = list(headers)


def _fail(status, reason):
    return HTTPError(status, reason, True)


def _table(chars):
    t = bytearray(256)
    for c in chars:
        t[c] = 1
    return bytes(t)


_TCHAR = _table(b"!#$%&'*+-.^_`|~0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ")
_HEXDIGIT = b"0123456789abcdef"
_REG_NAME = _table(b"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-._~!$&'()*+,;=")
_IPV6 = _table(b"0123456789abcdefABCDEF:.")


def _is_token(b):
    if not b:
        return False
    for c in b:
        if not _TCHAR[c]:
            return False
    return True


def _is_field_value(b):
    # VCHAR, obs-text, SP and HTAB; any other control byte (CR, LF, NUL...) is refused.
    for c in b:
        if (c < 0x20 and c != 9) or c == 0x7F:
            return False
    return True


def _hex_value(c):
    if 48 <= c <= 57:
        return c - 48
    c |= 0x20  # fold A-F to a-f
    if 97 <= c <= 102:
        return c - 87
    return -1


def _is_digits(s):
    if not s:
        return False
    for ch in s:
        if ch < "0" or ch > "9":  # str.isdigit() would also take other scripts' digits
            return False
    return True


def _text(b, what):
    try:
        return b.decode()
    except ValueError:  # UnicodeError is a ValueError on both CPython and MicroPython
        raise _fail(400, what + " is not valid UTF-8")


class Headers:
    """Header fields in arrival order; names are matched case-insensitively, repeats are kept."""

    def __init__(self):
        self._fields = []  # (lowercase name, value)

    def add(self, name, value):
        self._fields.append((name.lower(), value))

    def get(self, name, default=None):
        name = name.lower()
        for n, v in self._fields:
            if n == name:
                return v
        return default

    def get_all(self, name):
        name = name.lower()
        return [v for n, v in self._fields if n == name]

    def tokens(self, name):
        """Members of a comma-separated list field (all its lines), lowercased."""
        out = []
        for value in self.get_all(name):
            for item in value.split(","):
                item = item.strip().lower()
                if item:
                    out.append(item)
        return out

    def __contains__(self, name):
        return self.get(name) is not None

    def __len__(self):
        return len(self._fields)

    def __iter__(self):
        return iter(self._fields)


def unquote(b, plus=False):
    """Percent-decode bytes (and '+' to space when plus); a broken %-escape is a 400."""
    if b.find(b"%") < 0 and not (plus and b.find(b"+") >= 0):
        return b
    out = bytearray()
    i = 0
    n = len(b)
    while i < n:
        c = b[i]
        if c == 37:  # '%'
            hi = _hex_value(b[i + 1]) if i + 1 < n else -1
            lo = _hex_value(b[i + 2]) if i + 2 < n else -1
            if hi < 0 or lo < 0:
                raise _fail(400, "broken percent-escape in request target")
            out.append(hi * 16 + lo)
            i += 3
        else:
            out.append(32 if (c == 43 and plus) else c)
            i += 1
    return bytes(out)


def normalize_path(path):
    """Resolve '.', '..' and empty segments so the result never climbs above '/'.

    A static root joined with the result therefore cannot be escaped, whatever the client sent.
    """
    segments = []
    for seg in path.split("/"):
        if seg == "" or seg == ".":
            continue
        if seg == "..":
            if segments:
                segments.pop()
            continue
        segments.append(seg)
    out = "/" + "/".join(segments)
    if segments and (path.endswith("/") or path.endswith("/.") or path.endswith("/..")):
        out += "/"
    return out


def _check_path(path):
    # A decoded path names files on FAT and littlefs too: a '\\' is a separator on FAT, NUL ends
    # a C string, "C:" looks like a drive, and FAT drops a name's trailing dots and spaces
    # ("admin." is "admin") and finds a long name by its short alias ("ADMINI~1"). None of these
    # can be part of a path this server serves.
    for seg in path.split("/"):
        if seg == "." or seg == "..":
            continue
        if seg.find("\\") >= 0 or seg.find("\x00") >= 0:
            raise _fail(400, "request path contains a backslash or NUL")
        if seg[-1:] == "." or seg[-1:] == " ":
            raise _fail(400, "path segment %r ends in a dot or space" % seg)
        if len(seg) == 2 and seg[1] == ":":
            raise _fail(400, "path segment %r looks like a drive" % seg)
        tilde = seg.find("~")
        if 0 <= tilde < len(seg) - 1 and "0" <= seg[tilde + 1] <= "9":
            raise _fail(400, "path segment %r looks like a FAT short name" % seg)


def _is_reg_name(host):
    # RFC 3986 reg-name without pct-encoded (a browser would decode "%2F" into a '/'):
    # unreserved / sub-delims, IPv4 addresses included.
    for c in host:
        if not _REG_NAME[c]:
            return False
    return True


def split_authority(value):
    """(host, port) for a Host value or absolute-form authority: uri-host [":" port] (RFC 9112
    3.2, RFC 3986 3.2). port is an int, or None when absent or empty. Userinfo, paths, spaces,
    a non-numeric port, anything else is HTTPError 400 (close)."""
    b = value.encode()
    if b[:1] == b"[":  # IP-literal: IPv6 only (IPvFuture is refused: nobody sends it)
        end = b.find(b"]")
        literal = b[1:end]
        if end < 0 or not literal or not all(_IPV6[c] for c in literal):
            raise _fail(400, "Host %r is not a valid [IPv6] literal" % value)
        host, rest = value[:end + 1], b[end + 1:]
    else:
        colon = b.find(b":")
        name = b if colon < 0 else b[:colon]
        if not _is_reg_name(name):
            raise _fail(400, "Host %r is not host[:port]" % value)
        host, rest = name.decode(), b[len(name):]
    if not rest or rest == b":":
        return host, None
    if rest[:1] != b":" or len(rest) > 6 or not _is_digits(rest[1:].decode()) \
            or int(rest[1:]) > 65535:
        raise _fail(400, "Host %r has an invalid port" % value)
    return host, int(rest[1:])


def parse_query(qs):
    """'a=1&b=x%20y' -> {'a': '1', 'b': 'x y'}; a repeated name keeps its last value."""
    result = {}
    for part in qs.split("&"):
        if not part:
            continue
        eq = part.find("=")
        if eq < 0:
            name, value = part, ""
        else:
            name, value = part[:eq], part[eq + 1:]
        name = _text(unquote(name.encode(), True), "query")
        result[name] = _text(unquote(value.encode(), True), "query")
    return result


class RequestHead:
    """A parsed request head. Body framing: content_length (int or None) or chunked."""

    def __init__(self, method, target, version, headers):
        self.method = method
        self.target = target  # as sent, still percent-encoded
        self.origin_form = "/"  # the target's "/path?query" as sent, also of an absolute-form
        self.version = version  # "HTTP/1.1" or "HTTP/1.0"
        self.headers = headers
        self.host = None
        self.path = "/"  # percent-decoded and normalized
        self.query_string = ""  # as sent
        self.query = {}
        self.content_length = None
        self.chunked = False
        self.keep_alive = False
        self.expect_continue = False

    def body_decoder(self, limit=None):
        """A BodyDecoder for this request's body, refusing more than limit bytes (413)."""
        return BodyDecoder(self.content_length or 0, self.chunked, limit)


def _split_target(head, target):
    # origin-form "/p?q", absolute-form "http://host/p?q", asterisk-form "*" (OPTIONS only).
    if target == b"*":
        if head.method != "OPTIONS":
            raise _fail(400, "request target '*' is only valid for OPTIONS")
        head.path = "*"
        return
    if target[:1] != b"/":
        scheme_end = target.find(b"://")
        if scheme_end < 0 or target[:scheme_end].lower() not in (b"http", b"https"):
            raise _fail(400, "request target must start with '/' or 'http(s)://'")
        rest = target[scheme_end + 3:]
        cut = len(rest)
        for sep in (b"/", b"?"):
            i = rest.find(sep)
            if 0 <= i < cut:
                cut = i
        if cut == 0:
            raise _fail(400, "absolute request target has no host")
        head.host = rest[:cut].decode()
        split_authority(head.host)  # 400 for userinfo or anything else that is not host[:port]
        target = rest[cut:]
        if target[:1] != b"/":
            target = b"/" + target
    head.origin_form = target.decode()
    q = target.find(b"?")
    raw_path = target if q < 0 else target[:q]
    if q >= 0:
        head.query_string = target[q + 1:].decode()
        head.query = parse_query(head.query_string)
    path = _text(unquote(raw_path), "request path")
    _check_path(path)
    head.path = normalize_path(path)


def _parse_request_line(line, headers):
    sp1 = line.find(b" ")
    sp2 = line.find(b" ", sp1 + 1) if sp1 > 0 else -1
    if sp1 <= 0 or sp2 <= sp1 + 1 or line.find(b" ", sp2 + 1) >= 0:
        raise _fail(400, "request line must be 'METHOD SP target SP HTTP/1.1'")
    method = line[:sp1]
    target = line[sp1 + 1:sp2]
    version = line[sp2 + 1:]
    if not _is_token(method):
        raise _fail(400, "method is not a token")
    if version == b"HTTP/1.1" or version == b"HTTP/1.0":
        version = version.decode()
    elif (len(version) == 8 and version[:5] == b"HTTP/" and version[6] == 46
          and 48 <= version[5] <= 57 and 48 <= version[7] <= 57):
        raise _fail(505, "only HTTP/1.1 and HTTP/1.0 are served")
    else:
        raise _fail(400, "malformed HTTP version")
    method = method.decode()
    if method not in METHODS:
        raise _fail(501, "method " + method + " is not implemented")
    for c in target:
        # Visible ASCII only; no fragment ('#'); no '\\', which is not a URI character (RFC 3986)
        # but a path separator on FAT.
        if c < 0x21 or c > 0x7E or c == 35 or c == 92:
            raise _fail(400, "request target contains a byte that must be percent-encoded")
    head = RequestHead(method, target.decode(), version, headers)
    _split_target(head, target)
    return head


def _parse_field(line, headers, count_limit, what):
    if line[:1] == b" " or line[:1] == b"\t":
        raise _fail(400, "obsolete line folding in " + what)
    colon = line.find(b":")
    name = line[:colon] if colon > 0 else b""
    if not _is_token(name):
        raise _fail(400, what + " line must be 'name: value' with no space before the colon")
    value = line[colon + 1:].strip(b" \t")
    if not _is_field_value(value):
        raise _fail(400, what + " " + name.decode() + " contains a control character")
    if len(headers) >= count_limit:
        raise _fail(431, "more than %d %s lines" % (count_limit, what))
    headers.add(name.decode(), _text(value, what + " value"))


def _finish_head(head):
    headers = head.headers
    hosts = headers.get_all("host")
    if head.version == "HTTP/1.1" and len(hosts) != 1:
        raise _fail(400, "an HTTP/1.1 request needs exactly one Host header")
    for host in hosts:
        split_authority(host)
    if head.host is None and hosts:
        head.host = hosts[0]
    te = headers.get_all("transfer-encoding")
    cl = headers.get_all("content-length")
    if te and cl:
        raise _fail(400, "both Content-Length and Transfer-Encoding (request smuggling)")
    if te:
        if head.version == "HTTP/1.0":
            raise _fail(400, "Transfer-Encoding in an HTTP/1.0 request")
        codings = headers.tokens("transfer-encoding")
        if not codings or codings[-1] != "chunked" or codings.count("chunked") != 1:
            raise _fail(400, "Transfer-Encoding must end in a single 'chunked'")
        if len(codings) > 1:
            raise _fail(501, "transfer codings other than chunked are not implemented")
        head.chunked = True
    elif cl:
        length = None
        for value in cl:
            for item in value.split(","):
                item = item.strip()
                if not _is_digits(item):
                    raise _fail(400, "Content-Length is not a number")
                if length is not None and item != length:
                    raise _fail(400, "differing Content-Length values (request smuggling)")
                length = item
        if len(length.lstrip("0")) > _MAX_LENGTH_DIGITS:
            raise _fail(413, "Content-Length too large")
        head.content_length = int(length)
    connection = headers.tokens("connection")
    if head.version == "HTTP/1.1":
        head.keep_alive = "close" not in connection
        head.expect_continue = "100-continue" in headers.tokens("expect")
    else:
        head.keep_alive = "keep-alive" in connection and "close" not in connection


class _LineReader:
    """Collects CRLF-terminated lines from fed bytes; holds at most one partial line."""

    def __init__(self, max_line):
        self.max_line = max_line
        self._partial = bytearray()

    def reset(self):
        self._partial[:] = b""

    def next_line(self, data, pos, end):
        """-> (line without CRLF, new pos), or (None, end) when the line is still incomplete.

        Raises ValueError("long", text) when the line exceeds max_line (text: what arrived of
        it) and ValueError("LF", b"") on a bare LF.
        """
        nl = data.find(b"\n", pos, end)
        partial = self._partial
        if nl < 0:
            partial.extend(memoryview(data)[pos:end])
            if len(partial) > self.max_line + 1:  # +1: the CR of a full-length line
                raise ValueError("long", partial)
            return None, end
        if partial:
            partial.extend(memoryview(data)[pos:nl])
            line = bytes(partial)
            self.reset()
        else:
            line = bytes(memoryview(data)[pos:nl])
        # Length first, as the partial-line check above does, so any split gives the same error.
        if len(line) > self.max_line + 1:
            raise ValueError("long", line)
        if line[-1:] != b"\r":
            raise ValueError("LF", b"")
        return line[:-1], nl + 1

    def pending(self):
        return len(self._partial)


class RequestParser:
    """Incremental request-head parser; reuse one per connection with reset().

        parser = RequestParser()
        used = parser.feed(data)      # any split; returns bytes consumed
        if parser.head: ...           # complete; data[used:] is the body / next request
    """

    def __init__(self, max_line=MAX_LINE, max_headers=MAX_HEADERS, max_head=MAX_HEAD):
        self.max_headers = max_headers
        self.max_head = max_head
        self._lines = _LineReader(max_line)
        self.reset()

    def reset(self):
        self.head = None
        self._request_line_head = None
        self._headers = Headers()
        self._size = 0
        self._lines.reset()

    def started(self):
        """True once any byte of a request (other than leading empty lines) has arrived."""
        return self._request_line_head is not None or self._lines.pending() > 0

    def feed(self, data, start=0, end=None):
        if end is None:
            end = len(data)
        if self.head is not None:
            return 0
        pos = start
        while pos < end and self.head is None:
            first = self._request_line_head is None
            try:
                line, new_pos = self._lines.next_line(data, pos, end)
            except ValueError as e:
                raise self._line_error(e.args[0], e.args[1], first)
            self._size += new_pos - pos
            if self._size > self.max_head:
                raise _fail(431, "request head larger than %d bytes" % self.max_head)
            pos = new_pos
            if line is None:
                break
            if first:
                if line:  # empty lines before a request line are ignored (RFC 9112 2.2)
                    self._request_line_head = _parse_request_line(line, self._headers)
            elif line:
                _parse_field(line, self._headers, self.max_headers, "header")
            else:
                head = self._request_line_head
                _finish_head(head)
                self.head = head
        return pos - start

    def _line_error(self, kind, text, first):
        if kind == "LF":
            return _fail(400, "line ended with a bare LF; HTTP needs CRLF")
        if not first:
            return _fail(431, "header line longer than %d bytes" % self._lines.max_line)
        # One space within the first max_line+2 bytes: the target is what overflows. Looking
        # at no more than that gives the same answer however the line was split.
        text = text[:self._lines.max_line + 2]
        sp = text.find(b" ")
        if sp > 0 and text.find(b" ", sp + 1) < 0:
            return _fail(414, "request target longer than the %d-byte line limit"
                         % self._lines.max_line)
        return _fail(400, "request line longer than %d bytes" % self._lines.max_line)


_LENGTH, _SIZE, _DATA, _DATA_END, _TRAILER, _DONE = range(6)


class BodyDecoder:
    """Unframes a request body fed in any split; payload comes back as index ranges.

        start, stop, used = decoder.feed(data)   # payload is data[start:stop]; `used` bytes
                                                 # (payload + framing) were consumed
        decoder.done                             # body complete; data[used:] is the next request
    """

    def __init__(self, length=0, chunked=False, limit=None, max_line=MAX_LINE,
                 max_trailers=MAX_HEADERS):
        self.limit = None
        self.received = 0
        self.trailers = Headers()
        self.max_trailers = max_trailers
        self._lines = _LineReader(max_line)
        self._crlf_seen = 0
        if chunked:
            self._state = _SIZE
            self._left = 0
        else:
            self._state = _LENGTH if length else _DONE
            self._left = length
        self.set_limit(limit)

    def set_limit(self, limit):
        """Refuse a body of more than limit bytes (None: any size) with HTTPError 413."""
        if limit is not None and self._state == _LENGTH and self.received + self._left > limit:
            raise _fail(413, "body of %d bytes exceeds the %d-byte limit"
                        % (self.received + self._left, limit))
        self.limit = limit

    @property
    def done(self):
        return self._state == _DONE

    def remaining(self):
        """Bytes still to come of a Content-Length body (0 once done)."""
        return self._left if self._state == _LENGTH else 0

    def feed(self, data, start=0, end=None):
        if end is None:
            end = len(data)
        pos = start
        while pos < end:
            state = self._state
            if state == _LENGTH or state == _DATA:
                take = min(self._left, end - pos)
                self._left -= take
                self.received += take
                if not self._left:
                    self._state = _DONE if state == _LENGTH else _DATA_END
                return pos, pos + take, pos + take - start
            if state == _DATA_END:
                if data[pos] != b"\r\n"[self._crlf_seen]:
                    raise _fail(400, "chunk data not followed by CRLF")
                pos += 1
                self._crlf_seen += 1
                if self._crlf_seen == 2:
                    self._crlf_seen = 0
                    self._state = _SIZE
                continue
            if state == _DONE:
                break
            try:
                line, pos = self._lines.next_line(data, pos, end)
            except ValueError as e:
                raise _fail(400, "bare LF in chunked framing" if e.args[0] == "LF"
                            else "chunk size or trailer line too long")
            if line is None:
                break
            if state == _SIZE:
                self._start_chunk(line)
            elif line:
                _parse_field(line, self.trailers, self.max_trailers, "trailer")
            else:
                self._state = _DONE
        return pos, pos, pos - start

    def _start_chunk(self, line):
        semi = line.find(b";")
        digits = line
        if semi >= 0:
            digits = line[:semi].rstrip(b" \t")  # BWS before a chunk extension
            if not _is_field_value(line[semi:]):
                raise _fail(400, "control character in chunk extension")
        size = 0
        for c in digits:
            v = _hex_value(c)
            if v < 0:
                raise _fail(400, "invalid chunk size")
            size = size * 16 + v
            if size >= 1 << (4 * _MAX_CHUNK_DIGITS):
                raise _fail(413, "chunk size too large")
        if not digits:
            raise _fail(400, "invalid chunk size")
        if self.limit is not None and self.received + size > self.limit:
            raise _fail(413, "chunked body exceeds the %d-byte limit" % self.limit)
        if size:
            self._state = _DATA
            self._left = size
        else:
            self._state = _TRAILER


def response_head(status, headers=()):
    """The bytes of a response head. headers: (name, value) pairs; values may be str or int.

    A name that is not a token or a value with CR, LF or another control character raises
    ValueError: writing it would let a caller split the response.
    """
    lines = ["HTTP/1.1 %d %s\r\n" % (status, REASONS.get(status, "Unknown"))]
    for name, value in headers:
        value = str(value)
        check_field(name, value)
        lines.append("%s: %s\r\n" % (name, value))
    lines.append("\r\n")
    return "".join(lines).encode()


def check_field(name, value):
    """ValueError unless name is a token and value (a str) has no control character: writing
    it would let a caller split the response."""
    if not _is_token(name.encode()):
        raise ValueError("response header name %r is not an HTTP token" % name)
    if not _is_field_value(value.encode()):
        raise ValueError("response header %s has a control character (response splitting)"
                         % name)


_DAYS = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")
_MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")


def http_date(t):
    """IMF-fixdate (RFC 9110 5.6.7) for (year, month, day, hour, minute, second) in UTC."""
    year, month, day, hour, minute, second = t[:6]
    # Day of the week from the days since 1970-01-01 (a Thursday), by the civil-from-days rule.
    y = year - (month <= 2)
    era = y // 400
    yoe = y - era * 400
    doy = (153 * (month + (-3 if month > 2 else 9)) + 2) // 5 + day - 1
    days = era * 146097 + (yoe * 365 + yoe // 4 - yoe // 100 + doy) - 719468
    return "%s, %02d %s %04d %02d:%02d:%02d GMT" % (_DAYS[(days + 3) % 7], day,
                                                    _MONTHS[month - 1], year, hour, minute,
                                                    second)


def frame_response(head, status, length, close=False):
    """Framing headers for a response to head (None when the request never parsed).

    length: body size in bytes, or None when unknown. Returns (headers, chunked, keep_alive):
    known length -> Content-Length; unknown on HTTP/1.1 -> chunked; unknown on HTTP/1.0 -> the
    body ends when the connection closes.
    """
    keep_alive = head is not None and head.keep_alive and not close
    headers = []
    chunked = False
    if not (status < 200 or status == 204 or status == 304):
        if length is not None:
            headers.append(("Content-Length", length))
        elif keep_alive and head.version == "HTTP/1.1":
            headers.append(("Transfer-Encoding", "chunked"))
            chunked = True
        else:
            keep_alive = False
    if not keep_alive:
        headers.append(("Connection", "close"))
    elif head.version == "HTTP/1.0":
        headers.append(("Connection", "keep-alive"))
    return headers, chunked, keep_alive


def chunk_head(size):
    """The size line that precedes `size` bytes of chunk data (which then need CRLF)."""
    return ("%x\r\n" % size).encode()


LAST_CHUNK = b"0\r\n\r\n"


# A body the handler left unread is read and discarded when at most this many bytes of it are
# still to come, so the connection can carry the next request; a longer one closes it.
DRAIN_MAX = 4096

# What the server is doing on a connection (RFC 9112 section 9; the states of h11's server side).
IDLE, BODY, DONE, MUST_CLOSE = "IDLE", "BODY", "DONE", "MUST_CLOSE"


class ServerConnection:
    """The server side of one connection: where the next request starts, or that none may.

        conn = ServerConnection()
        used = conn.receive_head(data, start, end)   # IDLE; conn.head once complete -> BODY
        decoder = conn.open_body(limit)              # the body, for a handler (413 if too long)
        framing, chunked = conn.frame(head_method, status, length, close)  # the response head
        ...send the response...
        conn.response_done()                         # -> DONE or MUST_CLOSE
        while conn.state == DONE and not conn.body.done:
            used = conn.discard(data, start, end)    # an unread body, at most DRAIN_MAX bytes
        if conn.can_reuse(): conn.next_request()

    A request whose body is not fully received when its response starts gets the response
    with Connection: close, unless its unread rest is a Content-Length body of at most
    drain_max bytes that the client is sending (not one held back for 100 Continue).
    Any HTTPError while receiving means MUST_CLOSE: the byte stream cannot be trusted.
    """

    def __init__(self, drain_max=DRAIN_MAX):
        self.drain_max = drain_max
        self.parser = RequestParser()
        self.state = IDLE
        self.head = None
        self.body = None
        self.continue_sent = False

    def next_request(self):
        self.parser.reset()
        self.state = IDLE
        self.head = self.body = None
        self.continue_sent = False

    def receive_head(self, data, start, end):
        """Feed request-head bytes; returns how many were used (head then in self.head)."""
        try:
            used = self.parser.feed(data, start, end)
        except HTTPError:
            self.state = MUST_CLOSE
            raise
        head = self.parser.head
        if head is not None:
            self.head = head
            self.body = BodyDecoder(head.content_length or 0, head.chunked)
            self.state = BODY
        return used

    def open_body(self, limit):
        """The body's decoder, refusing more than limit bytes (HTTPError 413, close)."""
        self.body.set_limit(limit)
        return self.body

    def wants_continue(self):
        """True once, when the client waits for 100 Continue before sending the body."""
        if self.head.expect_continue and not self.continue_sent and not self.body.done:
            self.continue_sent = True
            return True
        return False

    def receive_body(self, data, start, end):
        """BodyDecoder.feed with the state kept: a framing error means MUST_CLOSE."""
        try:
            return self.body.feed(data, start, end)
        except HTTPError:
            self.state = MUST_CLOSE
            raise

    def _drainable(self):
        body, head = self.body, self.head
        if body is None or body.done:
            return True
        return (not head.chunked and body.remaining() <= self.drain_max
                and not (head.expect_continue and not self.continue_sent))

    def frame(self, method, status, length, close=False):
        """(framing headers, chunked) for the response to the current request (method None:
        the head never parsed), and the decision whether the connection stays open."""
        keep = (self.state == BODY and not close and self._drainable())
        headers, chunked, keep = frame_response(self.head if keep else None, status, length)
        if not keep:
            self.state = MUST_CLOSE
        return headers, chunked

    def response_done(self):
        """The response was sent whole: the connection is DONE (reusable once the body is
        drained) or MUST_CLOSE."""
        if self.state == BODY:
            self.state = DONE

    def discard(self, data, start, end):
        """Read and drop bytes of the unread body; returns how many were used."""
        return self.receive_body(data, start, end)[2]

    def can_reuse(self):
        """True when the next request starts exactly at the next unread byte."""
        return self.state == DONE and self.body.done

    def close(self):
        self.state = MUST_CLOSE
