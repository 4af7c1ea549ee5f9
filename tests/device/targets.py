"""Where a device test runs its device code: the unix image (a process whose working directory
is the "flash"), or the networked QEMU Cortex-M3 image (lwIP on its LAN9118, one guest per test
run). The same test function runs on both through the `target` fixture (tests/device/conftest.py).

    with target.program(SCRIPT, flash, ["config.json"]) as program:   # like mpy.MicroPython
        program.expect("ready")
    status, output = target.run(SCRIPT, flash, args)

Host services the device connects to listen on 127.0.0.1:target.service_port(name); the device
dials target.service_host:target.device_port(name, host_port). On QEMU those are guestfwd
forwards fixed when the guest boots (10.0.2.100:465 and :587 for the mail relays).
"""
import os
import time
from pathlib import Path

from mpy import MicroPython, MicroPythonError, free_port
from netsec_cli import qemu
from netsec_cli.device import DeviceError

# The guest ports the QEMU target forwards to host services, by name.
GUEST_SERVICES = {"tls": 465, "starttls": 587}


def replace_file(path, data):
    """Replace a file the way a copy does, a few seconds later: flash file systems keep
    modification times in whole seconds, and netsec.tls notices changes by size and mtime."""
    previous = os.stat(path).st_mtime if path.exists() else 0
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    later = max(previous + 3, os.stat(path).st_mtime)
    os.utime(path, (later, later))


class UnixTarget:
    name = "unix"
    service_host = "localhost"
    machine = None  # whatever the host's MicroPython says

    def __init__(self, image):
        self.image = image

    def program(self, script, flash, args=()):
        return MicroPython(self.image, script, flash, args)

    def run(self, script, flash, args=(), timeout=60):
        with self.program(script, flash, args) as program:
            return program.wait(timeout), program.output

    def service_port(self, name):
        return free_port()

    listen_host = "127.0.0.1"

    def listen_ports(self, guest_port):
        """(the port the device's server listens on, the 127.0.0.1 port clients connect to);
        guest_port: the port a board would use (443, 80)."""
        port = free_port()
        return port, port

    def running(self, program):
        return program.process.poll() is None

    def files(self, flash, folder):
        """The names of the files in a folder of the device's flash, sorted."""
        return sorted(p.name for p in (Path(flash) / folder).iterdir() if p.is_file())

    def device_port(self, name, host_port):
        return host_port

    def replace(self, program, flash, path, data, ready=None):
        """Replace the file `path` (relative to the flash) while the program runs (ready: see
        QemuTarget.replace; the program goes on here)."""
        replace_file(Path(flash) / path, data)

    def remove(self, program, flash, path, ready=None):
        """Remove the file `path` (relative to the flash) while the program runs."""
        (Path(flash) / path).unlink()


class QemuTarget:
    name = "qemu"
    service_host = qemu.GUEST_SERVICES
    machine = "mps2-an385 with Cortex-M3"

    def __init__(self, guest, service_ports):
        self.guest = guest
        self.service_ports = service_ports  # name -> host port its guestfwd leads to

    def program(self, script, flash, args=()):
        return GuestProgram(self.guest, script, flash, args)

    def run(self, script, flash, args=(), timeout=60):
        with self.program(script, flash, args) as program:
            return program.wait(timeout), program.output

    def service_port(self, name):
        return self.service_ports[name]

    listen_host = "0.0.0.0"

    def listen_ports(self, guest_port):
        return guest_port, self.guest.host_port(guest_port)

    def running(self, program):
        return self.guest.running.alive() and not program.ended()

    def files(self, flash, folder):
        """The names of the files in a folder of the guest's filesystem, sorted (once no
        program runs: the REPL is the only way in)."""
        return self.guest.eval("sorted(n for n, kind, *_ in __import__('os').ilistdir(%r) "
                               "if kind == 0x8000)" % folder)

    def device_port(self, name, host_port):
        return GUEST_SERVICES[name]

    def replace(self, program, flash, path, data, ready=None):
        """Replace the file `path` the way `netsec deploy` does on a board: the copy interrupts
        the running program (the console is the only way in), writes the file under another
        name and renames it into place; then the same program starts again in the same
        interpreter, with no reboot or soft reset, so netsec.tls still holds the credentials
        in use before and compares the new ones with them. ready: a line the program prints
        once it has started, waited for (a Ctrl-C before that would be lost)."""
        program.stop()
        self.guest.enter_raw_repl()
        remote = "/" + Path(path).as_posix()
        self.guest.makedirs(remote.rsplit("/", 1)[0] or "/")
        time.sleep(1)  # a later whole second than the file it replaces: a new mtime
        self.guest.write_atomic(remote, data, partial="/netsec-deploy.part")
        program.restart(ready)

    def remove(self, program, flash, path, ready=None):
        """Remove the file `path` as replace() writes one: program interrupted, file removed,
        program started again in the same interpreter."""
        program.stop()
        self.guest.enter_raw_repl()
        self.guest.exec("import os\nos.remove(%r)" % ("/" + Path(path).as_posix()))
        program.restart(ready)


