"""tools/netsec_cli/tcprelay.py, as QEMU's guestfwd runs it: one connection between its stdin/stdout
and a TCP port on 127.0.0.1, also when Python runs unbuffered."""
import os
import socket
import subprocess
import sys
import threading
from pathlib import Path

import pytest

pytestmark = pytest.mark.host

RELAY = Path(__file__).resolve().parents[2] / "tools" / "netsec_cli" / "tcprelay.py"


@pytest.mark.parametrize("unbuffered", ["", "1"])
def test_bytes_go_both_ways_until_the_guest_closes(unbuffered):
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(1)
        got = []

        def serve():
            conn, _ = listener.accept()
            with conn:
                conn.sendall(b"220 hello\r\n")
                while True:
                    data = conn.recv(100)
                    if not data:
                        break
                    got.append(data)
                conn.sendall(b"221 bye\r\n")

        server = threading.Thread(target=serve)
        server.start()
        env = dict(os.environ, PYTHONUNBUFFERED=unbuffered)
        result = subprocess.run([sys.executable, str(RELAY), str(listener.getsockname()[1])],
                                input=b"QUIT\r\n", capture_output=True, env=env, timeout=30)
        server.join(10)
    assert (result.returncode, result.stderr) == (0, b"")
    assert result.stdout == b"220 hello\r\n221 bye\r\n"
    assert b"".join(got) == b"QUIT\r\n"
