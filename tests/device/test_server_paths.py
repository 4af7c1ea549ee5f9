"""Paths on the file systems MicroPython boards use: netsec.server's static files and protect()
on VfsFat and VfsLfs2 RAM block devices in the unix image, driven by the socket-free test
client (tests/device/scripts/server_paths.py prints "FS STATUS TARGET" per request)."""
import subprocess

import pytest

from harness import ROOT
from mpy import SCRIPTS

EXPECTED = {
    "/static/index.html": 200,
    # '\' is a separator on FAT: raw it is not a URI character, decoded it is refused.
    "/static/..%5Cnetsec-credentials%5CNet_Security.py": 400,
    "/static/..\\netsec-credentials\\Net_Security.py": 400,
    # The credential directory is never served, even with app.static("/", root).
    "/netsec-credentials/Net_Security.py": 404,
    "/NETSEC-CREDENTIALS/Net_Security.py": 404,
    "/Netsec-Credentials./Net_Security.py": 400,  # FAT drops trailing dots
    "/NETSEC~1/Net_Security.py": 400,  # FAT's short alias of the long name
    # protect("/admin") in every spelling FAT resolves to the same directory.
    "/admin/x": 401, "/ADMIN/x": 401, "/Admin/x": 401, "/admin./x": 400, "/admin%20/x": 400,
    "/ADMINI~1/y": 400, "/administration/y": 401,
    "/C:/admin/x": 400, "/static/%00x": 400,
}


@pytest.fixture(scope="module")
def served(unix_image):
    out = subprocess.run([str(unix_image), str(SCRIPTS / "server_paths.py"),
                          str(ROOT / "tests" / "portable")],
                         capture_output=True, text=True, timeout=120)
    results = {}
    for line in out.stdout.splitlines():
        fs, status, target = line.split(" ", 2)
        results[fs, target] = int(status)
    assert results, out.stdout + out.stderr
    return results


@pytest.mark.parametrize("fs", ["fat", "lfs"])
@pytest.mark.parametrize("target", sorted(EXPECTED))
def test_a_path_cannot_name_what_it_must_not(served, fs, target):
    assert served[fs, target] == EXPECTED[target]
