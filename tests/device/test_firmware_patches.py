"""One test per firmware/patches/*.patch (0002 on), each on the unix image against real peers
and each failing on a firmware built without its patch. 0001 is shown in test_image.py."""
import os
import socket
import ssl
import subprocess
import threading

import pytest

import certfactory as pki
from harness import CERTS, require_tool
from mpy import HELLO_SERVER, MicroPython, free_port, run, write_credentials

pytestmark = pytest.mark.device


# --- 0002-tls-cipher-before-handshake-raises-enotconn.patch --------------------------------------

CIPHER_TOO_EARLY = """
import errno, socket, tls
ctx = tls.SSLContext(tls.PROTOCOL_TLS_CLIENT)
conn = ctx.wrap_socket(socket.socket(), server_hostname="localhost", do_handshake_on_connect=False)
for moment in ("before the handshake", "after close"):
    try:
        print(moment, conn.cipher())
    except OSError as e:
        print(moment, "OSError", errno.errorcode[e.errno])
    conn.close()
print("alive")
"""


def test_cipher_without_a_session_raises_enotconn(unix_image, tmp_path):
    status, output = run(unix_image, CIPHER_TOO_EARLY, tmp_path / "flash")
    assert status == 0, "the image crashed (status %d): %s" % (status, output)
    assert output.splitlines() == ["before the handshake OSError ENOTCONN",
                                   "after close OSError ENOTCONN", "alive"]


# --- 0003-tls-close-tcp-socket-after-failed-handshake.patch --------------------------------------

# MicroPython's own asyncio TLS server: after wrap_socket() only the TLS socket is left to close.
GARBAGE_SERVER = """
import sys, asyncio, tls, Net_Security
port = int(sys.argv[1])
ctx = tls.SSLContext(tls.PROTOCOL_TLS_SERVER)
ctx.load_cert_chain(Net_Security.SERVER_CERT, Net_Security.SERVER_KEY)

async def handle(reader, writer):
    try:
        await reader.read(100)
    except OSError as e:
        print("handshake failed", e)
    writer.close()
    await writer.wait_closed()
    print("closed")

async def main():
    await asyncio.start_server(handle, "127.0.0.1", port, ssl=ctx)
    print("ready", port)
    await asyncio.sleep(60)

asyncio.run(main())
"""


def open_descriptors(pid):
    return len(os.listdir("/proc/%d/fd" % pid))


def test_a_failed_handshake_closes_the_tcp_connection(unix_image, tmp_path):
    with MicroPython(unix_image, GARBAGE_SERVER, tmp_path / "flash", [free_port()]) as mp:
        port = mp.ready()
        baseline = open_descriptors(mp.process.pid)
        with socket.create_connection(("127.0.0.1", port), timeout=5) as client:
            client.sendall(b"GET / HTTP/1.0\r\n\r\n")  # plain HTTP to the TLS port
            mp.expect("handshake failed")
            mp.expect("closed")
            try:
                while client.recv(100):  # an alert may come first
                    pass
            except ConnectionResetError:  # closed with our unread request bytes: also the end
                pass
            except socket.timeout:
                pytest.fail("the device closed the TLS socket but kept the TCP connection open")
        assert open_descriptors(mp.process.pid) == baseline


# --- 0004-tls-load-cert-chain-accepts-a-chain.patch ----------------------------------------------



def hello(port, cafile, identity=None, tmp_path=None, version=None):
    """Connect with CPython ssl trusting cafile (pinned to one ssl.TLSVersion if given), say a
    line; the reply, or the ssl error."""
    ctx = ssl.create_default_context(cafile=cafile)
    if version:
        ctx.minimum_version = ctx.maximum_version = version
    if identity:
        cert, key = identity
        ctx.load_cert_chain(pki.write(tmp_path / "client.pem", cert),
                            pki.write(tmp_path / "client-key.pem", key))
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=20) as raw:
            with ctx.wrap_socket(raw, server_hostname="localhost") as conn:
                conn.sendall(b"hi\n")
                return conn.makefile("rb").readline().decode().strip()
    except (OSError, ssl.SSLError) as e:
        return e


@pytest.fixture(scope="module")
def chain_pki():
    root = pki.ca("Root CA")
    intermediate = pki.ca("Intermediate CA", signer=root)
    return root, intermediate, pki.leaf(intermediate, hosts=("localhost",))


