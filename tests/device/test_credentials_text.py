"""A Net_Security.py on the device's flash as a Windows editor saves it (a UTF-8 byte-order mark,
CRLF line ends) is read like any other (issue 13, case 15; the host side is
tests/host/test_cli_text_encodings.py)."""
import pytest

import certfactory as pki
from mpy import HELLO_SERVER, MicroPython, free_port, write_credentials
from test_firmware_patches import hello

pytestmark = pytest.mark.device


def test_a_module_on_flash_saved_by_notepad_is_used(unix_image, tmp_path):
    ca = pki.ca("Notepad CA")
    cert, key = pki.leaf(ca, hosts=("localhost",))
    flash = tmp_path / "flash"
    module = write_credentials(flash, SERVER_CERT=pki.der(cert), SERVER_KEY=pki.der(key))
    module.write_bytes(b"\xef\xbb\xbf" + module.read_bytes().replace(b"\n", b"\r\n"))
    with MicroPython(unix_image, HELLO_SERVER, flash, [free_port(), "none"]) as mp:
        reply = hello(mp.ready(), pki.write(tmp_path / "ca.pem", ca[0]))
        assert reply == "hello anonymous", "%s\n%s" % (reply, mp.output)
        assert "refused" not in mp.output, mp.output
