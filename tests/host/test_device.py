"""netsec_cli.device on ports with no MicroPython behind them: each failure is one line naming the
port and what to check, and a silent port costs seconds, not a hang."""
import os
import time

import pytest
import serial

from netsec_cli import device

pytestmark = pytest.mark.host


@pytest.fixture
def silent_port():
    """A real pty whose other end nobody reads or writes."""
    controller, port = os.openpty()
    yield os.ttyname(port)
    os.close(controller)
    os.close(port)


def test_missing_port_names_it(tmp_path):
    with pytest.raises(device.DeviceError) as caught:
        device.Device(tmp_path / "ttyACM9")
    assert str(caught.value) == ("%s: no such device — is the board connected? give its port with "
                                 "--device" % (tmp_path / "ttyACM9"))


def test_silent_port_fails_fast_and_says_what_to_check(silent_port):
    started = time.monotonic()
    with pytest.raises(device.DeviceError) as caught:
        device.Device(silent_port, answer_timeout=1)
    waited = time.monotonic() - started
    assert str(caught.value) == ("%s: no answer from a MicroPython REPL within 1 s — %s"
                                 % (silent_port, device.CHECK_PORT))
    assert "\n" not in str(caught.value)
    assert waited < 3


def test_port_held_by_another_program_is_named(silent_port):
    with serial.Serial(silent_port, exclusive=True):
        with pytest.raises(device.DeviceError) as caught:
            device.Device(silent_port)
    assert str(caught.value).startswith("%s: cannot open the port — is another program " % silent_port)


def test_a_gone_device_says_why(silent_port):
    with pytest.raises(device.DeviceError) as caught:
        device.Device(silent_port, answer_timeout=0.5, gone=lambda: "QEMU exited with status 1")
    assert str(caught.value) == ("%s: no answer from a MicroPython REPL within 0.5 s: QEMU exited "
                                 "with status 1 — see the reason above; start it again" % silent_port)