def test_a_server_chain_lets_clients_that_trust_only_the_root_verify(unix_image, tmp_path,
                                                                    chain_pki):
    openssl = require_tool("openssl")
    (root, _), (intermediate, _), (leaf, key) = chain_pki
    flash = tmp_path / "flash"
    write_credentials(flash, SERVER_CERT=pki.der(leaf), SERVER_KEY=pki.der(key),
                      SERVER_CHAIN=(pki.der(intermediate),))
    root_pem = pki.write(tmp_path / "root.pem", root)
    with MicroPython(unix_image, HELLO_SERVER, flash, [free_port(), "none"]) as mp:
        port = mp.ready()
        assert hello(port, root_pem) == "hello anonymous"
        out = subprocess.run(
            [openssl, "s_client", "-connect", "127.0.0.1:%d" % port, "-CAfile", root_pem,
             "-verify_return_error", "-verify_hostname", "localhost", "-servername", "localhost",
             "-showcerts", "-ign_eof"],
            input="hi\n", capture_output=True, text=True, timeout=30)
    assert out.returncode == 0, out.stdout + out.stderr
    assert "depth=2 CN = Root CA" in out.stderr and "verify return:1" in out.stderr
    assert " 1 s:CN = Intermediate CA" in out.stdout  # the chain as the image sent it
    assert "hello anonymous" in out.stdout


def test_a_server_chain_in_the_wrong_order_is_refused_naming_it(unix_image, tmp_path, chain_pki):
    (root, _), (intermediate, _), (leaf, key) = chain_pki
    flash = tmp_path / "flash"
    write_credentials(flash, SERVER_CERT=pki.der(leaf), SERVER_KEY=pki.der(key),
                      SERVER_CHAIN=(pki.der(root), pki.der(intermediate)))
    with MicroPython(unix_image, HELLO_SERVER, flash, [free_port(), "none"]) as mp:
        error = mp.expect("ERROR tls: refused the credentials")
    assert ("SERVER_CHAIN (item 0 of netsec-credentials/Net_Security.py) is not the issuer of "
            "SERVER_CERT (issued by CN=Intermediate CA): list the intermediates leaf's issuer "
            "first") in error


# --- 0005-mbedtls-cert-optional-verifies-a-presented-certificate.patch ---------------------------

def test_optional_client_auth_admits_no_certificate_or_a_verified_one(unix_image, tmp_path):
    server_ca, client_ca, other_ca = pki.ca("Server CA"), pki.ca("Client CA"), pki.ca("Other CA")
    server_cert, server_key = pki.leaf(server_ca, hosts=("localhost",))
    client = pki.leaf(client_ca, hosts=(), cn="client-1", usage=pki.CLIENT_AUTH)
    intruder = pki.leaf(other_ca, hosts=(), cn="intruder", usage=pki.CLIENT_AUTH)
    flash = tmp_path / "flash"
    write_credentials(flash, SERVER_CERT=pki.der(server_cert), SERVER_KEY=pki.der(server_key),
                      CLIENT_CAS=(pki.der(client_ca[0]),))
    server_ca_pem = pki.write(tmp_path / "server-ca.pem", server_ca[0])
    line = "INFO server TLSv1.3 TLS1-3-AES-256-GCM-SHA384 "
    with MicroPython(unix_image, HELLO_SERVER, flash, [free_port(), "optional"]) as mp:
        port = mp.ready()
        assert isinstance(hello(port, server_ca_pem, intruder, tmp_path), ssl.SSLError)
        assert mp.expect("refused") == (
            "refused unknown_ca client certificate CN=intruder (issued by CN=Other CA) is not "
            "signed by a CA in CLIENT_CAS")
        assert hello(port, server_ca_pem, client, tmp_path) == "hello CN=client-1"
        assert mp.expect("INFO server") == line + "VERIFIED peer=CN=client-1"
        assert hello(port, server_ca_pem) == "hello anonymous"
        assert mp.expect("INFO server") == (
            line + "no client certificate (client_auth=optional) peer=none")


# --- 0006-tls-client-poll-before-handshake-waits-for-writable.patch ------------------------------

# MicroPython's own asyncio TLS client, reading first: the server's greeting, as SMTP starts.
READ_FIRST_CLIENT = """
import sys, asyncio, tls, Net_Security
port = int(sys.argv[1])
ctx = tls.SSLContext(tls.PROTOCOL_TLS_CLIENT)
ctx.load_verify_locations(Net_Security.EMAIL_SERVER_CAS[0])  # the public test CA

async def main():
    reader, writer = await asyncio.open_connection("127.0.0.1", port, ssl=ctx,
                                                   server_hostname="localhost")
    try:
        print("greeting", (await asyncio.wait_for(reader.readline(), 5)).decode().strip())
    except asyncio.TimeoutError:
        print("no greeting within 5 s")
    writer.close()
    await writer.wait_closed()

asyncio.run(main())
"""


