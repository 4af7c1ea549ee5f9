"""netsec.server set-ups of their own on the unix image: a full backlog, IPv6 and start-up
errors, client certificates after many failed handshakes, and the demo after a certificate
rotation. The target is the image and its address (host, port)."""
import json
import socket
import ssl
import subprocess
import time

import pytest

import certfactory as pki
from harness import CERTS
from mpy import OVERRIDE_DIR, MicroPython, free_port

CA = str(CERTS / "ca.pem")

# argv: host port max_sessions backlog client_auth
APP = r'''
import asyncio, sys
from netsec.server import Server
host, port, sessions, backlog, client_auth = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4]), sys.argv[5]
app = Server(host=host, port=port, max_sessions=sessions, backlog=backlog, client_auth=client_auth,
             idle_timeout=20)

@app.route("/")
async def index(request):
    return {"subject": request.peer_subject, "stats": app.stats}

async def main():
    await app.start()
    print("ready", port)
    await asyncio.sleep(3600)

asyncio.run(main())
'''


def tls_client(cert=None):
    context = ssl.create_default_context(cafile=CA)
    if cert:
        context.load_cert_chain(str(CERTS / "client.pem"), str(CERTS / "client-key.pem"))
    return context


def get(host, port, context=None, path="/"):
    """The JSON body of one HTTPS GET of path."""
    with socket.create_connection((host, port), timeout=10) as raw:
        with (context or tls_client()).wrap_socket(raw, server_hostname="localhost") as sock:
            sock.sendall(b"GET %s HTTP/1.1\r\nHost: d\r\nConnection: close\r\n\r\n" % path.encode())
            data = b""
            while True:
                piece = sock.recv(65536)
                if not piece:
                    break
                data += piece
    return json.loads(data.split(b"\r\n\r\n", 1)[1])


def test_a_full_backlog_is_logged_once_and_counted(unix_image, tmp_path):
    port = free_port()
    with MicroPython(unix_image, APP, tmp_path / "flash",
                     ["127.0.0.1", port, 1, 1, "none"]) as mp:
        mp.ready()
        busy = socket.create_connection(("127.0.0.1", port), timeout=10)
        busy.sendall(b"\x16\x03\x01\x00\x05")  # the one session: a handshake under way
        waiting = socket.create_connection(("127.0.0.1", port), timeout=10)
        time.sleep(0.5)
        refused = [socket.create_connection(("127.0.0.1", port), timeout=10) for _ in range(5)]
        line = mp.expect("WARNING ")
        assert "connection(s) refused: 1 sessions busy and 1 waiting (backlog)" in line, line
        for sock in refused + [busy, waiting]:
            sock.close()
        time.sleep(0.5)
        stats = get("127.0.0.1", port)["stats"]
        assert stats["dropped"] >= 1  # how many the kernel's own backlog took in varies
        assert mp.output.count("connection(s) refused") == 1  # rate-limited: one line


def test_ipv6_listens_and_prints_bracketed_urls(unix_image, tmp_path):
    port = free_port()
    with MicroPython(unix_image, APP, tmp_path / "flash", ["::1", port, 2, 4, "none"]) as mp:
        mp.ready()
        assert "https://[::1]:%d/" % port in mp.output
        assert get("::1", port)["stats"]["requests"] == 1


@pytest.mark.parametrize("host,cause", [("127.0.0.1", "the port is in use (EADDRINUSE)"),
                                        ("192.0.2.1", "")])
def test_a_start_up_failure_is_one_line_naming_host_port_and_cause(unix_image, tmp_path,
                                                                  host, cause):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        script = ("from netsec.server import Server\n"
                  "Server(host=%r, port=%d).run()\n" % (host, port))
        out = subprocess.run([str(unix_image), "-c", script], cwd=tmp_path, capture_output=True,
                             text=True, timeout=30)
    lines = [l for l in (out.stdout + out.stderr).splitlines() if not l.startswith("WARNING tls")]
    assert out.returncode == 1 and len(lines) == 1, out.stdout + out.stderr
    assert lines[0].startswith("ERROR netsec server: cannot listen on https://%s:%d/: "
                               % (host, port)) and cause in lines[0], lines[0]


def test_a_verified_client_stays_verified_after_many_failed_handshakes(unix_image, tmp_path):
    # The client's TCP connection is accepted (and wrapped) first; twenty failed handshakes on
    # other connections come before its own handshake. How it was verified belongs to its
    # connection: no table of other connections' facts can forget it.
    port = free_port()
    with MicroPython(unix_image, APP, tmp_path / "flash",
                     ["127.0.0.1", port, 4, 16, "optional"]) as mp:
        mp.ready()
        pending = socket.create_connection(("127.0.0.1", port), timeout=10)
        time.sleep(0.3)
        for _ in range(20):
            with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
                sock.sendall(b"GET / HTTP/1.1\r\n\r\n")  # not TLS: the handshake fails
                sock.settimeout(10)
                try:
                    sock.recv(100)
                except ConnectionResetError:
                    pass
        with tls_client(cert=True).wrap_socket(pending, server_hostname="localhost") as sock:
            sock.sendall(b"GET / HTTP/1.1\r\nHost: d\r\nConnection: close\r\n\r\n")
            data = b""
            while True:
                piece = sock.recv(65536)
                if not piece:
                    break
                data += piece
        subject = json.loads(data.split(b"\r\n\r\n", 1)[1])["subject"]
        assert subject and subject.startswith("CN=client,"), subject
        assert "VERIFIED peer=" + subject in mp.output
        assert get("127.0.0.1", port)["stats"]["handshake_failures"] >= 20


def test_the_demo_shows_the_certificate_in_use_after_a_rotation(unix_image, tmp_path):
    port = free_port()
    flash = tmp_path / "flash"
    with MicroPython(unix_image, "import sys\nfrom netsec import demo\n"
                     "demo.main(int(sys.argv[1]), 'www')\n", flash, [port]) as mp:
        mp.expect("INFO netsec https server on")  # listening
        context = ssl.create_default_context(cafile=CA)
        before = get("127.0.0.1", port, context, "/api/status")
        assert before["certificate"]["test_only"] is True
        ca = pki.ca("Rotated CA")
        cert, key = pki.leaf(ca, hosts=("localhost", "127.0.0.1"), cn="rotated-device")
        (flash / OVERRIDE_DIR).mkdir()
        (flash / OVERRIDE_DIR / "SERVER_KEY.der").write_bytes(pki.der(key))
        (flash / OVERRIDE_DIR / "SERVER_CERT.der").write_bytes(pki.der(cert))
        context = ssl.create_default_context(cadata=pki.pem(ca[0]).decode())
        after = get("127.0.0.1", port, context, "/api/status")
        assert after["certificate"]["subject"] == "CN=rotated-device"
        assert after["certificate"]["test_only"] is False
        assert after["tls_sessions"] == 2 and after["failed_handshakes"] == 0


