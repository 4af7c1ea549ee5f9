"""The demo app (python -m netsec.demo), client certificates, and password hashes shared with
CPython: netsec.server on the unix image against curl and CPython."""
import hashlib
import http.client
import json
import ssl
import subprocess
import time

import pytest

import Net_Security  # modules/Net_Security.py: plain constants, importable on CPython too
from harness import CERTS, require_tool
from mpy import free_port

CA = str(CERTS / "ca.pem")


def start(argv, cwd, ready):
    log = open(cwd / "out.log", "w")
    proc = subprocess.Popen(argv, cwd=cwd, stdout=log, stderr=subprocess.STDOUT)
    deadline = time.time() + 20
    while ready not in (cwd / "out.log").read_text():
        if proc.poll() is not None or time.time() > deadline:
            proc.kill()
            pytest.fail("did not start:\n" + (cwd / "out.log").read_text())
        time.sleep(0.05)
    return proc


def https_get(port, path, context=None):
    context = context or ssl.create_default_context(cafile=CA)
    conn = http.client.HTTPSConnection("127.0.0.1", port, context=context, timeout=20)
    try:
        conn.request("GET", path)
        response = conn.getresponse()
        return response.status, response.headers, response.read()
    finally:
        conn.close()


DEMO = "import sys\nfrom netsec import demo\ndemo.main(int(sys.argv[1]), sys.argv[2])"


def test_demo_status_page_json_and_static_file(target, tmp_path):
    port, host_port = target.listen_ports(443)
    with target.program(DEMO, tmp_path / "flash", [port, "site"]) as program:
        program.expect("INFO netsec https server on")
        cert = Net_Security.INFO["SERVER_CERT"]  # the credentials frozen into the image
        status, headers, page = https_get(host_port, "/")
        assert status == 200 and headers["Content-Type"].startswith("text/html")
        for text in ("Machine", "Uptime", "Free heap", "TLS sessions served", cert["not_after"],
                     cert["subject"], "TEST credentials"):
            assert text.encode() in page, text
        status, headers, body = https_get(host_port, "/api/status")
        info = json.loads(body)
        assert status == 200 and headers["Content-Type"] == "application/json"
        assert info["tls_sessions"] >= 2 and info["free_heap"] > 0
        assert info["machine"] and info["machine"] == (target.machine or info["machine"])
        assert info["certificate"] == {"subject": cert["subject"], "expires": cert["not_after"],
                                       "test_only": True}
        status, headers, css = https_get(host_port, "/static/style.css")
        assert status == 200 and headers["Content-Type"] == "text/css" and b"font-family" in css
        if target.name == "unix":  # the guest's files are read only through its REPL
            assert (tmp_path / "flash" / "site" / "style.css").read_bytes() == css
        # The curl line `make run` prints verifies the certificate for 127.0.0.1 too.
        curl = require_tool("curl")
        out = subprocess.run([curl, "-sS", "--cacert", CA,
                              "https://127.0.0.1:%d/api/status" % host_port],
                             capture_output=True, text=True, timeout=60)
        assert out.returncode == 0 and json.loads(out.stdout)["requests"] >= 4, out.stderr


MTLS_APP = r'''
import asyncio, sys
from netsec.server import Server
app = Server(host="127.0.0.1", port=int(sys.argv[1]), client_auth="required")

@app.route("/")
async def who(request):
    return {"subject": request.peer_subject, "has_cert": request.peer_cert is not None}

async def main():
    await app.start()
    print("ready")
    await asyncio.sleep(3600)

asyncio.run(main())
'''


def test_client_certificate_required(unix_image, tmp_path):
    (tmp_path / "app.py").write_text(MTLS_APP)
    port = free_port()
    proc = start([str(unix_image), "app.py", str(port)], tmp_path, "ready")
    try:
        with_cert = ssl.create_default_context(cafile=CA)
        with_cert.load_cert_chain(str(CERTS / "client.pem"), str(CERTS / "client-key.pem"))
        status, _, body = https_get(port, "/", with_cert)
        info = json.loads(body)
        assert status == 200 and info["has_cert"] and info["subject"].startswith("CN=")
        with pytest.raises((ssl.SSLError, ConnectionError)):
            https_get(port, "/")  # no client certificate: no session at all
        assert "VERIFIED peer=CN=" in (tmp_path / "out.log").read_text()
        assert https_get(port, "/", with_cert)[0] == 200  # and the server goes on
    finally:
        proc.kill()
        proc.wait()


def run_code(image, code, cwd):
    out = subprocess.run([str(image), "-c", code], cwd=cwd, capture_output=True, text=True,
                         timeout=60)
    assert out.returncode == 0, out.stdout + out.stderr
    return out.stdout.strip()


def test_password_hashes_match_cpython_pbkdf2(unix_image, tmp_path):
    stored = run_code(unix_image, "from netsec.server import hash_password\n"
                                  "print(hash_password('pässword', 1200))", tmp_path)
    scheme, iterations, salt, digest = stored.split("$")
    assert (scheme, iterations, len(salt)) == ("pbkdf2-sha256", "1200", 32)
    assert hashlib.pbkdf2_hmac("sha256", "pässword".encode(), bytes.fromhex(salt),
                               1200).hex() == digest
    long_password = "x" * 100  # longer than a SHA-256 block: HMAC hashes the key first
    host_hash = "pbkdf2-sha256$5$%s$%s" % ("00ff" * 4, hashlib.pbkdf2_hmac(
        "sha256", long_password.encode(), bytes.fromhex("00ff" * 4), 5).hex())
    verdicts = run_code(unix_image, "from netsec.server import check_password\n"
                                    "h = %r\nprint(check_password(h, %r), check_password(h, 'y'))"
                        % (host_hash, long_password), tmp_path)
    assert verdicts == "True False"


def test_plain_password_is_refused_with_a_clear_error(unix_image, tmp_path):
    out = subprocess.run([str(unix_image), "-c", "from netsec.server import BasicAuth\n"
                                                 "BasicAuth({'admin': 'hunter2'})"],
                         cwd=tmp_path, capture_output=True, text=True, timeout=30)
    assert out.returncode != 0
    assert "password for user 'admin' must be a hash from hash_password()" in \
        out.stdout + out.stderr
