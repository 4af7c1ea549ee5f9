"""netsec.tls client contexts on the unix image against real TLS servers (CPython ssl, openssl):
each level against a good server and against the four ways a server certificate goes wrong."""
import re
import select
import socket
import ssl
import subprocess
import threading

import pytest

import certfactory as pki
from certfactory import DAY, NOW
from harness import require_tool
from mpy import run, write_credentials

pytestmark = pytest.mark.device

# Connects to 127.0.0.1:PORT verifying HOST at LEVEL, sends a line, prints the reply; or prints
# "refused KIND MESSAGE" from tls.explain(). An optional fourth argument sets the clock first.
CLIENT = """
import sys, asyncio
from netsec import tls, clock
port, host, level = int(sys.argv[1]), sys.argv[2], sys.argv[3]
timeout = int(sys.argv[4]) if len(sys.argv) > 4 else 10
if len(sys.argv) > 5:
    clock.set_time(int(sys.argv[5]))

async def main():
    try:
        ctx = tls.client_context(host, level=level)
        r, w = await asyncio.wait_for(asyncio.open_connection("127.0.0.1", port, ssl=ctx), timeout)
        w.write(b"ping\\n")
        await asyncio.wait_for(w.drain(), timeout)
        tls.log_connection(w, "client", ctx)
        print("reply", (await asyncio.wait_for(r.readline(), timeout)).decode().strip())
        w.close()
        await w.wait_closed()
    except Exception as e:
        error = tls.explain(e)
        print("refused", error.kind, error)

asyncio.run(main())
"""


@pytest.fixture(scope="module")
def pki_set():
    trusted = pki.ca("Device Trust CA")
    unknown = pki.ca("Unknown CA")
    return {
        "ca": trusted,
        "good": pki.leaf(trusted, hosts=("localhost",)),
        "unknown_ca": pki.leaf(unknown, hosts=("localhost",)),
        "wrong_host": pki.leaf(trusted, hosts=("other.example",)),
        "expired": pki.leaf(trusted, hosts=("localhost",), not_before=NOW - 30 * DAY,
                            not_after=NOW - 2 * DAY),
        "not_yet_valid": pki.leaf(trusted, hosts=("localhost",), not_before=NOW + 2 * DAY,
                                  not_after=NOW + 30 * DAY),
    }


@pytest.fixture
def flash(tmp_path, pki_set):
    """A device filesystem whose credentials trust only pki_set's CA for servers."""
    flash = tmp_path / "flash"
    write_credentials(flash, EMAIL_SERVER_CAS=(pki.der(pki_set["ca"][0]),))
    return flash


class HostServer:
    """A CPython ssl server on 127.0.0.1: answers each connection's first line with "pong"."""

    def __init__(self, tmp_path, identity):
        cert, key = identity
        self.ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        self.ctx.load_cert_chain(pki.write(tmp_path / "server.pem", cert),
                                 pki.write(tmp_path / "server-key.pem", key))
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self.errors = []
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self):
        while True:
            try:
                raw, _ = self.listener.accept()
            except OSError:
                return  # closed
            raw.settimeout(20)
            try:
                with self.ctx.wrap_socket(raw, server_side=True) as conn:
                    conn.makefile("rb").readline()
                    conn.sendall(b"pong\n")
            except (OSError, ssl.SSLError) as e:
                self.errors.append(e)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.listener.close()


# The log line for a connection: the policy's suites only (TLS 1.3, or ECDHE; AES-GCM or
# ChaCha20-Poly1305).
LOG_LINE = (r"INFO client TLSv1\.(3 TLS1-3-|2 TLS-ECDHE-ECDSA-WITH-)"
            r"(AES-128-GCM-SHA256|AES-256-GCM-SHA384|CHACHA20-POLY1305-SHA256) ")


def logged(output, status_and_peer):
    """True if output has the log line of one connection ending in status_and_peer."""
    return re.search("^" + LOG_LINE + re.escape(status_and_peer) + "$", output, re.M) is not None


