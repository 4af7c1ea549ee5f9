"""The TLS engine against hostile peers on the LAN (issue 12's outside review): ClientHellos of
old versions, unacceptable suites and broken encodings, the TLS 1.3 downgrade sentinel, PSK
identities that are unknown, binary, empty or overlong, session tickets that are forged,
truncated, from another server or past their key's rotation, resumption that would lose the
client's identity, a PSK context asked for certificate suites and the reverse, and the SMTPS
client's sessions kept per host name and verification level."""
import base64
import os
import re
import socket
import ssl
import struct
import subprocess
import threading
import time

import pytest
from aiosmtpd.controller import Controller

import certfactory as pki
from harness import CERTS, ROOT, require_tool
from mpy import OVERRIDE_DIR, SCRIPTS, free_port, run, write_credentials
from targets import UnixTarget
from test_tls13 import Inbox

pytestmark = pytest.mark.device

SERVER = (SCRIPTS / "tls_hostile_server.py").read_text()
CA = str(CERTS / "ca.pem")
PSK_ID, PSK_KEY = b"sensor-1", bytes(range(32))
# PSA's key slots in the images (firmware/mbedtls/netsec_speed.h).
PSA_KEY_SLOTS = int(re.search(r"#define MBEDTLS_PSA_KEY_SLOT_COUNT (\d+)",
                              (ROOT / "firmware" / "mbedtls" / "netsec_speed.h").read_text()).group(1))


def der(pem_path):
    lines = pem_path.read_text().strip().splitlines()
    return base64.b64decode("".join(lines[1:-1]))


class Device:
    """tls_hostile_server.py on a target: server_context(client_auth, ticket_lifetime)."""

    def __init__(self, target, flash, client_auth="none", lifetime="-"):
        listen, self.port = target.listen_ports(443)
        self.mp = target.program(SERVER, flash, [listen, client_auth, lifetime,
                                                 target.listen_host])
        self.mp.expect("ready ", timeout=60)

    def expect(self, prefix, timeout=20):
        return self.mp.expect(prefix, timeout)

    def hello(self, line=b"hi\n"):
        """One verified CPython connection that sends line: the reply."""
        ctx = ssl.create_default_context(cafile=CA)
        with socket.create_connection(("127.0.0.1", self.port), timeout=60) as raw:
            with ctx.wrap_socket(raw, server_hostname="localhost") as conn:
                conn.sendall(line)
                return conn.makefile("rb").readline().decode().strip()

    def heap(self):
        return int(self.hello(b"heap\n").split()[1])


@pytest.fixture
def device(unix_image, tmp_path):
    """start(client_auth, lifetime, **credentials): the server on the unix image."""
    started = []

    def start(client_auth="none", lifetime="-", **fields):
        flash = tmp_path / ("flash%d" % len(started))
        fields.setdefault("PSK", {PSK_ID: PSK_KEY})
        fields.setdefault("CLIENT_CAS", (der(CERTS / "ca.pem"),))
        write_credentials(flash, **fields)
        dev = Device(UnixTarget(unix_image), flash, client_auth, lifetime)
        started.append(dev)
        return dev

    yield start
    for dev in started:
        dev.mp.stop()


def s_client(port, *options):
    """openssl s_client's output for one connection that sends a line and waits for the reply."""
    proc = subprocess.Popen([require_tool("openssl"), "s_client", "-connect",
                             "127.0.0.1:%d" % port, "-servername", "localhost", "-ign_eof"]
                            + list(options), stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT)
    lines = []
    reader = threading.Thread(target=lambda: lines.extend(iter(proc.stdout.readline, b"")),
                              daemon=True)
    reader.start()
    try:
        proc.stdin.write(b"hi\n")
        proc.stdin.flush()
        for _ in range(300):  # the reply, or the end of the connection
            if any(b"hello " in line for line in lines) or not reader.is_alive():
                break
            time.sleep(0.1)
    finally:
        proc.kill()
        proc.wait()
        reader.join(5)
    return b"".join(lines).decode(errors="replace")


PSK_OPTIONS = ("-psk_identity", PSK_ID.decode(), "-psk", PSK_KEY.hex())
CLIENT_CERT = ("-cert", str(CERTS / "client.pem"), "-key", str(CERTS / "client-key.pem"))
CLIENT_SUBJECT = "hello CN=client,O=netsec PUBLIC TEST CREDENTIALS"


