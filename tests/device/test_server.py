"""netsec.server on the unix image against real clients: curl, CPython http.client over ssl,
openssl s_client and raw TLS sockets for the protocol's edge cases."""
import email.utils
import gzip
import hashlib
import http.client
import json
import os
import socket
import ssl
import subprocess
import threading
import time

import pytest

from harness import CERTS, require_tool
from mpy import free_port
from targets import UnixTarget

CA = str(CERTS / "ca.pem")
HANDSHAKE_TIMEOUT, HEAD_TIMEOUT, IDLE_TIMEOUT = 3, 3, 3

# The app under test, run by the image. argv: a config JSON file (not the JSON itself: the unix
# port dies on any argv item of 256 characters or more, as it interns them as qstrs).
APP = r'''
import asyncio, gc, hashlib, json, sys, binascii
from netsec.server import Server, Response, BasicAuth, HTTPError

with open(sys.argv[1]) as f:
    cfg = json.load(f)
app = Server(host=cfg["host"], port=cfg["port"], redirect_port=cfg["redirect_port"], hsts=600,
             handshake_timeout=cfg["timeouts"][0], head_timeout=cfg["timeouts"][1],
             idle_timeout=cfg["timeouts"][2])
app.static("/static", cfg["root"])
app.protect("/admin", BasicAuth({"admin": cfg["admin_hash"]}, realm="test"))

@app.route("/")
async def index(request):
    return "hello"

@app.route("/items/<id>/<path:rest>")
async def item(request):
    return {"params": request.params, "query": request.query, "version": request.version}

@app.route("/stats")
async def stats(request):
    gc.collect()
    return {"free": gc.mem_free(), "stats": app.stats}

@app.route("/echo", methods=("POST",))
async def echo(request):
    return Response(await request.read(), content_type="application/octet-stream")

@app.route("/small", methods=("POST",), max_body=10)
async def small(request):
    return str(len(await request.read()))

@app.route("/upload/<name>", methods=("PUT",), max_body=4 * 1024 * 1024)
async def upload(request):
    h = hashlib.sha256()
    buf = bytearray(700)
    size = 0
    with open(cfg["uploads"] + "/" + request.params["name"], "wb") as f:
        while True:
            n = await request.readinto(buf)
            if not n:
                break
            f.write(memoryview(buf)[:n])
            h.update(memoryview(buf)[:n])
            size += n
    on_disk = hashlib.sha256()
    with open(cfg["uploads"] + "/" + request.params["name"], "rb") as f:
        while True:
            n = f.readinto(buf)
            if not n:
                break
            on_disk.update(memoryview(buf)[:n])
    on_disk = on_disk.digest()
    return {"size": size, "sha256": binascii.hexlify(h.digest()).decode(),
            "on_disk": binascii.hexlify(on_disk).decode()}

class Pieces:
    def __init__(self):
        self.n = 0
    def __aiter__(self):
        return self
    async def __anext__(self):
        if self.n == 5:
            raise StopAsyncIteration
        self.n += 1
        await asyncio.sleep_ms(1)
        return "piece %d\n" % self.n

@app.route("/stream")
async def stream(request):
    return Response(Pieces(), content_type="text/plain")

@app.route("/lines")
async def lines(request):
    return Response((b"line %d\n" % i for i in range(3)), content_type="text/plain")

@app.route("/fail")
async def fail(request):
    raise ValueError("handler bug")

@app.route("/oom")
async def oom(request):
    hog = [bytearray(64 * 1024) for _ in range(100000)]
    return str(len(hog))

@app.route("/teapot")
async def teapot(request):
    raise HTTPError(404, "no such sensor")

@app.route("/admin/secret")
async def secret(request):
    return "hi " + request.user

@app.route("/sync")
def sync_handler(request):
    return b"plain function"

@app.route("/gen")
def generator_handler(request):
    yield b"generated"

@app.route("/stuck")
async def stuck(request):
    await asyncio.Event().wait()

@app.route("/framing")
async def framing(request):
    return Response(b"abc", headers=[("Content-Length", "10")])

async def main():
    await app.start()
    print("ready")
    while True:
        await asyncio.sleep(3600)

asyncio.run(main())
'''


def tls_context():
    return ssl.create_default_context(cafile=CA)


def connect(port, timeout=10):
    raw = socket.create_connection(("127.0.0.1", port), timeout=timeout)
    return tls_context().wrap_socket(raw, server_hostname="localhost")


def read_response(sock, method="GET"):
    response = http.client.HTTPResponse(sock, method=method)
    response.begin()
    return response.status, response.headers, response.read()


def closed_by_server(sock, wait=5):
    """True if the server closed the connection within `wait` seconds."""
    sock.settimeout(wait)
    try:
        return sock.recv(1) == b""
    except (ssl.SSLEOFError, ConnectionResetError, BrokenPipeError):
        return True
    except socket.timeout:
        return False


