"""One connection to a MicroPython board or QEMU guest: its raw REPL over a serial port or pty.

Everything on the host that talks to a device (netsec deploy, make run, the test layers, the
benchmarks) goes through Device, which owns one mpremote SerialTransport, as mpremote's own
State does. A Device enters the raw REPL when opened, without a soft reset (a running program's
state and the files stay), and gives the friendly REPL back when closed.

    with Device("/dev/ttyACM0") as board:
        board.exec("import netsec")                 # what it printed, as str
        board.eval("__import__('os').listdir()")    # a Python value, through repr()
        board.write_atomic("netsec-credentials/Net_Security.py", data)
        board.set_rtc_utc()

Errors: DeviceError (a CliError: one line naming the port and what to check) when the port is
missing, cannot be opened, gives no answer, or stops answering; RemoteError when code run on the
device raised.
"""
import ast
import contextlib
import datetime
import hashlib
import io
import os
import time

from mpremote.transport import TransportError, TransportExecError
from mpremote.transport_serial import SerialTransport

from .problems import CliError

# A MicroPython REPL answers Ctrl-C / Ctrl-A at once; a port silent this long has none behind it.
ANSWER_TIMEOUT = 3
RAW_REPL_BANNER = b"raw REPL; CTRL-B to exit\r\n"
CHUNK = 1024  # bytes per raw-REPL file write: well inside the smallest boards' heap
CHECK_PORT = "is it connected and running MicroPython (not its bootloader)? is another program " \
             "(mpremote, a terminal) holding the port?"


class DeviceError(CliError):
    """The device cannot be reached or stopped answering: str() is one line naming the port."""


class RemoteError(Exception):
    """Code run on the device raised.

    .exception is its last traceback line ("ValueError: ..."), .traceback the whole traceback,
    .output what the code printed before, .code the code; str() shows all of them.
    """

    def __init__(self, port, code, output, traceback):
        self.port, self.code, self.output, self.traceback = port, code, output, traceback
        lines = traceback.strip().splitlines()
        self.exception = lines[-1] if lines else "an exception"
        super().__init__("%s raised %s\n%s\nIt printed before that:\n%s\nThe code:\n%s"
                         % (port, self.exception, traceback, output, code[:2000]))


