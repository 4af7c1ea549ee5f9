"""Mail messages (RFC 5322 + MIME): headers, text and HTML bodies, attachments, streamed out.

`Message.render()` yields the message as CRLF-terminated 7-bit lines in chunks, ready for
`netsec.smtp.frame_data`. Rendering is deterministic: the Message-ID, Date and MIME boundaries are
fixed when the Message is created, so a retry sends the same bytes and the receiver can recognise
it. File attachments are read and base64-encoded 57*16 bytes at a time while rendering, so a large
file never sits in RAM. Runs unchanged on CPython and MicroPython.
"""

import binascii
import os

from netsec import smtp

_ATTACH_READ = 57 * 16  # 57 bytes -> one 76-character base64 line (RFC 2045 6.8)
_FOLD_AT = 78  # RFC 5322 2.1.1: lines SHOULD be at most 78 characters
# The longest word a header gets unencoded: with "Reply-To: " in front it still fits in 78.
# Longer ones become RFC 2047 encoded words (text) or RFC 2231 continuations (parameters).
_WORD_MAX = 68

# Content types for attachments by file extension; anything else is application/octet-stream.
_TYPES = (
    (".txt", "text/plain"), (".log", "text/plain"), (".csv", "text/csv"),
    (".json", "application/json"), (".html", "text/html"), (".xml", "application/xml"),
    (".pdf", "application/pdf"), (".png", "image/png"), (".jpg", "image/jpeg"),
    (".jpeg", "image/jpeg"), (".gif", "image/gif"), (".bin", "application/octet-stream"),
)
_WEEKDAYS = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")
_MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")
_TOKEN_SPECIALS = '()<>@,;:\\"/[]?= '
_PHRASE_SPECIALS = '()<>[]:;@\\,."'


def _random_hex(nbytes):
    try:
        raw = os.urandom(nbytes)
    except AttributeError:  # ports without os.urandom (some QEMU images): uniqueness is enough
        import random
        raw = bytes([random.getrandbits(8) for _ in range(nbytes)])
    return binascii.hexlify(raw).decode()


def format_date(t):
    """RFC 5322 date from a time.gmtime() tuple: 'Tue, 25 Nov 2025 14:38:00 +0000'."""
    return "%s, %d %s %04d %02d:%02d:%02d +0000" % (
        _WEEKDAYS[t[6]], t[2], _MONTHS[t[1] - 1], t[0], t[3], t[4], t[5])


def _check_text(value, what):
    """Caller-supplied header text: str, no CR/LF (header injection), no other controls."""
    if not isinstance(value, str):
        raise ValueError("%s must be a str, not %s" % (what, type(value).__name__))
    if "\r" in value or "\n" in value:
        raise ValueError("%s %r contains CR or LF (header injection): remove line breaks"
                         % (what, value))
    for ch in value:
        if ord(ch) < 32 or ord(ch) == 127:
            raise ValueError("%s %r contains control character %r: remove it" % (what, value, ch))
    return value


def _is_ascii(text):
    for ch in text:
        if ord(ch) > 126:
            return False
    return True


def _encoded_words(text):
    """RFC 2047 B-encoded UTF-8 words, never splitting a character. 39 bytes make 52 base64
    characters, 64 with the "=?utf-8?B?" "?=" wrapping: under the 75 RFC 2047 allows, and short
    enough that even the first word fits on the "Reply-To: " line within 78."""
    raw = text.encode()
    words = []
    start = 0
    while start < len(raw):
        end = min(start + 39, len(raw))
        while end < len(raw) and (raw[end] & 0xC0) == 0x80:
            end -= 1
        words.append("=?utf-8?B?" + binascii.b2a_base64(raw[start:end], newline=False).decode()
                     + "?=")
        start = end
    return words


def _fold(name, words):
    """Header line "name: w1 w2 ..." folded before a word whenever the line would pass 78.

    A fold only puts CRLF in front of the space between two words, so unfolding (removing CRLF
    before white space, RFC 5322 2.2.3) gives the value back exactly."""
    line = name + ":"
    lines = []
    for word in words:
        if len(line) + 1 + len(word) > _FOLD_AT and line != name + ":":
            lines.append(line)
            line = ""
        line += " " + word
    lines.append(line)
    return "\r\n".join(lines) + "\r\n"


