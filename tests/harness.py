"""Paths and helpers every test layer shares (importable from any test module)."""
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
UNIX_IMAGE = ROOT / "build" / "unix" / "micropython"
QEMU_IMAGE = ROOT / "build" / "qemu" / "MPS2_AN385" / "firmware.elf"
CERTS = ROOT / "tests" / "certs" / "default"


def require_tool(name, how="run `make deps`"):
    """The path of a command-line tool a test needs; fail (never skip) saying how to get it."""
    path = shutil.which(name)
    if not path:
        pytest.fail("%s is not installed: %s" % (name, how), pytrace=False)
    return path


def make(target, **variables):
    """Run a Makefile target (incremental: quick when nothing changed); fail the test if it fails."""
    args = ["make", "-s", "-C", str(ROOT), target] + ["%s=%s" % kv for kv in variables.items()]
    result = subprocess.run(args, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    if result.returncode:
        pytest.fail("make %s failed:\n%s" % (target, result.stdout[-4000:]), pytrace=False)


def require_test_credentials(image):
    """Fail (never silently rebuild) when the image froze in other credentials than the public
    test credentials the tests are written for: a NET_SECURITY choice the Makefile remembers."""
    staged = Path(image).parent / "credentials" / "Net_Security.py"
    if staged.read_bytes() != (ROOT / "modules" / "Net_Security.py").read_bytes():
        pytest.fail("%s froze in your own credentials (a NET_SECURITY=... the Makefile remembers); "
                    "the tests need the public test credentials: run `make test "
                    "NET_SECURITY=default` (this rebuilds the images with them)" % image,
                    pytrace=False)