class Device:
    """The raw REPL of the MicroPython device on `port` (a /dev/tty* or a QEMU pty).

    exclusive=False lets other programs (the mpremote tool, netsec deploy) open the port while
    this Device holds it. answer_timeout: seconds to wait for the REPL when connecting. gone: a
    callable that returns why the device is gone (e.g. "QEMU exited ...") or None, for errors.
    Raises DeviceError.
    """

    def __init__(self, port, exclusive=True, answer_timeout=ANSWER_TIMEOUT, gone=None):
        self.port = str(port)
        self.gone = gone or (lambda: None)
        self._program = b""  # what the program start() began has printed
        if not os.path.exists(self.port):
            raise DeviceError(self.port, "no such device",
                              "is the board connected? give its port with --device")
        try:
            self.transport = SerialTransport(self.port, exclusive=exclusive)
        except TransportError:
            raise DeviceError(self.port, "cannot open the port",
                              "is another program (mpremote, a terminal) holding it? do you have "
                              "permission (the dialout group)?") from None
        try:
            self.enter_raw_repl(answer_timeout)
        except BaseException:
            self.transport.close()
            raise

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def close(self):
        """Give the friendly REPL back (best effort) and close the port."""
        try:
            if self.transport.in_raw_repl:
                self.transport.exit_raw_repl()
        except OSError:
            pass  # the device went away; closing is all that is left
        finally:
            self.transport.close()

    def enter_raw_repl(self, answer_timeout=ANSWER_TIMEOUT):
        """Stop whatever runs (Ctrl-C) and take the raw REPL, without a soft reset."""
        try:
            # mpremote prints what it read when the REPL does not answer: keep errors one line.
            with contextlib.redirect_stdout(io.StringIO()):
                self.transport.enter_raw_repl(soft_reset=False, timeout_overall=answer_timeout)
        except (TransportError, OSError):  # pyserial's errors are OSErrors
            self.transport.in_raw_repl = False
            raise self._lost("no answer from a MicroPython REPL within %g s" % answer_timeout) from None

    @contextlib.contextmanager
    def released(self):
        """Let another program drive the device (the friendly REPL), then take the raw REPL back."""
        self.transport.exit_raw_repl()
        try:
            yield self
        finally:
            self.enter_raw_repl()

    def exec(self, code, timeout=60):
        """Run code on the device; return what it printed (str).

        timeout: seconds the device may stay silent while running it. Raises RemoteError if the
        code raised, DeviceError if the device stopped answering (it is then interrupted with
        Ctrl-C before the next call).
        """
        out, err = self._transport_call("running code", self._exec_raw, code, timeout)
        if err:
            raise RemoteError(self.port, code, out.decode(errors="replace"),
                              err.decode(errors="replace"))
        return out.decode(errors="replace")

    def eval(self, expression, timeout=60):
        """The value of a Python expression on the device (its repr, read with literal_eval)."""
        return ast.literal_eval(self.exec("print(repr(%s))" % expression, timeout).strip())

    def start(self, code, ready=None, timeout=60):
        """Start code on the device (a server, say) and return while it runs.

        With `ready`, wait until it has printed that text (DeviceError if it ends or stays
        silent about it for timeout s). Returns what it printed so far (str). While it runs:
        send() to its stdin, read_until(), output(); interrupt() or finish() end it.
        """
        self._transport_call("starting code", self._ensure_raw_repl)
        self._transport_call("starting code", self.transport.exec_raw_no_follow, code)
        self._program = b""
        return self.read_until(ready, timeout) if ready else ""

    def start_in_repl(self, line, ready, timeout=60):
        """Type one line of code at the friendly REPL; return once it printed `ready` (what it
        printed so far). For a program a person stops with Ctrl-C at a terminal (mpremote
        connect), who then gets the >>> prompt rather than the raw REPL. DeviceError naming the
        program's last line (its exception) if the prompt comes back first."""
        self._transport_call("leaving the raw REPL", self.transport.exit_raw_repl)
        self._program = b""
        self.read_until(">>> ", timeout)
        self._program = b""
        self.send(line.encode() + b"\r")
        self._read_program(lambda: ready.encode() in self._program or b"\n>>> " in self._program,
                           timeout, "waiting for the program to print %r" % ready)
        said = self.output()
        if ready not in said:
            lines = [text for text in said.splitlines() if text.strip() and text != ">>> "]
            raise DeviceError(self.port, "the program ended before it printed %r: %s"
                              % (ready, lines[-1] if lines else "it printed nothing"),
                              "its last line says why")
        return said

    def send(self, data):
        """Bytes to the running program's stdin."""
        self._transport_call("writing to the program", self.transport.serial.write, data)

    def read_until(self, text, timeout=30):
        """Wait until the running program has printed text; return all it printed so far (str).

        DeviceError if it did not within timeout s, or ended first (with what it printed).
        """
        self._read_program(lambda: text.encode() in self._program.split(b"\x04")[0], timeout,
                           "waiting for the program to print %r" % text)
        return self.output()

    def output(self):
        """What the running (or just ended) program has printed so far (str)."""
        self._read_program(lambda: True, 0, "reading the program's output")
        return self._program.split(b"\x04")[0].decode(errors="replace")

    def finish(self, timeout=60):
        """Wait for the program start() began to end: (what it printed, its traceback or "")."""
        self._read_program(lambda: self._program.count(b"\x04") >= 2, timeout,
                           "waiting for the program to end")
        self.transport.in_raw_repl = False  # its ">" prompt may be read already: ask anew
        out, err = self._program.split(b"\x04")[:2]
        return out.decode(errors="replace"), err.decode(errors="replace")

    def interrupt(self, timeout=10):
        """Ctrl-C the running program; (what it printed, its traceback) as finish() gives them."""
        self.send(b"\x03")
        return self.finish(timeout)

    def _read_program(self, done, timeout, doing):
        """Read the program's console into self._program until done() (at least once)."""
        deadline = time.monotonic() + timeout
        serial = self.transport.serial
        while True:
            try:
                waiting = serial.in_waiting
                self._program += serial.read(waiting) if waiting else b""
            except OSError as e:
                self.transport.in_raw_repl = False
                raise self._lost("lost the port while %s (%s)" % (doing, e))
            if done():
                return
            if self._program.count(b"\x04") >= 2:  # it ended before done() came true
                self.transport.in_raw_repl = False  # its ">" prompt may be read already
                out, err = self._program.split(b"\x04")[:2]
                raise DeviceError(self.port, "the program ended while %s; it printed %r and "
                                             "raised %r" % (doing, out[-500:], err[-500:]),
                                  "see what it raised")
            if time.monotonic() >= deadline:
                self.transport.in_raw_repl = False  # still running: the next call interrupts it
                if self.gone():
                    raise self._lost(doing)
                raise DeviceError(self.port, "%s: not within %g s; it printed %r"
                                  % (doing, timeout, self._program[-500:]),
                                  "see what it printed")
            if not waiting:
                time.sleep(0.01)

    def soft_reset(self, timeout=10):
        """Soft-reset the device (fresh heap, files kept); return what it printed while booting."""
        self._transport_call("soft-resetting", self._ensure_raw_repl)
        try:
            self.transport.serial.write(b"\x04")  # Ctrl-D in the raw REPL: soft reset
            boot = self.transport.read_until(1, RAW_REPL_BANNER, timeout=timeout)
        except OSError as e:
            raise self._lost("lost the port during a soft reset (%s)" % e)
        if not boot.endswith(RAW_REPL_BANNER):
            self.transport.in_raw_repl = False
            raise self._lost("did not come back from a soft reset within %d s; it printed %r"
                             % (timeout, boot[-300:]))
        return boot.decode(errors="replace")

    def read(self, path):
        """The bytes of a file on the device."""
        return bytes(self._transport_call("reading %s" % path, self.transport.fs_readfile, path,
                                          CHUNK))

    def write(self, path, data):
        """Write bytes to a file on the device, CHUNK bytes per raw-REPL command."""
        self._transport_call("writing %s" % path, self.transport.fs_writefile, path, data, CHUNK)

    def write_atomic(self, path, data, partial=None):
        """Write data to path so the device never sees half of it; return its SHA-256 (bytes).

        The data goes to `partial` (default path + ".part"; give a name outside a directory that
        software on the device lists), is renamed onto path, then hashed on the device. Raises
        DeviceError if the device's copy differs from data.
        """
        partial = partial or path + ".part"
        self.write(partial, data)
        self.exec("import os\nos.rename(%r, %r)" % (partial, path))
        digest = self._transport_call("hashing %s" % path, self.transport.fs_hashfile, path,
                                      "sha256")
        if digest != hashlib.sha256(data).digest():
            raise DeviceError(self.port, "%s on the device differs from the data sent" % path,
                              "write it again; if it persists the device's filesystem is damaged")
        return digest

    def makedirs(self, path):
        """Make a directory on the device and its parents; existing ones are fine."""
        parts = path.strip("/").split("/")
        root = "/" if path.startswith("/") else ""
        for n in range(1, len(parts) + 1):
            folder = root + "/".join(parts[:n])
            if not self._transport_call("checking %s" % folder, self.transport.fs_isdir, folder):
                self._transport_call("making %s" % folder, self.transport.fs_mkdir, folder)

    def set_rtc_utc(self, now=None):
        """Set the device's RTC to UTC: now (an aware datetime) or the host's clock.

        With the host's clock it waits for the start of the next second and sets whole seconds,
        so the device is off by the raw REPL's latency only (milliseconds). Returns the datetime set.
        machine.RTC().datetime takes (year, month, day, weekday 0=Monday, h, m, s, subseconds).
        """
        if now is None:
            current = datetime.datetime.now(datetime.timezone.utc)
            time.sleep(1 - current.microsecond / 1e6)
            now = current.replace(microsecond=0) + datetime.timedelta(seconds=1)
        utc = now.astimezone(datetime.timezone.utc)
        fields = (utc.year, utc.month, utc.day, utc.weekday(), utc.hour, utc.minute, utc.second, 0)
        self.exec("import machine\nmachine.RTC().datetime(%r)" % (fields,))
        return utc

    def _ensure_raw_repl(self):
        if not self.transport.in_raw_repl:
            self.enter_raw_repl()

    def _exec_raw(self, code, timeout):
        self._ensure_raw_repl()
        return self.transport.exec_raw(code, timeout=timeout)

    def _transport_call(self, doing, function, *args):
        """function(*args); the device's errors as RemoteError, a lost device as DeviceError."""
        try:
            return function(*args)
        except TransportExecError as e:
            raise RemoteError(self.port, doing, "", e.error_output)
        except OSError as e:
            # mpremote's fs_* turn the device's OSError into a host FileNotFoundError & co.
            if isinstance(e.__context__, TransportExecError):
                raise RemoteError(self.port, doing, "", e.__context__.error_output)
            self.transport.in_raw_repl = False
            raise self._lost("lost the port while %s (%s)" % (doing, e))
        except TransportError as e:
            # Still busy, or gone: interrupt it before the next call.
            self.transport.in_raw_repl = False
            raise self._lost("stopped answering while %s (%s)" % (doing, e))

    def _lost(self, what):
        gone = self.gone()
        if gone:
            return DeviceError(self.port, "%s: %s" % (what, gone),
                               "see the reason above; start it again")
        return DeviceError(self.port, what, CHECK_PORT)
