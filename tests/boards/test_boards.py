"""The real boards (boards/<NAME>, firmware/boards.py): the README says which build here and why
the others cannot, and every one that builds here is built (by `make boards`, a prerequisite of
`make test`) with netsec frozen in, the netsec mbedTLS profile and the chip's own entropy."""
import importlib.util
import json
import re
import shlex
import subprocess

import pytest
from netsec_cli import firmware, flash

from harness import ROOT

_spec = importlib.util.spec_from_file_location("boards", ROOT / "firmware" / "boards.py")
boards = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(boards)

IN_DEBIAN = {s["name"]: s["in_debian"] for s in boards.fetch.read_lock()}
# What the Debian route (this machine, CI) can build: every extra source is in Debian.
HERE = [b for b, (_, needs) in boards.BOARDS.items() if all(IN_DEBIAN[s] for s in needs)]


def build_dir(board):
    return ROOT / "build" / "boards" / board


def readme_boards():
    """{board: 'builds here' cell} from the README's table of real boards."""
    text = (ROOT / "README.md").read_text()
    section = text.split("## Real boards", 1)[1].split("\n## ", 1)[0]
    return {m.group(1): m.group(2).strip()
            for m in re.finditer(r"^\| `(\w+)` \|[^|]*\|[^|]*\|([^|]*)\|", section, re.M)}


def test_the_readme_says_which_boards_build_here_and_why_the_others_cannot():
    table = readme_boards()
    assert set(table) == set(boards.BOARDS), "README's board table vs firmware/boards.py"
    for board, (_, needs) in boards.BOARDS.items():
        if board in HERE:
            assert table[board].startswith("yes"), board
        else:
            lacking = [s for s in needs if not IN_DEBIAN[s]]
            assert table[board].startswith("no"), board
            assert all(s in table[board] for s in lacking), (board, table[board])
    assert {"RPI_PICO", "RPI_PICO2"} <= set(HERE)


@pytest.mark.parametrize("board", HERE)
def test_a_board_that_builds_here_is_built_with_netsec_frozen_in(board):
    # A failure here: `make boards` did not build it although its sources are all in Debian.
    assert not boards.missing(board), "sources missing from build/src: run make sources"
    image = build_dir(board) / "firmware.uf2"
    assert image.is_file(), "%s should build here and was not built: run make boards" % board
    frozen = (build_dir(board) / "frozen_content.c").read_text()
    for module in ("netsec_tls", "netsec_server", "netsec_mail", "netsec_clock", "Net_Security"):
        assert "\n// frozen module %s\n" % module in frozen


@pytest.mark.parametrize("board", HERE)
def test_netsec_flash_takes_the_image_for_the_board_it_is(board):
    # What netsec flash reads from the image (UF2 families, the banner) names this board and chip.
    image = firmware.read(build_dir(board) / "firmware.uf2")
    assert image.machine == flash.BOARDS[board].machine
    assert flash.BOARDS[board].chip in image.chips and not image.test_only


def compile_command(board, source_suffix):
    commands = json.loads((build_dir(board) / "compile_commands.json").read_text())
    entry = next(c for c in commands if c["file"].endswith(source_suffix))
    return entry["directory"], shlex.split(entry["command"])


def with_source(argv, source, *extra, output="/dev/null"):
    """A compile command with another source file and output."""
    argv = list(argv)
    argv[argv.index("-o") + 1] = output
    argv[argv.index("-c") + 1] = str(source)
    return argv + list(extra)


@pytest.mark.parametrize("board", HERE)
def test_the_board_uses_the_netsec_mbedtls_profile(board):
    directory, argv = compile_command(board, "lib/mbedtls/library/ssl_tls.c")
    preprocess = with_source(argv, argv[argv.index("-c") + 1], "-E", "-dM", output="-")
    macros = subprocess.run(preprocess, cwd=directory, capture_output=True, text=True, check=True).stdout
    assert "#define NETSEC_MBEDTLS_PROFILE_H" in macros
    assert "#define MBEDTLS_SSL_KEEP_PEER_CERTIFICATE" in macros
    assert "MBEDTLS_KEY_EXCHANGE_RSA_ENABLED" not in macros


@pytest.mark.parametrize("board", HERE)
def test_the_board_takes_entropy_from_its_ring_oscillator(board):
    symbols = subprocess.run(["arm-none-eabi-nm", str(build_dir(board) / "firmware.elf")],
                             capture_output=True, text=True, check=True).stdout.split()
    assert "mbedtls_hardware_poll" in symbols and "rosc_random_u8" in symbols
    assert "netsec_test_only_entropy_warning" not in symbols


@pytest.mark.parametrize("board", HERE)
def test_the_qemu_test_only_entropy_refuses_to_compile_for_the_board(board):
    directory, argv = compile_command(board, "ports/rp2/mbedtls/mbedtls_port.c")
    source = ROOT / "boards" / "QEMU_MPS2_AN385" / "test_only_insecure_entropy.c"
    result = subprocess.run(with_source(argv, source), cwd=directory, capture_output=True, text=True)
    assert result.returncode != 0
    assert ("for the QEMU mps2 board only; a real board must use its hardware random number generator"
            in result.stderr)


@pytest.mark.parametrize("board", sorted(set(boards.BOARDS) - set(HERE)))
def test_a_board_that_cannot_build_here_says_what_is_missing_and_how(board):
    result = subprocess.run(["make", "-s", "-C", str(ROOT), "board", "BOARD=" + board],
                            capture_output=True, text=True)
    assert result.returncode != 0
    assert "which Debian does not have" in result.stderr
    assert "make board BOARD=%s SOURCES=git" % board in result.stderr