# --- resumption must not lose who the client is ----------------------------------------------------

@pytest.mark.parametrize("version", ["-tls1_2", "-tls1_3"])
def test_a_psk_server_serves_every_connection_with_its_identity(device, tmp_path, version):
    # A ticket holds no PSK identity: a connection resumed from one used to reach the
    # application with none (log_connection raised AttributeError, the connection died).
    dev = device("psk")
    session = tmp_path / "session.pem"
    for _ in range(2):  # the second offers the first's session, when it got one to offer
        resume = ("-sess_in", str(session)) if session.exists() else ()
        out = s_client(dev.port, version, *PSK_OPTIONS, "-sess_out", str(session), *resume)
        assert "hello psk:sensor-1" in out, out
        assert dev.expect("INFO server TLSv1.").endswith(" VERIFIED psk=sensor-1")
    assert "refused" not in dev.mp.output


@pytest.mark.parametrize("version", ["-tls1_2", "-tls1_3"])
def test_a_required_server_serves_no_connection_without_the_client_certificate(device, tmp_path,
                                                                               version):
    # A TLS 1.3 ticket holds no client certificate: a client that kept one used to be served
    # with no certificate at all (UNVERIFIED, peer_subject None) by client_auth='required'.
    dev = device("required")
    session = tmp_path / "session.pem"
    out = s_client(dev.port, version, "-CAfile", CA, *CLIENT_CERT, "-sess_out", str(session))
    assert CLIENT_SUBJECT in out, out
    # Without its certificate, offering the first's session when it got one.
    out = s_client(dev.port, version, "-CAfile", CA,
                   *(("-sess_in", str(session)) if session.exists() else ()))
    # Served with the certificate the session proved (TLS 1.2 tickets hold it), or refused.
    assert CLIENT_SUBJECT in out or ("hello" not in out and dev.expect("refused no_client_cert "))
    assert "UNVERIFIED" not in dev.mp.output, dev.mp.output


def test_servers_that_authenticate_clients_issue_no_tickets(unix_image, tmp_path):
    status, out = run(unix_image, """
from netsec import tls
print("none", tls.server_context()._native.ticket_lifetime)
for mode in ("optional", "required", "psk"):
    print(mode, tls.server_context(mode)._native.ticket_lifetime)
    try:
        tls.server_context(mode, ticket_lifetime=3600)
    except ValueError as e:
        print("refused", e)
""", _psk_flash(tmp_path, PSK={PSK_ID: PSK_KEY}, CLIENT_CAS=(der(CERTS / "ca.pem"),)))
    assert status == 0, out
    assert "none 86400" in out and "optional 0" in out and "required 0" in out and "psk 0" in out
    assert out.count("refused client_auth=") == 3 and "cannot name the client" in out, out


def _psk_flash(tmp_path, **fields):
    flash = tmp_path / "flash"
    write_credentials(flash, **fields)
    return flash


# --- PSK and certificates never mix ----------------------------------------------------------------

class CertificateServer:
    """A CPython TLS server with the test certificate that knows no PSK: each connection gets
    the line 'I am not the PSK holder'."""

    def __init__(self, version):
        self.ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        self.ctx.load_cert_chain(str(CERTS / "server.pem"), str(CERTS / "server-key.pem"))
        self.ctx.maximum_version = version
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.port = self.sock.getsockname()[1]
        self.served = []
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self):
        self.sock.settimeout(60)
        try:
            raw, _ = self.sock.accept()
            with self.ctx.wrap_socket(raw, server_side=True) as conn:
                conn.settimeout(20)
                conn.recv(10)
                self.served.append(conn.cipher()[0])
                conn.sendall(b"I am not the PSK holder\n")
        except (OSError, ssl.SSLError):
            pass

    def close(self):
        self.sock.close()


