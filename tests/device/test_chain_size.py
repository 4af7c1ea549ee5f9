"""A server chain at the most the firmware can send works in a real handshake; one over it in
credential files on flash is refused on the device, and the credentials in use stay (issue 13,
case 10; the host side is tests/host/test_cli_chain_size.py)."""
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
