"""The QEMU layer: boot the Cortex-M3 image once per test run and drive it over its pty.

`qemu_guest` (session) is the booted image, a netsec_cli.qemu.Guest (a netsec_cli.device.Device);
`guest` (each test) is the same image after a soft reset, so every test starts with a fresh heap.
Files on the guest's filesystem survive soft resets; they go when QEMU stops.
"""
import subprocess
import sys

import pytest

from netsec_cli import qemu
from netsec_cli.device import DeviceError


def start_guest(image, log_path=None):
    """Boot QEMU on the image and connect to its raw REPL; fail the test saying what went wrong."""
    try:
        return qemu.Guest(image, log_path=log_path)
    except (qemu.QemuError, DeviceError) as e:
        failure = "the QEMU image did not reach its REPL: %s" % e
    pytest.fail(failure, pytrace=False)  # outside the except: one message, no chained traceback


@pytest.fixture(scope="session")
def qemu_guest(qemu_image, tmp_path_factory):
    """The QEMU image, booted once per test run, its REPL answering."""
    guest = start_guest(qemu_image, log_path=tmp_path_factory.mktemp("qemu") / "qemu.log")
    yield guest
    guest.stop()


@pytest.fixture
def guest(qemu_guest):
    """The booted image, soft-reset so the test starts with a fresh heap."""
    qemu_guest.enter_raw_repl()  # also stops whatever an earlier test left running
    qemu_guest.soft_reset()
    return qemu_guest


@pytest.fixture
def mpremote(guest):
    """mpremote(*args): run the mpremote command-line tool on the guest's pty; what it printed."""
    def run(*args, timeout=60):
        command = [sys.executable, "-m", "mpremote", "connect", guest.port] + list(args)
        with guest.released():
            result = subprocess.run(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                    text=True, timeout=timeout)
        assert result.returncode == 0, "%s failed with exit status %d:\n%s" % (
            " ".join(command), result.returncode, result.stdout)
        return result.stdout
    return run
