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
    """Run a Makefile target (incremental: quick when nothing changed); fail the test if it fails.
    Images freeze in the public test credentials the tests are written for (NET_SECURITY=tests),
    whatever NET_SECURITY choice the Makefile remembers: that choice stays for the user's builds."""
    variables.setdefault("NET_SECURITY", "tests")
    args = ["make", "-s", "-C", str(ROOT), target] + ["%s=%s" % kv for kv in variables.items()]
    result = subprocess.run(args, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    if result.returncode:
        pytest.fail("make %s failed:\n%s" % (target, result.stdout[-4000:]), pytrace=False)

