"""End to end: netsec keygen -> netsec convert -> a unix image with that module frozen in ->
openssl s_client and curl complete a verified handshake with the server in the image; the same
module frozen into the QEMU (Cortex-M3) image loads into an SSLContext there.

The images are built into build/test-cli-e2e/ (kept between runs, so after the first full build
each key type costs an incremental rebuild of the frozen module only).
"""
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from netsec_cli import qemu

ROOT = Path(__file__).resolve().parents[2]
BUILD = ROOT / "build" / "test-cli-e2e"
NETSEC = Path(sys.executable).parent / "netsec"
KEY_NAMES = {"ec-p256": "EC P-256", "rsa-2048": "RSA 2048"}  # --key-type -> INFO's "key"
HOST = "e2e.netsec.test"  # in no default credential: proves our module, not the default, is frozen

# Serves `count` connections: TLS handshake with Net_Security's identity, read a request head,
# answer with a tiny HTTP response. Handshake failures are printed and the next client is served.
SERVER = """
import socket, sys, tls, Net_Security
ctx = tls.SSLContext(tls.PROTOCOL_TLS_SERVER)
ctx.load_cert_chain(Net_Security.SERVER_CERT, Net_Security.SERVER_KEY)
listener = socket.socket()
listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
listener.bind(socket.getaddrinfo("127.0.0.1", int(sys.argv[1]))[0][-1])
listener.listen(2)
print("listening")
for _ in range(int(sys.argv[2])):
    conn, _ = listener.accept()
    try:
        stream = ctx.wrap_socket(conn, server_side=True)
        head = b""
        while b"\\r\\n\\r\\n" not in head:
            chunk = stream.recv(256)
            if not chunk:
                break
            head += chunk
        stream.write(b"HTTP/1.0 200 OK\\r\\nContent-Type: text/plain\\r\\n\\r\\n")
        stream.write(b"hello from netsec\\n")
        stream.close()
        print("served")
    except OSError as e:
        print("handshake failed:", e)
        conn.close()
"""


def run(*argv, **kwargs):
    return subprocess.run([str(a) for a in argv], capture_output=True, text=True, **kwargs)


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module", params=sorted(KEY_NAMES))
def image(request, tmp_path_factory):
    """(micropython binary, directory with ca.pem): an image built with a freshly made identity."""
    certs = tmp_path_factory.mktemp(request.param)
    made = run(NETSEC, "keygen", "-o", certs, "--host", HOST, "--host", "127.0.0.1",
               "--key-type", request.param)
    assert made.returncode == 0, made.stderr
    module = certs / "Net_Security.py"
    converted = run(NETSEC, "convert", "--server-cert", certs / "server.pem",
                    "--server-key", certs / "server-key.pem", "--ca", certs / "ca.pem",
                    "--host", HOST, "--host", "127.0.0.1", "--client-ca", certs / "ca.pem",
                    "-o", module)
    assert converted.returncode == 0, converted.stderr
    image_dir = build("unix", module, "UNIX_BUILD=%s" % (BUILD / "unix"))
    return image_dir / "micropython", certs, request.param


def build(target, module, build_dir):
    """`make <target>` with `module` frozen in; returns the build directory."""
    built = run("make", "-C", ROOT, target, "JOBS=1", "NET_SECURITY=%s" % module, build_dir,
                "CREDENTIALS_CHOICE=%s" % (BUILD / "credentials-choice"))  # not the project's
    assert built.returncode == 0, built.stdout[-3000:] + built.stderr[-3000:]
    return Path(build_dir.split("=", 1)[1])


def test_image_holds_the_converted_module(image):
    micropython, _, key_type = image
    shown = run(micropython, "-c", "import Net_Security as N; i = N.INFO['SERVER_CERT']; "
                                   "print(N.TEST_ONLY, i['subject'], i['key'])")
    expected = "False CN=%s %s" % (HOST, KEY_NAMES[key_type])
    assert shown.stdout.split("\n")[0] == expected, shown.stdout + shown.stderr


def test_openssl_and_curl_verify_the_image_server(image):
    micropython, certs, _ = image
    port = free_port()
    script = certs / "server.py"
    script.write_text(SERVER)
    server = subprocess.Popen([str(micropython), str(script), str(port), "3"],
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        assert server.stdout.readline().strip() == "listening"
        s_client = run("openssl", "s_client", "-connect", "127.0.0.1:%d" % port,
                       "-servername", HOST, "-verify_hostname", HOST, "-CAfile", certs / "ca.pem",
                       "-verify_return_error", "-brief", "-ign_eof",
                       input="GET / HTTP/1.0\r\n\r\n", timeout=30)
        assert s_client.returncode == 0, s_client.stdout + s_client.stderr
        assert "Verification: OK" in s_client.stderr and "hello from netsec" in s_client.stdout
        curl = run("curl", "-sS", "--max-time", "20", "--cacert", certs / "ca.pem",
                   "--resolve", "%s:%d:127.0.0.1" % (HOST, port), "https://%s:%d/" % (HOST, port))
        assert curl.returncode == 0 and curl.stdout == "hello from netsec\n", curl.stderr
        # The client's check is real: the default test CA did not sign this server.
        default_ca = ROOT / "tests" / "certs" / "default" / "ca.pem"
        wrong = run("curl", "-sS", "--max-time", "20", "--cacert", default_ca,
                    "--resolve", "%s:%d:127.0.0.1" % (HOST, port), "https://%s:%d/" % (HOST, port))
        assert wrong.returncode == 60, wrong.stderr  # 60: peer certificate cannot be authenticated
        output, _ = server.communicate(timeout=20)
    finally:
        if server.poll() is None:
            server.kill()
            server.wait()
    assert output.split("\n")[:2] == ["served", "served"], output


# Loads the identity and the client CAs into mbedTLS on the guest, as netsec.tls will.
GUEST_CHECK = """
import tls, Net_Security as N
ctx = tls.SSLContext(tls.PROTOCOL_TLS_SERVER)
ctx.load_cert_chain(N.SERVER_CERT, N.SERVER_KEY)
for ca in N.CLIENT_CAS:
    ctx.load_verify_locations(ca)
print(N.TEST_ONLY, N.INFO['SERVER_CERT']['subject'], N.INFO['SERVER_CERT']['key'])
"""


def test_the_same_module_loads_in_the_qemu_image(image):
    _, certs, key_type = image
    image_dir = build("qemu-image", certs / "Net_Security.py", "QEMU_BUILD=%s" % (BUILD / "qemu"))
    elf = image_dir / "firmware.elf"
    with qemu.Guest(elf) as guest:
        out = guest.exec(GUEST_CHECK, timeout=120)
    assert out.strip() == "False CN=%s %s" % (HOST, KEY_NAMES[key_type]), out
