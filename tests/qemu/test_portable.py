"""The portable unit tests (tests/portable/test_*.py) run inside the QEMU guest as well.

They are copied with check.py, run.py and testclient.py to /portable on the guest's filesystem,
then run.py's run([...]) runs one module and prints "N passed, M failed".
"""
import re
from pathlib import Path

import pytest

pytestmark = pytest.mark.qemu

PORTABLE = Path(__file__).resolve().parents[1] / "portable"
MODULES = sorted(path.stem for path in PORTABLE.glob("test_*.py"))
GUEST_DIR = "/portable"


@pytest.fixture(scope="session")
def portable_files(qemu_guest):
    """Copy the runner and every portable test module to the guest, once."""
    qemu_guest.makedirs(GUEST_DIR)
    for name in ["check", "run", "testclient"] + MODULES:
        qemu_guest.write("%s/%s.py" % (GUEST_DIR, name), (PORTABLE / (name + ".py")).read_bytes())


@pytest.mark.parametrize("module", MODULES)
def test_portable_module_passes_in_the_guest(guest, portable_files, module):
    out = guest.exec("import sys\nsys.path.insert(0, %r)\nimport run\nrun.run([%r])" % (GUEST_DIR, module),
                     timeout=300)
    lines = [line for line in out.splitlines() if line.strip()]
    summary = re.fullmatch(r"(\d+) passed, (\d+) failed", lines[-1].strip()) if lines else None
    assert summary, "run.py printed no 'N passed, M failed' line:\n%s" % out
    passed, failed = int(summary.group(1)), int(summary.group(2))
    assert failed == 0, "%s: %d failed in the QEMU guest:\n%s" % (module, failed, out)
    assert passed > 0, "%s has no test_* functions" % module
