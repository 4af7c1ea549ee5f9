"""The SMTPS client: talks to a mail relay over implicit TLS (port 465, the default as RFC 8314
recommends), STARTTLS (587, TLS required) or - only when asked for by name - plaintext.

    relay = mail.Relay("smtp.example.com", user="device7", password="...")
    results = await relay.send(message)      # {recipient: smtp.Reply}, refused ones included

The relay's certificate is verified against Net_Security.EMAIL_SERVER_CAS and its host name
through netsec.tls. AUTH is never sent without TLS. For mail that must not be lost, queue it in a
netsec.outbox.Outbox instead of calling send().
"""

import asyncio

from netsec import log, smtp, tls

TLS = "tls"
STARTTLS = "starttls"
PLAINTEXT = "plaintext"
DEFAULT_PORTS = {TLS: 465, STARTTLS: 587, PLAINTEXT: 25}
_READ_SIZE = 512


class _Unsendable(Exception):
    """The message itself cannot go on the wire (found while streaming it)."""


class MailError(Exception):
    """Delivery failed. `permanent`: the relay refused this message for good (5xx), or it cannot
    be sent at all, so trying again would fail again."""

    def __init__(self, text, permanent=False):
        super().__init__(text)
        self.permanent = permanent


def _default_ehlo_name():
    try:
        import network
        return smtp.check_domain(network.hostname())
    except Exception:  # no network module (unix port) or an unusable name: say who we are plainly
        return "localhost"


