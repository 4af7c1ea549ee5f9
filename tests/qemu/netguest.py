"""A QEMU image on a network: booted with QEMU's restricted user network (netsec_cli.qemu's
GuestNetwork), its REPL driven over the console pty, and a program (a server) started in it.

    guest = NetGuest(image, hostfwd={443: 0})     # guest port 443 on a free 127.0.0.1 port
    guest.exec("from netsec import lan; print(lan.up())")
    guest.start("from netsec import demo; demo.main()", ready="netsec https server on")
    ...clients connect to 127.0.0.1:guest.port(443)...
    guest.stop_program()                          # Ctrl-C; its console output is returned
"""
import time

import pytest
from mpremote.transport import TransportError
from mpremote.transport_serial import SerialTransport

from netsec_cli import qemu

RAW_REPL_PROMPT = b"raw REPL; CTRL-B to exit\r\n"


class GuestError(AssertionError):
    """Code run in the guest raised or timed out, or the guest is gone."""


class NetGuest:
    def __init__(self, image, hostfwd=None, guestfwd=None, network=True, log_path=None):
        self.network = qemu.GuestNetwork(hostfwd, guestfwd) if network else None
        try:
            running = qemu.boot(image, log_path=log_path, network=self.network)
        except qemu.QemuError as e:
            pytest.fail(str(e), pytrace=False)
        try:
            qemu.wait_for_repl(running)
            self.running = running
            self.transport = SerialTransport(running.pty, exclusive=False)
            self.transport.enter_raw_repl(soft_reset=False)
        except (qemu.QemuError, TransportError) as e:
            running.stop()
            pytest.fail("the QEMU image did not reach its REPL: %s\nQEMU said:\n%s"
                        % (e, running.log()), pytrace=False)
        self.console = b""  # what the running program printed so far

    def _check_alive(self):
        if not self.running.alive():
            raise GuestError("QEMU is no longer running (exit status %s). QEMU said:\n%s"
                             % (self.running.process.returncode, self.running.log()))

    def exec(self, code, timeout=60):
        """Run code in the guest and return what it printed; GuestError if it raised."""
        self._check_alive()
        try:
            out, err = self.transport.exec_raw(code, timeout=timeout)
        except TransportError as e:
            self._check_alive()
            raise GuestError("running code in the guest failed (%s). The code:\n%s" % (e, code))
        if err:
            raise GuestError("the guest raised:\n%s\nIt printed before that:\n%s"
                             % (err.decode(errors="replace"), out.decode(errors="replace")))
        return out.decode(errors="replace")

    def soft_reset(self):
        """Soft-reset the guest: a fresh heap; files, lwIP and its address stay."""
        self._check_alive()
        self.transport.enter_raw_repl(soft_reset=False)
        self.transport.serial.write(b"\x04")
        self.transport.read_until(1, RAW_REPL_PROMPT, timeout=10)

    def stop(self):
        """Close the console and stop QEMU."""
        try:
            self.transport.close()
        finally:
            self.running.stop()

    def port(self, guest_port):
        """The 127.0.0.1 port that leads to guest_port."""
        return self.network.hostfwd[guest_port]

    def start(self, code, ready, timeout=60):
        """Run code in the guest without waiting for it to end; return once it printed `ready`."""
        self._check_alive()
        self.console = b""
        self.transport.exec_raw_no_follow(code)
        self.read_until(ready, timeout)

    def read_until(self, text, timeout=30):
        """Read the program's console output until `text` appears; return everything so far."""
        deadline = time.monotonic() + timeout
        serial = self.transport.serial
        while text.encode() not in self.console:
            self._check_alive()
            if time.monotonic() > deadline or b"\x04" in self.console:
                raise GuestError("the guest program did not print %r within %d s (or it ended). "
                                 "It printed:\n%s" % (text, timeout, self.output()))
            waiting = serial.in_waiting
            self.console += serial.read(waiting or 1)
        return self.output()

    def output(self):
        """The running program's console output so far (what is waiting is read first)."""
        waiting = self.transport.serial.in_waiting
        if waiting:
            self.console += self.transport.serial.read(waiting)
        return self.console.decode(errors="replace")

    def stop_program(self):
        """Interrupt the running program (Ctrl-C); return its whole console output."""
        self.transport.serial.write(b"\x03")
        try:
            self.read_until("\x04", timeout=10)
        except GuestError:
            pass
        out = self.output()
        self.soft_reset()
        return out
