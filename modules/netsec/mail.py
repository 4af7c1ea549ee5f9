"""The SMTPS client: talks to a mail relay over implicit TLS (port 465, the default as RFC 8314
recommends), STARTTLS (587, TLS required) or - only when asked for by name - plaintext.

    relay = mail.Relay("smtp.example.com", user="device7", password="...")
    results = await relay.send(message)      # {recipient: smtp.Reply}, refused ones included

The relay's certificate is verified against Net_Security.EMAIL_SERVER_CAS and its host name
through netsec.tls. AUTH is never sent without TLS. Every failure is a MailError whose kind and
outcome follow netsec.smtp.OUTCOMES. For mail that must not be lost, queue it in a
netsec.outbox.Outbox instead of calling send().
"""

import asyncio

from netsec import log, smtp, tls

TLS = "tls"
STARTTLS = "starttls"
PLAINTEXT = "plaintext"
DEFAULT_PORTS = {TLS: 465, STARTTLS: 587, PLAINTEXT: 25}
_READ_SIZE = 512
# In STARTTLS and plaintext modes, a relay still silent after this many seconds is asked, on a
# second connection, whether it speaks TLS first (an implicit-TLS port); a slow greeting is
# still waited for up to the greeting timeout.
_PROBE_AFTER = 3
# A TLS 1.2 ClientHello (RFC 5246 7.4.1.2) as netsec's own clients send it: ECDHE-ECDSA and
# ECDHE-RSA with AES-128-GCM, curve P-256 (RFC 8422), SHA-256 signatures. A TLS server answers
# it with a handshake (0x16) or alert (0x15) record; an SMTP server with text.
_CLIENT_HELLO = (b"\x16\x03\x01\x00\x4b"  # record: handshake, 75 bytes
                 b"\x01\x00\x00\x47\x03\x03" + bytes(32)  # ClientHello, TLS 1.2, random
                 + b"\x00\x00\x04\xc0\x2b\xc0\x2f\x01\x00"  # no session; suites; no compression
                 b"\x00\x1a"  # extensions:
                 b"\x00\x0a\x00\x04\x00\x02\x00\x17"  # supported_groups: secp256r1
                 b"\x00\x0b\x00\x02\x01\x00"  # ec_point_formats: uncompressed
                 b"\x00\x0d\x00\x08\x00\x06\x04\x03\x08\x04\x04\x01")  # signature_algorithms
_PORT_ADVICE = "check security= and the port (465 implicit TLS, 587 STARTTLS)"


class _Unsendable(Exception):
    """The message itself cannot go on the wire (found while streaming it)."""


class MailError(Exception):
    """Delivery failed. `kind` names the cause for code: 'connection', 'timeout',
    'delivery_unknown' (no reply to the final dot: the relay may have the message), 'auth',
    'ehlo_name', 'too_big', 'refused' (5xx), 'deferred' (4xx), 'starttls', 'wrong_port',
    'protocol', 'unsendable', 'memory', or a netsec.tls.TLSError kind ('unknown_ca', 'hostname',
    'expired', 'clock_unset', ...). `code` is the relay's reply code when a reply caused it.
    `outcome` is smtp.RETRY or smtp.FAILED (smtp.OUTCOMES); `permanent` means FAILED: the same
    message to the same relay would fail again."""

    def __init__(self, text, kind, code=None, command=None):
        super().__init__(text)
        self.kind = kind
        self.code = code
        # A failure is never a delivery: a 2yz reply where another belongs (250 to DATA) is the
        # relay breaking SMTP, and counts by its kind.
        self.outcome = smtp.outcome(kind, code if code is None or code >= 300 else None, command)

    @property
    def permanent(self):
        return self.outcome == smtp.FAILED


def describe(reply):
    """A refusal as text for errors and logs; one about our EHLO name says how to fix it."""
    text = "%d %s" % (reply.code, reply.text)
    if smtp.mentions_helo(reply):
        text += (" (the relay refuses this device's EHLO name: set ehlo_name= on the Relay to the "
                 "device's fully-qualified host name)")
    return text


def _dotted_hostname():
    # The board's host name, if it is fully qualified (RFC 5321 4.1.1.1); else None.
    try:
        import network
        name = network.hostname()
        if "." in name:
            return smtp.check_domain(name)
    except Exception:  # no network module (unix port) or an unusable name
        pass
    return None


