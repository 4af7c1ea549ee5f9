"""TLS inside the guest: netsec.selftest joins a server and a client context built by netsec.tls
from the frozen Net_Security over an in-memory pipe; they complete a verified TLS 1.3 handshake."""
import ast
import datetime

import Net_Security  # the credentials frozen into the image (tests/conftest.py puts modules/ on the path)
import pytest

from netsec_cli.device import RemoteError

pytestmark = pytest.mark.qemu


def selftest(guest, hostname):
    """Run netsec.selftest.run(hostname) in the guest: (what it printed, the report it returned)."""
    out = guest.exec("from netsec import selftest\nprint(repr(selftest.run(%r)))" % hostname)
    *printed, report = out.strip().splitlines()
    return "\n".join(printed), ast.literal_eval(report)


def test_selftest_handshakes_with_the_frozen_credentials(guest):
    printed, report = selftest(guest, "localhost")
    assert report["protocol"] == "TLSv1.3"  # always (EC)DHE: forward secret
    assert report["cipher"] == "TLS1-3-CHACHA20-POLY1305-SHA256"  # first in netsec.tls.CIPHERS
    assert report["peer"] == Net_Security.INFO["SERVER_CERT"]["subject"]
    assert 0 < report["heap_peak"] < 192 * 1024
    assert "selftest: OK TLSv1.3 %s peer=%s verified as 'localhost'" % (
        report["cipher"], report["peer"]) in printed
    print(printed.splitlines()[-1])


def test_wrong_hostname_fails_verification(guest):
    with pytest.raises(RemoteError, match="TLSError: selftest: server certificate CN=localhost.* "
                                         "is not valid for the host name 'wrong.example'"):
        selftest(guest, "wrong.example")


def test_untrusted_server_fails_verification(guest):
    # The client end trusts only a CA that did not issue the server's certificate.
    with pytest.raises(RemoteError, match="TLSError: selftest: server certificate CN=localhost.* "
                                         "is not signed by a CA"):
        guest.exec("from netsec import selftest\nimport Net_Security\n"
                   "selftest.run('localhost', cas=(Net_Security.SERVER_CERT,))")


@pytest.fixture
def set_guest_clock(guest):
    def set_clock(year):
        guest.set_rtc_utc(datetime.datetime(year, 1, 1, tzinfo=datetime.timezone.utc))

    yield set_clock
    guest.soft_reset()
    guest.set_rtc_utc(datetime.datetime.now(datetime.timezone.utc))


def test_certificate_dates_are_checked_against_the_guest_clock(guest, set_guest_clock):
    set_guest_clock(int(Net_Security.INFO["SERVER_CERT"]["not_after"][:4]) + 1)
    with pytest.raises(RemoteError, match="TLSError: selftest: server certificate CN=localhost.* "
                                         "expired on"):
        selftest(guest, "localhost")


def test_an_unset_clock_is_reported_as_such(guest, set_guest_clock):
    set_guest_clock(2010)
    with pytest.raises(RemoteError, match="TLSError: selftest: the device clock is not set"):
        selftest(guest, "localhost")


def test_a_soft_reset_ends_the_tls_engine_state(guest):
    # mbedTLS's PSA crypto keeps state in the heap, reached from static memory (patch 0016): after
    # a soft reset freed that heap, the next TLS context wrote into whatever lived there. Fill the
    # heap with zeroed buffers this session owns, leave room for one context, and check that
    # making it changed none of them.
    selftest(guest, "localhost")  # TLS 1.3: PSA crypto in use
    guest.soft_reset()
    out = guest.exec(
        "import gc, tls\nheld = []\ntry:\n"
        "    while True:\n        held.append(bytearray(1024))\n"
        "except MemoryError:\n    pass\n"
        "del held[-24:]  # room for one context\ngc.collect()\n"
        "ctx = tls.SSLContext(tls.PROTOCOL_TLS_CLIENT)\n"
        "print((len(held), [i for i, b in enumerate(held) if any(b)]))")
    held, written = ast.literal_eval(out.strip())
    assert held > 100 and written == [], "the TLS engine wrote into %d of %d buffers it does not own" % (
        len(written), held)
    guest.soft_reset()
    assert selftest(guest, "localhost")[1]["protocol"] == "TLSv1.3"


