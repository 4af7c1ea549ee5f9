#!/usr/bin/env python3
"""The real boards netsec builds for (boards/<NAME>), what sources each needs, and which of them
the sources in build/src allow.

    boards.py buildable      names of the boards whose sources are all in build/src, one a line
    boards.py check NAME     exit 0 if NAME can be built; else exit 1 with one line saying what
                             is missing and the command that builds it
    boards.py port NAME      the MicroPython port NAME is built with: rp2 or stm32

Every board needs micropython, mbedtls and lwip as well; the names below are the extra sources
(names as in firmware/sources.lock).
"""
import importlib.util
import sys
from pathlib import Path

_spec = importlib.util.spec_from_file_location("fetch", Path(__file__).with_name("fetch.py"))
fetch = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(fetch)

RP2 = ("pico-sdk", "tinyusb-source", "picotool")
# name -> (port, extra sources)
BOARDS = {
    "RPI_PICO": ("rp2", RP2),
    "RPI_PICO2": ("rp2", RP2),
    "RPI_PICO_W": ("rp2", RP2 + ("cyw43-driver",)),
    "RPI_PICO2_W": ("rp2", RP2 + ("cyw43-driver",)),
    "NUCLEO_F429ZI": ("stm32", ("stm32lib",)),
    "NUCLEO_H743ZI": ("stm32", ("stm32lib",)),
}


class BoardError(Exception):
    pass


def present(name):
    """Whether source `name` is laid out in build/src (fetch.py leaves out what its route lacks)."""
    place = fetch.SRC / fetch.PLACE[name]
    return place.is_dir() and any(place.iterdir())


def missing(board):
    """The sources `board` needs that build/src lacks; BoardError for an unknown board."""
    if board not in BOARDS:
        raise BoardError("unknown board %r: the boards are %s" % (board, ", ".join(BOARDS)))
    return [s for s in BOARDS[board][1] if not present(s)]


def check(board):
    """Raise BoardError with what is missing and how to get it, unless `board` can be built."""
    lacking = missing(board)
    if not lacking:
        return
    in_debian = {s["name"]: s["in_debian"] for s in fetch.read_lock()}
    if all(in_debian[s] for s in lacking):
        raise BoardError("%s needs %s, not in build/src yet: run make sources" % (board, ", ".join(lacking)))
    raise BoardError(
        "%s needs %s, which Debian does not have (firmware/sources.lock); on a machine with internet "
        "build it from the pinned upstream commits with: make board BOARD=%s SOURCES=git"
        % (board, ", ".join(s for s in lacking if not in_debian[s]), board))


def main(argv):
    if argv[:1] == ["buildable"] and len(argv) == 1:
        print("\n".join(b for b in BOARDS if not missing(b)))
    elif argv[:1] == ["check"] and len(argv) == 2:
        check(argv[1])
    elif argv[:1] == ["port"] and len(argv) == 2:
        missing(argv[1])
        print(BOARDS[argv[1]][0])
    else:
        raise BoardError("usage: boards.py buildable | check NAME | port NAME")


if __name__ == "__main__":
    try:
        main(sys.argv[1:])
    except BoardError as e:
        sys.exit("firmware/boards.py: error: %s" % e)