PSK_CLIENT = """
import sys, asyncio
from netsec import tls
port, ciphers = int(sys.argv[1]), sys.argv[2].split(",")

async def main():
    try:
        ctx = tls.client_context("localhost", psk_identity=b"sensor-1", ciphers=ciphers)
    except ValueError as e:
        print("refused", e)
        return
    try:
        r, w = await asyncio.open_connection("127.0.0.1", port, ssl=ctx)
        w.write(b"hi\\n")
        await w.drain()
        print("reply", (await r.readline()).decode().strip())
        tls.log_connection(r, "client", ctx)
    except Exception as e:
        print("error", tls.explain(e))

asyncio.run(main())
"""


def test_a_psk_client_takes_no_certificate_suite(unix_image, tmp_path):
    # A PSK context verifies no certificate: with a certificate suite in ciphers= it used to
    # complete a handshake with any certificate server and log VERIFIED psk=sensor-1.
    server = CertificateServer(ssl.TLSVersion.TLSv1_2)
    try:
        status, out = run(unix_image, PSK_CLIENT, _psk_flash(tmp_path, PSK={PSK_ID: PSK_KEY}),
                          [server.port, "TLS-ECDHE-PSK-WITH-CHACHA20-POLY1305-SHA256,"
                                        "TLS-ECDHE-ECDSA-WITH-AES-128-GCM-SHA256"])
    finally:
        server.close()
    assert server.served == [] and "VERIFIED" not in out, out
    assert "refused TLS-ECDHE-ECDSA-WITH-AES-128-GCM-SHA256 in ciphers: a PSK context" in out


def test_a_certificate_context_takes_no_psk_suite(unix_image, tmp_path):
    status, out = run(unix_image, """
from netsec import tls
for make in (lambda c: tls.server_context(ciphers=c),
             lambda c: tls.client_context("localhost", ciphers=c)):
    try:
        make(["TLS1-3-AES-128-GCM-SHA256", "TLS-PSK-WITH-AES-128-GCM-SHA256"])
    except ValueError as e:
        print("refused", e)
""", tmp_path / "flash")
    assert out.count("refused TLS-PSK-WITH-AES-128-GCM-SHA256 in ciphers: a certificate "
                     "context") == 2, out


@pytest.mark.parametrize("version", [ssl.TLSVersion.TLSv1_2, ssl.TLSVersion.TLSv1_3])
def test_a_psk_client_refuses_a_server_without_the_key(unix_image, tmp_path, version):
    server = CertificateServer(version)
    try:
        status, out = run(unix_image, PSK_CLIENT, _psk_flash(tmp_path, PSK={PSK_ID: PSK_KEY}),
                          [server.port, "TLS1-3-AES-128-GCM-SHA256,"
                                        "TLS-ECDHE-PSK-WITH-CHACHA20-POLY1305-SHA256"])
    finally:
        server.close()
    assert server.served == [] and "error " in out and "reply" not in out, out


