"""Test set-up shared by all layers: import paths, and the images built once per run."""
import sys
from pathlib import Path

import pytest
from hypothesis import settings

# Property tests check correctness, not speed (speed lives in bench/): no per-example deadline,
# which a loaded 2-core CI machine would turn into false failures.
settings.register_profile("netsec")
settings.load_profile("netsec")

_ROOT = Path(__file__).resolve().parent.parent
# Test modules import helpers from these folders; the sans-IO cores (netsec.http, netsec.smtp,
# netsec.mime) are imported from modules/ and run on CPython too.
for _folder in ("modules", "tests/portable", "tests/device", "tests/host", "tests/qemu", "tests"):
    sys.path.insert(0, str(_ROOT / _folder))

from harness import QEMU_IMAGE, UNIX_IMAGE, make  # noqa: E402  (needs the paths above)


@pytest.fixture(scope="session")
def unix_image():
    """The host image, built (or brought up to date) once per test run."""
    make("unix")
    return UNIX_IMAGE


@pytest.fixture(scope="session")
def qemu_image():
    """The QEMU Cortex-M3 image, built (or brought up to date) once per test run."""
    make("qemu-image")
    return QEMU_IMAGE