def _words_at_single_spaces(text):
    # Split only at a single space between two non-spaces: " ".join(words) == text, and no fold
    # can leave a line of nothing but white space.
    words = []
    start = 0
    for i in range(1, len(text) - 1):
        if text[i] == " " and text[i - 1] != " " and text[i + 1] != " ":
            words.append(text[start:i])
            start = i + 1
    words.append(text[start:])
    return words


def unstructured(name, value):
    """A header with free text (Subject): plain ASCII when possible, RFC 2047 when not."""
    _check_text(value, name)
    if not value:
        return name + ":\r\n"
    words = _words_at_single_spaces(value)
    plain = (_is_ascii(value) and "=?" not in value and value[0] != " " and value[-1] != " "
             and max(len(w) for w in words) + len(name) + 2 <= _FOLD_AT)
    if plain:
        return _fold(name, words)
    # Encoded words are separated by folding white space, which decoders drop (RFC 2047 6.2).
    return _fold(name, _encoded_words(value))


def _split_address(entry, what):
    """'Name <user@host>' or 'user@host' -> (display name or '', address)."""
    _check_text(entry, what)
    entry = entry.strip()
    if entry.endswith(">") and "<" in entry:
        start = entry.rfind("<")
        name = entry[:start].strip()
        if len(name) >= 2 and name[0] == '"' and name[-1] == '"':
            name = _unquoted(name[1:-1])  # given as a quoted-string: its escapes are undone
        return name, smtp.check_address(entry[start + 1:-1], what)
    return "", smtp.check_address(entry, what)


def _quoted(text):
    """An RFC 5322 quoted-string (also MIME parameter syntax): backslash and quote escaped."""
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _mailbox_words(name, address):
    if not name:
        return [address]
    words = name.split()
    for ch in _PHRASE_SPECIALS:
        if ch in name:  # a quoted string may fold at its spaces too (RFC 5322 3.2.4)
            words = _words_at_single_spaces(_quoted(name))
            break
    if not _is_ascii(name) or "=?" in name or max([len(w) for w in words] + [0]) > _WORD_MAX:
        words = _encoded_words(name)
    return words + ["<" + address + ">"]


def _address_list(entries, what):
    if isinstance(entries, str):
        entries = [entries]
    if not isinstance(entries, (list, tuple)):
        raise ValueError("%s must be an address str or a list of them" % what)
    return [_split_address(entry, what) for entry in entries]


def _address_header(name, mailboxes):
    """From/To/Cc/Reply-To: mailboxes separated by commas, folded between words."""
    words = []
    for i, (display, address) in enumerate(mailboxes):
        mailbox = _mailbox_words(display, address)
        if i < len(mailboxes) - 1:
            mailbox[-1] += ","
        words += mailbox
    return _fold(name, words)


def _is_token(text):
    # RFC 2045 5.1 token: visible ASCII except tspecials.
    for ch in text:
        if ord(ch) < 33 or ord(ch) > 126 or ch in _TOKEN_SPECIALS:
            return False
    return bool(text)


def _split_params(text):
    # At the semicolons outside quoted strings (RFC 2045 5.1).
    pieces = []
    start = 0
    quoted = escaped = False
    for i in range(len(text)):
        ch = text[i]
        if escaped:
            escaped = False
        elif ch == "\\" and quoted:
            escaped = True
        elif ch == '"':
            quoted = not quoted
        elif ch == ";" and not quoted:
            pieces.append(text[start:i])
            start = i + 1
    pieces.append(text[start:])
    return pieces, quoted


def _unquoted(text):
    out = []
    escaped = False
    for ch in text:
        if ch == "\\" and not escaped:
            escaped = True
        else:
            out.append(ch)
            escaped = False
    return "".join(out)


