"""The QEMU image under `-icount shift=0`, driven through mpremote's raw REPL on its pty.

Under icount one guest instruction takes one nanosecond of virtual time, so the guest's own
clock counts instructions. Counts repeat exactly only if everything the guest does between two
clock readings repeats, which is why files are written here with a fixed clock (their mtimes
are read back when netsec.tls checks for new credentials).
"""
from mpremote.transport import TransportError
from mpremote.transport_serial import SerialTransport

from netsec_cli import qemu

_RAW_REPL_PROMPT = b"raw REPL; CTRL-B to exit\r\n"
# The guest's clock while files are written (their mtimes are read back by netsec.tls).
FILE_DATE = (2040, 1, 1, 6, 0, 0, 0, 0)


class GuestError(Exception):
    """The guest raised, stopped answering, or QEMU is gone."""


class Guest:
    def __init__(self, image):
        try:
            self.running = qemu.boot(image, icount=True)
        except qemu.QemuError as e:
            raise GuestError(str(e))
        try:
            qemu.wait_for_repl(self.running)
            self.transport = SerialTransport(self.running.pty, exclusive=False)
            self.transport.enter_raw_repl(soft_reset=False)
        except (qemu.QemuError, TransportError) as e:
            self.running.stop()
            raise GuestError("the QEMU image did not reach its REPL: %s\nQEMU said:\n%s"
                             % (e, self.running.log()))
        self.boot_command = " ".join(qemu.qemu_command(image, icount=True))

    def soft_reset(self):
        """A fresh heap (files stay; the test-only entropy generator goes on where it was)."""
        try:
            self.transport.serial.write(b"\x04")  # Ctrl-D in the raw REPL
            if not self.transport.read_until(1, _RAW_REPL_PROMPT, timeout=10).endswith(
                    _RAW_REPL_PROMPT):
                raise GuestError("the guest did not come back from a soft reset")
        except TransportError as e:
            raise GuestError("the guest did not come back from a soft reset: %s" % e)

    def exec(self, code, timeout=300):
        """Run code in the guest; return what it printed. GuestError if it raised."""
        if not self.running.alive():
            raise GuestError("QEMU stopped. It said:\n%s" % self.running.log())
        try:
            out, err = self.transport.exec_raw(code, timeout=timeout)
        except TransportError as e:
            raise GuestError("running code in the guest failed (%s). The code:\n%s" % (e, code))
        if err:
            raise GuestError("the guest raised:\n%s\nThe code:\n%s"
                             % (err.decode(errors="replace"), code[:2000]))
        return out.decode(errors="replace")

    def write_files(self, files):
        """Write {guest path: bytes} with the guest clock at FILE_DATE, all in one go."""
        lines = ["import machine, os, time",
                 "time.sleep_ms(1)",  # wake on a clock tick: the same instant on every run
                 "machine.RTC().datetime(%r)" % (FILE_DATE,)]
        for path in sorted({p.rsplit("/", 1)[0] for p in files if p.count("/") > 1}):
            lines.append("try:\n    os.mkdir(%r)\nexcept OSError:\n    pass" % path)
        for path, data in sorted(files.items()):
            lines.append("with open(%r, 'wb') as f:\n    f.write(%r)" % (path, data))
        self.exec("\n".join(lines))

    def stop(self):
        try:
            self.transport.close()
        finally:
            self.running.stop()
