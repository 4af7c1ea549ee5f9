"""netsec over the board's network stack: lwIP and the LAN9118 driver in the QEMU Cortex-M
images, reached from the host through QEMU's restricted user network (see tests/qemu/netguest.py)."""
import http.client
import json
import socket
import ssl
import struct
import subprocess
import time

import pytest

from harness import CERTS, QEMU_IMAGE, make, require_tool
from netguest import NetGuest

CA = str(CERTS / "ca.pem")
DEMO = "from netsec import lan, demo\nprint('lan', lan.up())\ndemo.main()"
DEMO_READY = "netsec https server on"


@pytest.fixture(scope="module")
def demo(qemu_image, tmp_path_factory):
    """The Cortex-M3 image on a network, serving the demo on guest port 443."""
    guest = NetGuest(qemu_image, hostfwd={443: 0},
                     log_path=tmp_path_factory.mktemp("qemu-net") / "qemu.log")
    guest.start(DEMO, DEMO_READY)
    yield guest
    guest.stop()


@pytest.fixture
def served(demo):
    """The demo; after the test it must still serve, with no session left open."""
    yield demo
    assert demo.running.alive(), demo.running.log()
    info = settle(demo)
    assert info["active_sessions"] == 1, (info, demo.output())


def context():
    return ssl.create_default_context(cafile=CA)


def get(port, path="/"):
    conn = http.client.HTTPSConnection("localhost", port, context=context(), timeout=30)
    try:
        conn.request("GET", path)
        response = conn.getresponse()
        return response.status, response.headers, response.read()
    finally:
        conn.close()


def status(guest):
    code, _, body = get(guest.port(443), "/api/status")
    assert code == 200
    return json.loads(body)


def settle(guest, timeout=20):
    """/api/status once only its own request is being served."""
    deadline = time.monotonic() + timeout
    while True:
        info = status(guest)
        if info["active_sessions"] == 1 or time.monotonic() > deadline:
            return info
        time.sleep(0.3)


def test_dhcp_gives_the_guest_its_address(demo):
    assert "lan ('10.0.2.15', '255.255.255.0')" in demo.output()


def test_curl_verifies_the_demo_served_by_the_cortex_m3(served):
    curl = require_tool("curl")
    url = "https://localhost:%d/" % served.port(443)
    out = subprocess.run([curl, "-sS", "--max-time", "60", "--cacert", CA, url],
                         capture_output=True, text=True, timeout=90)
    assert out.returncode == 0, out.stderr
    assert "netsec device status" in out.stdout and "mps2-an385 with Cortex-M3" in out.stdout


def test_api_status_names_the_machine(served):
    info = status(served)
    assert info["machine"] == "mps2-an385 with Cortex-M3"
    assert info["free_heap"] > 0


def test_openssl_s_client_verifies_chain_and_hostname(served):
    openssl = require_tool("openssl")
    out = subprocess.run(
        [openssl, "s_client", "-connect", "127.0.0.1:%d" % served.port(443), "-CAfile", CA,
         "-verify_return_error", "-verify_hostname", "localhost", "-servername", "localhost",
         "-ign_eof"],
        input=b"GET /api/status HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n",
        capture_output=True, timeout=90)
    text = out.stdout.decode(errors="replace")
    assert out.returncode == 0, text + out.stderr.decode(errors="replace")
    assert "Verify return code: 0 (ok)" in text and '"machine"' in text


def test_keep_alive_serves_two_requests_on_one_tls_session(served):
    before = status(served)["tls_sessions"]
    conn = http.client.HTTPSConnection("localhost", served.port(443), context=context(), timeout=30)
    try:
        for path in ("/", "/api/status"):
            conn.request("GET", path)
            response = conn.getresponse()
            assert response.status == 200
            response.read()
    finally:
        conn.close()
    assert status(served)["tls_sessions"] == before + 2  # this session, then the status call


def test_peers_vanishing_mid_handshake_and_mid_body_are_survived(served):
    port = served.port(443)
    # A ClientHello cut short, then gone.
    with socket.create_connection(("127.0.0.1", port), timeout=10) as raw:
        raw.sendall(b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03" + b"\x00" * 20)
    # A reset (RST, not FIN) in the middle of the handshake.
    raw = socket.create_connection(("127.0.0.1", port), timeout=10)
    raw.sendall(b"\x16\x03\x01\x00\x05\x01\x00")
    raw.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    raw.close()
    # A request whose body never finishes.
    with context().wrap_socket(socket.create_connection(("127.0.0.1", port), timeout=30),
                               server_hostname="localhost") as tls:
        tls.sendall(b"POST / HTTP/1.1\r\nHost: localhost\r\nContent-Length: 5000\r\n\r\nabc")
    assert get(port, "/")[0] == 200


def test_sessions_beyond_memory_are_refused_one_by_one_and_the_heap_recovers(served):
    """Open TLS sessions and hold them until the guest cannot take another; a normal client is
    then still served, and once they close the heap is back where it was."""
    port = served.port(443)
    base = settle(served)["free_heap"]
    held = []
    try:
        for _ in range(12):
            try:
                tls = context().wrap_socket(socket.create_connection(("127.0.0.1", port), timeout=60),
                                            server_hostname="localhost")
            except (OSError, ssl.SSLError):
                break
            held.append(tls)
        assert held, served.output()
    finally:
        for tls in held:
            tls.close()
    print("TLS sessions held at once:", len(held))
    assert get(port, "/")[0] == 200
    info = settle(served)
    assert abs(info["free_heap"] - base) < 4096, (base, info)