def _parse_content_type(content_type):
    """'type/subtype; name=value; ...' (RFC 2045 5.1) -> ("type/subtype", [(name, value), ...]);
    a text type without a charset gets charset=utf-8. Raises ValueError naming the problem."""
    _check_text(content_type, "content type")
    example = "(e.g. text/csv or text/plain; charset=iso-8859-1)"
    pieces, unterminated = _split_params(content_type)
    media = pieces[0].strip().lower()
    slash = media.find("/")
    if (unterminated or not 0 < slash < len(media) - 1 or media.count("/") != 1
            or not _is_token(media.replace("/", ""))):
        raise ValueError("content type %r is not of the form type/subtype; name=value %s"
                         % (content_type, example))
    # RFC 2045 6.4, RFC 2046 5.2: a multipart or message entity may not be base64-encoded, and
    # attachments always are (message/global may, RFC 6532 3.5).
    if media.startswith("multipart/") or (media.startswith("message/")
                                          and media != "message/global"):
        raise ValueError("content type %r cannot be an attachment's: multipart and message types "
                         "may not be base64-encoded (RFC 2045 6.4); use application/octet-stream"
                         % content_type)
    params = []
    for piece in pieces[1:]:
        key, eq, value = piece.strip().partition("=")
        key = key.strip().lower()
        value = value.strip()
        if len(value) >= 2 and value[0] == '"' and value[-1] == '"':
            value = _unquoted(value[1:-1])
        elif not _is_token(value):
            value = None
        if not eq or not _is_token(key) or value is None or not _is_ascii(value):
            raise ValueError("content type %r: parameter %r is not name=value in ASCII %s"
                             % (content_type, piece.strip(), example))
        # One meaning per parameter: an RFC 2231 form (name*=, name*0=) or a repeat would let
        # the content type override the attachment's name or charset at the receiver.
        if "*" in key:
            raise ValueError("content type %r: parameter %r: give it as plain name=value in "
                             "ASCII, netsec does the RFC 2231 encoding" % (content_type, key))
        if key in [k for k, _ in params]:
            raise ValueError("content type %r: parameter %s= is given twice" % (content_type, key))
        if key in ("name", "filename"):
            raise ValueError("content type %r: leave out %s=, the attachment's name sets it"
                             % (content_type, key))
        params.append((key, value))
    if media.startswith("text/") and "charset" not in [k for k, _ in params]:
        params.append(("charset", "utf-8"))  # UTF-8 covers ASCII; RFC 2046's default is ASCII
    return media, params


def _param_words(key, value):
    """key=value as header words: quoted when it is short ASCII, else RFC 2231 percent-encoded
    UTF-8 in continuations (key*0*=utf-8''...; key*1*=...) that each fit on a folded line."""
    if _is_ascii(value) and len(key) + len(value) + 3 <= _WORD_MAX:
        if _is_token(value) and key not in ("name", "filename"):
            return [key + "=" + value]
        return [key + "=" + _quoted(value)]
    pieces = []
    piece = ""
    for b in value.encode():
        if (48 <= b <= 57) or (65 <= b <= 90) or (97 <= b <= 122) or b in b"-._~":
            char = chr(b)
        else:
            char = "%%%02X" % b
        if len(piece) + len(char) > _WORD_MAX - len(key) - 14:
            pieces.append(piece)
            piece = ""
        piece += char
    pieces.append(piece)
    if len(pieces) == 1:
        return ["%s*=utf-8''%s" % (key, pieces[0])]
    return ["%s*%d*=%s%s" % (key, i, "utf-8''" if i == 0 else "", p)
            for i, p in enumerate(pieces)]


def _param_header(name, value, params):
    """'Name: value; key=value; ...' folded between parameters (RFC 2045, 2231)."""
    words = [value]
    for key, param in params:
        for word in _param_words(key, param):
            words[-1] += ";"
            words.append(word)
    return _fold(name, words)


def _guess_type(name):
    lower = name.lower()
    for extension, content_type in _TYPES:
        if lower.endswith(extension):
            return content_type
    return "application/octet-stream"


def _normalise_newlines(text):
    # Users write "\n"; the wire needs CRLF. A lone CR is treated as a line break too, so no
    # bare CR can reach SMTP.
    return text.replace("\r\n", "\n").replace("\r", "\n").replace("\n", "\r\n")


