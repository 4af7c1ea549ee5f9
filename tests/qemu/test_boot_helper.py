"""The boot helper (netsec_cli.qemu) that tests, `make qemu` and `make run` share. These tests
start QEMUs of their own, besides the session's."""
import os
import re
import subprocess
import sys
import time

import pytest

from netsec_cli import qemu

pytestmark = pytest.mark.qemu

def test_missing_image_says_how_to_build_it(tmp_path):
    with pytest.raises(qemu.QemuError, match="make qemu-image"):
        qemu.boot(tmp_path / "firmware.elf")


def test_command_line_prints_the_mpremote_line_and_stops_qemu(qemu_image):
    cli = subprocess.Popen([sys.executable, "-m", "netsec_cli.qemu", "--image", str(qemu_image)],
                           stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        printed = ""
        deadline = time.monotonic() + 20
        while "mpremote connect" not in printed and time.monotonic() < deadline:
            printed += cli.stdout.readline()
        match = re.search(r"mpremote connect (/dev/pts/\d+)", printed)
        assert match, "no mpremote line in:\n%s" % printed
        answer = subprocess.run([sys.executable, "-m", "mpremote", "connect", match.group(1),
                                 "exec", "print(6 * 7)"], capture_output=True, text=True, timeout=60)
        assert answer.stdout.strip() == "42", answer.stdout + answer.stderr
        qemu_pid = int(re.search(r"\(pid (\d+)\)", printed).group(1))
    finally:
        cli.terminate()
        cli.wait(10)
    # Terminating the helper must not leave QEMU behind.
    for _ in range(50):
        if not os.path.exists("/proc/%d" % qemu_pid):
            break
        time.sleep(0.1)
    assert not os.path.exists("/proc/%d" % qemu_pid), "QEMU (pid %d) outlived its boot helper" % qemu_pid