def exchange(port, raw, method="GET"):
    """Send raw bytes on a new TLS connection; -> (status, headers, body, closed afterwards)."""
    with connect(port) as sock:
        sock.sendall(raw)
        status, headers, body = read_response(sock, method)
        # Well before the idle timeout: a close seen now answers this request.
        return status, headers, body, closed_by_server(sock, 1.5)


def get(port, path, headers=None, method="GET"):
    conn = http.client.HTTPSConnection("localhost", port, context=tls_context(), timeout=20)
    try:
        conn.request(method, path, headers=headers or {})
        response = conn.getresponse()
        return response.status, response.headers, response.read()
    finally:
        conn.close()


class App:
    """The APP above on a target (tests/device/targets.py): .port and .redirect_port are where
    clients connect on 127.0.0.1; .root and .uploads the host's copy of its flash folders."""

    def __init__(self, target, tmp):
        self.target = target
        flash = tmp / "flash"
        self.root = flash / "www"
        self.uploads = flash / "uploads"
        self.root.mkdir(parents=True)
        self.uploads.mkdir()
        (flash / "secret.txt").write_text("TOP SECRET")
        (self.root / "index.html").write_text("<h1>index</h1>")
        (self.root / "big.txt").write_text("".join("line %d\n" % i for i in range(20000)))
        with open(self.root / "big.txt", "rb") as f, gzip.open(self.root / "big.txt.gz", "wb") as g:
            g.write(f.read())
        (self.root / "sub").mkdir()
        (self.root / "sub" / "index.html").write_text("sub index")
        salt = b"0123456789abcdef"
        admin_hash = "pbkdf2-sha256$1000$%s$%s" % (
            salt.hex(), hashlib.pbkdf2_hmac("sha256", b"s3cret", salt, 1000).hex())
        listen, self.port = target.listen_ports(443)
        redirect_listen, self.redirect_port = target.listen_ports(80)
        config = json.dumps({"host": target.listen_host, "port": listen,
                             "redirect_port": redirect_listen, "root": "www", "uploads": "uploads",
                             "admin_hash": admin_hash,
                             "timeouts": [HANDSHAKE_TIMEOUT, HEAD_TIMEOUT, IDLE_TIMEOUT]})
        (flash / "config.json").write_text(config)
        self.program = target.program(APP, flash, ["config.json"])
        try:
            self.program.expect("ready", timeout=60)
        except Exception:
            self.program.stop()
            pytest.fail("test app did not start:\n" + self.log())
        self.base_fds = self.fds()

    def running(self):
        return self.target.running(self.program)

    def fds(self):
        """How many file descriptors the server process holds (sockets included); None on a
        board, which has none to count."""
        if self.target.name != "unix":
            return None
        return len(os.listdir("/proc/%d/fd" % self.program.process.pid))

    def log(self):
        """What the server printed, once nothing more has come for 0.1 s (at most 2 s): its
        output reaches us through a pipe and a reader thread, a moment after it was written."""
        text, deadline = self.program.output, time.monotonic() + 2
        while time.monotonic() < deadline:
            time.sleep(0.1)
            newer = self.program.output
            if newer == text:
                break
            text = newer
        return text

    def stats(self):
        status, _, body = get(self.port, "/stats")
        assert status == 200
        return json.loads(body)

    def settle(self, active=1, timeout=8):
        """Wait until only the /stats request itself is being served; -> its stats."""
        deadline = time.time() + timeout
        while True:
            stats = self.stats()
            if (stats["stats"]["active"] == active and stats["stats"]["waiting"] == 0) \
                    or time.time() > deadline:
                return stats
            time.sleep(0.2)

    def stop(self):
        self.program.stop()


def _healthy(app):
    """Checks after a test that the server still serves and leaked no session or socket."""
    assert app.running(), "server died:\n" + app.log()
    stats = app.settle()
    assert stats["stats"]["active"] == 1 and stats["stats"]["waiting"] == 0, stats
    deadline = time.time() + 5
    while app.fds() != app.base_fds and time.time() < deadline:
        time.sleep(0.1)
    assert app.fds() == app.base_fds, "sockets left open"


@pytest.fixture(scope="module")
def app(unix_image, tmp_path_factory):
    server = App(UnixTarget(unix_image), tmp_path_factory.mktemp("server"))
    yield server
    server.stop()


@pytest.fixture
def healthy(app):
    """The app on the unix image; checked after the test (_healthy)."""
    yield app
    _healthy(app)


@pytest.fixture(scope="module")
def app_on_target(target, tmp_path_factory):
    server = App(target, tmp_path_factory.mktemp("server-" + target.name))
    yield server
    server.stop()


@pytest.fixture
def served(app_on_target):
    """The app on each target (the unix image, the networked QEMU Cortex-M3); checked after
    the test (_healthy). For the core tests that must hold on a board's network stack too."""
    yield app_on_target
    _healthy(app_on_target)


