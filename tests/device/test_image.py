"""The host image: frozen modules, and a TLS server built from Net_Security against real peers."""
import socket
import ssl
import subprocess

from harness import CERTS, require_tool
from mpy import TLS_RESPONDER, MicroPython, free_port

CA = str(CERTS / "ca.pem")


def responder(image, tmp_path):
    """The image's TLS responder (scripts/tls_responder.py) for one connection: (process, port)."""
    return MicroPython(image, TLS_RESPONDER, tmp_path / "flash", [free_port(), 1])


def run_image(image, code, cwd):
    return subprocess.run([str(image), "-c", code], cwd=cwd, capture_output=True, text=True, timeout=30)


def test_netsec_and_net_security_are_frozen(unix_image, tmp_path):
    # An empty working directory: the modules can only come from the image itself.
    out = run_image(unix_image, "import netsec, Net_Security; print(netsec.__file__, netsec.__version__, Net_Security.FORMAT, Net_Security.TEST_ONLY)", tmp_path)
    assert out.returncode == 0, out.stderr
    path, version, fmt, test_only = out.stdout.split()
    assert path == "netsec/__init__.py" and not (tmp_path / "netsec").exists()
    assert version.count(".") == 2
    assert (fmt, test_only) == ("1", "True")


def test_cpython_ssl_verifies_the_image_server(unix_image, tmp_path):
    ctx = ssl.create_default_context(cafile=CA)
    with responder(unix_image, tmp_path) as server:
        port = server.ready()
        with socket.create_connection(("127.0.0.1", port), timeout=10) as raw:
            with ctx.wrap_socket(raw, server_hostname="localhost") as conn:
                assert conn.version() == "TLSv1.3"
                assert conn.cipher()[0] in ("TLS_AES_256_GCM_SHA384", "TLS_AES_128_GCM_SHA256",
                                            "TLS_CHACHA20_POLY1305_SHA256")
                conn.sendall(b"GET / HTTP/1.0\r\n\r\n")
                reply = conn.makefile("rb").read()
    assert reply.startswith(b"HTTP/1.0 200 OK") and b"hello" in reply


def test_curl_verifies_ca_and_hostname(unix_image, tmp_path):
    curl = require_tool("curl")
    with responder(unix_image, tmp_path) as server:
        port = server.ready()
        out = subprocess.run([curl, "-sS", "--max-time", "20", "--cacert", CA,
                              "https://localhost:%d/" % port], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    assert out.stdout.startswith("hello")


def test_curl_refuses_a_name_the_certificate_does_not_carry(unix_image, tmp_path):
    curl = require_tool("curl")
    with responder(unix_image, tmp_path) as server:
        port = server.ready()
        out = subprocess.run([curl, "-sS", "--max-time", "20", "--cacert", CA,
                              "--resolve", "device.invalid:%d:127.0.0.1" % port,
                              "https://device.invalid:%d/" % port], capture_output=True, text=True)
    assert out.returncode == 60, (out.returncode, out.stderr)  # 60: peer certificate not verified


def test_openssl_s_client_verifies_with_return_error(unix_image, tmp_path):
    # openssl exits non-zero when the server closes without close_notify: this also shows
    # firmware/patches/0001-tls-send-close-notify-on-close.patch at work.
    openssl = require_tool("openssl")
    with responder(unix_image, tmp_path) as server:
        port = server.ready()
        out = subprocess.run(
            [openssl, "s_client", "-connect", "127.0.0.1:%d" % port, "-CAfile", CA,
             "-verify_return_error", "-verify_hostname", "localhost", "-servername", "localhost", "-quiet"],
            input="GET / HTTP/1.0\r\n\r\n", capture_output=True, text=True, timeout=30,
        )
    assert out.returncode == 0, out.stderr
    assert "verify return:1" in out.stderr
    assert "hello" in out.stdout