# Run in the guest before a program: an empty filesystem (only what the test's flash holds).
_WIPE = """
import os
def _wipe(path):
    for name, kind, *_ in os.ilistdir(path):
        full = path.rstrip("/") + "/" + name
        if kind == 0x4000:
            _wipe(full)
            os.rmdir(full)
        else:
            os.remove(full)
_wipe("/")
"""


class GuestProgram:
    """A script running in the QEMU guest (a netsec_cli.qemu.Guest), with the test's flash
    directory copied to its filesystem and sys.argv set; the same methods as mpy.MicroPython."""

    def __init__(self, guest, script, flash, args):
        self.guest = guest
        guest.enter_raw_repl()  # stops whatever an earlier test left running
        guest.soft_reset()
        guest.exec(_WIPE)
        flash = Path(flash)
        for path in sorted(flash.rglob("*")):
            remote = "/" + path.relative_to(flash).as_posix()
            if path.is_dir():
                guest.makedirs(remote)
            else:
                guest.write(remote, path.read_bytes())
        self._code = "import sys\nsys.argv[:] = %r\n%s" % (["script"] + [str(a) for a in args],
                                                         script)
        guest.start(self._code)
        self._seen = 0
        self._result = None  # (printed, traceback) once it ended

    def restart(self, ready=None):
        """Start the script again once stop()ped, in the same interpreter: modules stay
        imported with their state. A new asyncio loop and a collection first, so the sockets
        the interrupted program held are closed (their finalisers) and its ports free. With
        `ready`, return once it printed a line starting so (expect() still sees every line)."""
        self.guest.start("import asyncio, gc\nasyncio.new_event_loop()\ngc.collect()\n"
                         + self._code)
        self._seen = 0
        self._result = None
        if ready:
            self.expect(ready)
            self._seen = 0

    @property
    def output(self):
        """Everything the script printed (its traceback too, once it ended), as text."""
        if self._result is None:
            return self.guest.output()
        return "".join(self._result)

    def ended(self):
        if self._result is None:
            try:
                self._result = self.guest.finish(0)
            except DeviceError:
                return False  # still running
        return True

    def expect(self, prefix, timeout=20):
        """The next unconsumed line starting with prefix; MicroPythonError if none comes."""
        deadline = time.monotonic() + timeout
        while True:
            ended = self.ended()
            output = self.output
            lines = output.splitlines()
            if lines and not ended and not output.endswith("\n"):
                lines.pop()  # still arriving over the console: whole once its newline came
            for i in range(self._seen, len(lines)):
                if lines[i].startswith(prefix):
                    self._seen = i + 1
                    return lines[i]
            if ended or time.monotonic() > deadline:
                raise MicroPythonError("no line starting %r within %ss; output:\n%s"
                                       % (prefix, timeout, self.output))
            time.sleep(0.05)

    def wait(self, timeout=60):
        """Wait for the script to end; 0 if it ended normally, 1 if it raised."""
        if self._result is None:
            self._result = self.guest.finish(timeout)
        return 1 if self._result[1].strip() else 0

    def stop(self):
        if not self.ended():
            self._result = self.guest.interrupt()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.stop()
