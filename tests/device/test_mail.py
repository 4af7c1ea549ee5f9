"""netsec.mail on the unix image against real relays on loopback: aiosmtpd with implicit TLS and
with STARTTLS (AUTH PLAIN, LOGIN, CRAM-MD5), and hostile servers scripted here. What arrives is
compared byte for byte with what the device rendered."""
import email
import email.policy
import hashlib
import hmac
import itertools
import json
import os
import re
import socket
import ssl
import threading
import time

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import MISSING, AuthResult

import certfactory as pki
from mpy import free_port, run, write_credentials
from targets import QemuTarget, UnixTarget

pytestmark = pytest.mark.device

USER, PASSWORD = "device7", "correct horse battery"
_configs = itertools.count()

# Builds a netsec.mime.Message from a JSON spec (shared by the scripts below and the outbox's).
MESSAGE_BUILDER = """
import sys, json, asyncio, binascii, hashlib
from netsec import mail, mime

def build(spec):
    m = mime.Message(spec["from"], to=spec.get("to", ()), cc=spec.get("cc", ()),
                     bcc=spec.get("bcc", ()), subject=spec.get("subject", ""),
                     text=spec.get("text"), html=spec.get("html"))
    for name, data in spec.get("attach", ()):
        m.attach(name, binascii.unhexlify(data))
    for path in spec.get("attach_files", ()):
        m.attach_file(path)
    return m

def relay_from(cfg):
    options = dict((key, cfg[key]) for key in ("user", "password", "verify", "auth",
                                               "timeout_scale", "ehlo_name") if key in cfg)
    return mail.Relay(cfg.get("host", "localhost"), cfg["port"], security=cfg["security"],
                      **options)

with open(sys.argv[1]) as f:
    cfg = json.loads(f.read())
"""

# Sends one message with Relay.send() for each of cfg["cases"] (or cfg itself): prints its
# Message-ID and the SHA-256 of the rendered bytes, then the per-recipient results, or the error
# and its kind, outcome and reply code; then "end" and the seconds it took.
SEND = MESSAGE_BUILDER + """
import os, time

async def attempt(cfg):
    try:
        relay = relay_from(cfg)
        m = build(cfg["message"])
        digest = hashlib.sha256()
        for chunk in m.render():
            digest.update(chunk)
        print("message", m.message_id, binascii.hexlify(digest.digest()).decode())
        for path in cfg.get("remove_before_send", ()):  # an attachment that goes away
            os.remove(path)
        results = await relay.send(m)
        print("results", json.dumps(dict((r, [results[r].code, results[r].text]) for r in results)))
    except Exception as e:
        print("error", type(e).__name__, getattr(e, "permanent", "-"), e)
        print("kind", getattr(e, "kind", "-"), getattr(e, "outcome", "-"), getattr(e, "code", "-"))

async def main():
    for case in cfg.get("cases", [cfg]):
        start = time.ticks_ms()
        await attempt(case)
        print("end", time.ticks_diff(time.ticks_ms(), start) / 1000)

asyncio.run(main())
"""


# --- peers ----------------------------------------------------------------------------------


class Inbox:
    """aiosmtpd handler: keeps every accepted message; `refuse` maps recipients to a refusal."""

    def __init__(self, refuse=None):
        self.messages = []
        self.auth = []  # (mechanism, login) of every AUTH that succeeded
        self.refuse = refuse or {}
        self.rcpt_commands = []
        self.mail_options = []  # the parameters of every MAIL FROM
        self.ehlo_names = []  # the client's EHLO name, at every RCPT
        self.quits = 0

    async def handle_MAIL(self, server, session, envelope, address, mail_options):
        self.mail_options.append(mail_options)
        envelope.mail_from = address
        envelope.mail_options.extend(mail_options)
        return "250 OK"

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        self.rcpt_commands.append(address)
        self.ehlo_names.append(session.host_name)
        if address in self.refuse:
            return self.refuse[address]
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_QUIT(self, server, session, envelope):
        self.quits += 1
        return "221 Bye"

    async def handle_DATA(self, server, session, envelope):
        self.messages.append(envelope)
        return "250 2.0.0 Accepted"

    def authenticate(self, server, session, envelope, mechanism, auth_data):
        ok = auth_data.login == USER.encode() and auth_data.password == PASSWORD.encode()
        if ok:
            self.auth.append((mechanism, auth_data.login.decode()))
        # handled=False: aiosmtpd then answers a failure with 535 (it defaults to saying nothing)
        return AuthResult(success=ok, handled=False)

    async def auth_CRAM__MD5(self, server, args):  # aiosmtpd has no CRAM-MD5 of its own
        challenge = b"<%d.%d@localhost>" % (os.getpid(), time.time_ns())
        answer = await server.challenge_auth(challenge)
        if answer is MISSING:
            return AuthResult(success=False)
        login, _, digest = answer.partition(b" ")
        expected = hmac.new(PASSWORD.encode(), challenge, "md5").hexdigest().encode()
        ok = login == USER.encode() and hmac.compare_digest(digest, expected)
        if ok:
            self.auth.append(("CRAM-MD5", login.decode()))
        return AuthResult(success=ok, handled=False)


