"""TLS inside the guest: a server and a client context built from the frozen Net_Security,
joined by an in-memory transport (guest_tls.py), complete a verified TLS 1.2 handshake."""
import ast
import datetime
from pathlib import Path

import pytest

pytestmark = pytest.mark.qemu

GUEST_TLS = (Path(__file__).parent / "guest_tls.py").read_text()


def in_guest(guest, expression):
    """Evaluate `expression` in the guest, with guest_tls.py's functions defined there."""
    out = guest.exec(GUEST_TLS + "\nprint(repr(%s))\n" % expression)
    return ast.literal_eval(out.strip().splitlines()[-1])


def test_ssl_contexts_load_net_security(guest):
    assert in_guest(guest, "(type(server_context()).__name__, type(client_context()).__name__)") == (
        "SSLContext", "SSLContext")


def test_tls12_handshake_between_two_contexts_in_the_guest(guest):
    report = in_guest(guest, "handshake('localhost')")
    suite, version = report["cipher"]
    assert version == "TLSv1.2"
    assert suite.startswith("TLS-ECDHE-ECDSA-WITH-"), "only forward-secret ECDHE key exchange"
    assert report["server_cipher"] == report["cipher"]
    assert report["peer_cert_is_server_cert"]
    assert report["pong"] == b"pong"
    print("in-guest handshake: %s %s, heap in use peaked %.1f KB above the start"
          % (suite, version, report["heap_peak"] / 1024))


def test_wrong_hostname_fails_verification(guest):
    with pytest.raises(AssertionError, match="does not match with the expected CN"):
        in_guest(guest, "handshake('wrong.example')")


@pytest.fixture
def clock_in_2010(guest):
    guest.exec("import machine\nmachine.RTC().datetime((2010, 1, 1, 4, 0, 0, 0, 0))")
    yield
    now = datetime.datetime.now(datetime.timezone.utc)
    guest.soft_reset()
    guest.exec("import machine\nmachine.RTC().datetime(%r)" % (
        (now.year, now.month, now.day, now.weekday(), now.hour, now.minute, now.second, 0),))


def test_certificate_dates_are_checked_against_the_guest_clock(guest, clock_in_2010):
    with pytest.raises(AssertionError, match="validity starts in the future"):
        in_guest(guest, "handshake('localhost')")
