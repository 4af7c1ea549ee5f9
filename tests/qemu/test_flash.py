"""netsec flash with the real images: the QEMU test-only image is never flashed, whatever board is
named, and a board on a serial port is asked which board it is before anything is written."""
import pytest
from certfactory import run_netsec
from firmware_images import PICO_W, RP2040, code, uf2

from netsec_cli import firmware, flash

pytestmark = pytest.mark.qemu


@pytest.mark.parametrize("board", [None, "NUCLEO_F429ZI", "RPI_PICO"])
def test_the_qemu_image_is_refused_as_test_only(qemu_image, capsys, board):
    status, out, err = run_netsec(capsys, "flash", qemu_image, "--dry-run",
                                  *(["--board", board] if board else []))
    assert (status, out) == (2, "")
    assert err == ("netsec flash: error: %s: this is the QEMU test-only image (its entropy is "
                   "predictable, so every key and nonce it makes can be guessed); it is never "
                   "written to a board — build the image for your board and flash that\n" % qemu_image)


def test_frozen_netsec_does_not_carry_the_marker(unix_image):
    # The same modules are frozen into every board's image: they must not make it look test-only.
    assert firmware.TEST_ONLY_MARKER not in unix_image.read_bytes()


def test_a_board_on_a_serial_port_must_be_the_one_the_image_is_for(guest, tmp_path, capsys):
    image = tmp_path / "firmware.uf2"
    image.write_bytes(uf2(code(PICO_W), RP2040))
    with guest.released():
        status, out, err = run_netsec(capsys, "flash", image, "--device", guest.port)
    assert (status, out) == (2, "")
    assert err == ("netsec flash: error: %s: the board there is 'mps2-an385 with Cortex-M3', not "
                   "RPI_PICO_W ('Raspberry Pi Pico W with RP2040') — give the port of a RPI_PICO_W, "
                   "or flash the image built for this board\n" % guest.port)
    assert guest.eval("1") == 1, "the board was left running, not sent to a bootloader"