def test_a_client_reading_first_starts_the_handshake(unix_image, tmp_path):
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ctx.load_cert_chain(CERTS / "server.pem", CERTS / "server-key.pem")
    listener = socket.create_server(("127.0.0.1", 0))
    listener.settimeout(20)

    def speak_first():
        conn, _ = listener.accept()
        try:
            with ctx.wrap_socket(conn, server_side=True) as tls_conn:  # waits for the ClientHello
                tls_conn.sendall(b"220 localhost ready\r\n")
        except (OSError, ssl.SSLError):
            pass

    server = threading.Thread(target=speak_first, daemon=True)
    server.start()
    with listener:
        status, output = run(unix_image, READ_FIRST_CLIENT, tmp_path / "flash",
                             [listener.getsockname()[1]], timeout=30)
    server.join(10)
    assert status == 0, output
    assert output.splitlines()[-1] == "greeting 220 localhost ready"


# --- 0007-mbedtls-no-sni-for-an-ip-address.patch -------------------------------------------------

# netsec.tls's verifying client to ADDRESS:PORT, verifying the name HOST; prints the log line and
# the reply, or "refused KIND MESSAGE".
NAMED_CLIENT = """
import sys, asyncio
from netsec import tls
address, port, host = sys.argv[1], int(sys.argv[2]), sys.argv[3]

async def main():
    try:
        ctx = tls.client_context(host)
        r, w = await asyncio.wait_for(asyncio.open_connection(address, port, ssl=ctx), 10)
        w.write(b"ping\\n")
        await w.drain()
        tls.log_connection(w, "client", ctx)
        print("reply", (await asyncio.wait_for(r.readline(), 10)).decode().strip())
        w.close()
        await w.wait_closed()
    except Exception as e:
        error = tls.explain(e)
        print("refused", error.kind, error)

asyncio.run(main())
"""


def client_hello_server_names(record):
    """The host names in a ClientHello's server_name extension (RFC 6066 section 3); [] when
    the extension is absent. record: the TLS record that carries the ClientHello."""
    assert record[0] == 22 and record[5] == 1, "not a ClientHello record: %r" % record[:8]
    pos = 9 + 2 + 32  # record header, handshake header, client_version, random
    pos += 1 + record[pos]  # session_id
    pos += 2 + int.from_bytes(record[pos:pos + 2], "big")  # cipher_suites
    pos += 1 + record[pos]  # compression_methods
    end = pos + 2 + int.from_bytes(record[pos:pos + 2], "big")
    pos += 2
    while pos < end:
        kind, size = int.from_bytes(record[pos:pos + 2], "big"), int.from_bytes(
            record[pos + 2:pos + 4], "big")
        if kind == 0:  # server_name: list length, then (type 0 host_name, length, name)...
            names, item = [], pos + 6
            while item < pos + 4 + size:
                length = int.from_bytes(record[item + 1:item + 3], "big")
                names.append(record[item + 3:item + 3 + length].decode())
                item += 3 + length
            return names
        pos += 4 + size
    return []