def connect(unix_image, flash, port, level, *extra):
    status, output = run(unix_image, CLIENT, flash, [port, "localhost", level] + list(extra))
    assert status == 0, output
    return output


# --- verified (the default) --------------------------------------------------------------------

def test_verified_accepts_a_good_server_and_logs_verified(unix_image, tmp_path, flash, pki_set):
    with HostServer(tmp_path, pki_set["good"]) as server:
        output = connect(unix_image, flash, server.port, "verified")
    assert logged(output, "VERIFIED peer=CN=localhost"), output
    assert "reply pong" in output


def test_verified_refuses_a_server_with_an_unknown_ca(unix_image, tmp_path, flash, pki_set):
    with HostServer(tmp_path, pki_set["unknown_ca"]) as server:
        output = connect(unix_image, flash, server.port, "verified")
    assert ("refused unknown_ca server certificate CN=localhost (issued by CN=Unknown CA) is not "
            "signed by a CA in EMAIL_SERVER_CAS") in output, output
    assert "reply" not in output


def test_verified_refuses_a_certificate_for_another_host(unix_image, tmp_path, flash, pki_set):
    with HostServer(tmp_path, pki_set["wrong_host"]) as server:
        output = connect(unix_image, flash, server.port, "verified")
    assert ("refused hostname server certificate CN=other.example is not valid for the host name "
            "'localhost'") in output, output
    assert "reply" not in output


def test_verified_refuses_an_expired_certificate(unix_image, tmp_path, flash, pki_set):
    with HostServer(tmp_path, pki_set["expired"]) as server:
        output = connect(unix_image, flash, server.port, "verified")
    expired = pki_set["expired"][0].not_valid_after_utc.strftime("%Y-%m-%dT%H:%M:%SZ")
    assert "refused expired server certificate CN=localhost expired on %s (device time %s" % (
        expired, NOW.strftime("%Y-%m-%dT")) in output, output
    assert "reply" not in output


def test_verified_refuses_a_not_yet_valid_certificate(unix_image, tmp_path, flash, pki_set):
    with HostServer(tmp_path, pki_set["not_yet_valid"]) as server:
        output = connect(unix_image, flash, server.port, "verified")
    start = pki_set["not_yet_valid"][0].not_valid_before_utc.strftime("%Y-%m-%dT%H:%M:%SZ")
    assert ("refused not_yet_valid server certificate CN=localhost is not valid before %s "
            "(device time %s" % (start, NOW.strftime("%Y-%m-%dT"))) in output, output
    assert "reply" not in output


# --- encrypted: no authentication, and the log line says so -------------------------------------

@pytest.mark.parametrize("server", ["good", "unknown_ca", "wrong_host", "expired", "not_yet_valid"])
def test_encrypted_connects_to_any_server_and_logs_unverified(unix_image, tmp_path, flash, pki_set,
                                                               server):
    with HostServer(tmp_path, pki_set[server]) as host:
        output = connect(unix_image, flash, host.port, "encrypted")
    subject = pki_set[server][0].subject.rfc4514_string()
    assert logged(output, "UNVERIFIED (encrypted only, the server was not authenticated) peer="
                  + subject), output
    assert "reply pong" in output


# --- plaintext: only where the service allows it -------------------------------------------------

def test_plaintext_needs_the_service_to_allow_it(unix_image, tmp_path):
    script = (
        "from netsec import tls\n"
        "try:\n"
        "    tls.client_context('relay.example', level='plaintext')\n"
        "except ValueError as e:\n"
        "    print('refused', e)\n"
        "print('allowed', tls.client_context('relay.example', level='plaintext', allow_plaintext=True))\n")
    status, output = run(unix_image, script, tmp_path / "flash")
    assert status == 0, output
    assert "refused level 'plaintext' to relay.example: this service does not allow plaintext" in output
    assert "WARNING tls: plaintext to relay.example: no encryption, no authentication" in output
    assert "allowed None" in output


# --- cipher policy, timeouts, the clock ----------------------------------------------------------