# --- real clients ----------------------------------------------------------------------------

def test_curl_keeps_one_tls_session_for_two_requests(served):
    curl = require_tool("curl")
    before = served.stats()["stats"]["connections"]
    out = subprocess.run([curl, "-sS", "--cacert", CA, "-w", " connects=%{num_connects}\n",
                          "https://localhost:%d/" % served.port,
                          "https://localhost:%d/items/7/a/b?x=1" % served.port],
                         capture_output=True, text=True, timeout=30)
    assert out.returncode == 0, out.stderr
    first, second = out.stdout.strip().splitlines()
    assert first == "hello connects=1"
    assert second.endswith(" connects=0")  # the second request reused the connection
    body = json.loads(second[:second.rindex(" connects")])
    assert body == {"params": {"id": "7", "rest": "a/b"}, "query": {"x": "1"},
                    "version": "HTTP/1.1"}
    assert served.stats()["stats"]["connections"] == before + 2  # curl's one, and ours


def test_cpython_http_client_keep_alive_and_post(served):
    conn = http.client.HTTPSConnection("localhost", served.port, context=tls_context(),
                                       timeout=20)
    conn.request("GET", "/")
    response = conn.getresponse()
    assert (response.status, response.read()) == (200, b"hello")
    assert response.headers["Content-Type"] == "text/plain; charset=utf-8"
    assert response.headers["Strict-Transport-Security"] == "max-age=600"
    sock = conn.sock
    payload = os.urandom(5000)
    conn.request("POST", "/echo", body=payload)
    response = conn.getresponse()
    assert (response.status, response.read()) == (200, payload)
    assert conn.sock is sock  # same TCP connection and TLS session
    conn.close()


def test_openssl_s_client(healthy):
    openssl = require_tool("openssl")
    out = subprocess.run(
        [openssl, "s_client", "-connect", "127.0.0.1:%d" % healthy.port, "-CAfile", CA,
         "-verify_return_error", "-verify_hostname", "localhost", "-servername", "localhost",
         "-quiet"],
        input=b"GET / HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n",
        capture_output=True, timeout=30)
    assert b"verify return:1" in out.stderr
    assert out.stdout.startswith(b"HTTP/1.1 200 OK\r\n")
    assert out.stdout.endswith(b"\r\n\r\nhello")


def test_connection_is_logged_once_with_tls_details(healthy):
    status, _, _ = get(healthy.port, "/")
    assert status == 200
    line = [l for l in healthy.log().splitlines() if "https client 127.0.0.1:" in l][-1]
    assert "TLSv1.3" in line and "GCM" in line


def test_streamed_bodies_are_chunked(healthy):
    status, headers, body = get(healthy.port, "/stream")
    assert status == 200 and headers["Transfer-Encoding"] == "chunked"
    assert body == b"".join(b"piece %d\n" % i for i in range(1, 6))
    status, headers, body = get(healthy.port, "/lines")
    assert body == b"line 0\nline 1\nline 2\n" and headers["Transfer-Encoding"] == "chunked"


def test_http10_gets_a_closed_connection_without_chunking(healthy):
    status, headers, body, closed = exchange(healthy.port, b"GET /stream HTTP/1.0\r\n\r\n")
    assert status == 200 and "Transfer-Encoding" not in headers and closed
    assert body.startswith(b"piece 1\n")


def test_http10_keep_alive(healthy):
    with connect(healthy.port) as sock:
        for _ in range(2):
            sock.sendall(b"GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n")
            status, headers, body = read_response(sock)
            assert (status, body, headers["Connection"]) == (200, b"hello", "keep-alive")


def test_pipelined_requests_are_answered_in_order(healthy):
    with connect(healthy.port) as sock:
        sock.sendall(b"GET / HTTP/1.1\r\nHost: d\r\n\r\nPOST /echo HTTP/1.1\r\nHost: d\r\n"
                     b"Content-Length: 3\r\n\r\nabcGET /items/1/x HTTP/1.1\r\nHost: d\r\n\r\n")
        assert read_response(sock)[2] == b"hello"
        assert read_response(sock)[2] == b"abc"
        assert json.loads(read_response(sock)[2])["params"] == {"id": "1", "rest": "x"}


def test_chunked_request_body(healthy):
    status, _, body, closed = exchange(
        healthy.port, b"POST /echo HTTP/1.1\r\nHost: d\r\nTransfer-Encoding: chunked\r\n\r\n"
                      b"4\r\nwiki\r\n5;ext=1\r\npedia\r\n0\r\nTrailer: x\r\n\r\n")
    assert (status, body, closed) == (200, b"wikipedia", False)


def test_head_sends_headers_only(healthy):
    status, headers, body, closed = exchange(
        healthy.port, b"HEAD /static/big.txt HTTP/1.1\r\nHost: d\r\n\r\n", method="HEAD")
    assert status == 200 and body == b"" and not closed
    assert int(headers["Content-Length"]) == (healthy.root / "big.txt").stat().st_size


