"""Sans-IO SMTP client protocol (RFC 5321): server bytes in, replies out; commands out as bytes.

No sockets and no asyncio here (netsec.mail does the I/O), so the same code runs on CPython, where
property tests exercise it, and on MicroPython in the images.

Line endings: DATA framing never puts a bare CR or LF on the wire (a bare one is how SMTP
smuggling starts). `frame_data` refuses them rather than guessing what the caller meant;
netsec.mime normalises text bodies to CRLF before they get here.
"""

import binascii

try:
    from hashlib import md5
except ImportError:  # MicroPython builds without MICROPY_PY_HASHLIB_MD5: CRAM-MD5 unavailable
    md5 = None

# RFC 5321 4.5.3.1.6: a text line is at most 1000 octets including CRLF.
MAX_LINE = 998
# Replies longer than this are not SMTP; stop before they fill the heap (a few KB, not the
# 200 KB that 100 lines of 2048 would hold: the board's whole heap is ~192 KB).
MAX_REPLY_LINE = 2048
MAX_REPLY_BYTES = 8192  # one whole reply, all its lines; the longest EHLO replies are ~1 KB

DATA = b"DATA\r\n"
STARTTLS = b"STARTTLS\r\n"
RSET = b"RSET\r\n"
QUIT = b"QUIT\r\n"

# RFC 5321 4.5.3.2: how long a client waits, in seconds, at each step. The relay may be slow on
# purpose (greeting delays, content scanning before it answers the final dot); giving up early
# after the dot is how a message gets delivered twice. "command" covers the commands the RFC
# gives no figure for (EHLO, STARTTLS, AUTH, RSET); "QUIT" is netsec's own bound on a goodbye.
TIMEOUTS = {"greeting": 300, "MAIL": 300, "RCPT": 300, "DATA": 120, "block": 180, "dot": 600,
            "command": 300, "QUIT": 10}

DELIVERED = "delivered"
RETRY = "retry"
FAILED = "failed"

# What becomes of a message for a recipient after each reply or failure: the one table that
# netsec.mail.Relay.send() and netsec.outbox follow. A reply counts by its command and code, else
# by its first digit (RFC 5321 4.2.1: 2yz done, 4yz try again later, 5yz do not repeat the same
# request); a failure without a reply by its netsec.mail.MailError.kind.
OUTCOMES = {
    "2yz": DELIVERED,
    "3yz": RETRY,  # an intermediate reply where a final one belongs: the relay is confused
    "4yz": RETRY,
    "5yz": FAILED,
    "RCPT 552": RETRY,  # RFC 5321 4.5.3.1.10: "too many recipients", to be treated as 452
    "connection": RETRY,  # refused, reset, unreachable or closed: the relay has no message
    "timeout": RETRY,  # no reply before the final dot: the relay has no message
    "delivery_unknown": RETRY,  # no reply to the final dot: netsec.outbox says what it does
    "protocol": RETRY,  # the relay broke SMTP, or is not an SMTP server
    "starttls": RETRY,  # STARTTLS missing, refused or tampered with: maybe an attacker on the path
    "wrong_port": RETRY,  # security= does not match the port: fixed by configuration
    "memory": RETRY,
    "too_big": FAILED,  # larger than the SIZE the relay announced (RFC 1870)
    "unsendable": FAILED,  # the message itself cannot go on the wire
}
# Kinds not in the table are netsec.tls.TLSError kinds (the relay's certificate, the clock, ...):
# retried, because deploying credentials or setting the clock fixes them while the mail waits.