def test_contexts_made_and_dropped_never_run_out_of_key_slots(guest):
    # A server context holds two of PSA's 64 key slots (netsec_speed.h) (its private key and its ticket key) until
    # it is freed: dropped contexts give them back, at a collection and at a soft reset.
    churn = ("import gc, tls, Net_Security\nfor i in range(48):\n"
             "    ctx = tls.SSLContext(tls.PROTOCOL_TLS_SERVER)\n"
             "    ctx.load_cert_chain(Net_Security.SERVER_CERT, Net_Security.SERVER_KEY)\n"
             "    if i % 8 == 7:\n        gc.collect()\nprint(i + 1)")
    for _ in range(2):
        assert guest.exec(churn).strip() == "48"
        guest.soft_reset()
    assert selftest(guest, "localhost")[1]["protocol"] == "TLSv1.3"


# In the guest: one mutual-TLS handshake between netsec.tls contexts over selftest's pipe, where
# one end (side) finds the heap filled to `reserve` bytes free when its peer's first bytes
# arrive; "ok", or the kind and text of tls.explain() for what it raised.
STARVED_HANDSHAKE = r'''
import gc
import tls as _tls
from netsec import selftest, tls


def fill(reserve):
    hog = []
    gc.collect()
    for size in (8192, 1024, 128, 16):
        try:
            while gc.mem_free() > reserve + size:
                hog.append(bytearray(size))
        except MemoryError:
            pass
    return hog


class Starved(selftest.PipeEnd):
    hog = None

    def readinto(self, buf):
        if self.hog is None and self.inbox:
            self.hog = fill(self.reserve)
        return super().readinto(buf)


def starved(side, version, reserve):
    server_ctx = tls.server_context("required")
    client_ctx = tls.client_context("localhost", cas=selftest.trust_anchors(), resume=False)
    if version == "TLSv1.2":  # netsec.tls has a minimum only: cap the client's mbedTLS context
        client_ctx._native_context().maximum_version = _tls.TLSv1_2
    ends = {"server": selftest.PipeEnd(), "client": selftest.PipeEnd()}
    ends[side] = Starved()
    ends[side].reserve = reserve
    ends["server"].peer, ends["client"].peer = ends["client"], ends["server"]
    server = server_ctx.wrap_socket(ends["server"], server_side=True, do_handshake_on_connect=False)
    client = client_ctx.wrap_socket(ends["client"], server_side=False,
                                    do_handshake_on_connect=False, server_hostname="localhost")
    try:
        sent = False
        for _ in range(100):
            if not sent:
                sent = client.write(b"ping") == 4
            if server.read(4) == b"ping":
                return "ok"
        return "stuck"
    except Exception as e:
        error = tls.explain(e)
        return "%s %s (%r)" % (error.kind, error, e)
    finally:
        ends[side].hog = None
        client.close()
        server.close()
'''


@pytest.fixture
def client_identity(guest):
    """The test client certificate (tests/certs/default, issued by a CA in CLIENT_CAS) in the
    guest's netsec-credentials/, removed afterwards."""
    from cryptography import x509
    from cryptography.hazmat.primitives import serialization as ser
    from harness import CERTS

    cert = x509.load_pem_x509_certificate((CERTS / "client.pem").read_bytes())
    key = ser.load_pem_private_key((CERTS / "client-key.pem").read_bytes(), None)
    guest.makedirs("/netsec-credentials")
    guest.write("/netsec-credentials/Net_Security.py", b"FORMAT = 1\nCLIENT_CERT = %r\nCLIENT_KEY = %r\n" % (
        cert.public_bytes(ser.Encoding.DER),
        key.private_bytes(ser.Encoding.DER, ser.PrivateFormat.PKCS8, ser.NoEncryption())))
    yield
    guest.exec("import os\nos.remove('/netsec-credentials/Net_Security.py')")


@pytest.mark.parametrize("side,version", [("client", "TLSv1.3"), ("client", "TLSv1.2"),
                                          ("server", "TLSv1.3")])
def test_a_handshake_out_of_memory_says_memory_at_every_step(guest, client_identity, side,
                                                              version):
    # Wherever the heap runs out (parsing, key exchange, a signature, the certificate chain, the
    # PSA key store), the error says memory. mbedTLS had turned it into "not correctly signed by
    # the trusted CA", a handshake failure ("no common cipher"), or MD/PK/SSL_HW_ACCEL error codes
    # (firmware/patches/0017-*). With nothing free the handshake fails at its first step; with
    # more, at later steps; at the top of the range it completes.
    guest.exec(STARVED_HANDSHAKE)
    outcomes = ast.literal_eval(guest.exec(
        "print({r: starved(%r, %r, r) for r in range(0, 36000, 1500)})" % (side, version),
        timeout=300).strip().splitlines()[-1])
    wrong = {reserve: text for reserve, text in outcomes.items()
             if text != "ok" and not text.startswith("memory ")}
    assert wrong == {}, wrong
    assert outcomes[0].startswith("memory ") and "ok" in outcomes.values(), outcomes