def test_sync_handlers_work_too(healthy):
    assert get(healthy.port, "/sync")[2] == b"plain function"


# --- static files ------------------------------------------------------------------------------

def test_static_file_etag_and_304(healthy):
    status, headers, body = get(healthy.port, "/static/index.html")
    assert (status, body) == (200, b"<h1>index</h1>")
    assert headers["Content-Type"] == "text/html; charset=utf-8"
    assert headers["Cache-Control"] == "max-age=300"
    etag = headers["ETag"]
    status, headers, body = get(healthy.port, "/static/index.html", {"If-None-Match": etag})
    assert (status, body, headers["ETag"]) == (304, b"", etag)
    status, _, _ = get(healthy.port, "/static/index.html", {"If-None-Match": '"other"'})
    assert status == 200


def test_static_directory_serves_index(healthy):
    assert get(healthy.port, "/static/sub/")[2] == b"sub index"
    assert get(healthy.port, "/static/")[2] == b"<h1>index</h1>"


def test_static_gzip_sibling_only_when_accepted(healthy):
    plain = (healthy.root / "big.txt").read_bytes()
    status, headers, body = get(healthy.port, "/static/big.txt", {"Accept-Encoding": "gzip"})
    assert status == 200 and headers["Content-Encoding"] == "gzip"
    assert headers["Content-Type"] == "text/plain; charset=utf-8"
    assert headers["Vary"] == "Accept-Encoding"
    assert gzip.decompress(body) == plain
    status, headers, body = get(healthy.port, "/static/big.txt")
    assert "Content-Encoding" not in headers and body == plain
    status, headers, body = get(healthy.port, "/static/big.txt", {"Accept-Encoding": "gzip;q=0"})
    assert body == plain


def test_curl_compressed_static_file(healthy, tmp_path):
    curl = require_tool("curl")
    out = subprocess.run([curl, "-sS", "--cacert", CA, "--compressed", "-o", str(tmp_path / "f"),
                          "https://localhost:%d/static/big.txt" % healthy.port],
                         capture_output=True, text=True, timeout=30)
    assert out.returncode == 0, out.stderr
    assert (tmp_path / "f").read_bytes() == (healthy.root / "big.txt").read_bytes()


def test_static_missing_file_is_404(healthy):
    assert get(healthy.port, "/static/nope.txt")[0] == 404


@pytest.mark.parametrize("target", [
    b"/static/../secret.txt", b"/static/%2e%2e/secret.txt", b"/static/..%2fsecret.txt",
    b"/static/%2E%2E%2F%2E%2E%2Fsecret.txt", b"/static/sub/../../secret.txt",
    b"/static/./../secret.txt", b"https://localhost/static/../secret.txt"])
def test_dot_dot_never_leaves_the_static_root(healthy, target):
    status, _, body, _ = exchange(healthy.port, b"GET " + target + b" HTTP/1.1\r\nHost: d\r\n\r\n")
    assert b"TOP SECRET" not in body
    assert status == 404


def test_curl_path_as_is_traversal(healthy):
    curl = require_tool("curl")
    out = subprocess.run([curl, "-sS", "--path-as-is", "--cacert", CA,
                          "https://localhost:%d/static/../../secret.txt" % healthy.port],
                         capture_output=True, text=True, timeout=30)
    assert "TOP SECRET" not in out.stdout


# --- authentication ---------------------------------------------------------------------------

def test_basic_auth(healthy):
    import base64

    def auth(user, password):
        return {"Authorization": "Basic " + base64.b64encode(
            ("%s:%s" % (user, password)).encode()).decode()}

    status, headers, _ = get(healthy.port, "/admin/secret")
    assert status == 401
    assert headers["WWW-Authenticate"] == 'Basic realm="test", charset="UTF-8"'
    assert get(healthy.port, "/admin/secret", auth("admin", "wrong"))[0] == 401
    assert get(healthy.port, "/admin/secret", auth("nobody", "s3cret"))[0] == 401
    assert get(healthy.port, "/admin/secret", {"Authorization": "Basic !!!"})[0] == 401
    status, _, body = get(healthy.port, "/admin/secret", auth("admin", "s3cret"))
    assert (status, body) == (200, b"hi admin")
    assert get(healthy.port, "/admin/nothing-here", auth("admin", "s3cret"))[0] == 404
    assert get(healthy.port, "/admin/nothing-here")[0] == 401  # auth before routing


def test_curl_basic_auth(healthy):
    curl = require_tool("curl")
    url = "https://localhost:%d/admin/secret" % healthy.port
    good = subprocess.run([curl, "-sS", "--cacert", CA, "-u", "admin:s3cret", url],
                          capture_output=True, text=True, timeout=30)
    bad = subprocess.run([curl, "-sS", "--cacert", CA, "-u", "admin:nope", "-w", "%{http_code}",
                          "-o", "/dev/null", url], capture_output=True, text=True, timeout=30)
    assert good.stdout == "hi admin"
    assert bad.stdout == "401"