@pytest.mark.parametrize("version", ["-tls1_2", "-tls1_3"])
def test_a_certificate_client_refuses_a_psk_only_server(unix_image, tmp_path, version):
    port = free_port()
    server = subprocess.Popen([require_tool("openssl"), "s_server", "-accept", str(port),
                               "-nocert", "-naccept", "1", "-psk_identity", PSK_ID.decode(),
                               "-psk", PSK_KEY.hex(), version, "-rev"],
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    try:
        for line in iter(server.stdout.readline, b""):  # listening from its ACCEPT line on
            if line.startswith(b"ACCEPT"):
                break
        status, out = run(unix_image, CLIENT, _psk_flash(tmp_path, PSK={PSK_ID: PSK_KEY}),
                          [port])
    finally:
        server.kill()
        server.wait()
    assert "error " in out and "reply" not in out, out


# --- PSK tables the firmware can use -----------------------------------------------------------------

def test_psk_keys_the_firmware_cannot_use_are_refused_when_loaded(device, unix_image, tmp_path):
    # mbedTLS takes keys of at most 48 bytes (MBEDTLS_PSK_MAX_LEN): a longer one used to load
    # and then fail every handshake (server) or raise MBEDTLS_ERR_SSL_BAD_INPUT_DATA (client).
    longest = bytes(range(48))
    dev = device("psk", PSK={PSK_ID: longest})
    out = s_client(dev.port, "-tls1_3", "-psk_identity", PSK_ID.decode(), "-psk", longest.hex())
    assert "hello psk:sensor-1" in out, out
    status, out = run(unix_image, "from netsec import tls\ntls.server_context('psk')",
                      _psk_flash(tmp_path, PSK={PSK_ID: bytes(49)}))
    assert "tls: refused the credentials in netsec-credentials/: PSK " in out, out
    assert "keys of 16 to 48 bytes" in out


def tlslite_psk(port, identity, key=PSK_KEY, line=b"hi\n"):
    """A TLS 1.3 psk_dhe_ke handshake by tlslite-ng: the server's reply to line."""
    from tlslite.api import HandshakeSettings, TLSConnection
    settings = HandshakeSettings()
    settings.minVersion = settings.maxVersion = (3, 4)
    settings.pskConfigs = [(identity, key, "sha256")]
    settings.pskModes = ["psk_dhe_ke"]
    with socket.create_connection(("127.0.0.1", port), timeout=60) as raw:
        conn = TLSConnection(raw)
        conn.handshakeClientCert(settings=settings, serverName="localhost")
        conn.write(line)
        return conn.read(max=100)


@pytest.mark.parametrize("identity", [b"nobody", bytes(range(256)), b"", b"A" * 16000],
                         ids=["unknown", "binary", "empty", "overlong"])
def test_psk_identities_not_in_the_table_are_refused(device, identity):
    from tlslite.errors import TLSError
    dev = device("psk")
    with pytest.raises((TLSError, OSError)):
        tlslite_psk(dev.port, identity)
    assert dev.expect("refused ")
    out = s_client(dev.port, "-tls1_3", *PSK_OPTIONS)  # the server still serves
    assert "hello psk:sensor-1" in out, out


@pytest.mark.parametrize("version", ["-tls1_2", "-tls1_3"])
def test_psk_failures_are_explained(device, version):
    # They used to log "unexpected OSError(-27776, 'MBEDTLS_ERR_SSL_UNKNOWN_IDENTITY')" and the
    # like, and a TLS 1.3 client with another key "no cipher suite, curve or TLS version".
    dev = device("psk")
    s_client(dev.port, version, "-psk_identity", "nobody", "-psk", PSK_KEY.hex())
    line = dev.expect("refused ")
    assert "PSK identity" in line and "not in PSK" in line, line
    s_client(dev.port, version, "-psk_identity", PSK_ID.decode(), "-psk", bytes(32).hex())
    line = dev.expect("refused ")
    assert "pre-shared key" in line and "unexpected" not in line, line


def test_failed_psk_handshakes_give_back_their_key_slots_and_heap(target, tmp_path):
    # The server imports the identity's key into PSA for each handshake (mbedtls_ssl_set_hs_psk):
    # more failures than PSA has key slots, then a good handshake.
    from tlslite.errors import TLSError
    flash = tmp_path / "flash"
    write_credentials(flash, PSK={PSK_ID: PSK_KEY})
    dev = Device(target, flash, "psk")
    try:
        heap = int(tlslite_psk(dev.port, PSK_ID, line=b"heap\n").split()[1])
        for _ in range(PSA_KEY_SLOTS + 4):
            with pytest.raises((TLSError, OSError)):
                tlslite_psk(dev.port, PSK_ID, bytes(32))
        assert tlslite_psk(dev.port, PSK_ID) == b"hello psk:sensor-1\n"
        assert int(tlslite_psk(dev.port, PSK_ID, line=b"heap\n").split()[1]) >= heap - 2048
        for _ in range(PSA_KEY_SLOTS + 4):  # each failure logged
            assert "pre-shared key" in dev.expect("refused ")
    finally:
        dev.mp.stop()


# --- ClientHellos: versions, suites, encodings ----------------------------------------------------

def _ext(kind, data):
    return struct.pack("!HH", kind, len(data)) + data


def _vec(data, size=2):
    return len(data).to_bytes(size, "big") + data


# A TLS 1.2 ClientHello's extensions: P-256, uncompressed points, ECDSA-SHA256, secure
# renegotiation, Extended Master Secret.
EXTENSIONS = [_ext(10, _vec(b"\x00\x17")), _ext(11, _vec(b"\x00", 1)), _ext(13, _vec(b"\x04\x03")),
              _ext(0xff01, b"\x00"), _ext(23, b"")]


def client_hello(version=0x0303, suites=(0xc02b, 0xcca9), extensions=EXTENSIONS, session_id=b""):
    """A ClientHello record (RFC 5246 7.4.1.2) without supported_versions: TLS `version` at most."""
    body = (struct.pack("!H", version) + os.urandom(32) + _vec(session_id, 1)
            + _vec(b"".join(struct.pack("!H", s) for s in suites)) + b"\x01\x00")
    if extensions is not None:
        body += _vec(b"".join(extensions))
    message = b"\x01" + len(body).to_bytes(3, "big") + body
    return b"\x16\x03\x01" + _vec(message)


def first_record(port, data):
    """What the server answers data with: ('alert', description), ('server_hello', random),
    or ('closed', b'')."""
    with socket.create_connection(("127.0.0.1", port), timeout=60) as s:
        s.sendall(data)
        got = b""
        try:
            while len(got) < 5 or len(got) < 5 + int.from_bytes(got[3:5], "big"):
                chunk = s.recv(4096)
                if not chunk:
                    break
                got += chunk
        except ConnectionResetError:
            pass
    if got[:1] == b"\x15" and len(got) >= 7:
        return "alert", got[6]
    if got[:1] == b"\x16" and got[5:6] == b"\x02":
        return "server_hello", got[11:43]
    return "closed", got


def _garbled(record):
    """record with everything after its first 60 bytes replaced by 0xff, its length kept."""
    return record[:60] + b"\xff" * (len(record) - 60)


PROTOCOL_VERSION, HANDSHAKE_FAILURE, ILLEGAL_PARAMETER, DECODE_ERROR = 70, 40, 47, 50


def test_old_versions_weak_suites_and_broken_hellos_are_refused(target, tmp_path):
    flash = tmp_path / "flash"
    write_credentials(flash)
    dev = Device(target, flash)
    heap = dev.heap()
    for _ in range(2):  # twice: a leak shows as a lower heap after the second round
        for version in (0x0300, 0x0301, 0x0302):  # SSLv3, TLS 1.0, TLS 1.1
            assert first_record(dev.port, client_hello(version)) == ("alert", PROTOCOL_VERSION)
        # Outside Mozilla's intermediate list only: static RSA, CBC, 3DES, RC4, NULL, DHE.
        weak = (0x002f, 0x0035, 0xc009, 0xc013, 0x009c, 0x009e, 0x000a, 0x0005, 0x0001)
        assert first_record(dev.port, client_hello(suites=weak)) == ("alert", HANDSHAKE_FAILURE)
        # RFC 8446 4.1.3: a TLS 1.3 server negotiating TLS 1.2 says so in its random.
        kind, random = first_record(dev.port, client_hello())
        assert kind == "server_hello" and random[-8:] == b"DOWNGRD\x01"
        # RFC 5746 3.6: a first handshake whose renegotiation_info is not empty is aborted.
        renegotiating = EXTENSIONS[:3] + [_ext(0xff01, b"\x0c" + b"A" * 12)]
        assert first_record(dev.port, client_hello(extensions=renegotiating)) == (
            "alert", HANDSHAKE_FAILURE)
        broken = [client_hello(session_id=b"A" * 33), client_hello(suites=()),
                  client_hello(extensions=EXTENSIONS + EXTENSIONS[:1]),
                  _garbled(client_hello()), os.urandom(300),
                  b"\x80\x2e\x01\x03\x01" + os.urandom(60)]  # SSLv2-style
        for data in broken:
            assert first_record(dev.port, data)[0] in ("alert", "closed")
        assert dev.hello() == "hello anonymous"
    assert "unexpected" not in dev.mp.output, dev.mp.output  # each failure explained
    # The heap is what it was, within a few fragments' worth.
    assert dev.heap() >= heap - 2048, dev.mp.output


def test_a_tls13_key_update_ends_the_connection_with_a_log_line_that_says_so(device):
    # mbedTLS 3.6 implements no KeyUpdate (RFC 8446 4.6.3): the connection ends. The log used
    # to call the peer one that "does not speak TLS 1.2 or 1.3".
    dev = device()
    proc = subprocess.Popen([require_tool("openssl"), "s_client", "-connect",
                             "127.0.0.1:%d" % dev.port, "-servername", "localhost", "-tls1_3",
                             "-CAfile", CA], stdin=subprocess.PIPE, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    try:
        proc.stdin.write(b"hi\n")
        proc.stdin.flush()
        assert dev.expect("INFO server TLSv1.3 ")
        proc.stdin.write(b"k\n")  # s_client's command: send a KeyUpdate
        proc.stdin.flush()
        assert "KeyUpdate" in dev.expect("refused protocol ")
    finally:
        proc.kill()
        proc.wait()


# --- memory: many resumptions and PSK handshakes, a soft reset between servers --------------------

def _resume(port, ctx, session):
    with socket.create_connection(("127.0.0.1", port), timeout=60) as raw:
        with ctx.wrap_socket(raw, server_hostname="localhost", session=session) as conn:
            conn.sendall(b"hi\n")
            assert conn.makefile("rb").readline().startswith(b"hello ")
            return conn.session, conn.session_reused


def test_resumptions_and_psk_handshakes_give_their_heap_back(target, tmp_path):
    flash = tmp_path / "flash"
    write_credentials(flash, PSK={PSK_ID: PSK_KEY})
    levels = []
    for client_auth in ("none", "psk", "none"):  # each start is a soft reset on the QEMU guest
        dev = Device(target, flash, client_auth)
        try:
            if client_auth == "psk":
                for _ in range(6):
                    for version in ("-tls1_2", "-tls1_3"):
                        assert "hello psk:sensor-1" in s_client(dev.port, version, *PSK_OPTIONS)
                assert dev.expect("closed") and "refused" not in dev.mp.output
                assert PSK_KEY.hex() not in dev.mp.output.lower()  # no key in the log
                continue
            heap = dev.heap()
            for version in (ssl.TLSVersion.TLSv1_2, ssl.TLSVersion.TLSv1_3):
                ctx = ssl.create_default_context(cafile=CA)
                ctx.maximum_version = version
                session, _ = _resume(dev.port, ctx, None)
                for _ in range(8):
                    session, reused = _resume(dev.port, ctx, session)
                    assert reused
            levels.append((heap, dev.heap()))
        finally:
            dev.mp.stop()
    # Nothing was written to flash (ticket keys and sessions live in RAM only).
    assert target.files(flash, ".") == [] and target.files(flash, OVERRIDE_DIR) == [
        "Net_Security.py"]
    # The heap after the resumptions is what it was before them, and the same after a restart.
    (first, after_first), (second, after_second) = levels
    assert after_first >= first - 2048 and after_second >= second - 2048, levels
    assert abs(first - second) <= 2048, levels


# --- tickets: forged, truncated, another server's, past rotation ----------------------------------

def _der_item(data, i):
    tag, size, i = data[i], data[i + 1], i + 2
    if size & 0x80:
        count = size & 0x7f
        size, i = int.from_bytes(data[i:i + count], "big"), i + count
    return tag, data[i:i + size], i + size


def _der(tag, content):
    size = len(content)
    if size < 0x80:
        return bytes([tag, size]) + content
    length = size.to_bytes((size.bit_length() + 7) // 8, "big")
    return bytes([tag, 0x80 | len(length)]) + length + content


def rewrite_ticket(session_pem, change):
    """openssl's session file with its ticket (SSL_SESSION's [10] OCTET STRING) changed."""
    lines = session_pem.read_text().strip().splitlines()
    _, body, _ = _der_item(base64.b64decode("".join(lines[1:-1])), 0)
    items, i = [], 0
    while i < len(body):
        tag, content, i = _der_item(body, i)
        if tag == 0xaa:
            content = _der(0x04, change(_der_item(content, 0)[1]))
        items.append(_der(tag, content))
    text = base64.b64encode(_der(0x30, b"".join(items))).decode()
    return "\n".join([lines[0]] + [text[i:i + 64] for i in range(0, len(text), 64)]
                     + [lines[-1]]) + "\n"


def test_forged_truncated_and_foreign_tickets_get_a_full_handshake(target, tmp_path):
    # "Foreign": a ticket from before a restart (on the QEMU guest a soft reset), whose keys died
    # with it, as another server's would.
    flash = tmp_path / "flash"
    write_credentials(flash)
    sessions = {version: tmp_path / ("session%s.pem" % version) for version in ("-tls1_2",
                                                                                "-tls1_3")}
    changes = {"flipped": lambda t: t[:40] + bytes([t[40] ^ 1]) + t[41:],
               "truncated": lambda t: t[:len(t) // 2], "as is": lambda t: t}
    dev = Device(target, flash)
    try:
        for version, session in sessions.items():
            out = s_client(dev.port, version, "-CAfile", CA, "-sess_out", str(session))
            assert "New, TLSv1." in out, out
            for name, change in changes.items():
                changed = tmp_path / (name + ".pem")
                changed.write_text(rewrite_ticket(session, change))
                out = s_client(dev.port, version, "-CAfile", CA, "-sess_in", str(changed))
                assert ("Reused, " if name == "as is" else "New, ") + "TLSv1." in out, (name, out)
                assert "Verify return code: 0 (ok)" in out and "hello anonymous" in out
    finally:
        dev.mp.stop()
    dev = Device(target, flash)
    try:
        for version, session in sessions.items():
            out = s_client(dev.port, version, "-CAfile", CA, "-sess_in", str(session))
            assert "New, TLSv1." in out and "Verify return code: 0 (ok)" in out, out
    finally:
        dev.mp.stop()


def test_a_ticket_past_its_lifetime_gets_a_full_handshake(device, tmp_path):
    # TLS 1.2: openssl still offers the ticket (a TLS 1.3 client drops it itself); -msg shows
    # it in the ClientHello, so the refusal is the server's.
    dev = device(lifetime="4")
    session = tmp_path / "session.pem"
    assert "New, TLSv1.2" in s_client(dev.port, "-tls1_2", "-CAfile", CA, "-sess_out",
                                      str(session))
    assert "Reused, TLSv1.2" in s_client(dev.port, "-tls1_2", "-CAfile", CA, "-sess_in",
                                         str(session))
    time.sleep(9)  # past the ticket's lifetime, and past its key's second rotation
    ticket = []
    rewrite_ticket(session, lambda t: ticket.append(t) or t)
    out = s_client(dev.port, "-tls1_2", "-CAfile", CA, "-sess_in", str(session), "-msg")
    assert "New, TLSv1.2" in out and "hello anonymous" in out, out
    dump = "".join(line[4:].split("  ")[0] for line in out.splitlines()
                   if line.startswith("    ")).replace(" ", "").replace("-", "")
    assert ticket[0][:16].hex() in dump


# --- the SMTPS client: sessions per host name and verification level ------------------------------

SMTPS = """
import sys, asyncio, os
from netsec import mail, mime
port = int(sys.argv[1])

async def main():
    for step in sys.argv[2:]:
        if step == "rotate":  # new credentials on flash: the same CAs in a file of another size
            os.mkdir("netsec-credentials")
            with open("netsec-credentials/Net_Security.py", "w") as f:
                f.write("FORMAT = 1  # rotated\\n")
            continue
        host, verify = step.split("/")
        relay = mail.Relay(host, port, security=mail.TLS, verify=verify)
        results = await relay.send(mime.Message("device@example.com", to=["ops@example.com"],
                                                subject="s", text="hello"))
        print("sent", host, verify, [r.code for r in results.values()])

asyncio.run(main())
"""


@pytest.mark.parametrize("version", [ssl.TLSVersion.TLSv1_2, ssl.TLSVersion.TLSv1_3])
def test_smtps_sessions_are_resumed_only_with_the_same_host_and_level(unix_image, tmp_path,
                                                                      version):
    # The relay's certificate is valid for localhost and 127.0.0.1: each name, and each
    # verification level, is another server to the client.
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(str(CERTS / "server.pem"), str(CERTS / "server-key.pem"))
    ctx.maximum_version = version
    inbox = Inbox()
    controller = Controller(inbox, hostname="127.0.0.1", port=free_port(), ssl_context=ctx)
    controller.start()
    sends = ["localhost/encrypted", "localhost/verified", "127.0.0.1/verified",
             "localhost/verified", "localhost/encrypted", "rotate", "localhost/verified",
             "localhost/verified"]
    try:
        status, out = run(unix_image, SMTPS, tmp_path / "flash", [controller.port] + sends,
                          timeout=180)
    finally:
        controller.stop()
    assert status == 0 and out.count("[250]") == 7, out
    # A session made under other credentials is not offered either.
    assert inbox.reused == [False, False, False, True, True, False, True], out
    # Each verified send logs VERIFIED, resumed or not: a resumed TLS 1.3 session shows no
    # certificate, and used to be logged "UNVERIFIED (no certificate) peer=none".
    assert out.count(" VERIFIED") == 5 and "UNVERIFIED (no certificate)" not in out, out


SMTPS_HEAP = """
import sys, asyncio, gc
from netsec import mail, mime
relay = mail.Relay(sys.argv[1], int(sys.argv[2]), security=mail.TLS)

async def main():
    for i in range(4):
        results = await relay.send(mime.Message("device@example.com", to=["ops@example.com"],
                                                subject="n%d" % i, text="hello"))
        gc.collect()
        print("sent", [r.code for r in results.values()], "heap", gc.mem_free())

asyncio.run(main())
"""


def test_the_smtps_client_keeps_its_heap_against_a_relay_flooding_tickets(target, tmp_path):
    # A TLS 1.3 relay may send any number of tickets after each handshake: the client keeps the
    # last (for the next send) and its heap stays level.
    ca = pki.ca("Flood CA")
    cert, key = pki.leaf(ca, hosts=("localhost", "10.0.2.100"))  # the QEMU guest's relay address
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(pki.write(tmp_path / "relay.pem", cert),
                        pki.write(tmp_path / "relay-key.pem", key))
    ctx.num_tickets = 100
    inbox = Inbox()
    controller = Controller(inbox, hostname="127.0.0.1", port=target.service_port("tls"),
                            ssl_context=ctx)
    controller.start()
    flash = tmp_path / "flash"
    write_credentials(flash, EMAIL_SERVER_CAS=(pki.der(ca[0]),))
    try:
        status, out = target.run(SMTPS_HEAP, flash, [target.service_host,
                                                     target.device_port("tls", controller.port)],
                                 timeout=300)
    finally:
        controller.stop()
    assert status == 0 and out.count("sent [250]") == 4, out
    assert inbox.reused == [False, True, True, True], out
    heaps = [int(line.split()[-1]) for line in out.splitlines() if line.startswith("sent")]
    assert heaps[-1] >= heaps[1] - 2048, heaps


# --- the device as a client: the TLS 1.3 downgrade sentinel --------------------------------------

CLIENT = """
import sys, asyncio
from netsec import tls

async def main():
    try:
        ctx = tls.client_context("localhost")
        r, w = await asyncio.open_connection("127.0.0.1", int(sys.argv[1]), ssl=ctx)
        w.write(b"hi\\n")
        await w.drain()
        print("reply", (await r.readline()).decode().strip())
    except Exception as e:
        error = tls.explain(e)
        print("error", error.kind, error)

asyncio.run(main())
"""


def test_the_client_refuses_a_tls12_server_hello_with_the_downgrade_sentinel(unix_image,
                                                                              tmp_path):
    # RFC 8446 4.1.3: a TLS 1.2 ServerHello whose random ends in DOWNGRD\x01 came from a TLS 1.3
    # server that an attacker made believe the client speaks TLS 1.2 at most.
    answered = []

    def serve(sock):
        conn, _ = sock.accept()
        with conn:
            conn.settimeout(30)
            conn.recv(4096)  # the ClientHello
            extensions = _ext(0xff01, b"\x00") + _ext(23, b"")
            body = (b"\x03\x03" + os.urandom(24) + b"DOWNGRD\x01" + b"\x00" + b"\xc0\x2b\x00"
                    + _vec(extensions))
            message = b"\x02" + len(body).to_bytes(3, "big") + body
            conn.sendall(b"\x16\x03\x03" + _vec(message))
            answered.append(conn.recv(100))

    sock = socket.create_server(("127.0.0.1", 0))
    sock.settimeout(60)
    thread = threading.Thread(target=serve, args=(sock,), daemon=True)
    thread.start()
    try:
        status, out = run(unix_image, CLIENT, tmp_path / "flash", [sock.getsockname()[1]])
        thread.join(30)
    finally:
        sock.close()
    assert "error protocol " in out, out
    assert answered and answered[0][:1] == b"\x15" and answered[0][6] == ILLEGAL_PARAMETER