def server_context(tmp_path, identity):
    cert, key = identity
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(pki.write(tmp_path / "relay.pem", cert),
                        pki.write(tmp_path / "relay-key.pem", key))
    return ctx


def start_relay(handler, security, ctx, port=None, **smtp_options):
    """aiosmtpd on 127.0.0.1: implicit TLS ("tls"), STARTTLS required ("starttls") or plain."""
    options = dict(hostname="127.0.0.1", port=port or free_port(),
                   authenticator=handler.authenticate, **smtp_options)
    if security == "tls":
        options.update(ssl_context=ctx, auth_require_tls=False)  # the whole session is TLS
    elif security == "starttls":
        options.update(tls_context=ctx, require_starttls=True)
    controller = Controller(handler, **options)
    controller.start()
    return controller


@pytest.fixture(scope="module")
def pki_set():
    trusted = pki.ca("Relay Trust CA")
    return {
        "ca": trusted,
        # localhost for the unix image, the guestfwd address for the QEMU guest (targets.py).
        "good": pki.leaf(trusted, hosts=("localhost", "10.0.2.100")),
        "unknown_ca": pki.leaf(pki.ca("Unknown CA"), hosts=("localhost",)),
        "wrong_host": pki.leaf(trusted, hosts=("mail.other.example",)),
    }


@pytest.fixture
def flash(tmp_path, pki_set):
    """A device filesystem whose EMAIL_SERVER_CAS holds only pki_set's CA."""
    flash = tmp_path / "flash"
    write_credentials(flash, EMAIL_SERVER_CAS=(pki.der(pki_set["ca"][0]),))
    return flash


@pytest.fixture
def relays(tmp_path, pki_set):
    """Starts aiosmtpd relays for a test and stops them afterwards."""
    started = []

    def start(handler, security, identity="good", **options):
        controller = start_relay(handler, security, server_context(tmp_path, pki_set[identity]),
                                 **options)
        started.append(controller)
        return controller

    yield start
    for controller in started:
        controller.stop()


def config_file(flash, cfg):
    # A file, not an argument: the unix port makes each argument a qstr, at most 255 bytes.
    path = flash / ("config-%d.json" % next(_configs))
    path.write_text(json.dumps(cfg))
    return path.name


def send_each(image, flash, cases, heapsize=None):
    """Run SEND for each cfg in cases on the unix image, or on a target (tests/device/targets.py);
    return for each {"message": (id, sha256), "results": {...}} or {"error": line,
    "kind": (kind, outcome, code)}, with "seconds" and the "output"."""
    args, timeout = [config_file(flash, {"cases": cases})], 120 + 10 * len(cases)
    if isinstance(image, (UnixTarget, QemuTarget)):
        status, output = image.run(SEND, flash, args, timeout=timeout)
    else:
        status, output = run(image, SEND, flash, args, timeout=timeout, heapsize=heapsize)
    outs = [{"output": output}]
    for line in output.splitlines():
        out = outs[-1]
        if line.startswith("message "):
            out["message"] = tuple(line.split()[1:3])
        elif line.startswith("results "):
            out["results"] = json.loads(line[len("results "):])
        elif line.startswith("error "):
            out["error"] = line
        elif line.startswith("kind "):
            out["kind"] = tuple(line.split()[1:])
        elif line.startswith("end "):
            out["seconds"] = float(line.split()[1])
            outs.append({"output": output})
    assert status == 0 and len(outs) == len(cases) + 1, output
    for out in outs[:-1]:
        assert "results" in out or "error" in out, output
    return outs[:-1]


