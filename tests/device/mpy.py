"""Run a MicroPython script on the unix image as a subprocess, with a directory as its "flash".

    with MicroPython(image, script_text, flash=tmp_path / "flash", args=[...]) as mp:
        port = mp.ready()                  # waits for the script's "ready <port>" line
        ...talk to it...
        line = mp.expect("served ")        # the next line starting with "served "
    print(mp.output)                       # everything it printed (stdout and stderr)

The working directory is `flash`, so relative paths in the script land there, as they do in a
board's filesystem: `write_credentials()` puts a Net_Security.py override where netsec.tls looks
(OVERRIDE_DIR). The script itself is written next to `flash`, not into it. `run()` is the
one-shot form for scripts that finish on their own.
"""
import itertools
import queue
import socket
import subprocess
import threading
import time
from pathlib import Path

from netsec_cli.process import stop_process

_numbers = itertools.count()
SCRIPTS = Path(__file__).resolve().parent / "scripts"
# Device-side scripts that several test modules run (see each file's header).
TLS_RESPONDER = (SCRIPTS / "tls_responder.py").read_text()
HELLO_SERVER = (SCRIPTS / "tls_hello_server.py").read_text()
OVERRIDE_DIR = "netsec-credentials"  # netsec.tls.OVERRIDE_DIR, relative to the working directory


def free_port():
    """A TCP port on 127.0.0.1 that was free a moment ago."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class MicroPythonError(AssertionError):
    """The script did not print what was expected in time, or exited too early."""


class MicroPython:
    def __init__(self, image, script, flash, args=(), heapsize=None):
        flash = Path(flash)
        flash.mkdir(parents=True, exist_ok=True)
        self.script = flash.parent / ("mpy_script_%d.py" % next(_numbers))
        self.script.write_text(script)
        command = [str(image)]
        if heapsize:
            command += ["-X", "heapsize=%s" % heapsize]
        command += [str(self.script)] + [str(a) for a in args]
        self._lines = []
        self._queue = queue.Queue()
        self._seen = 0  # lines up to here were consumed by expect()
        self._ended = False
        self.process = subprocess.Popen(command, cwd=flash, stdout=subprocess.PIPE,
                                        stderr=subprocess.STDOUT, text=True, bufsize=1)
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self):
        for line in self.process.stdout:
            self._queue.put(line.rstrip("\n"))
        self._queue.put(None)  # end of output

    def _take(self, timeout):
        """Move printed lines into self._lines, waiting up to timeout for the first one."""
        try:
            line = self._queue.get(timeout=timeout) if timeout else self._queue.get_nowait()
        except queue.Empty:
            return
        while line is not None:
            self._lines.append(line)
            try:
                line = self._queue.get_nowait()
            except queue.Empty:
                return
        self._ended = True

    @property
    def output(self):
        self._take(0)
        return "\n".join(self._lines)

    def expect(self, prefix, timeout=20):
        """The next unconsumed line starting with prefix; MicroPythonError if none comes."""
        deadline = time.monotonic() + timeout
        while True:
            for i in range(self._seen, len(self._lines)):
                if self._lines[i].startswith(prefix):
                    self._seen = i + 1
                    return self._lines[i]
            left = deadline - time.monotonic()
            if left <= 0 or self._ended:
                raise MicroPythonError("no line starting %r within %ss (%s); output:\n%s"
                                       % (prefix, timeout, self._state(), self.output))
            self._take(min(left, 0.2))

    def ready(self, timeout=20):
        """Wait for the script's "ready <port>" line; return the port."""
        return int(self.expect("ready ", timeout).split()[1])

    def wait(self, timeout=60):
        """Wait for the script to exit; return its exit status."""
        try:
            status = self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            raise MicroPythonError("still running after %ss; output:\n%s" % (timeout, self.output))
        self._reader.join(5)
        return status

    def stop(self):
        stop_process(self.process)
        self._reader.join(5)

    def _state(self):
        code = self.process.poll()
        return "still running" if code is None else "exited with status %d" % code

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.stop()


def run(image, script, flash, args=(), timeout=60, heapsize=None):
    """Run a script to its end: (exit status, output)."""
    with MicroPython(image, script, flash, args, heapsize) as mp:
        status = mp.wait(timeout)
        return status, mp.output


def write_credentials(flash, **fields):
    """Write flash/OVERRIDE_DIR/Net_Security.py holding the given fields (FORMAT 1 unless
    given); return its path."""
    folder = Path(flash) / OVERRIDE_DIR
    folder.mkdir(parents=True, exist_ok=True)
    fields.setdefault("FORMAT", 1)
    text = "".join("%s = %r\n" % item for item in sorted(fields.items()))
    path = folder / "Net_Security.py"
    path.write_text(text)
    return path
