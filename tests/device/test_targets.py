"""The device-test harness itself (targets.py): what expect() returns is a whole line, on both
targets, even while the rest of it is still arriving over the QEMU guest's console."""
import pytest

pytestmark = pytest.mark.device

SLOW_LINE = """
import time
print("refused first half", end="")
time.sleep(2)
print(" and the rest")
print("ready")
"""


def test_expect_returns_a_whole_line(target, tmp_path):
    # On QEMU, expect() used to return the part of a line that had arrived (a test reading the
    # end of a log line then saw it cut off).
    with target.program(SLOW_LINE, tmp_path / "flash") as program:
        assert program.expect("refused ", timeout=30) == "refused first half and the rest"
        assert program.expect("ready", timeout=30) == "ready"
