"""Run tests/device/scripts/tls_responder.py on a unix image and wait until it listens."""
import socket
import subprocess
from pathlib import Path

SCRIPT = Path(__file__).resolve().parent / "scripts" / "tls_responder.py"


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Responder:
    """The image's TLS responder for `count` connections; use as a context manager."""

    def __init__(self, image, count=1):
        self.port = free_port()
        self.proc = subprocess.Popen(
            [str(image), str(SCRIPT), str(self.port), str(count)],
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        )
        line = self.proc.stdout.readline()
        if not line.startswith("ready"):
            self.proc.kill()
            raise RuntimeError("responder did not start: %r %s" % (line, self.proc.stdout.read()))

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.proc.kill()
        self.output = self.proc.stdout.read()
        self.proc.wait()
