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
    return mail.Relay(cfg.get("host", "localhost"), cfg["port"], security=cfg["security"],
                      user=cfg.get("user"), password=cfg.get("password"),
                      verify=cfg.get("verify", "verified"), auth=cfg.get("auth"),
                      timeout=cfg.get("timeout", 20))

with open(sys.argv[1]) as f:
    cfg = json.loads(f.read())
"""

# Sends one message with Relay.send(); prints its Message-ID and the SHA-256 of the rendered
# bytes, then the per-recipient results, or the error.
SEND = MESSAGE_BUILDER + """
async def main():
    try:
        relay = relay_from(cfg)
        m = build(cfg["message"])
        digest = hashlib.sha256()
        for chunk in m.render():
            digest.update(chunk)
        print("message", m.message_id, binascii.hexlify(digest.digest()).decode())
        results = await relay.send(m)
        print("results", json.dumps(dict((r, [results[r].code, results[r].text]) for r in results)))
    except Exception as e:
        print("error", type(e).__name__, getattr(e, "permanent", "-"), e)

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

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        self.rcpt_commands.append(address)
        if address in self.refuse:
            return self.refuse[address]
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):
        self.messages.append(envelope)
        return "250 2.0.0 Accepted"

    def authenticate(self, server, session, envelope, mechanism, auth_data):
        ok = auth_data.login == USER.encode() and auth_data.password == PASSWORD.encode()
        if ok:
            self.auth.append((mechanism, auth_data.login.decode()))
        return AuthResult(success=ok)

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


def send(image, flash, cfg, heapsize=None):
    """Run SEND on the unix image, or on a target (tests/device/targets.py); return
    {"message": (id, sha256), "results": {...}} or {"error": line}."""
    if isinstance(image, (UnixTarget, QemuTarget)):
        status, output = image.run(SEND, flash, [config_file(flash, cfg)], timeout=120)
    else:
        status, output = run(image, SEND, flash, [config_file(flash, cfg)], timeout=120,
                             heapsize=heapsize)
    out = {"output": output}
    for line in output.splitlines():
        if line.startswith("message "):
            out["message"] = tuple(line.split()[1:3])
        elif line.startswith("results "):
            out["results"] = json.loads(line[len("results "):])
        elif line.startswith("error "):
            out["error"] = line
    assert status == 0 and ("results" in out or "error" in out), output
    return out


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


class HostileRelay:
    """A plain-socket SMTP server that misbehaves around STARTTLS. It records every byte the
    client sends and answers 250 to anything else, so a client that went on would show it."""

    EHLO = b"250-hostile.example\r\n250-AUTH PLAIN LOGIN\r\n"

    def __init__(self, behaviour):
        self.behaviour = behaviour
        self.received = b""
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self):
        conn, _ = self.listener.accept()
        conn.settimeout(30)
        with conn:
            conn.sendall(b"220 hostile.example ESMTP\r\n")
            buffer = b""
            while True:
                try:
                    data = conn.recv(4096)
                except OSError:
                    return
                if not data:
                    return
                self.received += data
                buffer += data
                while b"\r\n" in buffer:
                    line, buffer = buffer.split(b"\r\n", 1)
                    self._answer(conn, line.upper())

    def _answer(self, conn, line):
        if line.startswith(b"EHLO"):
            starttls = b"" if self.behaviour == "not_offered" else b"250-STARTTLS\r\n"
            conn.sendall(self.EHLO + starttls + b"250 SIZE 100000\r\n")
        elif line == b"STARTTLS" and self.behaviour == "refused":
            conn.sendall(b"454 4.7.0 TLS not available due to temporary reason\r\n")
        elif line == b"STARTTLS" and self.behaviour == "injected":
            # RFC 3207 5: a man in the middle appends its own replies to the 220.
            conn.sendall(b"220 Ready to start TLS\r\n250-hostile.example\r\n250 AUTH PLAIN\r\n")
        elif line == b"STARTTLS" and self.behaviour == "injected_later":
            conn.sendall(b"220 Ready to start TLS\r\n")
            time.sleep(0.3)  # arrives where the TLS handshake should be
            conn.sendall(b"250-hostile.example\r\n250 AUTH PLAIN\r\n")
        else:
            conn.sendall(b"250 OK\r\n")

    def close(self):
        self.listener.close()
        self.thread.join(5)


@pytest.mark.parametrize("behaviour,reason", [
    ("not_offered", "does not offer STARTTLS: refusing to continue without TLS"),
    ("refused", "refused STARTTLS (454 4.7.0 TLS not available due to temporary reason)"),
    ("injected", "sent data after its STARTTLS reply, before the TLS handshake"),
    ("injected_later", "TLS failed:"),
])
def test_hostile_starttls_ends_the_session_before_credentials(unix_image, flash, behaviour,
                                                              reason):
    server = HostileRelay(behaviour)
    try:
        spec = {"from": "device7@example.com", "to": "ops@example.com", "text": "secret report"}
        out = send(unix_image, flash, {"port": server.port, "security": "starttls",
                                       "user": USER, "password": PASSWORD, "timeout": 10,
                                       "message": spec})
    finally:
        server.close()
    assert out["error"].startswith("error MailError False relay localhost:%d: " % server.port)
    assert reason in out["error"], out["error"]
    assert b"EHLO" in server.received and b"AUTH" not in server.received
    assert b"MAIL FROM" not in server.received and b"secret report" not in server.received
