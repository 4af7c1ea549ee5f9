"""The QEMU layer: boot the Cortex-M3 image once per test run and drive it over its pty.

`qemu_guest` (session) is the booted image; `guest` (each test) is the same image after a soft
reset, so every test starts with a fresh heap. Files on the guest's filesystem survive soft
resets; they go when QEMU stops.
"""
import ast
import subprocess
import sys

import pytest
from mpremote.transport import TransportError
from mpremote.transport_serial import SerialTransport

from netsec_cli import qemu

RAW_REPL_PROMPT = b"raw REPL; CTRL-B to exit\r\n"


class GuestError(AssertionError):
    """Code run in the guest raised, timed out, or the guest is gone."""


class Guest:
    """The booted QEMU image, driven through mpremote's raw REPL on the console pty."""

    def __init__(self, running):
        self.running = running
        self.pty = running.pty
        # Not exclusive: the mpremote command-line tool opens the same pty while we hold it.
        self.transport = SerialTransport(running.pty, exclusive=False)
        self.transport.enter_raw_repl(soft_reset=False)

    def _check_alive(self):
        if not self.running.alive():
            raise GuestError("QEMU is no longer running (exit status %s); an earlier step crashed "
                             "or reset it. QEMU said:\n%s" % (self.running.process.returncode, self.running.log()))

    def soft_reset(self):
        """Soft-reset the guest (fresh heap, files kept); return what it printed while booting."""
        self._check_alive()
        try:
            self.transport.enter_raw_repl(soft_reset=False)  # also stops anything still running
            self.transport.serial.write(b"\x04")  # Ctrl-D in the raw REPL: soft reset
            boot_output = self.transport.read_until(1, RAW_REPL_PROMPT, timeout=10)
        except TransportError as e:
            self._check_alive()
            raise GuestError("the guest did not come back from a soft reset: %s" % e)
        if not boot_output.endswith(RAW_REPL_PROMPT):
            raise GuestError("the guest did not come back from a soft reset; it printed:\n%s"
                             % boot_output.decode(errors="replace"))
        return boot_output.decode(errors="replace")

    def exec(self, code, timeout=60):
        """Run code in the guest and return what it printed; GuestError if it raised."""
        self._check_alive()
        try:
            out, err = self.transport.exec_raw(code, timeout=timeout)
        except TransportError as e:
            self._check_alive()
            raise GuestError("running code in the guest failed (%s). The code:\n%s" % (e, code))
        if err:
            raise GuestError("the guest raised:\n%s\nIt printed before that:\n%s\nThe code:\n%s"
                             % (err.decode(errors="replace"), out.decode(errors="replace"), code))
        return out.decode(errors="replace")

    def eval(self, expression, timeout=60):
        """The value of a Python expression evaluated in the guest (via its repr)."""
        return ast.literal_eval(self.exec("print(repr(%s))" % expression, timeout).strip())

    def put(self, data, remote_path):
        """Write bytes to a file on the guest's filesystem."""
        self._check_alive()
        self.transport.fs_writefile(remote_path, data, chunk_size=2048)

    def mpremote(self, *args, timeout=60):
        """Run the mpremote command-line tool on the guest's pty; return what it printed."""
        self._check_alive()
        command = [sys.executable, "-m", "mpremote", "connect", self.pty] + list(args)
        result = subprocess.run(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                                timeout=timeout)
        # The tool leaves the guest in its friendly REPL: take the raw REPL back for exec().
        self.transport.enter_raw_repl(soft_reset=False)
        if result.returncode:
            raise GuestError("%s failed with exit status %d:\n%s"
                             % (" ".join(command), result.returncode, result.stdout))
        return result.stdout

    def stop(self):
        """Close the console and stop QEMU."""
        try:
            self.transport.close()
        finally:
            self.running.stop()


def start_guest(image, icount=False, log_path=None):
    """Boot QEMU on the image and connect to its raw REPL; fail the test saying what went wrong."""
    try:
        running = qemu.boot(image, icount=icount, log_path=log_path)
    except qemu.QemuError as e:
        pytest.fail(str(e), pytrace=False)
    try:
        qemu.wait_for_repl(running)
        return Guest(running)
    except (qemu.QemuError, TransportError) as e:
        running.stop()
        pytest.fail("the QEMU image did not reach its REPL: %s\nQEMU said:\n%s" % (e, running.log()),
                    pytrace=False)


@pytest.fixture(scope="session")
def qemu_guest(qemu_image, tmp_path_factory):
    """The QEMU image, booted once per test run, its REPL answering."""
    guest = start_guest(qemu_image, log_path=tmp_path_factory.mktemp("qemu") / "qemu.log")
    yield guest
    guest.stop()


@pytest.fixture
def guest(qemu_guest):
    """The booted image, soft-reset so the test starts with a fresh heap."""
    qemu_guest.soft_reset()
    return qemu_guest

