# The shared logger (netsec.log): level filtering and a configurable output.
from netsec import log


def capture(level, emit):
    lines = []
    saved = log.level, log.output
    log.level, log.output = level, lines.append
    try:
        emit()
    finally:
        log.level, log.output = saved
    return lines


def test_lines_carry_their_severity():
    def emit():
        log.debug("d")
        log.info("i")
        log.warning("w")
        log.error("e")

    assert capture(log.DEBUG, emit) == ["DEBUG d", "INFO i", "WARNING w", "ERROR e"]


def test_lines_below_the_level_are_dropped():
    def emit():
        log.info("routine")
        log.warning("odd")
        log.error("bad")

    assert capture(log.WARNING, emit) == ["WARNING odd", "ERROR bad"]
    assert capture(log.ERROR + 1, emit) == []


def test_default_is_info_on_the_console():
    assert log.level == log.INFO
    assert log.output is print