def openssl_server(tmp_path, identity, *options):
    """openssl s_server on a free port of 127.0.0.1, answering lines reversed: (process, port)."""
    cert, key = identity
    server = subprocess.Popen(
        [require_tool("openssl"), "s_server", "-rev", "-accept", "127.0.0.1:0", "-naccept", "1",
         "-cert", pki.write(tmp_path / "s.pem", cert), "-key", pki.write(tmp_path / "k.pem", key)]
        + list(options), stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
        bufsize=0)  # unbuffered: select() must see every line that has not been read yet
    seen = []
    while select.select([server.stdout], [], [], 10)[0]:
        line = server.stdout.readline().decode()
        seen.append(line)
        if line.startswith("ACCEPT "):  # "ACCEPT 127.0.0.1:PORT"
            return server, int(line.rsplit(":", 1)[1])
        if not line:
            break
    server.kill()
    pytest.fail("openssl s_server did not start: %s" % "".join(seen))


@pytest.mark.parametrize("suite, refused", [("ECDHE-ECDSA-AES128-SHA", True),
                                            ("ECDHE-ECDSA-AES128-GCM-SHA256", False)])
def test_a_server_offering_only_a_weak_suite_is_refused(unix_image, tmp_path, flash, pki_set,
                                                        suite, refused):
    server, port = openssl_server(tmp_path, pki_set["good"], "-tls1_2", "-cipher", suite)
    try:
        output = connect(unix_image, flash, port, "verified")
    finally:
        server.kill()
        openssl_said = server.communicate()[0].decode()
    if refused:
        assert "refused alert the peer aborted the handshake with a TLS alert" in output, output
        assert "no shared cipher" in openssl_said, openssl_said
    else:  # the control: the same server with a suite of the policy
        assert logged(output, "VERIFIED peer=CN=localhost"), output
        assert "reply gnip" in output


def test_a_server_that_never_answers_times_out(unix_image, flash):
    with socket.create_server(("127.0.0.1", 0)) as silent:  # accepts (backlog) but never speaks
        output = connect(unix_image, flash, silent.getsockname()[1], "verified", 1)
    assert "refused timeout TLS handshake timed out: the peer did not complete it in time" in output


def test_verifying_with_an_unset_clock_says_to_sync_it(unix_image, tmp_path, flash, pki_set):
    year_2000 = 946684805  # 2000-01-01T00:00:05Z: where a board's RTC starts
    with HostServer(tmp_path, pki_set["good"]) as server:
        output = connect(unix_image, flash, server.port, "verified", 10, year_2000)
        encrypted = connect(unix_image, flash, server.port, "encrypted", 10, year_2000)
    assert ("refused clock_unset the device clock is not set (device time 2000-01-01T00:00:0"
            in output), output
    assert ("so certificate dates cannot be checked: sync it with netsec.clock.sync(ntp_server), "
            "or from a computer run `netsec clock --device PORT` (it sets UTC; `mpremote rtc "
            "--set` sets local time)") in output
    assert "reply pong" in encrypted, "no certificate check, no need for the clock"


def test_client_certificate_is_offered_to_a_server_that_asks(unix_image, tmp_path, pki_set):
    ca_cert, _ = pki_set["ca"]
    client_cert, client_key = pki.leaf(pki_set["ca"], hosts=(), cn="device-7",
                                       usage=pki.CLIENT_AUTH)
    flash = tmp_path / "flash"
    write_credentials(flash, EMAIL_SERVER_CAS=(pki.der(ca_cert),), CLIENT_CERT=pki.der(client_cert),
                      CLIENT_KEY=pki.der(client_key))
    with HostServer(tmp_path, pki_set["good"]) as server:
        server.ctx.verify_mode = ssl.CERT_REQUIRED
        server.ctx.load_verify_locations(cadata=pki.der(ca_cert))
        output = connect(unix_image, flash, server.port, "verified")
    assert "reply pong" in output, output + repr(server.errors)
    assert not server.errors
