"""The guest's filesystem: littlefs on a RAM disk at "/", reachable with `mpremote fs`."""
import os

import pytest

pytestmark = pytest.mark.qemu


def test_mpremote_fs_cp_round_trips_a_file(guest, mpremote, tmp_path):
    original = tmp_path / "original.bin"
    original.write_bytes(bytes(range(256)) * 20 + os.urandom(3000))
    copied_back = tmp_path / "copied_back.bin"
    mpremote("fs", "cp", str(original), ":/roundtrip.bin")
    assert "roundtrip.bin" in mpremote("fs", "ls", ":/")
    mpremote("fs", "cp", ":/roundtrip.bin", str(copied_back))
    assert copied_back.read_bytes() == original.read_bytes()
    assert guest.eval("__import__('os').stat('/roundtrip.bin')[6]") == original.stat().st_size


def test_files_survive_a_soft_reset(guest):
    guest.exec("with open('/kept.txt', 'w') as f:\n    f.write('still here')")
    guest.soft_reset()
    assert guest.eval("open('/kept.txt').read()") == "still here"


def test_filesystem_is_littlefs_of_512_kb(guest):
    block_size, _, blocks = guest.eval("__import__('os').statvfs('/')[:3]")
    assert block_size * blocks == 512 * 1024
