"""The outbox: mail written to flash first, delivered in the background, never silently lost.

    outbox = Outbox(relay, "/outbox")
    outbox.queue(message)     # on flash before it returns, no network I/O; returns the Message-ID
    outbox.start()            # background task: deliver, retry with backoff, survive reboots

Each entry is two files: NAME.eml, the message exactly as it goes on the wire after DATA
(dot-stuffed, ending CRLF.CRLF, so every retry sends the same bytes with the same Message-ID),
and NAME.env, its envelope as JSON. An entry exists once its .env exists; what a crash or power
cut leaves half-done is finished or cleaned up when the Outbox is created.

What happens after each reply or failure is netsec.smtp.OUTCOMES, per recipient: connection and
TLS errors, timeouts and 4xx replies are retried with backoff; a 5xx reply (a refused recipient,
message or login) moves the message to failed/ with the reason, listing only the recipients that
did not get it; recipients that got it are never sent it again.

Delivery is at least once. When the relay's reply to the final dot never comes (the connection
breaks or smtp.TIMEOUTS["dot"] passes), the relay may or may not have the message: the outbox
sends it again, with the same bytes and Message-ID so receivers can recognise a duplicate, and
says so in the log each time (a lost alarm is worse than a duplicate one). The same holds for a
crash after the relay accepted a message but before it left the outbox.
"""

import asyncio
import json
import os
import time

from netsec import log, mail, smtp

_READ = 1024


class OutboxFull(Exception):
    """queue() refused a message because the outbox has no room; nothing queued was dropped."""


class TooBig(ValueError):
    """queue() refused a message larger than the whole outbox (max_bytes): it can never fit.
    `size` and `limit` are in bytes as stored (attachments base64-encoded: 4/3 of their size)."""

    def __init__(self, text, size, limit):
        super().__init__(text)
        self.size = size
        self.limit = limit


def _exists(path):
    try:
        os.stat(path)
        return True
    except OSError:
        return False


def _remove(path):
    try:
        os.remove(path)
    except OSError:
        pass


def _mkdir(path):
    if not _exists(path):
        os.mkdir(path)


# What every queue entry's envelope (.env) holds; see queue().
_ENVELOPE_KEYS = {"id", "from", "to", "refused", "attempts"}


def _read_json(path):
    try:
        with open(path) as f:
            return json.loads(f.read())
    except (OSError, ValueError):
        return None


def _write_json(path, value):
    # Written beside, then renamed over: a power cut leaves the old or the new version.
    tmp = path + ".tmp"
    with open(tmp, "w") as f:
        f.write(json.dumps(value))
    try:
        os.rename(tmp, path)
    except OSError:  # FAT will not rename over an existing file; recovery covers the gap
        os.remove(path)
        os.rename(tmp, path)