class Relay:
    """Where and how to deliver: one mail relay (submission server) and our account on it."""

    def __init__(self, host, port=None, security=TLS, user=None, password=None,
                 verify="verified", auth=None, timeout=30, ehlo_name=None):
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
        self.host = host
        self.port = port or DEFAULT_PORTS[security]
        self.security = security
        self.user = user
        self.password = password
        self.verify = verify
        self.auth = auth
        self.timeout = timeout
        self.ehlo_name = smtp.check_domain(ehlo_name or _default_ehlo_name(), "ehlo_name")

    def __repr__(self):
        return "<Relay %s:%d %s>" % (self.host, self.port, self.security)

    async def send(self, message):
        """Deliver a netsec.mime.Message now. Returns {recipient: smtp.Reply}: the final reply for
        accepted recipients, the refusal for the others. Raises MailError if nobody got it."""
        session = Session(self)
        try:
            await session.open()
            results = await session.transaction(message.sender[1], message.recipients(),
                                                smtp.frame_data(message.render()))
        finally:
            await session.close()
        refused = [r for r in results if results[r].code >= 300]
        if len(refused) == len(results):
            permanent = all(results[r].code >= 500 for r in refused)
            raise MailError("relay %s:%d accepted no recipient: %s" % (
                self.host, self.port, "; ".join("%s: %d %s" % (r, results[r].code, results[r].text)
                                                for r in refused)), permanent=permanent)
        return results


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
        except MailError:
            await self.abort()
            raise
        except Exception as e:
            text = self._explain(e)  # first: tls.explain() reads what the failed handshake noted
            await self.abort()
            raise MailError("relay %s: %s" % (self._where(), text))

    async def _open(self):
        relay = self.relay
        ssl = None
        if relay.security == TLS:
            ssl = self._context()
        elif relay.security == PLAINTEXT:
            log.warning("mail: PLAINTEXT connection to relay %s: the message crosses the network "
                        "unencrypted (security=mail.PLAINTEXT)" % self._where())
        reader, writer = await asyncio.wait_for(
            asyncio.open_connection(relay.host, relay.port, ssl=ssl, server_hostname=relay.host),
            relay.timeout)
        self.stream = writer
        if ssl is not None:
            self._sslsock = writer.s
        await self._expect(220, "greeting")
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

    def _tls_established(self):
        if self._sslsock is not None and not self.encrypted:
            self.encrypted = True
            tls.log_connection(self._sslsock, "smtp relay " + self._where())

    async def _ehlo(self):
        self._send(smtp.ehlo(self.relay.ehlo_name))
        self.capabilities = smtp.Capabilities(await self._reply())

    async def _starttls(self):
        # RFC 3207. Without TLS there must be no credentials and no message: end the session.
        if not self.capabilities.starttls:
            raise MailError("relay %s: does not offer STARTTLS: refusing to continue without TLS"
                            " (check the port: 587 for STARTTLS, 465 for implicit TLS)"
                            % self._where())
        self._send(smtp.STARTTLS)
        reply = await self._reply()
        if reply.code != 220:
            raise MailError("relay %s: refused STARTTLS (%d %s): refusing to continue without TLS"
                            % (self._where(), reply.code, reply.text))
        if self._replies or self._parser.pending():
            raise MailError("relay %s: sent data after its STARTTLS reply, before the TLS "
                            "handshake: possible injection attack, session ended" % self._where())
        ctx = self._context()
        sslsock = ctx.wrap_socket(self.stream.s, server_hostname=self.relay.host,
                                  do_handshake_on_connect=False)
        sslsock.setblocking(False)
        self.stream.s = sslsock  # reader and writer are one Stream object in MicroPython
        self._sslsock = sslsock
        self._parser = smtp.ReplyParser()  # nothing from before TLS may be trusted
        self.capabilities = None
        await self._ehlo()  # the handshake runs inside this first write/read
        self._tls_established()

    async def _authenticate(self):
        relay = self.relay
        if not self.encrypted:
            raise MailError("relay %s: refusing to send AUTH without TLS" % self._where())
        offered = self.capabilities.auth
        if not offered:
            raise MailError("relay %s: offers no AUTH but a user is configured: check the relay "
                            "or remove user/password" % self._where())
        exchange = smtp.Auth(smtp.choose_mechanism(offered, relay.auth), relay.user,
                             relay.password)
        line = exchange.start()
        while line is not None:
            self._send(line)
            line = exchange.respond(await self._reply())

    async def transaction(self, sender, recipients, framed_chunks, size=None):
        """One message: MAIL, RCPT for each recipient, DATA streaming framed_chunks (output of
        smtp.frame_data, or the same bytes read back from the outbox). Returns {recipient: Reply}
        (no DATA when every recipient was refused); raises MailError when the relay refused the
        message itself or the connection failed."""
        limit = self.capabilities.size
        if size is not None and limit and size > limit:
            raise MailError("relay %s: accepts at most %d bytes, the message has %d"
                            % (self._where(), limit, size), permanent=True)
        try:
            return await self._transaction(sender, recipients, framed_chunks,
                                           size if limit is not None else None)
        except MailError:  # the relay closed the connection
            await self.abort()
            raise
        except smtp.SMTPReplyError as e:
            await self._reset()
            raise MailError("relay %s: %s" % (self._where(), e), permanent=e.permanent)
        except _Unsendable as e:
            await self.abort()
            raise MailError("message cannot be sent: %s" % e, permanent=True)
        except Exception as e:
            # Connection lost or timeout: the relay has no complete message (no final dot),
            # so a later retry is a clean first delivery.
            text = self._explain(e)
            await self.abort()
            raise MailError("relay %s: %s" % (self._where(), text))

    async def _transaction(self, sender, recipients, framed_chunks, size):
        await self._command(smtp.mail_from(sender, size), 250, "MAIL FROM")
        results = {}
        accepted = []
        for rcpt in recipients:
            self._send(smtp.rcpt_to(rcpt))
            reply = await self._reply()
            results[rcpt] = reply
            if reply.code in (250, 251):
                accepted.append(rcpt)
        if not accepted:
            await self._reset()
            return results
        await self._command(smtp.DATA, 354, "DATA")
        chunks = iter(framed_chunks)
        while True:
            try:
                chunk = next(chunks)
            except StopIteration:
                break
            except (smtp.SMTPError, OSError) as e:  # bare CR/LF, long line, attachment unreadable
                raise _Unsendable(str(e))
            self.stream.write(chunk)
            await asyncio.wait_for(self.stream.drain(), self.relay.timeout)
        final = await self._expect(250, "end of DATA")
        for rcpt in accepted:
            results[rcpt] = final
        return results

    async def _reset(self):
        # After a refused transaction: start clean for the next message on this connection.
        if self.alive:
            try:
                self._send(smtp.RSET)
                await self._reply()
            except Exception:
                await self.close()

    async def close(self):
        """Say QUIT and close."""
        if self.stream is not None:
            try:
                self.stream.write(smtp.QUIT)
                await asyncio.wait_for(self.stream.drain(), 2)
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

    def _send(self, line):
        self.stream.write(line)

    async def _reply(self):
        if self.stream is not None:
            await asyncio.wait_for(self.stream.drain(), self.relay.timeout)
        while not self._replies:
            if self.stream is None:
                raise MailError("relay %s: connection already closed" % self._where())
            data = await asyncio.wait_for(self.stream.read(_READ_SIZE), self.relay.timeout)
            if not data:
                raise MailError("relay %s: closed the connection" % self._where())
            self._replies += self._parser.feed(data)
        return self._replies.pop(0)

    async def _expect(self, code, what):
        reply = await self._reply()
        if reply.code != code:
            raise smtp.SMTPReplyError(what, reply)
        return reply

    async def _command(self, line, code, what):
        self._send(line)
        return await self._expect(code, what)

    def _explain(self, exc):
        if isinstance(exc, asyncio.TimeoutError):
            return "no answer within %d s (timeout)" % self.relay.timeout
        if isinstance(exc, smtp.SMTPError):
            return str(exc)
        code = exc.args[0] if isinstance(exc, OSError) and exc.args else None
        if isinstance(code, int) and code > 0:  # from the OS: refused, reset, unreachable
            import errno
            return "connection failed: %s" % errno.errorcode.get(code, code)
        if self._sslsock is not None and not self.encrypted:  # the handshake failed
            return "TLS failed: %s" % tls.explain(exc)
        return "%s: %s" % (type(exc).__name__, exc)