def _needs_qp(body, boundary):
    if not _is_ascii(body) or (boundary and boundary in body):
        return True
    for line in body.split("\r\n"):
        if len(line) > smtp.MAX_LINE:
            return True
        for ch in line:
            if ord(ch) < 32 and ch != "\t":
                return True
    return False


_HEX = b"0123456789ABCDEF"


def _quoted_printable(raw):
    """UTF-8 bytes with CRLF line ends as quoted-printable (RFC 2045 6.7): lines of at most 76
    characters, ending where the text ends. Written into one buffer and handed out in ~1 KB chunks: many small
    strings kept alive at once would fragment a small heap."""
    out = bytearray()
    width = 0
    end = len(raw)
    i = 0
    while i < end:
        b = raw[i]
        if b == 13:  # always CR LF here: the body was normalised
            out += b"\r\n"
            width = 0
            i += 2
            if len(out) >= 1024:
                yield bytes(out)
                out = bytearray()
            continue
        line_end = i + 1 == end or raw[i + 1] == 13
        literal = (33 <= b <= 126 and b != 61) or (b in (9, 32) and not line_end)
        size = 1 if literal else 3
        if width + size > 75:
            out += b"=\r\n"  # soft line break
            width = 0
        if literal:
            out.append(b)
        else:
            out.append(61)
            out.append(_HEX[b >> 4])
            out.append(_HEX[b & 15])
        width += size
        i += 1
    yield bytes(out)


class _Part:
    """A leaf body part: its headers and a generator of its encoded body, exactly the content."""

    def __init__(self, headers, body):
        self.headers = headers
        self.body = body

    def render(self):
        yield self.headers.encode() + b"\r\n"
        yield from self.body


class _Multipart:
    """multipart/<subtype> holding parts. The CRLF before each delimiter belongs to the delimiter
    (RFC 2046 5.1.1), so every part's content is exactly what was given."""

    def __init__(self, subtype, boundary, parts):
        self.headers = 'Content-Type: multipart/%s; boundary="%s"\r\n' % (subtype, boundary)
        self.boundary = boundary
        self.parts = parts

    def render(self):
        yield self.headers.encode() + b"\r\n"
        delimiter = ("--" + self.boundary).encode()
        for i in range(len(self.parts)):
            yield (b"\r\n" if i else b"") + delimiter + b"\r\n"  # no preamble before the first
            yield from self.parts[i].render()
        yield b"\r\n" + delimiter + b"--\r\n"