class Outbox:
    """Queued mail for one relay, kept in the directory `path` (created if missing).

    max_bytes bounds the flash used by queued and failed messages together; retry_min and
    retry_max (seconds) bound the backoff between attempts."""

    def __init__(self, relay, path="/outbox", max_bytes=256 * 1024, retry_min=30, retry_max=3600):
        self.relay = relay
        self.path = path.rstrip("/")
        self.failed_path = self.path + "/failed"
        self.max_bytes = max_bytes
        self.retry_min = retry_min
        self.retry_max = retry_max
        _mkdir(self.path)
        _mkdir(self.failed_path)
        self._retry_at = {}  # name -> time.ticks_ms() when due again; after a reboot all are due
        self._relay_failures = 0
        self._relay_retry_at = None
        self._wake = asyncio.Event()
        self._delivering = False
        self._next_number = 0
        self._recover()

    # --- queueing ---------------------------------------------------------------------------

    def queue(self, message):
        """Write a netsec.mime.Message to flash; return its Message-ID. Raises OutboxFull (no room
        now), TooBig (never fits) or ValueError (cannot be sent as SMTP) with nothing written."""
        name = "%08d" % self._next_number
        self._next_number += 1
        eml = self._file(name, ".eml")
        room = self.max_bytes - self.size()
        written = 0
        try:
            with open(eml, "wb") as f:
                framed = smtp.frame_data(message.render())
                for chunk in framed:
                    written += len(chunk)
                    if written > room:
                        raise self._no_room(message, written, framed, room)
                    f.write(chunk)
            _write_json(self._file(name, ".env"), {
                "id": message.message_id, "from": message.sender[1],
                "to": message.recipients(), "refused": {}, "attempts": 0, "error": ""})
        except smtp.SMTPError as e:
            self._discard_partial(name)
            raise ValueError("message %s cannot be sent as SMTP: %s" % (message.message_id, e))
        except OSError as e:  # flash full or failing, or an attachment file unreadable
            self._discard_partial(name)
            raise OSError(e.args[0] if e.args else 0,
                          "outbox %s: could not queue the message (%s); nothing queued was "
                          "dropped" % (self.path, e))
        except BaseException:
            self._discard_partial(name)
            raise
        log.info("mail: queued %s (%d bytes) for %s" % (message.message_id, written,
                                                        ", ".join(message.recipients())))
        self._wake.set()
        return message.message_id

    def _no_room(self, message, written, rest, room):
        """TooBig if the message would not fit even in an empty outbox, else OutboxFull."""
        for chunk in rest:  # the whole size, to tell the two apart and say by how much
            written += len(chunk)
        if written > self.max_bytes:
            return TooBig("message %s is too big for the outbox: %d bytes on flash (attachments "
                          "base64-encoded), max_bytes=%d; nothing queued was dropped. Raise "
                          "max_bytes or send smaller attachments"
                          % (message.message_id, written, self.max_bytes),
                          written, self.max_bytes)
        return OutboxFull("outbox %s is full: the message needs %d bytes, %d of max_bytes=%d are "
                          "in use by %d queued and %d failed message(s); nothing queued was "
                          "dropped. Wait for delivery, delete entries from %s, or raise max_bytes"
                          % (self.path, written, self.max_bytes - room, self.max_bytes,
                             len(self._names(self.path)), len(self._names(self.failed_path)),
                             self.failed_path))

    def _discard_partial(self, name):
        _remove(self._file(name, ".eml"))
        _remove(self._file(name, ".env.tmp"))

    # --- what is in it ----------------------------------------------------------------------

    def pending(self):
        """Queued entries, oldest first: dicts with name, id, to, attempts and the last error."""
        return [self._entry(self.path, name) for name in self._names(self.path)]

    def failed(self):
        """Entries the relay refused for good: dicts with name, id, refused and the reason."""
        return [self._entry(self.failed_path, name) for name in self._names(self.failed_path)]

    def size(self):
        total = 0
        for folder in (self.path, self.failed_path):
            for file in os.listdir(folder):
                if file.endswith(".eml") or file.endswith(".env"):
                    total += os.stat(folder + "/" + file)[6]
        return total

    def _entry(self, folder, name):
        entry = _read_json(folder + "/" + name + ".env") or {}
        entry["name"] = name
        return entry

    def _names(self, folder):
        names = [f[:-4] for f in os.listdir(folder) if f.endswith(".env")]
        names.sort()
        return names

    def _file(self, name, suffix):
        return self.path + "/" + name + suffix

    # --- delivery ---------------------------------------------------------------------------

    def start(self):
        """Run delivery in the background as a task on the running asyncio loop; returns the task.
        Call it from async code (inside asyncio.run(main())): delivery happens only while the
        loop runs. A program with nothing else to do runs asyncio.run(outbox.run()) instead.
        Raises RuntimeError when no loop is running."""
        try:
            asyncio.current_task()
        except RuntimeError:
            raise RuntimeError("Outbox.start() needs a running asyncio loop: call it from async "
                               "code (inside asyncio.run(main())), or run "
                               "asyncio.run(outbox.run()) to do nothing but deliver")
        return asyncio.create_task(self.run())

    async def run(self):
        """Deliver for ever: what is due now, then whatever queue() adds or a retry makes due."""
        while True:
            self._wake.clear()
            try:
                await self.deliver_due()
            except Exception as e:  # the delivery task must outlive any surprise
                log.error("mail: outbox delivery failed unexpectedly: %r" % (e,))
                await asyncio.sleep(self.retry_min)  # and must not spin on it
            delay = self._seconds_to_next()
            try:
                if delay is None:
                    await self._wake.wait()
                elif delay > 0:
                    await asyncio.wait_for(self._wake.wait(), delay)
            except asyncio.TimeoutError:
                pass

    async def deliver_due(self):
        """Try every entry that is due, over one connection; returns when all were tried."""
        if self._delivering:
            raise RuntimeError("outbox delivery is already running (start() or deliver_due())")
        self._delivering = True
        try:
            await self._deliver_due()
        finally:
            self._delivering = False

    async def _deliver_due(self):
        if self._relay_retry_at is not None and self._ms_until(self._relay_retry_at) > 0:
            return
        session = None
        try:
            for name in self._names(self.path):
                if self._ms_until(self._retry_at.get(name)) > 0:
                    continue
                envelope = _read_json(self._file(name, ".env"))
                if not isinstance(envelope, dict) or not _ENVELOPE_KEYS.issubset(envelope):
                    # Damaged by hand or by the file system: it must not hold up the entries
                    # behind it. Its message is kept in failed/ for a person to look at.
                    self._fail(name, {"id": name, "refused": {}},
                               "damaged queue entry %s: its envelope is unreadable"
                               % self._file(name, ".env"))
                    continue
                if session is None or not session.alive:
                    session = mail.Session(self.relay)
                    try:
                        await session.open()
                    except mail.MailError as e:
                        self._relay_failed(e)
                        return
                    self._relay_failures = 0
                    self._relay_retry_at = None
                eml = self._file(name, ".eml")
                try:
                    results = await session.transaction(
                        envelope["from"], envelope["to"], self._chunks(eml),
                        os.stat(eml)[6] - 3)  # RFC 1870 size: without the final ".\r\n"
                except mail.MailError as e:
                    if e.outcome == smtp.FAILED:
                        self._fail(name, envelope, str(e))
                    else:
                        if e.kind == "delivery_unknown":
                            envelope["unknown"] = envelope.get("unknown", 0) + 1
                        self._defer(name, envelope, str(e))
                    continue
                self._settle(name, envelope, results)
        finally:
            if session is not None:
                await session.close()

    def _chunks(self, eml):
        with open(eml, "rb") as f:
            while True:
                chunk = f.read(_READ)
                if not chunk:
                    return
                yield chunk

    def _settle(self, name, envelope, results):
        # Per recipient, by smtp.OUTCOMES: those who got it are done for good; the rest wait
        # for a retry or go to failed/.
        waiting = []
        delivered = envelope.get("delivered", [])
        for rcpt in envelope["to"]:
            reply = results[rcpt]
            outcome = smtp.outcome(code=reply.code, command="RCPT")
            if outcome == smtp.DELIVERED:
                delivered.append(rcpt)
            elif outcome == smtp.RETRY:
                waiting.append(rcpt)
            else:
                envelope["refused"][rcpt] = mail.describe(reply)
        envelope["delivered"] = delivered
        if waiting:
            envelope["to"] = waiting
            self._defer(name, envelope, "; ".join(
                "%s: %s" % (r, mail.describe(results[r])) for r in waiting))
        elif envelope["refused"]:
            envelope["to"] = list(envelope["refused"])
            self._fail(name, envelope, "refused recipients: " + "; ".join(
                "%s: %s" % (r, envelope["refused"][r]) for r in envelope["refused"]))
        else:
            self._remove_entry(name)
            log.info("mail: delivered %s%s" % (envelope["id"], " (sent again after its delivery "
                     "was unknown: recipients may have it twice, with the same Message-ID)"
                     if envelope.get("unknown") else ""))

    def _defer(self, name, envelope, reason):
        envelope["attempts"] += 1
        envelope["error"] = reason
        _write_json(self._file(name, ".env"), envelope)
        delay = self._backoff(envelope["attempts"])
        self._retry_at[name] = time.ticks_add(time.ticks_ms(), delay * 1000)
        log.warning("mail: %s not delivered (attempt %d): %s; next try in %d s%s"
                    % (envelope["id"], envelope["attempts"], reason, delay,
                       " (its delivery is unknown: the next try may give recipients a second "
                       "copy, with the same Message-ID)" if envelope.get("unknown") else ""))

    def _relay_failed(self, error):
        if error.outcome == smtp.FAILED:
            # Refused for good before any message (a wrong password, a refused EHLO name): every
            # message waiting would meet the same answer. They go to failed/, nothing is lost.
            for name in self._names(self.path):
                envelope = _read_json(self._file(name, ".env"))
                if isinstance(envelope, dict) and _ENVELOPE_KEYS.issubset(envelope):
                    self._fail(name, envelope, str(error))
            return
        self._relay_failures += 1
        delay = self._backoff(self._relay_failures)
        self._relay_retry_at = time.ticks_add(time.ticks_ms(), delay * 1000)
        log.warning("mail: relay unavailable (%s); %d message(s) wait; next try in %d s"
                    % (error, len(self._names(self.path)), delay))

    def _fail(self, name, envelope, reason):
        # Order matters for crash recovery: the failed record first, then the message, then the
        # queue entry goes; _recover() completes a move that a power cut interrupted.
        envelope["error"] = reason
        _write_json(self.failed_path + "/" + name + ".env", envelope)
        os.rename(self._file(name, ".eml"), self.failed_path + "/" + name + ".eml")
        self._remove_entry(name)
        delivered = envelope.get("delivered")
        log.error("mail: %s not delivered to %s%s, kept in %s: %s"
                  % (envelope["id"], ", ".join(envelope.get("to", ())) or "anyone",
                     " (delivered to %s)" % ", ".join(delivered) if delivered else "",
                     self.failed_path, reason))

    def _remove_entry(self, name):
        # The .env goes first: without it, a leftover .eml is known garbage.
        _remove(self._file(name, ".env"))
        _remove(self._file(name, ".eml"))
        self._retry_at.pop(name, None)

    def _backoff(self, attempts):
        delay = self.retry_min
        for _ in range(attempts - 1):
            delay *= 2
            if delay >= self.retry_max:
                return self.retry_max
        return min(delay, self.retry_max)

    def _ms_until(self, ticks):
        return 0 if ticks is None else time.ticks_diff(ticks, time.ticks_ms())

    def _seconds_to_next(self):
        names = self._names(self.path)
        if not names:
            return None
        wait = min(self._ms_until(self._retry_at.get(name)) for name in names)
        if self._relay_retry_at is not None:
            wait = max(wait, self._ms_until(self._relay_retry_at))
        return max(wait, 0) / 1000

    # --- after a reboot ---------------------------------------------------------------------

    def _recover(self):
        files = os.listdir(self.path)
        highest = -1
        for file in files:
            name = file.split(".")[0]
            if name.isdigit():
                highest = max(highest, int(name))
            if not file.endswith(".env.tmp"):
                continue
            env = self._file(name, ".env")
            if not _exists(env) and _read_json(env + ".tmp") is not None \
                    and _exists(self._file(name, ".eml")):
                os.rename(env + ".tmp", env)  # a rename over the old version was interrupted
            else:
                _remove(env + ".tmp")
        for file in os.listdir(self.failed_path):
            name = file.split(".")[0]
            if name.isdigit():
                highest = max(highest, int(name))
        self._next_number = highest + 1
        for file in os.listdir(self.path):
            name = file[:-4]
            if file.endswith(".eml") and not _exists(self._file(name, ".env")):
                _remove(self._file(name, ".eml"))  # never committed, or already delivered
            elif file.endswith(".env") and _exists(self.failed_path + "/" + name + ".env"):
                if _exists(self._file(name, ".eml")):  # an interrupted move to failed/
                    os.rename(self._file(name, ".eml"), self.failed_path + "/" + name + ".eml")
                _remove(self._file(name, ".env"))
            elif file.endswith(".env") and not _exists(self._file(name, ".eml")):
                log.warning("mail: outbox entry %s has no message file (deleted by hand?): "
                            "dropping its envelope" % name)
                _remove(self._file(name, ".env"))
        pending = len(self._names(self.path))
        if pending:
            log.info("mail: outbox %s holds %d message(s) to deliver" % (self.path, pending))