# --- uploads ---------------------------------------------------------------------------------

def test_upload_streamed_to_flash_hash_matches(healthy, tmp_path):
    data = os.urandom(1536 * 1024 + 17)
    want = hashlib.sha256(data).hexdigest()
    status, _, body = get_with_body(healthy.port, "PUT", "/upload/blob.bin", data)
    assert status == 200
    result = json.loads(body)
    assert result == {"size": len(data), "sha256": want, "on_disk": want}
    assert hashlib.sha256((healthy.uploads / "blob.bin").read_bytes()).hexdigest() == want
    # curl, chunked and with Expect: 100-continue (the server must send 100 before the body)
    (tmp_path / "up").write_bytes(data)
    curl = require_tool("curl")
    out = subprocess.run([curl, "-sS", "--cacert", CA, "-T", str(tmp_path / "up"),
                          "-H", "Transfer-Encoding: chunked", "-H", "Expect: 100-continue",
                          "https://localhost:%d/upload/curl.bin" % healthy.port],
                         capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout)["on_disk"] == want


def get_with_body(port, method, path, body, headers=None):
    conn = http.client.HTTPSConnection("localhost", port, context=tls_context(), timeout=60)
    try:
        conn.request(method, path, body=body, headers=headers or {})
        response = conn.getresponse()
        return response.status, response.headers, response.read()
    finally:
        conn.close()


# --- limits, malformed requests and smuggling ------------------------------------------------

H = b"Host: d\r\n"
CASES = {
    "header line too long": (b"GET / HTTP/1.1\r\n" + H + b"X: " + b"a" * 3000 + b"\r\n\r\n", 431),
    "too many headers": (b"GET / HTTP/1.1\r\n" + H + b"".join(b"X%d: v\r\n" % i
                                                                for i in range(40)) + b"\r\n", 431),
    "head too large": (b"GET / HTTP/1.1\r\n" + H + b"".join(b"X%d: %s\r\n" % (i, b"v" * 1000)
                                                            for i in range(10)) + b"\r\n", 431),
    "uri too long": (b"GET /" + b"a" * 3000 + b" HTTP/1.1\r\n" + H + b"\r\n", 414),
    "malformed request line": (b"GET  / HTTP/1.1\r\n" + H + b"\r\n", 400),
    "no host": (b"GET / HTTP/1.1\r\n\r\n", 400),
    "bare LF": (b"GET / HTTP/1.1\n" + H + b"\r\n", 400),
    "unknown method": (b"BREW / HTTP/1.1\r\n" + H + b"\r\n", 501),
    "version 2 in text": (b"GET / HTTP/2.0\r\n" + H + b"\r\n", 505),
    "body over route limit": (b"POST /small HTTP/1.1\r\n" + H + b"Content-Length: 11\r\n\r\n"
                              b"01234567890", 413),
    "chunked body over route limit": (b"POST /small HTTP/1.1\r\n" + H +
                                      b"Transfer-Encoding: chunked\r\n\r\nb\r\n01234567890\r\n"
                                      b"0\r\n\r\n", 413),
    "CL and TE": (b"POST /echo HTTP/1.1\r\n" + H + b"Content-Length: 5\r\n"
                  b"Transfer-Encoding: chunked\r\n\r\n0\r\n\r\n", 400),
    "differing CL": (b"POST /echo HTTP/1.1\r\n" + H + b"Content-Length: 5\r\n"
                     b"Content-Length: 6\r\n\r\nhello!", 400),
    "invalid chunk size": (b"POST /echo HTTP/1.1\r\n" + H + b"Transfer-Encoding: chunked\r\n\r\n"
                           b"zz\r\nhello\r\n0\r\n\r\n", 400),
    "obs-fold": (b"GET / HTTP/1.1\r\n" + H + b"X: a\r\n b\r\n\r\n", 400),
    "bad percent escape": (b"GET /%zz HTTP/1.1\r\n" + H + b"\r\n", 400),
}


@pytest.mark.parametrize("name", sorted(CASES))
def test_limits_and_smuggling_get_status_and_close(served, name):
    raw, want = CASES[name]
    status, headers, body, closed = exchange(served.port, raw)
    assert status == want, body
    assert headers["Connection"] == "close" and closed


def test_handler_errors_keep_the_connection_when_safe(healthy):
    with connect(healthy.port) as sock:
        sock.sendall(b"GET /teapot HTTP/1.1\r\nHost: d\r\n\r\n")
        status, _, body = read_response(sock)
        assert status == 404 and b"no such sensor" in body
        sock.sendall(b"DELETE / HTTP/1.1\r\nHost: d\r\n\r\n")
        status, headers, _ = read_response(sock)
        assert status == 405 and headers["Allow"] == "GET"
        sock.sendall(b"GET /nowhere HTTP/1.1\r\nHost: d\r\n\r\n")
        assert read_response(sock)[0] == 404
        sock.sendall(b"GET / HTTP/1.1\r\nHost: d\r\n\r\n")
        assert read_response(sock)[2] == b"hello"