def _address_literal(sock):
    """This end of the connection as an RFC 5321 4.1.3 address literal: [192.0.2.7] or
    [IPv6:2001:db8::7]."""
    address = sock.getsockname()
    if isinstance(address, (bytes, bytearray)):  # the unix port gives a raw sockaddr
        import socket
        family, packed = socket.sockaddr(address)[:2]
        host = socket.inet_ntop(family, packed)
    else:
        host = address[0]
    return "[IPv6:%s]" % host if ":" in host else "[%s]" % host


class Relay:
    """Where and how to deliver: one mail relay (submission server) and our account on it.

    timeout_scale multiplies the RFC 5321 4.5.3.2 waits in smtp.TIMEOUTS (greeting 5 min, MAIL
    and RCPT 5 min, DATA 2 min, each data block 3 min, the final dot 10 min). ehlo_name is the
    device's fully-qualified host name; without it the device greets with its address, e.g.
    [192.0.2.7] (RFC 5321 4.1.3), unless the board's host name has a dot. Raises ValueError
    for settings that cannot work."""

    def __init__(self, host, port=None, security=TLS, user=None, password=None,
                 verify="verified", auth=None, timeout_scale=1, ehlo_name=None):
        if not isinstance(host, str) or not host:
            raise ValueError("host must be the relay's name, e.g. 'smtp.example.com', not %r"
                             % (host,))
        if security not in DEFAULT_PORTS:
            raise ValueError("security must be mail.TLS (port 465), mail.STARTTLS (587) or "
                             "mail.PLAINTEXT, not %r" % (security,))
        if security == PLAINTEXT and (user is not None or password is not None):
            raise ValueError("AUTH is never sent over plaintext: use security=mail.TLS or "
                             "mail.STARTTLS to log in to the relay")
        if (user is None) != (password is None):
            raise ValueError("give both user and password, or neither")
        if verify not in ("verified", "encrypted"):
            raise ValueError("verify must be 'verified' (default) or 'encrypted' (no certificate "
                             "check), not %r" % (verify,))
        if auth is not None:
            smtp.choose_mechanism(smtp.AUTH_MECHANISMS, auth)  # refuses unknown names now
        if not isinstance(timeout_scale, (int, float)) or timeout_scale <= 0:
            raise ValueError("timeout_scale must be a number above 0 (1 = the RFC 5321 timeouts), "
                             "not %r" % (timeout_scale,))
        if ehlo_name is not None:
            smtp.check_domain(ehlo_name, "ehlo_name")
            if "." not in ehlo_name:
                raise ValueError("ehlo_name %r is not fully qualified: give the device's name with "
                                 "its domain (sensor7.example.com) or leave it out to greet with the "
                                 "device's address (RFC 5321 4.1.1.1)" % ehlo_name)
        self.host = tls.server_name(host)  # "[::1]" connects to ::1; a bad name fails here
        self.port = port or DEFAULT_PORTS[security]
        self.security = security
        self.user = user
        self.password = password
        self.verify = verify
        self.auth = auth
        self.timeouts = dict((step, seconds * timeout_scale)
                             for step, seconds in smtp.TIMEOUTS.items())
        self.ehlo_name = ehlo_name or _dotted_hostname()

    def __repr__(self):
        return "<Relay %s:%d %s>" % (self.host, self.port, self.security)

    async def send(self, message):
        """Deliver a netsec.mime.Message now. Returns {recipient: smtp.Reply}: the final reply for
        accepted recipients, the refusal for the others. Raises MailError if nobody got it."""
        session = Session(self)
        try:
            await session.open()
            size = None
            if session.capabilities.size is not None:  # RFC 1870: check and announce the size
                size = _rendered_size(message)
            results = await session.transaction(message.sender[1], message.recipients(),
                                                smtp.frame_data(message.render()), size)
        finally:
            await session.close()
        refused = [r for r in results if results[r].code >= 300]
        if len(refused) == len(results):
            retry = [r for r in refused
                     if smtp.outcome(code=results[r].code, command="RCPT") == smtp.RETRY]
            first = results[(retry or refused)[0]]
            raise MailError("relay %s:%d accepted no recipient: %s" % (
                self.host, self.port, "; ".join("%s: %s" % (r, describe(results[r]))
                                                for r in refused)),
                smtp.reply_kind("RCPT", first), first.code, "RCPT")
        return results