def serve_once(listener, identity_files, seen):
    """Accept one connection; put the ClientHello's server names into seen, then answer a line
    over TLS (peeked, so the handshake reads the same bytes)."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(*identity_files)
    conn, _ = listener.accept()
    conn.settimeout(10)
    try:
        head = b""
        while len(head) < 5 or len(head) < 5 + int.from_bytes(head[3:5], "big"):
            head = conn.recv(16384, socket.MSG_PEEK)
        seen.append(client_hello_server_names(head))
        with ctx.wrap_socket(conn, server_side=True) as tls_conn:
            tls_conn.makefile("rb").readline()
            tls_conn.sendall(b"pong\n")
    except (OSError, ssl.SSLError):
        pass
    finally:
        conn.close()


@pytest.mark.parametrize("address, host, certified, sni, outcome", [
    ("127.0.0.1", "127.0.0.1", "127.0.0.1", [], "VERIFIED"),
    ("::1", "::1", "::1", [], "VERIFIED"),
    ("127.0.0.1", "127.0.0.1", "127.0.0.2", [], "refused hostname"),
    ("::1", "[::1]", "::1", [], "VERIFIED"),  # as written in URLs
    ("127.0.0.1", "localhost", "localhost", ["localhost"], "VERIFIED"),  # a name is still sent
    ("127.0.0.1", "localhost.", "localhost", ["localhost"], "VERIFIED"),  # no trailing dot
    ("::1", "::ffff:127.0.0.1", "::ffff:127.0.0.1", [], "VERIFIED"),  # IPv4-mapped is IPv6
    # 0008: an address matches an iPAddress entry only, as CPython and curl check it.
    ("127.0.0.1", "127.0.0.1", "DNS:127.0.0.1", [], "refused hostname"),
    ("127.0.0.1", "127.0.0.1", "CN=127.0.0.1", [], "refused hostname"),
])
def test_an_ip_address_is_verified_but_not_sent_as_sni(unix_image, tmp_path, address, host,
                                                       certified, sni, outcome):
    ca = pki.ca("SNI CA")
    if certified.startswith("CN="):  # no subjectAltName at all
        cert, key = pki.leaf(ca, hosts=(), cn=certified[3:])
    else:
        cert, key = pki.leaf(ca, hosts=(certified,), cn="no name here")
    identity = (pki.write(tmp_path / "s.pem", cert), pki.write(tmp_path / "k.pem", key))
    write_credentials(tmp_path / "flash", EMAIL_SERVER_CAS=(pki.der(ca[0]),))
    family = socket.AF_INET6 if ":" in address else socket.AF_INET
    seen = []
    with socket.create_server((address, 0), family=family) as listener:
        listener.settimeout(20)
        server = threading.Thread(target=serve_once, args=(listener, identity, seen), daemon=True)
        server.start()
        status, output = run(unix_image, NAMED_CLIENT, tmp_path / "flash",
                             [address, listener.getsockname()[1], host], timeout=30)
        server.join(10)
    assert status == 0, output
    assert seen == [sni], "server_name in the ClientHello: %r" % seen
    if outcome == "VERIFIED":
        assert "VERIFIED peer=CN=no name here" in output and "reply pong" in output, output
    else:
        peer = certified[3:] if certified.startswith("CN=") else "no name here"
        assert ("refused hostname server certificate CN=%s is not valid for the host name "
                "'127.0.0.1'" % peer) in output, output


NAMES = """
import sys
from netsec import mail, tls
for name in sys.argv[1:]:
    try:
        print("ok", repr(tls.server_name(name)), repr(mail.Relay(name).host))
    except ValueError as e:
        print("refused", e)
"""


@pytest.mark.parametrize("name, said", [
    ("[::1]", "ok '::1' '::1'"),  # a Relay connects to the address, not to "[::1]"
    ("[::1].", "ok '::1' '::1'"),
    ("smtp.example.com.", "ok 'smtp.example.com' 'smtp.example.com'"),
    ("192.0.2.7", "ok '192.0.2.7' '192.0.2.7'"),
    # SNI would carry raw UTF-8, which matches no certificate (they hold A-labels)
    ("b\u00fccher.example", "give its A-label (xn--...) form: SNI and certificates carry "
                            "no U+00FC"),
    ("127.1", "give an IPv4 address in full"),  # would be sent as SNI and verified as a name
    ("1.2.3", "give an IPv4 address in full"),
    ("127.000.000.001", "give an IPv4 address in full"),
    ("fe80::1%eth0", "give no space, %"),  # a scoped address: the scope is not in certificates
    (" smtp.example.com", "give no space, %"),
    ("smtp..example.com", "give no empty label"),
])
def test_what_is_neither_a_host_name_nor_an_address_is_refused_when_given(unix_image, tmp_path,
                                                                          name, said):
    status, output = run(unix_image, NAMES, tmp_path / "flash", [name])
    assert status == 0, output
    line = output.strip().splitlines()[-1]
    if said.startswith("ok"):
        assert line == said, output
    else:
        assert line.startswith("refused ") and (
            " is neither a host name nor an IP address: " + said) in line, output


# --- 0050-socket-getsockname.patch ---------------------------------------------------------------

GETSOCKNAME = """
import socket, sys
family = socket.AF_INET6 if ":" in sys.argv[1] else socket.AF_INET
s = socket.socket(family)
s.connect(socket.getaddrinfo(sys.argv[1], int(sys.argv[2]))[0][-1])
decoded = socket.sockaddr(s.getsockname())
print("local", socket.inet_ntop(decoded[0], decoded[1]), decoded[2])
s.close()
"""


@pytest.mark.parametrize("host,family", [("127.0.0.1", socket.AF_INET),
                                         ("::1", socket.AF_INET6)])
def test_getsockname_gives_the_local_address(unix_image, tmp_path, host, family):
    # What the device says is its end of the connection is what the peer sees.
    with socket.create_server((host, 0), family=family) as listener:
        seen = []
        thread = threading.Thread(target=lambda: seen.append(listener.accept()), daemon=True)
        thread.start()
        status, output = run(unix_image, GETSOCKNAME, tmp_path / "flash",
                             [host, listener.getsockname()[1]])
        thread.join(10)
    conn, peer = seen[0]
    conn.close()
    assert status == 0, output
    assert output.splitlines()[-1] == "local %s %d" % (peer[0], peer[1])