def outcome(kind=None, code=None, command=None):
    """DELIVERED, RETRY or FAILED from OUTCOMES: for a reply `code` to `command` ("MAIL", "RCPT",
    ...), or for a failure without a reply, by its `kind`."""
    if code is not None:
        return OUTCOMES.get("%s %d" % (command, code)) or OUTCOMES["%dyz" % (code // 100)]
    return OUTCOMES.get(kind, RETRY)


def mentions_helo(reply):
    """True for a refusal about the client's HELO/EHLO name (Postfix's reject_non_fqdn_helo_hostname
    answers 504 at RCPT: "Helo command rejected: need fully-qualified hostname")."""
    text = reply.text.upper()
    return reply.code >= 500 and ("HELO" in text or "EHLO" in text)


def reply_kind(command, reply):
    """The MailError.kind for a failure reply to `command`."""
    if reply.code < 400:
        return "protocol"
    if command.startswith("AUTH"):
        return "auth"
    if command == "STARTTLS":
        return "starttls"
    if mentions_helo(reply):
        return "ehlo_name"
    # RFC 1870 and RFC 3463 5.3.4: the message is larger than the relay takes.
    if command != "RCPT" and (reply.code == 552 or reply.text.startswith("5.3.4")):
        return "too_big"
    return "refused" if reply.code >= 500 else "deferred"


# Mechanisms we implement, best first when the caller does not choose. PLAIN and LOGIN send the
# password itself, which is fine because AUTH only ever runs inside TLS; CRAM-MD5 comes last because
# it makes the server keep the password in clear.
AUTH_MECHANISMS = ("PLAIN", "LOGIN", "CRAM-MD5")


class SMTPError(Exception):
    """The server broke the protocol, or the caller asked for something SMTP cannot carry."""


class SMTPReplyError(SMTPError):
    """The server answered a command with a failure reply."""

    def __init__(self, command, reply):
        self.command = command
        self.reply = reply
        super().__init__("%s refused: %d %s" % (command, reply.code, reply.text))

    @property
    def code(self):
        return self.reply.code

    @property
    def permanent(self):
        # 5xx: retrying the same thing gives the same answer (RFC 5321 4.2.1).
        return self.reply.code >= 500


class Reply:
    """One complete server reply: a three-digit code and its text lines (without the code)."""

    def __init__(self, code, lines):
        self.code = code
        self.lines = lines

    @property
    def text(self):
        return " / ".join(self.lines)

    def __repr__(self):
        return "Reply(%d, %r)" % (self.code, self.lines)


def _printable(raw):
    # Reply text ends up in logs and exceptions: keep it ASCII without control characters, so a
    # hostile server cannot forge log lines or terminal escapes.
    out = bytearray(raw)
    for i in range(len(out)):
        if out[i] < 32 or out[i] > 126:
            out[i] = 63  # "?"
    return out.decode()


class ReplyParser:
    """Turns received bytes, split anywhere, into Reply objects (multi-line replies joined)."""

    def __init__(self):
        self._buffer = b""
        self._code = None
        self._lines = []
        self._size = 0  # bytes of the reply being read

    def feed(self, data):
        """Add received bytes; return the list of replies they completed (often empty)."""
        self._buffer += data
        replies = []
        while True:
            end = self._buffer.find(b"\n")
            if end < 0:
                if len(self._buffer) > MAX_REPLY_LINE:
                    raise SMTPError("server reply line longer than %d bytes: not an SMTP server?"
                                    % MAX_REPLY_LINE)
                return replies
            line = self._buffer[:end]
            self._buffer = self._buffer[end + 1:]
            if line.endswith(b"\r"):
                line = line[:-1]
            reply = self._line(line)
            if reply is not None:
                replies.append(reply)

    def _line(self, line):
        if len(line) > MAX_REPLY_LINE:
            raise SMTPError("server reply line longer than %d bytes: not an SMTP server?"
                            % MAX_REPLY_LINE)
        code = line[:3]
        if len(code) != 3 or not code.isdigit() or code[0] < ord("2") or code[0] > ord("5"):
            raise SMTPError("malformed server reply %r: expected a 3-digit code" % line[:40])
        separator = line[3:4]
        if separator not in (b"", b" ", b"-"):
            raise SMTPError("malformed server reply %r: code not followed by space or '-'"
                            % line[:40])
        code = int(code)
        if self._code is not None and code != self._code:
            raise SMTPError("server changed reply code mid-reply (%d then %d)" % (self._code, code))
        self._code = code
        self._size += len(line) + 2
        if self._size > MAX_REPLY_BYTES:
            raise SMTPError("server reply longer than %d bytes: not an SMTP server?"
                            % MAX_REPLY_BYTES)
        self._lines.append(_printable(line[4:]))
        if separator == b"-":
            return None
        reply = Reply(code, self._lines)
        self._code = None
        self._lines = []
        self._size = 0
        return reply

    def pending(self):
        """True if bytes of an unfinished reply are buffered. After a STARTTLS reply this means the
        server (or someone in the path) sent plaintext that must never be trusted (RFC 3207)."""
        return bool(self._buffer) or self._code is not None


class Capabilities:
    """What an EHLO reply advertises (RFC 5321 4.1.1.1 and the extension RFCs)."""

    def __init__(self, reply):
        if reply.code != 250:
            raise SMTPReplyError("EHLO", reply)
        self.keywords = {}
        for line in reply.lines[1:]:
            words = line.split()
            if not words:
                continue
            keyword = words[0].upper()
            params = words[1:]
            if keyword.startswith("AUTH="):  # pre-RFC 4954 servers: "AUTH=LOGIN PLAIN"
                params = [keyword[5:]] + params
                keyword = "AUTH"
            self.keywords[keyword] = self.keywords.get(keyword, []) + params

    def has(self, keyword):
        return keyword.upper() in self.keywords

    @property
    def starttls(self):
        return self.has("STARTTLS")

    @property
    def auth(self):
        return [m.upper() for m in self.keywords.get("AUTH", [])]

    @property
    def size(self):
        """Largest message the server accepts in octets; 0 = no fixed limit; None = not said."""
        params = self.keywords.get("SIZE")
        if params is None:
            return None
        if params and params[0].isdigit():
            return int(params[0])
        return 0


def _ascii_visible(text):
    for ch in text:
        if ord(ch) < 33 or ord(ch) > 126:
            return False
    return True


def check_address(address, what="address"):
    """Refuse anything that is not a plain ASCII addr-spec; return it unchanged if fine.

    Quoted local parts and internationalised addresses (SMTPUTF8) are not supported."""
    if not isinstance(address, str):
        raise ValueError("%s must be a str like 'user@example.com', not %s"
                         % (what, type(address).__name__))
    if "\r" in address or "\n" in address:
        raise ValueError("%s %r contains CR or LF (header/command injection): remove line breaks"
                         % (what, address))
    for ch in address:
        if ord(ch) > 126:
            raise ValueError("%s %r is not ASCII: internationalised addresses (SMTPUTF8) are "
                             "not supported" % (what, address))
    at = address.rfind("@")
    local, domain = address[:at], address[at + 1:]
    if at < 1 or not domain:
        raise ValueError("%s %r is not of the form user@domain" % (what, address))
    if len(local) > 64 or len(address) > 254:
        raise ValueError("%s %r is too long (local part max 64, address max 254 octets)"
                         % (what, address))
    if not _ascii_visible(address):
        raise ValueError("%s %r contains spaces or control characters" % (what, address))
    for ch in '<>()[],;:\\"@':
        if ch in local:
            raise ValueError("%s %r: character %r in the local part is not supported"
                             % (what, address, ch))
    check_domain(domain, what)  # host name or address literal, brackets checked there
    return address


def check_domain(domain, what="domain"):
    """A host name of letters, digits, '-' and '.', or an address literal such as [192.0.2.1]."""
    if domain.startswith("[") and domain.endswith("]") and _ascii_visible(domain):
        if "[" not in domain[1:-1] and "]" not in domain[1:-1] and len(domain) > 2:
            return domain
    elif domain and len(domain) <= 253 and not domain.startswith(".") and ".." not in domain:
        for ch in domain:
            if not (ch.isalpha() or ch.isdigit() or ch in "-.") or ord(ch) > 126:
                break
        else:
            return domain
    raise ValueError("%s %r is not a valid host name or address literal" % (what, domain))


def ehlo(domain):
    """EHLO with our own name: a host name or an address literal like "[192.0.2.7]"."""
    return b"EHLO " + check_domain(domain, "EHLO name").encode() + b"\r\n"


def mail_from(address, size=None):
    line = "MAIL FROM:<%s>" % check_address(address, "sender")
    if size is not None:
        line += " SIZE=%d" % size  # RFC 1870: lets the server refuse a too-big message up front
    return line.encode() + b"\r\n"


def rcpt_to(address):
    return ("RCPT TO:<%s>\r\n" % check_address(address, "recipient")).encode()


def _b64(data):
    return binascii.b2a_base64(data, newline=False)


def hmac_md5(key, message):
    """HMAC-MD5 by its definition (RFC 2104); MicroPython has no hmac module."""
    if md5 is None:
        raise SMTPError("CRAM-MD5 needs hashlib.md5, which this firmware lacks "
                        "(enable MICROPY_PY_HASHLIB_MD5) - use AUTH PLAIN or LOGIN")
    block = 64
    if len(key) > block:
        key = md5(key).digest()
    key = key + b"\x00" * (block - len(key))
    inner = md5(bytes([b ^ 0x36 for b in key]))
    inner.update(message)
    outer = md5(bytes([b ^ 0x5C for b in key]))
    outer.update(inner.digest())
    return outer.digest()


def choose_mechanism(offered, wanted=None):
    """Pick the AUTH mechanism: the caller's choice if the server offers it, else our best."""
    offered = [m.upper() for m in offered]
    if wanted is not None:
        wanted = wanted.upper()
        if wanted not in AUTH_MECHANISMS:
            raise ValueError("AUTH mechanism %r is not supported; choose one of %s"
                             % (wanted, ", ".join(AUTH_MECHANISMS)))
        if wanted not in offered:
            raise SMTPError("server does not offer AUTH %s (it offers: %s)"
                            % (wanted, " ".join(offered) or "no AUTH at all"))
        return wanted
    for mechanism in AUTH_MECHANISMS:
        if mechanism in offered and (mechanism != "CRAM-MD5" or md5 is not None):
            return mechanism
    raise SMTPError("no AUTH mechanism in common: server offers %s, netsec supports %s"
                    % (" ".join(offered) or "none", ", ".join(AUTH_MECHANISMS)))


class Auth:
    """One AUTH exchange (RFC 4954). `start()` gives the first command; feed each reply to
    `respond(reply)`, which returns the next line to send, or None once authenticated."""

    def __init__(self, mechanism, user, password):
        if mechanism not in AUTH_MECHANISMS:
            raise ValueError("AUTH mechanism %r is not supported; choose one of %s"
                             % (mechanism, ", ".join(AUTH_MECHANISMS)))
        if not isinstance(user, str) or not isinstance(password, str):
            raise ValueError("AUTH user and password must be str")
        self.mechanism = mechanism
        self._user = user.encode()
        self._password = password.encode()
        if mechanism == "PLAIN" and (b"\x00" in self._user or b"\x00" in self._password):
            raise ValueError("AUTH PLAIN user and password must not contain NUL characters")
        self._step = 0

    def start(self):
        self._step = 1
        if self.mechanism == "PLAIN":
            # RFC 4616: empty authorization identity, NUL, user, NUL, password; sent at once.
            return b"AUTH PLAIN " + _b64(b"\x00" + self._user + b"\x00" + self._password) + b"\r\n"
        return b"AUTH " + self.mechanism.encode() + b"\r\n"

    def respond(self, reply):
        if reply.code == 235:
            return None
        if reply.code != 334:
            if reply.code == 535:
                raise SMTPReplyError("AUTH %s (check user name and password)" % self.mechanism,
                                     reply)
            raise SMTPReplyError("AUTH %s" % self.mechanism, reply)
        step = self._step
        self._step += 1
        if self.mechanism == "LOGIN" and step == 1:
            return _b64(self._user) + b"\r\n"
        if self.mechanism == "LOGIN" and step == 2:
            return _b64(self._password) + b"\r\n"
        if self.mechanism == "CRAM-MD5" and step == 1:
            return self._cram_md5_answer(reply)
        raise SMTPError("AUTH %s: unexpected challenge %d %s" % (self.mechanism, reply.code,
                                                                 reply.text))

    def _cram_md5_answer(self, reply):
        # RFC 2195: the challenge is base64; answer "user hex(HMAC-MD5(password, challenge))".
        try:
            challenge = binascii.a2b_base64(reply.lines[0].encode())
        except Exception:
            raise SMTPError("AUTH CRAM-MD5: challenge is not base64: %s" % reply.text)
        digest = binascii.hexlify(hmac_md5(self._password, challenge))
        return _b64(self._user + b" " + digest) + b"\r\n"


def frame_data(chunks):
    """Frame message bytes for the DATA phase: dot-stuff lines, end with exactly CRLF.CRLF.

    `chunks` is any iterable of bytes split anywhere (a generator streaming from flash is fine);
    the result is a generator of wire-ready bytes, one per input chunk, so memory stays at one
    chunk plus one line. Lines must end with CRLF and hold at most 998 octets: a bare CR or LF,
    or a longer line, raises SMTPError - the caller must then drop the connection without the
    final dot, so the server discards the partial message. A last line without CRLF gets one.
    """
    partial = b""  # the current line's start, carried between chunks
    for chunk in chunks:
        data = partial + chunk if partial else bytes(chunk)
        out = []
        start = 0
        while True:
            end = data.find(b"\n", start)
            if end < 0:
                break
            if end == start or data[end - 1] != 13:
                raise SMTPError("message contains a bare LF: lines must end with CRLF")
            _check_line(data, start, end - 1)
            if data[start] == 46:  # "." at line start: double it (RFC 5321 4.5.2)
                out.append(b".")
            out.append(data[start:end + 1])
            start = end + 1
        partial = data[start:]
        # A CR may only appear as the last byte here, waiting for its LF in the next chunk.
        _check_line(partial, 0, len(partial) - 1 if partial.endswith(b"\r") else len(partial))
        if out:
            yield b"".join(out)
    if partial:
        if partial.endswith(b"\r"):
            raise SMTPError("message ends with a bare CR: lines must end with CRLF")
        yield (b"." if partial[0] == 46 else b"") + partial + b"\r\n.\r\n"
    else:
        yield b".\r\n"


def _check_line(data, start, end):
    """data[start:end] is line content: no CR, at most MAX_LINE octets."""
    if end - start > MAX_LINE:
        raise SMTPError("message line longer than %d octets (RFC 5321): encode the content "
                        "(quoted-printable or base64)" % MAX_LINE)
    cr = data.find(b"\r", start)
    if 0 <= cr < end:
        raise SMTPError("message contains a bare CR: lines must end with CRLF")