def send(image, flash, cfg, heapsize=None):
    """send_each for one cfg."""
    return send_each(image, flash, [cfg], heapsize)[0]


# --- the message arrives intact ----------------------------------------------------------------

TEXT = "Temperature alarm on sensor 4.\n\nValue: 85 °C (limit 80 °C).\n-- \nnetsec device\n"
HTML = "<html><body><h1>Alarm</h1><p>85&nbsp;°C on <b>sensor 4</b>.</p></body></html>\n"
SUBJECT = ("Alarm: Übertemperatur at Größe 4 — sensor 4 reports 85 °C, limit 80 °C, "
           "please check")
BLOB = bytes(range(256)) * 12 + b"\r\n.\r\n\n.\r"  # includes the end-of-data sequence itself


def full_message(flash):
    log = bytes((i * 37 + i // 256) & 0xFF for i in range(100 * 1024))
    (flash / "sensor.log").write_bytes(log)
    spec = {"from": "Device 7 <device7@example.com>",
            "to": ["Ops <ops@example.com>", "oncall@example.com"], "cc": "Chef <boss@example.com>",
            "bcc": ["audit@example.com", "secret@example.org"], "subject": SUBJECT,
            "text": TEXT, "html": HTML, "attach": [["readings.bin", BLOB.hex()]],
            "attach_files": ["sensor.log"]}
    return spec, {"readings.bin": BLOB, "sensor.log": log}


def crlf(text):
    return text.replace("\n", "\r\n").encode()


def check_arrived(inbox, sent, spec, files):
    assert len(inbox.messages) == 1
    envelope = inbox.messages[0]
    assert envelope.mail_from == "device7@example.com"
    assert sorted(envelope.rcpt_tos) == sorted(["ops@example.com", "oncall@example.com",
                                                "boss@example.com", "audit@example.com",
                                                "secret@example.org"])
    raw = envelope.original_content
    message_id, digest = sent
    assert hashlib.sha256(raw).hexdigest() == digest, "the bytes differ from what was rendered"
    parsed = email.message_from_bytes(raw, policy=email.policy.default)
    assert parsed["Bcc"] is None and b"audit@" not in raw and b"secret@" not in raw
    assert parsed["Message-ID"] == message_id
    assert parsed["Subject"] == spec["subject"]
    assert [a.addr_spec for a in parsed["To"].addresses] == ["ops@example.com",
                                                             "oncall@example.com"]
    assert parsed["Cc"].addresses[0].display_name == "Chef"
    body = parsed.get_body(("plain",))
    assert body.get_payload(decode=True) == crlf(spec["text"])
    assert parsed.get_body(("html",)).get_payload(decode=True) == crlf(spec["html"])
    attachments = {a.get_filename(): a.get_payload(decode=True) for a in parsed.iter_attachments()}
    assert attachments == files


@pytest.mark.parametrize("security,mechanism", [("tls", "PLAIN"), ("tls", "CRAM-MD5"),
                                                ("starttls", "LOGIN"), ("starttls", "PLAIN")])
def test_message_arrives_intact_with_auth(target, flash, relays, security, mechanism):
    inbox = Inbox()
    relay = relays(inbox, security, port=target.service_port(security))
    spec, files = full_message(flash)
    out = send(target, flash, {"host": target.service_host, "security": security,
                               "port": target.device_port(security, relay.port), "user": USER,
                               "password": PASSWORD, "auth": mechanism, "message": spec})
    assert "error" not in out, out["output"]
    assert inbox.auth == [(mechanism, USER)]
    check_arrived(inbox, out["message"], spec, files)
    assert all(code == 250 for code, _ in out["results"].values()) and len(out["results"]) == 5
    assert "VERIFIED peer=CN=localhost" in out["output"]


def test_a_100_kb_attachment_streams_through_a_small_heap(unix_image, flash, relays):
    # 100 KB of file is 137 KB of base64: neither fits next to TLS in a 96 KB heap.
    inbox = Inbox()
    relay = relays(inbox, "tls")
    spec, files = full_message(flash)
    out = send(unix_image, flash, {"port": relay.port, "security": "tls", "message": spec},
               heapsize="96k")
    assert "results" in out, out["output"]
    check_arrived(inbox, out["message"], spec, files)


def test_dot_lines_and_a_998_octet_line_arrive_unchanged(unix_image, flash, relays):
    inbox = Inbox()
    relay = relays(inbox, "tls")
    text = ".\n..\n.leading dot\n" + "x" * 998 + "\n." + "y" * 997 + "\nend.\n.\n"
    spec = {"from": "device7@example.com", "to": "ops@example.com", "text": text, "html": "<p/>"}
    out = send(unix_image, flash, {"port": relay.port, "security": "tls", "message": spec})
    assert "results" in out, out["output"]
    raw = inbox.messages[0].original_content
    assert hashlib.sha256(raw).hexdigest() == out["message"][1]
    plain = email.message_from_bytes(raw, policy=email.policy.default).get_body(("plain",))
    assert plain["Content-Transfer-Encoding"] == "7bit"  # sent as is, not encoded around
    assert plain.get_payload(decode=True) == crlf(text)


def test_partial_failure_names_the_refused_recipient(unix_image, flash, relays):
    inbox = Inbox(refuse={"gone@example.com": "550 5.1.1 <gone@example.com>: no such user"})
    relay = relays(inbox, "tls")
    spec = {"from": "device7@example.com", "to": ["ops@example.com", "gone@example.com"],
            "text": "x"}
    out = send(unix_image, flash, {"port": relay.port, "security": "tls", "message": spec})
    assert out["results"]["ops@example.com"][0] == 250
    assert out["results"]["gone@example.com"] == [550, "5.1.1 <gone@example.com>: no such user"]
    assert inbox.messages[0].rcpt_tos == ["ops@example.com"]


def test_every_recipient_refused_is_a_permanent_error(unix_image, flash, relays):
    inbox = Inbox(refuse={"gone@example.com": "550 5.1.1 no such user"})
    relay = relays(inbox, "tls")
    spec = {"from": "device7@example.com", "to": "gone@example.com", "text": "x"}
    out = send(unix_image, flash, {"port": relay.port, "security": "tls", "message": spec})
    assert out["error"].startswith("error MailError True ")
    assert "gone@example.com: 550 5.1.1 no such user" in out["error"]
    assert inbox.messages == []


def test_plaintext_only_when_chosen_and_logged_every_time(unix_image, flash, relays):
    inbox = Inbox()
    relay = relays(inbox, "plaintext")
    spec = {"from": "device7@example.com", "to": "ops@example.com", "text": "x"}
    out = send(unix_image, flash, {"port": relay.port, "security": "plaintext", "message": spec})
    assert "results" in out, out["output"]
    assert "WARNING mail: PLAINTEXT connection to relay localhost:%d" % relay.port in out["output"]
    out = send(unix_image, flash, {"port": relay.port, "security": "plaintext", "user": USER,
                                   "password": PASSWORD, "message": spec})
    assert out["error"].startswith("error ValueError")
    assert "AUTH is never sent over plaintext" in out["error"]
    assert len(inbox.messages) == 1 and inbox.auth == []


def test_unverified_relay_only_when_chosen_and_logged(unix_image, flash, relays):
    inbox = Inbox()
    relay = relays(inbox, "tls", identity="unknown_ca")
    spec = {"from": "device7@example.com", "to": "ops@example.com", "text": "x"}
    out = send(unix_image, flash, {"port": relay.port, "security": "tls", "verify": "encrypted",
                                   "message": spec})
    assert "results" in out, out["output"]
    assert "certificate NOT verified" in out["output"] and "UNVERIFIED" in out["output"]


# --- the relay is not who it should be ------------------------------------------------------------


@pytest.mark.parametrize("security", ["tls", "starttls"])
@pytest.mark.parametrize("identity,reason", [
    ("unknown_ca", "is not signed by a CA in EMAIL_SERVER_CAS"),
    ("wrong_host", "is not valid for the host name 'localhost'"),
])
def test_relay_certificate_problems_end_the_session_before_auth(
        unix_image, flash, relays, security, identity, reason):
    inbox = Inbox()
    relay = relays(inbox, security, identity=identity)
    spec = {"from": "device7@example.com", "to": "ops@example.com", "text": "x"}
    out = send(unix_image, flash, {"port": relay.port, "security": security, "user": USER,
                                   "password": PASSWORD, "message": spec})
    assert out["error"].startswith("error MailError False relay localhost:%d: TLS failed:"
                                   % relay.port), out["output"]
    assert reason in out["error"]
    assert inbox.auth == [] and inbox.messages == []


class ScriptedRelay:
    """A plain-socket SMTP server on 127.0.0.1 (or ::1) answering from a script:
    {step: reply} where a step is "greeting", a command word ("EHLO", "MAIL", "RCPT", "DATA",
    "STARTTLS", "AUTH", "QUIT", ...) or "dot" (the end of the message data), and a reply is
    bytes, a list of (seconds, bytes) sent one after the other, or None to close the connection.
    Unscripted steps get a plausible success. It records every byte the client sends, over any
    number of connections, so a client that went on where it should have stopped shows it."""

    EHLO = b"250-scripted.example\r\n250-STARTTLS\r\n250-AUTH PLAIN LOGIN\r\n250 SIZE 100000\r\n"
    DEFAULTS = {"greeting": b"220 scripted.example ESMTP\r\n", "EHLO": EHLO,
                "DATA": b"354 go ahead\r\n", "dot": b"250 2.0.0 queued\r\n", "QUIT": b"221 bye\r\n"}

    def __init__(self, script, host="127.0.0.1"):
        self.script = script
        self.received = b""
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        self.listener = socket.create_server((host, 0), family=family)
        self.port = self.listener.getsockname()[1]
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self):
        while True:
            try:
                conn, _ = self.listener.accept()
            except OSError:
                return
            with conn:
                try:
                    self._session(conn)
                except OSError:
                    pass

    def _session(self, conn):
        conn.settimeout(30)
        if self._answer(conn, "greeting") is None:
            return
        buffer = b""
        in_data = False
        while True:
            data = conn.recv(4096)
            if not data:
                return
            self.received += data
            buffer += data
            while True:
                if in_data:
                    end = buffer.find(b"\r\n.\r\n")
                    if end < 0:
                        break
                    buffer = buffer[end + 5:]
                    in_data = False
                    if self._answer(conn, "dot") is None:
                        return
                    continue
                if b"\r\n" not in buffer:
                    break
                line, buffer = buffer.split(b"\r\n", 1)
                word = line.split(b" ")[0].split(b":")[0].upper().decode(errors="replace")
                reply = self._answer(conn, word)
                if reply is None or word == "QUIT":
                    return
                in_data = word == "DATA" and reply.startswith(b"354")

    def _answer(self, conn, step):
        action = self.script.get(step, self.DEFAULTS.get(step, b"250 OK\r\n"))
        if action is None:
            return None
        if isinstance(action, bytes):
            action = [(0, action)]
        for delay, reply in action:
            time.sleep(delay)
            conn.sendall(reply)
        return action[0][1]

    def commands(self):
        """The command words the client sent (message data left out)."""
        return [line.split(b" ")[0].split(b":")[0].decode(errors="replace")
                for line in self.received.split(b"\r\n") if line[:4].isalpha()]

    def close(self):
        self.listener.close()


@pytest.fixture
def scripted():
    """Starts ScriptedRelays for a test and closes them afterwards."""
    started = []

    def start(script, **options):
        relay = ScriptedRelay(script, **options)
        started.append(relay)
        return relay

    yield start
    for relay in started:
        relay.close()


STARTTLS_INJECTED = b"220 Ready to start TLS\r\n250-hostile.example\r\n250 AUTH PLAIN\r\n"


@pytest.mark.parametrize("script,reason,quit", [
    ({"EHLO": b"250-hostile.example\r\n250 AUTH PLAIN LOGIN\r\n"},
     "does not offer STARTTLS: refusing to continue without TLS", True),
    ({"STARTTLS": b"454 4.7.0 TLS not available due to temporary reason\r\n"},
     "refused STARTTLS (454 4.7.0 TLS not available due to temporary reason)", True),
    # RFC 3207 5: a man in the middle appends its own replies to the 220.
    ({"STARTTLS": STARTTLS_INJECTED}, "sent data after its STARTTLS reply, before the TLS "
                                      "handshake", False),
    # ... or sends them a moment later, where the TLS handshake should be.
    ({"STARTTLS": [(0, b"220 Ready to start TLS\r\n"),
                   (0.3, b"250-hostile.example\r\n250 AUTH PLAIN\r\n")]}, "TLS failed:", False),
], ids=["not_offered", "refused", "injected", "injected_later"])
def test_hostile_starttls_ends_the_session_before_credentials(unix_image, flash, scripted, script,
                                                              reason, quit):
    server = scripted(script)
    spec = {"from": "device7@example.com", "to": "ops@example.com", "text": "secret report"}
    out = send(unix_image, flash, {"port": server.port, "security": "starttls",
                                   "user": USER, "password": PASSWORD, "message": spec})
    assert out["error"].startswith("error MailError False relay localhost:%d: " % server.port)
    assert reason in out["error"], out["error"]
    assert out["kind"][:2] == ("starttls" if quit or "injection" in out["error"] else "protocol",
                               "retry"), out["kind"]
    assert b"EHLO" in server.received and b"AUTH" not in server.received
    assert b"MAIL FROM" not in server.received and b"secret report" not in server.received
    # Where the dialogue is still in step, the device says goodbye (RFC 5321 4.1.1.10); into
    # injected or encrypted data it says nothing.
    assert (server.commands()[-1] == "QUIT") == quit, server.commands()


# --- issue 13: field findings -------------------------------------------------------------------

ONE = {"from": "device7@example.com", "to": "ops@example.com", "text": "hello\n"}


def plain(relay, **cfg):
    """A SEND config for a ScriptedRelay (plain text: it speaks no TLS)."""
    cfg.update(port=relay.port, security="plaintext", message=cfg.get("message", ONE))
    return cfg


# Every reply (and failure without one) the relay can give, at each step, and what becomes of the
# message: the entries of smtp.OUTCOMES seen from Relay.send().
OUTCOME_CASES = [
    ({"greeting": b"421 4.3.2 System not accepting network messages\r\n"}, "deferred", "retry"),
    ({"greeting": b"554 5.3.2 No SMTP service here\r\n"}, "refused", "failed"),
    ({"EHLO": b"550 5.7.1 HELO/EHLO name rejected\r\n"}, "ehlo_name", "failed"),
    ({"MAIL": b"451 4.3.0 Try again later\r\n"}, "deferred", "retry"),
    ({"MAIL": b"552 5.3.4 Message size exceeds fixed limit\r\n"}, "too_big", "failed"),
    ({"MAIL": b"553 5.7.1 Sender address rejected\r\n"}, "refused", "failed"),
    ({"RCPT": b"550 5.1.1 No such user\r\n"}, "refused", "failed"),
    ({"RCPT": b"452 4.5.3 Too many recipients\r\n"}, "deferred", "retry"),
    ({"RCPT": b"552 5.5.3 Too many recipients\r\n"}, "refused", "retry"),  # RFC 5321 4.5.3.1.10
    ({"RCPT": b"504 5.5.2 <x>: Helo command rejected: need fully-qualified hostname\r\n"},
     "ehlo_name", "failed"),
    ({"DATA": b"554 5.5.1 No valid recipients\r\n"}, "refused", "failed"),
    ({"DATA": b"451 4.3.0 Try again later\r\n"}, "deferred", "retry"),
    ({"dot": b"451 4.3.0 Try again later\r\n"}, "deferred", "retry"),
    ({"dot": b"554 5.7.1 Message rejected as spam\r\n"}, "refused", "failed"),
    ({"dot": b"552 5.3.4 Message too big for system\r\n"}, "too_big", "failed"),
    ({"dot": b"354 again?\r\n"}, "protocol", "retry"),  # 3yz where a final reply belongs
    ({"MAIL": b"hello there\r\n"}, "protocol", "retry"),  # not SMTP
    ({"MAIL": b"250 OK\r\n250 OK\r\n"}, "protocol", "retry"),  # 250 to DATA: out of step
    ({"MAIL": None}, "connection", "retry"),  # closed before the message: the relay has none
    ({"dot": None}, "delivery_unknown", "retry"),  # closed after the dot: it may have it
]


def test_every_reply_lands_in_its_outcome(unix_image, flash, scripted):
    relays = [scripted(script) for script, _, _ in OUTCOME_CASES]
    outs = send_each(unix_image, flash, [plain(relay) for relay in relays])
    for (script, kind, outcome), out in zip(OUTCOME_CASES, outs):
        assert "error" in out, (script, out)
        assert out["kind"][:2] == (kind, outcome), (script, out["error"], out["kind"])
        if kind == "ehlo_name":  # says which option fixes it
            assert "set ehlo_name= on the Relay" in out["error"], out["error"]


def test_a_slow_reply_to_the_final_dot_is_waited_for(unix_image, flash, scripted):
    # RFC 5321 4.5.3.2: 10 min for the final dot, 5 for MAIL. Scaled down here: MAIL 1.5 s, dot
    # 3 s; a relay that scans for 2 s before it answers the dot delivers once, not "no answer".
    slow = scripted({"dot": [(2, b"250 2.0.0 queued after scanning\r\n")]})
    late = scripted({"dot": [(5, b"250 2.0.0 queued after scanning\r\n")]})
    slow_mail = scripted({"MAIL": [(2, b"250 OK\r\n")]})
    ok, unknown, timeout = send_each(unix_image, flash, [
        plain(slow, timeout_scale=0.005), plain(late, timeout_scale=0.005),
        plain(slow_mail, timeout_scale=0.005)])
    assert ok["results"] == {"ops@example.com": [250, "2.0.0 queued after scanning"]}, ok
    assert unknown["kind"][:2] == ("delivery_unknown", "retry")
    assert ("delivery unknown (the relay may have it): no answer within 3 s while waiting for "
            "the reply to the final dot" in unknown["error"]), unknown["error"]
    assert timeout["kind"][:2] == ("timeout", "retry")
    assert "no answer within 1.5 s while waiting for the reply to MAIL" in timeout["error"]


def test_a_silent_goodbye_is_waited_for_briefly(unix_image, flash, scripted):
    # QUIT's wait is smtp.TIMEOUTS["QUIT"] (10 s, scaled here to 0.2 s), not the 5 min of an
    # ordinary command (6 s here): a relay that never says 221 does not hold a delivered message.
    mute = scripted({"QUIT": [(4, b"221 bye\r\n")]})
    out = send(unix_image, flash, plain(mute, timeout_scale=0.02))
    assert out["results"] == {"ops@example.com": [250, "2.0.0 queued"]}, out
    assert out["seconds"] < 2, out
    assert mute.commands()[-1] == "QUIT"


def test_ehlo_sends_the_local_address_literal(unix_image, flash, scripted):
    # RFC 5321 4.1.3/4.1.4: without a fully-qualified name, greet with the address literal.
    v4 = scripted({})
    v6 = scripted({}, host="::1")
    named = scripted({})
    outs = send_each(unix_image, flash, [
        plain(v4), plain(v6, host="::1"), plain(named, ehlo_name="sensor-7.example.com"),
        plain(named, ehlo_name="sensor-7")])
    assert all("results" in out for out in outs[:3]), outs
    assert b"EHLO [127.0.0.1]\r\n" in v4.received
    assert b"EHLO [IPv6:::1]\r\n" in v6.received
    assert named.received.startswith(b"EHLO sensor-7.example.com\r\n")
    assert outs[3]["error"].startswith("error ValueError - ehlo_name 'sensor-7' is not fully "
                                       "qualified")


def test_ehlo_names_the_device_by_its_address_on_every_target(target, flash, relays):
    # The unix image's socket module and lwIP's both tell the connection's local address
    # (firmware/patches/0050-socket-getsockname.patch); QEMU's user network gives 10.0.2.x.
    inbox = Inbox()
    relay = relays(inbox, "tls", port=target.service_port("tls"))
    out = send(target, flash, {"host": target.service_host, "security": "tls",
                               "port": target.device_port("tls", relay.port), "message": ONE})
    assert "results" in out, out["output"]
    expected = r"\[127\.0\.0\.1\]" if target.name == "unix" else r"\[10\.0\.2\.\d+\]"
    assert re.fullmatch(expected, inbox.ehlo_names[0]), inbox.ehlo_names


def test_starttls_on_an_implicit_tls_port_is_named_on_every_target(target, flash, relays):
    relay = relays(Inbox(), "tls", port=target.service_port("tls"))
    out = send(target, flash, {"host": target.service_host, "security": "starttls",
                               "port": target.device_port("tls", relay.port), "message": ONE})
    assert "speaks TLS first (an implicit-TLS port)" in out["error"], out["output"]
    assert out["seconds"] < 15, out


@pytest.mark.parametrize("relay_security,security,says", [
    ("starttls", "tls", "speaks plaintext first (a STARTTLS or plain port), but "
                        "security=mail.TLS expects TLS from the first byte"),
    ("tls", "starttls", "speaks TLS first (an implicit-TLS port), but security=starttls expects "
                        "a plain-text greeting"),
    ("tls", "plaintext", "speaks TLS first (an implicit-TLS port), but security=plaintext "
                         "expects a plain-text greeting"),
])
def test_wrong_security_mode_for_the_port_is_named_within_seconds(
        unix_image, flash, relays, relay_security, security, says):
    relay = relays(Inbox(), relay_security)
    out = send(unix_image, flash, {"port": relay.port, "security": security,
                                   "message": ONE})
    assert says in out["error"], out["error"]
    assert "check security= and the port (465 implicit TLS, 587 STARTTLS)" in out["error"]
    assert out["kind"][:2] == ("wrong_port", "retry")
    assert out["seconds"] < 10, out


def test_wrong_password_is_refused_for_good_and_quit_is_said(unix_image, flash, relays):
    inbox = Inbox()
    relay = relays(inbox, "tls")
    out = send(unix_image, flash, {"port": relay.port, "security": "tls", "user": USER,
                                   "password": "wrong", "message": ONE})
    assert out["kind"] == ("auth", "failed", "535"), out
    assert "check user name and password" in out["error"]
    assert inbox.quits == 1  # the relay logs a goodbye, not "connection lost"


def test_size_is_checked_before_sending_and_announced(unix_image, flash, relays):
    inbox = Inbox()
    relay = relays(inbox, "tls", data_size_limit=5000)
    big = dict(ONE, attach=[["big.bin", bytes(8000).hex()]])
    small, too_big = send_each(unix_image, flash, [
        {"port": relay.port, "security": "tls", "message": ONE},
        {"port": relay.port, "security": "tls", "message": big}])
    assert "results" in small
    # RFC 1870: the size goes with MAIL FROM; a message over the limit is never sent at all.
    assert len(inbox.mail_options) == 1 and inbox.mail_options[0][0].startswith("SIZE=")
    assert int(inbox.mail_options[0][0][5:]) == len(inbox.messages[0].original_content)
    assert too_big["kind"][:2] == ("too_big", "failed")
    assert "accepts at most 5000 bytes, the message has " in too_big["error"]


def test_a_text_only_message_arrives_exactly_as_written(unix_image, flash, relays):
    inbox = Inbox()
    relay = relays(inbox, "tls")
    out = send(unix_image, flash, {"port": relay.port, "security": "tls", "message": ONE})
    assert "results" in out, out["output"]
    parsed = email.message_from_bytes(inbox.messages[0].original_content,
                                      policy=email.policy.default)
    assert parsed.get_payload(decode=True) == b"hello\r\n"  # not "hello\r\n\r\n"


def test_out_of_memory_in_the_handshake_is_kind_memory(unix_image, flash, relays):
    relay = relays(Inbox(), "tls")
    out = send(unix_image, flash, {"port": relay.port, "security": "tls", "message": ONE},
               heapsize="40k")
    assert out["kind"][:2] == ("memory", "retry"), out["output"]
    assert "TLS failed: TLS failed" not in out["error"]
    assert "not enough memory" in out["error"]


def test_certificate_problems_carry_the_tls_kind(unix_image, flash, relays):
    relay = relays(Inbox(), "tls", identity="unknown_ca")
    out = send(unix_image, flash, {"port": relay.port, "security": "tls", "message": ONE})
    assert out["kind"][:2] == ("unknown_ca", "retry"), out["output"]


def test_an_attachment_gone_mid_data_ends_the_session_without_a_word(unix_image, flash, scripted):
    # No SIZE announced, so nothing reads the file before DATA. Whatever the device sent now
    # would become part of the message: no RSET, no QUIT, no final dot; the relay drops it.
    relay = scripted({"EHLO": b"250-scripted.example\r\n250 8BITMIME\r\n"})
    (flash / "sensor.log").write_bytes(b"x" * 5000)
    out = send(unix_image, flash, plain(relay, message=dict(ONE, attach_files=["sensor.log"]),
                                        remove_before_send=["sensor.log"]))
    assert out["kind"][:2] == ("unsendable", "failed"), out["output"]
    assert out["error"].startswith("error MailError True message cannot be sent: ")
    data = relay.received.split(b"DATA\r\n", 1)[1]
    assert b"RSET" not in data and b"QUIT" not in data and not data.endswith(b"\r\n.\r\n")