def _rendered_size(message):
    size = 0
    try:
        for chunk in message.render():
            size += len(chunk)
    except OSError as e:  # an attachment file went away
        raise MailError("message cannot be sent: %s" % e, "unsendable")
    return size


class Session:
    """One connection to the relay, good for several messages (one TLS handshake for all)."""

    def __init__(self, relay):
        self.relay = relay
        self.stream = None
        self.capabilities = None
        self.encrypted = False
        self._parser = smtp.ReplyParser()
        self._replies = []
        self._sslsock = None
        self._tls_context = None  # the netsec.tls context that made _sslsock
        self._ehlo_name = relay.ehlo_name
        self._waiting = None  # (what, seconds): what this device waits for, and how long
        self._idle = False  # every command answered, nothing unread: QUIT can be said
        self._after_dot = False  # the message's end went out: failures now leave it unknown

    @property
    def alive(self):
        return self.stream is not None

    def _where(self):
        return "%s:%d" % (self.relay.host, self.relay.port)

    async def open(self):
        """Connect, greet, secure and log in; any failure closes the connection and raises
        MailError: nothing about a message has been sent yet."""
        try:
            await self._open()
        except Exception as e:
            error = self._error(e)  # first: tls.explain() reads what the failed handshake noted
            await self._end()
            raise error

    async def _open(self):
        relay = self.relay
        ctx = None
        if relay.security == TLS:
            ctx = self._context()
        elif relay.security == PLAINTEXT:
            log.warning("mail: PLAINTEXT connection to relay %s: the message crosses the network "
                        "unencrypted (security=mail.PLAINTEXT)" % self._where())
        self._waiting = ("the connection", relay.timeouts["greeting"])
        reader, writer = await asyncio.wait_for(asyncio.open_connection(relay.host, relay.port),
                                                self._waiting[1])
        self.stream = writer
        if self._ehlo_name is None:
            self._ehlo_name = _address_literal(writer.s)
        if ctx is not None:
            self._wrap(ctx)  # the handshake runs inside the first read: the greeting's
        await self._greeting()
        self._tls_established()
        await self._ehlo()
        if relay.security == STARTTLS:
            await self._starttls()
        if relay.user is not None:
            await self._authenticate()

    def _context(self):
        ctx = tls.client_context(self.relay.host, level=self.relay.verify)
        if self.relay.verify != "verified":
            log.warning("mail: relay %s certificate NOT verified (verify='encrypted'): anyone on "
                        "the path can read and change the mail" % self._where())
        return ctx

    def _wrap(self, ctx):
        sslsock = ctx.wrap_socket(self.stream.s, server_hostname=self.relay.host,
                                  do_handshake_on_connect=False)
        sslsock.setblocking(False)
        self.stream.s = sslsock  # reader and writer are one Stream object in MicroPython
        self._sslsock, self._tls_context = sslsock, ctx

    async def _greeting(self):
        if self.relay.security == TLS:
            return await self._expect(220, "greeting")
        # Plaintext first: a relay that says nothing for a while may be an implicit-TLS port,
        # waiting for a ClientHello that will never come from this side.
        wait = self.relay.timeouts["greeting"]
        if wait > _PROBE_AFTER:
            try:
                return await self._expect(220, "greeting", _PROBE_AFTER)
            except asyncio.TimeoutError:
                pass
            if await self._speaks_tls_first():
                raise MailError("relay %s speaks TLS first (an implicit-TLS port), but "
                                "security=%s expects a plain-text greeting: %s"
                                % (self._where(), self.relay.security, _PORT_ADVICE),
                                "wrong_port")
            wait -= _PROBE_AFTER
        return await self._expect(220, "greeting", wait)

    async def _speaks_tls_first(self):
        stream = None
        try:
            reader, stream = await asyncio.wait_for(
                asyncio.open_connection(self.relay.host, self.relay.port), _PROBE_AFTER)
            stream.write(_CLIENT_HELLO)
            await asyncio.wait_for(stream.drain(), _PROBE_AFTER)
            first = await asyncio.wait_for(stream.read(1), _PROBE_AFTER)
            return first in (b"\x15", b"\x16")
        except Exception:  # no answer or no connection: no evidence either way
            return False
        finally:
            if stream is not None:
                try:
                    await stream.wait_closed()
                except Exception:
                    pass

    def _tls_established(self):
        if self._sslsock is not None and not self.encrypted:
            self.encrypted = True
            tls.log_connection(self._sslsock, "smtp relay " + self._where(), self._tls_context)

    async def _ehlo(self):
        self._send(smtp.ehlo(self._ehlo_name))
        self.capabilities = smtp.Capabilities(await self._reply("EHLO"))

    async def _starttls(self):
        # RFC 3207. Without TLS there must be no credentials and no message: end the session.
        if not self.capabilities.starttls:
            raise MailError("relay %s: does not offer STARTTLS: refusing to continue without TLS "
                            "(%s)" % (self._where(), _PORT_ADVICE), "starttls")
        self._send(smtp.STARTTLS)
        reply = await self._reply("STARTTLS")
        if reply.code != 220:
            raise MailError("relay %s: refused STARTTLS (%d %s): refusing to continue without TLS"
                            % (self._where(), reply.code, reply.text), "starttls", reply.code,
                            "STARTTLS")
        if self._replies or self._parser.pending():
            self._idle = False  # what it sent is not ours to answer: no QUIT into it
            raise MailError("relay %s: sent data after its STARTTLS reply, before the TLS "
                            "handshake: possible injection attack, session ended"
                            % self._where(), "starttls")
        self._wrap(self._context())
        self._parser = smtp.ReplyParser()  # nothing from before TLS may be trusted
        self.capabilities = None
        await self._ehlo()  # the handshake runs inside this first write/read
        self._tls_established()

    async def _authenticate(self):
        relay = self.relay
        if not self.encrypted:
            raise MailError("relay %s: refusing to send AUTH without TLS" % self._where(), "auth")
        offered = self.capabilities.auth
        if not offered:
            raise MailError("relay %s: offers no AUTH but a user is configured: check the relay "
                            "or remove user/password" % self._where(), "auth")
        try:
            mechanism = smtp.choose_mechanism(offered, relay.auth)
        except smtp.SMTPError as e:
            raise MailError("relay %s: %s" % (self._where(), e), "auth")
        exchange = smtp.Auth(mechanism, relay.user, relay.password)
        line = exchange.start()
        while line is not None:
            self._send(line)
            line = exchange.respond(await self._reply("AUTH"))

    async def transaction(self, sender, recipients, framed_chunks, size=None):
        """One message: MAIL, RCPT for each recipient, DATA streaming framed_chunks (output of
        smtp.frame_data, or the same bytes read back from the outbox); `size` in octets is
        checked against the relay's SIZE and announced in MAIL FROM (RFC 1870). Returns
        {recipient: Reply} (no DATA when every recipient was refused); raises MailError when the
        relay refused the message itself or the connection failed."""
        limit = self.capabilities.size
        if size is not None and limit and size > limit:
            raise MailError("relay %s: accepts at most %d bytes, the message has %d"
                            % (self._where(), limit, size), "too_big")
        self._after_dot = False
        try:
            return await self._transaction(sender, recipients, framed_chunks,
                                           size if limit is not None else None)
        except Exception as e:
            error = self._error(e)
            if self._idle:
                await self._reset()  # a refusal: start clean for the next message
            else:
                await self.abort()  # mid-DATA, anything sent would become part of the message
            raise error

    async def _transaction(self, sender, recipients, framed_chunks, size):
        await self._command(smtp.mail_from(sender, size), 250, "MAIL")
        results = {}
        accepted = []
        for rcpt in recipients:
            self._send(smtp.rcpt_to(rcpt))
            reply = await self._reply("RCPT")
            results[rcpt] = reply
            if reply.code in (250, 251):
                accepted.append(rcpt)
        if not accepted:
            await self._reset()
            return results
        await self._command(smtp.DATA, 354, "DATA")
        self._idle = False  # the data phase: whatever is sent now becomes part of the message
        chunks = iter(framed_chunks)
        chunk = _next(chunks)
        while chunk is not None:
            following = _next(chunks)  # one ahead, to know which write carries the final dot
            self._after_dot = following is None
            self.stream.write(chunk)
            self._waiting = ("the relay to take the message data", self.relay.timeouts["block"])
            await asyncio.wait_for(self.stream.drain(), self._waiting[1])
            chunk = following
        final = await self._expect(250, "dot")
        for rcpt in accepted:
            results[rcpt] = final
        return results

    async def _reset(self):
        # After a refused transaction: start clean for the next message on this connection.
        if self.alive:
            try:
                self._send(smtp.RSET)
                await self._reply("RSET")
            except Exception:
                await self.abort()

    async def close(self):
        """Say QUIT, wait briefly for the goodbye (RFC 5321 4.1.1.10) and close."""
        if self.stream is not None:
            try:
                self._send(smtp.QUIT)
                await self._reply("QUIT")
            except Exception:
                pass  # QUIT is a courtesy; the relay copes with a closed connection
        await self.abort()

    async def abort(self):
        """Close without a word: mid-DATA, anything sent would become part of the message."""
        if self.stream is None:
            return
        stream = self.stream
        self.stream = None
        try:
            await stream.wait_closed()
        except Exception:
            pass

    async def _end(self):
        # After a failure: politely if the dialogue is in step, else without a word.
        if self._idle:
            await self.close()
        else:
            await self.abort()

    def _send(self, line):
        self._idle = False
        self.stream.write(line)

    async def _reply(self, step, wait=None):
        what = "the greeting" if step == "greeting" else "the reply to " + step
        if step == "dot":
            what = "the reply to the final dot"
        timeout = wait or self.relay.timeouts.get(step, self.relay.timeouts["command"])
        self._waiting = (what, timeout)
        if self.stream is not None:
            await asyncio.wait_for(self.stream.drain(), timeout)
        while not self._replies:
            if self.stream is None:
                raise MailError("relay %s: connection already closed" % self._where(),
                                "connection")
            data = await asyncio.wait_for(self.stream.read(_READ_SIZE), timeout)
            if not data:
                raise MailError("relay %s: closed the connection while this device waited for "
                                "%s" % (self._where(), what), "connection")
            self._replies += self._parser.feed(data)
        self._idle = len(self._replies) == 1 and not self._parser.pending()
        return self._replies.pop(0)

    async def _expect(self, code, step, wait=None):
        reply = await self._reply(step, wait)
        if reply.code != code:
            raise smtp.SMTPReplyError("end of DATA" if step == "dot" else step, reply)
        return reply

    async def _command(self, line, code, step):
        self._send(line)
        return await self._expect(code, step)

    def _error(self, exc):
        """The MailError for an exception raised while talking to the relay."""
        if isinstance(exc, _Unsendable):
            return MailError("message cannot be sent: %s" % exc, "unsendable")
        error = exc if isinstance(exc, MailError) else self._classify(exc)
        if self._after_dot and error.code is None:
            # The message may be complete at the relay: retrying may deliver it twice.
            where = "relay %s: " % self._where()
            text = str(error)
            return MailError(where + "delivery unknown (the relay may have it): "
                             + (text[len(where):] if text.startswith(where) else text),
                             "delivery_unknown")
        return error

    def _classify(self, exc):
        where = "relay %s: " % self._where()
        if isinstance(exc, smtp.SMTPReplyError):
            command = exc.command.split()[0]
            return MailError(where + "%s refused: %s" % (exc.command, describe(exc.reply)),
                             smtp.reply_kind(command, exc.reply), exc.code, command)
        if tls.out_of_memory(exc):
            return MailError(where + "not enough memory (%r): free heap before sending, or send "
                             "smaller pieces" % (exc,), "memory")
        if isinstance(exc, asyncio.TimeoutError):
            return MailError(where + "no answer within %g s while waiting for %s (timeout)"
                             % (self._waiting[1], self._waiting[0]), "timeout")
        if isinstance(exc, smtp.SMTPError):
            return MailError(where + str(exc), "protocol")
        code = exc.args[0] if isinstance(exc, OSError) and exc.args else None
        if isinstance(code, int) and code > 0:  # from the OS: refused, reset, unreachable
            import errno
            return MailError(where + "connection failed: %s" % errno.errorcode.get(code, code),
                             "connection")
        if self._sslsock is not None and not self.encrypted:  # the handshake failed
            error = tls.explain(exc)
            if error.kind == "protocol" and self.relay.security == TLS:
                return MailError(where + "speaks plaintext first (a STARTTLS or plain port), "
                                 "but security=mail.TLS expects TLS from the first byte: "
                                 + _PORT_ADVICE, "wrong_port")
            return MailError(where + "TLS failed: %s" % error, error.kind)
        return MailError(where + "%s: %s" % (type(exc).__name__, exc), "protocol")


def _next(chunks):
    try:
        return next(chunks)
    except StopIteration:
        return None
    except (smtp.SMTPError, OSError) as e:  # bare CR/LF, long line, attachment unreadable
        raise _Unsendable(str(e))