class Message:
    """One e-mail. Addresses are 'user@host' or 'Display Name <user@host>'; to, cc and bcc take
    one address or a list. Bcc recipients get the message but never appear in its headers."""

    def __init__(self, sender, to=(), subject="", text=None, html=None, cc=(), bcc=(),
                 reply_to=()):
        self.sender = _split_address(sender, "From")
        self.to = _address_list(to, "To")
        self.cc = _address_list(cc, "Cc")
        self.bcc = _address_list(bcc, "Bcc")
        self.reply_to = _address_list(reply_to, "Reply-To")
        if not (self.to or self.cc or self.bcc):
            raise ValueError("message has no recipients: give to, cc or bcc")
        self.subject = _check_text(subject, "Subject")
        for body, what in ((text, "text"), (html, "html")):
            if body is not None and not isinstance(body, str):
                raise ValueError("%s body must be a str, not %s" % (what, type(body).__name__))
        self.text = text
        self.html = html
        self.attachments = []
        import time  # here, not at import: the sans-IO core works without a clock until used
        self.date = format_date(time.gmtime())
        domain = self.sender[1][self.sender[1].rfind("@") + 1:]
        token = _random_hex(12)
        self.message_id = "<%d.%s@%s>" % (time.time(), token, domain)
        # Boundaries: "=_" never occurs in base64 or quoted-printable output, and 7-bit text that
        # happens to contain one is sent quoted-printable instead (see _text_part).
        self.boundary = "=_" + token

    def attach(self, name, data, content_type=None):
        """Attach bytes held in RAM under the file name `name`."""
        if not isinstance(data, (bytes, bytearray)):
            raise ValueError("attachment %r data must be bytes; use attach_file for files" % name)
        self._add(name, content_type, bytes(data), None)

    def attach_file(self, path, name=None, content_type=None):
        """Attach a file from flash; it is read in small pieces each time the message renders."""
        try:
            os.stat(path)
        except OSError:
            raise ValueError("attachment file %r not found" % path)
        self._add(name if name is not None else path[path.rfind("/") + 1:], content_type,
                  None, path)

    def _add(self, name, content_type, data, path):
        _check_text(name, "attachment name")
        if not name or len(name.encode()) > 200:
            raise ValueError("attachment name %r must be 1 to 200 bytes long" % name)
        content_type = _parse_content_type(content_type or _guess_type(name))
        self.attachments.append((name, content_type, data, path))

    def recipients(self):
        """Envelope recipients: To, Cc and Bcc, each address once, in that order."""
        seen = []
        for _, address in self.to + self.cc + self.bcc:
            if address not in seen:
                seen.append(address)
        return seen

    def headers(self):
        lines = ["Date: " + self.date + "\r\n", _address_header("From", [self.sender])]
        if self.reply_to:
            lines.append(_address_header("Reply-To", self.reply_to))
        if self.to:
            lines.append(_address_header("To", self.to))
        if self.cc:
            lines.append(_address_header("Cc", self.cc))
        lines.append(unstructured("Subject", self.subject))
        lines.append("Message-ID: " + self.message_id + "\r\n")
        lines.append("MIME-Version: 1.0\r\n")
        return "".join(lines)

    def render(self):
        """Generator of the whole message as bytes chunks (CRLF lines, 7-bit, <= 998 octets)."""
        yield self.headers().encode()
        yield from self._body().render()

    def _body(self):
        body = None
        if self.text is not None and self.html is not None:
            body = _Multipart("alternative", self.boundary + "a",
                              [self._text_part("plain", self.text),
                               self._text_part("html", self.html)])
        elif self.text is not None:
            body = self._text_part("plain", self.text)
        elif self.html is not None:
            body = self._text_part("html", self.html)
        if not self.attachments:
            return body if body is not None else self._text_part("plain", "")
        parts = [] if body is None else [body]
        parts += [self._attachment_part(a) for a in self.attachments]
        return _Multipart("mixed", self.boundary + "m", parts)

    def _text_part(self, subtype, text):
        body = _normalise_newlines(text)
        encoding = "quoted-printable" if _needs_qp(body, self.boundary) else "7bit"
        headers = ("Content-Type: text/%s; charset=utf-8\r\nContent-Transfer-Encoding: %s\r\n"
                   % (subtype, encoding))
        return _Part(headers, _text_body(body, encoding))

    def _attachment_part(self, attachment):
        name, (media, params), data, path = attachment
        headers = (_param_header("Content-Type", media, params + [("name", name)])
                   + _param_header("Content-Disposition", "attachment", [("filename", name)])
                   + "Content-Transfer-Encoding: base64\r\n")
        if path is None:
            return _Part(headers, _base64_bytes(data))
        return _Part(headers, _base64_file(path))


def _text_body(body, encoding):
    if encoding == "7bit":
        yield body.encode()
    else:
        yield from _quoted_printable(body.encode())


def _base64_lines(data):
    encoded = binascii.b2a_base64(data, newline=False)
    return b"".join([encoded[i:i + 76] + b"\r\n" for i in range(0, len(encoded), 76)])


def _base64_bytes(data):
    for start in range(0, len(data), _ATTACH_READ):
        yield _base64_lines(data[start:start + _ATTACH_READ])


def _read_full(f, buffer):
    # readinto may return less than asked before the end of the file; a short group would put
    # base64 padding in the middle of the attachment.
    view = memoryview(buffer)
    got = 0
    while got < len(buffer):
        n = f.readinto(view[got:])
        if not n:
            break
        got += n
    return got


def _base64_file(path):
    buffer = bytearray(_ATTACH_READ)
    view = memoryview(buffer)
    with open(path, "rb") as f:
        while True:
            n = _read_full(f, buffer)
            if not n:
                break
            yield _base64_lines(view[:n])