def test_handler_exception_is_500_and_logged(healthy):
    status, headers, _, closed = exchange(healthy.port, b"GET /fail HTTP/1.1\r\nHost: d\r\n\r\n")
    assert status == 500 and closed
    assert "handler for GET /fail failed: ValueError('handler bug',)" in healthy.log() or \
        "handler for GET /fail failed: ValueError('handler bug')" in healthy.log()


def test_memory_error_closes_one_connection_and_heap_recovers(healthy):
    before = healthy.settle()["free"]
    with connect(healthy.port) as sock:
        sock.sendall(b"GET /oom HTTP/1.1\r\nHost: d\r\n\r\n")
        assert closed_by_server(sock, 20)
    assert "out of memory; connection closed" in healthy.log()
    after = healthy.settle()["free"]
    assert after >= before - 4096, (before, after)
    assert get(healthy.port, "/")[2] == b"hello"


# --- sessions, timeouts and robustness --------------------------------------------------------

def test_twenty_concurrent_clients_ten_requests_each(healthy):
    failures = []

    def client(n):
        try:
            conn = http.client.HTTPSConnection("localhost", healthy.port,
                                               context=tls_context(), timeout=60)
            for i in range(10):
                conn.request("GET", "/items/%d/%d" % (n, i))
                response = conn.getresponse()
                body = json.loads(response.read())
                if response.status != 200 or body["params"] != {"id": str(n), "rest": str(i)}:
                    failures.append((n, i, response.status))
            conn.close()
        except Exception as e:  # noqa: BLE001 - any failure is reported
            failures.append((n, repr(e)))

    threads = [threading.Thread(target=client, args=(n,)) for n in range(20)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    assert not failures
    assert healthy.stats()["stats"]["dropped"] == 0


def loris(port, stop):
    sock = connect(port)
    try:
        for byte in b"GET / HTTP/1.1\r\nHost: d\r\nX-Slow: " + b"z" * 100:
            if stop.is_set():
                break
            sock.sendall(bytes([byte]))
            time.sleep(0.3)
    except OSError:
        pass  # the server hung up on us: what it should do
    finally:
        sock.close()


def test_slow_loris_does_not_starve_a_good_client(healthy):
    stop = threading.Event()
    threads = [threading.Thread(target=loris, args=(healthy.port, stop)) for _ in range(4)]
    for t in threads:
        t.start()
    time.sleep(1.5)  # all four hold a session now
    started = time.time()
    status, _, body = get(healthy.port, "/")
    elapsed = time.time() - started
    stop.set()
    for t in threads:
        t.join(10)
    assert (status, body) == (200, b"hello")
    assert elapsed < HEAD_TIMEOUT, elapsed


def test_a_waiting_client_gets_the_slot_of_the_idlest_connection(served):
    # Every session is taken: one mid-request (the oldest), two idle keep-alive connections
    # and a preconnect (handshake, no request). A fifth client is served within about a second
    # (not after IDLE_TIMEOUT): the idlest connection was closed for it, never the busy one.
    busy = connect(served.port)
    busy.sendall(b"POST /echo HTTP/1.1\r\nHost: d\r\nContent-Length: 6\r\n\r\nabc")
    idle = []
    for _ in range(2):
        sock = connect(served.port)
        sock.sendall(b"GET / HTTP/1.1\r\nHost: d\r\n\r\n")
        read_response(sock)
        idle.append(sock)
    preconnect = connect(served.port)
    started = time.time()
    with connect(served.port, timeout=20) as fifth:
        fifth.sendall(b"GET / HTTP/1.1\r\nHost: d\r\n\r\n")
        assert read_response(fifth)[2] == b"hello"
    waited = time.time() - started
    assert waited < IDLE_TIMEOUT - 1, waited
    assert closed_by_server(idle[0], 0.5)  # idle longest: closed with close_notify
    assert not closed_by_server(idle[1], 0.1) and not closed_by_server(preconnect, 0.1)
    busy.sendall(b"def")
    assert read_response(busy)[2] == b"abcdef"
    assert "idle connection closed: a client is waiting" in served.log()
    for sock in [busy, preconnect] + idle:
        sock.close()


def test_idle_keep_alive_connection_is_closed(healthy):
    with connect(healthy.port) as sock:
        sock.sendall(b"GET / HTTP/1.1\r\nHost: d\r\n\r\n")
        read_response(sock)
        started = time.time()
        assert closed_by_server(sock, IDLE_TIMEOUT + 3)
        assert time.time() - started > IDLE_TIMEOUT - 0.5


def test_silent_client_is_dropped_after_handshake_timeout(healthy):
    with socket.create_connection(("127.0.0.1", healthy.port), timeout=10) as sock:
        started = time.time()
        sock.settimeout(HANDSHAKE_TIMEOUT + 3)
        assert sock.recv(1) == b""
        assert time.time() - started > HANDSHAKE_TIMEOUT - 0.5


def test_slow_body_is_cut_off(healthy):
    with connect(healthy.port) as sock:
        sock.sendall(b"POST /echo HTTP/1.1\r\nHost: d\r\nContent-Length: 100\r\n\r\nabc")
        assert closed_by_server(sock, IDLE_TIMEOUT + 3)


def test_garbage_and_plain_http_on_the_tls_port_are_dropped(healthy):
    for junk in (b"GET / HTTP/1.1\r\nHost: d\r\n\r\n", os.urandom(600),
                 b"\x16\x03\x01\x00\x05hello"):
        with socket.create_connection(("127.0.0.1", healthy.port), timeout=10) as sock:
            sock.sendall(junk)
            sock.settimeout(10)
            try:
                while sock.recv(4096):
                    pass
            except ConnectionResetError:
                pass
    assert "TLS error" in healthy.log()
    assert get(healthy.port, "/")[2] == b"hello"


def test_disconnect_mid_handshake_and_mid_body_leaks_nothing(served):
    before = served.settle()["free"]
    for _ in range(3):
        # Half a ClientHello, then gone.
        with socket.create_connection(("127.0.0.1", served.port), timeout=10) as sock:
            sock.sendall(b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03" + os.urandom(20))
        # A body cut short.
        with connect(served.port) as sock:
            sock.sendall(b"PUT /upload/cut.bin HTTP/1.1\r\nHost: d\r\nContent-Length: 100000"
                         b"\r\n\r\n" + os.urandom(5000))
        # Gone right after the handshake.
        connect(served.port).close()
    stats = served.settle()
    assert stats["stats"]["active"] == 1 and stats["stats"]["waiting"] == 0
    assert stats["free"] >= before - 4096, (before, stats["free"])


# --- plain-HTTP redirect listener ------------------------------------------------------------

def test_plain_http_listener_only_redirects(healthy):
    conn = http.client.HTTPConnection("127.0.0.1", healthy.redirect_port, timeout=10)
    conn.request("GET", "/static/index.html?x=1", headers={"Host": "device.local:80"})
    response = conn.getresponse()
    assert response.status == 301
    assert response.headers["Location"] == \
        "https://device.local:%d/static/index.html?x=1" % healthy.port
    assert response.read() == b""
    conn.close()
    with socket.create_connection(("127.0.0.1", healthy.redirect_port), timeout=10) as sock:
        sock.sendall(b"GET / HTTP/1.1\r\n\r\n")  # no Host: nothing to redirect to
        assert sock.recv(100).startswith(b"HTTP/1.1 400 ")


def test_plain_http_flood_is_capped_at_the_session_limit(healthy):
    # Four silent plain connections hold the redirect listener's four places (max_sessions)...
    idle = [socket.create_connection(("127.0.0.1", healthy.redirect_port), timeout=10)
            for _ in range(4)]
    try:
        time.sleep(0.5)
        # ...so a fifth is closed at once, answered with nothing (not after HEAD_TIMEOUT)...
        with socket.create_connection(("127.0.0.1", healthy.redirect_port), timeout=10) as extra:
            extra.settimeout(HEAD_TIMEOUT / 2)
            assert extra.recv(100) == b""
    finally:
        for sock in idle:
            sock.close()
    time.sleep(0.5)
    # ...and once they are gone, plain clients are redirected again.
    conn = http.client.HTTPConnection("127.0.0.1", healthy.redirect_port, timeout=10)
    conn.request("GET", "/", headers={"Host": "device.local"})
    assert conn.getresponse().status == 301
    conn.close()


# --- hardening (issue 10): framing, lingering close, Host syntax, handler mistakes ----------------

def responses_on(sock, wait=1.5):
    """Every byte the server sends until it closes or is quiet for `wait` seconds."""
    sock.settimeout(wait)
    out = b""
    try:
        while True:
            data = sock.recv(65536)
            if not data:
                break
            out += data
    except (socket.timeout, ssl.SSLEOFError, ConnectionResetError):
        pass
    return out


SMUGGLED = b"GET / HTTP/1.1\r\nHost: localhost\r\n\r\n"


@pytest.mark.parametrize("request_line,status", [
    (b"POST /nope", 404), (b"POST /", 405), (b"POST /admin/secret", 401), (b"POST /teapot", 405)])
def test_a_refused_request_body_is_never_answered_as_a_request(healthy, request_line, status):
    with connect(healthy.port) as sock:
        sock.sendall(request_line + b" HTTP/1.1\r\nHost: localhost\r\nContent-Length: %d\r\n\r\n"
                     % len(SMUGGLED) + SMUGGLED)
        out = responses_on(sock)
    assert out.startswith(b"HTTP/1.1 %d " % status), out[:100]
    assert out.count(b"HTTP/1.1 ") == 1, out


def test_413_reaches_a_client_that_keeps_uploading(healthy, tmp_path):
    # Browsers send the whole body without Expect: 100-continue; so does curl with "Expect:".
    # The server answers 413 and reads the rest away before closing, so no TCP reset destroys
    # the answer (before the fix most of these runs ended in "connection reset by peer").
    curl = require_tool("curl")
    upload = tmp_path / "big.bin"
    upload.write_bytes(os.urandom(3000000))
    for _ in range(10):
        out = subprocess.run([curl, "-sS", "--cacert", CA, "-H", "Expect:", "--data-binary",
                              "@%s" % upload, "-o", "/dev/null", "-w", "%{http_code}",
                              "https://localhost:%d/small" % healthy.port],
                             capture_output=True, text=True, timeout=60)
        assert out.stdout == "413", out.stdout + out.stderr


BAD_HOSTS = [b"evil.example/phish?", b"user@evil.example", b"a b", b"dev.example:80x"]


@pytest.mark.parametrize("host", BAD_HOSTS)
def test_a_host_that_is_not_host_port_is_400_on_both_ports(healthy, host):
    raw = b"GET /status?x=1 HTTP/1.1\r\nHost: " + host + b"\r\n\r\n"
    with socket.create_connection(("127.0.0.1", healthy.redirect_port), timeout=10) as sock:
        sock.sendall(raw)
        out = responses_on(sock)
    assert out.startswith(b"HTTP/1.1 400 ") and b"Location" not in out, out
    status, headers, _, closed = exchange(healthy.port, raw)
    assert status == 400 and closed and "Location" not in headers


def test_absolute_form_with_userinfo_is_400(healthy):
    raw = b"GET http://user@evil.example/x HTTP/1.1\r\nHost: evil.example\r\n\r\n"
    with socket.create_connection(("127.0.0.1", healthy.redirect_port), timeout=10) as sock:
        sock.sendall(raw)
        out = responses_on(sock)
    assert out.startswith(b"HTTP/1.1 400 ") and b"Location" not in out, out
    assert exchange(healthy.port, raw)[0] == 400


@pytest.mark.parametrize("host,where", [
    ("dev.example:8080", "https://dev.example:%d/status?x=1"),
    ("[::1]:8080", "https://[::1]:%d/status?x=1")])
def test_a_valid_host_still_redirects(healthy, host, where):
    conn = http.client.HTTPConnection("127.0.0.1", healthy.redirect_port, timeout=10)
    conn.request("GET", "/status?x=1", headers={"Host": host})
    response = conn.getresponse()
    assert response.status == 301 and response.headers["Location"] == where % healthy.port
    conn.close()


def test_a_generator_handler_never_holds_a_slot(healthy):
    for _ in range(6):  # more than max_sessions
        status, _, body = get(healthy.port, "/gen")
        assert (status, body) == (200, b"generated")


def test_a_stuck_handler_is_closed_and_frees_its_slot(healthy):
    with connect(healthy.port) as sock:
        sock.sendall(b"GET /stuck HTTP/1.1\r\nHost: d\r\n\r\n")
        assert closed_by_server(sock, IDLE_TIMEOUT + 3)
    assert "closed: too slow" in healthy.log()


def test_a_handler_content_length_that_lies_is_500(healthy):
    status, headers, body, closed = exchange(healthy.port,
                                             b"GET /framing HTTP/1.1\r\nHost: d\r\n\r\n")
    assert status == 500 and closed
    assert "handler set Content-Length: 10" in healthy.log()


def test_date_and_nosniff_on_every_response(healthy):
    for path in ("/", "/nothing-here"):
        _, headers, _ = get(healthy.port, path)
        assert headers["X-Content-Type-Options"] == "nosniff"
        when = email.utils.parsedate_to_datetime(headers["Date"])
        assert abs(when.timestamp() - time.time()) < 60


def test_tls_log_says_what_was_checked(healthy):
    get(healthy.port, "/")
    line = [l for l in healthy.log().splitlines() if "https client 127.0.0.1:" in l][-1]
    assert line.endswith("client certificate not requested (client_auth=none) peer=none"), line
    assert "UNVERIFIED" not in healthy.log()


def test_a_connection_that_sends_nothing_after_the_handshake_is_logged(healthy):
    before = healthy.log().count("https client 127.0.0.1:")
    with connect(healthy.port):
        deadline = time.time() + 5
        while healthy.log().count("https client 127.0.0.1:") == before and time.time() < deadline:
            time.sleep(0.05)
    assert healthy.log().count("https client 127.0.0.1:") == before + 1
