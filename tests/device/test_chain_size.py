"""A server chain at the most the firmware can send works in a real handshake; one over it in
credential files on flash is refused on the device, and the credentials in use stay (issue 13,
case 10; the host side is tests/host/test_cli_chain_size.py)."""
import ssl

import pytest

import certfactory as pki
import sized_chain
from harness import CERTS
from mpy import HELLO_SERVER, MicroPython, free_port, write_credentials
from test_firmware_patches import hello

pytestmark = pytest.mark.device


def write_chain(flash, pki_set):
    return write_credentials(flash, SERVER_CERT=pki.der(pki_set["leaf"][0]),
                             SERVER_KEY=pki.der(pki_set["leaf"][1]),
                             SERVER_CHAIN=tuple(pki.der(c) for c in pki_set["chain"]))


def test_a_chain_at_the_limit_is_served_and_one_over_it_is_refused(unix_image, tmp_path):
    at_limit = sized_chain.chain(sized_chain.OUT_RECORD)
    too_big = sized_chain.chain(5020)  # the field report's RSA-4096 leaf and three intermediates
    root_pem = pki.write(tmp_path / "root.pem", at_limit["root"][0])
    flash = tmp_path / "flash"
    written = write_chain(flash, at_limit)
    with MicroPython(unix_image, HELLO_SERVER, flash, [free_port(), "none"]) as mp:
        port = mp.ready()
        assert hello(port, root_pem) == "hello anonymous", mp.output
        before = written.stat().st_mtime_ns
        write_chain(flash, too_big)
        assert written.stat().st_mtime_ns != before  # netsec.tls notices by size and mtime
        reply = hello(port, root_pem)  # still the chain at the limit
        assert reply == "hello anonymous", "%s\n%s" % (reply, mp.output)
        assert ("ERROR tls: refused the new credentials in netsec-credentials/: SERVER_CERT "
                "(netsec-credentials/Net_Security.py) with its chain makes a TLS Certificate "
                "message of 5020 bytes, over the 4096 this firmware can send: use an EC key and "
                "fewer intermediate CAs; the previous ones stay in use") in mp.output, mp.output


def test_a_chain_over_the_limit_at_start_leaves_the_frozen_credentials_in_use(unix_image,
                                                                               tmp_path):
    flash = tmp_path / "flash"
    write_chain(flash, sized_chain.chain(5020))
    with MicroPython(unix_image, HELLO_SERVER, flash, [free_port(), "none"]) as mp:
        port = mp.ready()
        reply = hello(port, str(CERTS / "ca.pem"))
        assert reply == "hello anonymous", "%s\n%s" % (reply, mp.output)
        assert "of 5020 bytes, over the 4096 this firmware can send" in mp.output
        assert "using the frozen Net_Security" in mp.output


# The firmware's own TLS server, without netsec.tls's size check: serves SERVER_CHAIN.der files
# (leaf first, then its intermediates) with key.der on 127.0.0.1:PORT, one connection at a time.
RAW_SERVER = """
import sys, socket, tls
port, count = int(sys.argv[1]), int(sys.argv[2])
chain = tuple(open("cert%d.der" % i, "rb").read() for i in range(count))
ctx = tls.SSLContext(tls.PROTOCOL_TLS_SERVER)
ctx.load_cert_chain(chain, open("key.der", "rb").read())
listener = socket.socket()
listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
listener.bind(socket.getaddrinfo("127.0.0.1", port)[0][-1])
listener.listen(1)
print("ready", port)
while True:
    conn = listener.accept()[0]
    try:
        s = ctx.wrap_socket(conn, server_side=True)
        s.readline()
        s.write(b"hello anonymous\\n")
        s.close()
    except OSError as e:
        print("handshake failed", e)
        conn.close()
"""


# What a certificate costs in TLS 1.2's Certificate message (RFC 5246 section 7.4.2) less than in
# TLS 1.3's (sized_chain.message_size): the empty context (1 byte) once and the extensions
# length (2 bytes) per certificate.
TLS12_SAVING = {ssl.TLSVersion.TLSv1_3: lambda count: 0,
                ssl.TLSVersion.TLSv1_2: lambda count: 1 + 2 * count}


@pytest.mark.parametrize("version", [ssl.TLSVersion.TLSv1_3, ssl.TLSVersion.TLSv1_2],
                         ids=["TLSv1.3", "TLSv1.2"])
@pytest.mark.parametrize("size, served", [(sized_chain.OUT_RECORD, True),
                                          (sized_chain.OUT_RECORD + 1, False)])
def test_the_limit_checked_is_the_firmware_s_own(unix_image, tmp_path, version, size, served):
    """The firmware's outgoing record is the limit netsec checks (x509util.OUT_RECORD): in either
    TLS version, a Certificate message of exactly 4096 bytes in that version's encoding is sent,
    one byte more fails the handshake. netsec's check counts TLS 1.3's larger encoding, so it
    never lets through what either version cannot send."""
    pki_set = sized_chain.chain(size + TLS12_SAVING[version](3))  # leaf and two intermediates
    ders = [pki.der(c) for c in [pki_set["leaf"][0]] + pki_set["chain"]]
    assert sized_chain.message_size(ders) - TLS12_SAVING[version](len(ders)) == size
    flash = tmp_path / "flash"
    flash.mkdir()
    for i, der in enumerate(ders):
        (flash / ("cert%d.der" % i)).write_bytes(der)
    (flash / "key.der").write_bytes(pki.der(pki_set["leaf"][1]))
    root_pem = pki.write(tmp_path / "root.pem", pki_set["root"][0])
    with MicroPython(unix_image, RAW_SERVER, flash, [free_port(), 3]) as mp:
        reply = hello(mp.ready(), root_pem, version=version)
        if served:
            assert reply == "hello anonymous", "%s\n%s" % (reply, mp.output)
        else:
            assert isinstance(reply, (OSError, ssl.SSLError)), reply
            mp.expect("handshake failed")
