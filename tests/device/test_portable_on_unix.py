"""The portable unit tests (tests/portable/test_*.py) run again on the unix image."""
import subprocess

import pytest

from harness import ROOT

PORTABLE = ROOT / "tests" / "portable"
MODULES = sorted(p.stem for p in PORTABLE.glob("test_*.py"))


@pytest.mark.parametrize("module", MODULES)
def test_portable_module_passes_on_micropython(unix_image, module):
    out = subprocess.run([str(unix_image), str(PORTABLE / "run.py"), module],
                         cwd=PORTABLE, capture_output=True, text=True, timeout=300)
    summary = out.stdout.strip().splitlines()[-1] if out.stdout.strip() else ""
    assert out.returncode == 0 and summary.endswith(" passed, 0 failed"), out.stdout + out.stderr
    assert int(summary.split()[0]) > 0, "no portable test ran in " + module
