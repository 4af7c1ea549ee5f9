"""A board with netsec: the frozen modules, the TLS self-check, the clock in UTC, and credentials
deployed and rotated with netsec deploy. Nothing here needs a network."""
import ast
import datetime
import re
from pathlib import Path

import pytest

from netsec_cli.device import RemoteError

pytestmark = pytest.mark.hw

MODULES = Path(__file__).resolve().parents[2] / "modules"


def selftest(board, cas=None):
    """netsec.selftest.run('localhost', cas) on the board: the report it returns."""
    out = board.exec("from netsec import selftest\nprint(repr(selftest.run('localhost', cas=%r)))"
                     % (cas,), timeout=120)
    return ast.literal_eval(out.strip().splitlines()[-1])


def test_every_netsec_module_is_frozen_in_and_imports(board):
    names = sorted("netsec" if p.stem == "__init__" else "netsec." + p.stem
                   for p in (MODULES / "netsec").glob("*.py"))
    version = re.search(r'__version__ = "([^"]+)"', (MODULES / "netsec/__init__.py").read_text()).group(1)
    found = board.eval("[__import__(name) and __import__('sys').modules[name].__file__ "
                       "for name in %r] + [__import__('netsec').__version__, "
                       "__import__('Net_Security').FORMAT, __import__('os').listdir('/')]"
                       % (names + ["Net_Security"],), timeout=60)
    *files, board_version, net_security_format, root = found
    assert board_version == version and net_security_format == 1
    assert "netsec" not in root and "Net_Security.py" not in root, "they must come frozen"
    # A frozen module's __file__ is its name in the manifest, with no filesystem behind it.
    assert all(not f.startswith("/") for f in files), files


def test_clock_is_set_in_utc(board):
    set_to = board.set_rtc_utc()
    seconds, gmtime, localtime = board.eval("(__import__('time').time(), __import__('time').gmtime(), "
                                            "__import__('time').localtime())")
    on_board = datetime.datetime(2000, 1, 1, tzinfo=datetime.timezone.utc) + \
        datetime.timedelta(seconds=seconds)  # MicroPython's epoch on boards
    now = datetime.datetime.now(datetime.timezone.utc)
    assert abs((now - on_board).total_seconds()) < 3, (set_to, on_board)
    assert tuple(gmtime[:6]) == tuple(localtime[:6]), "board clocks hold UTC"


def test_selftest_passes(board, clock_set):
    report = selftest(board)
    assert report["protocol"] == "TLSv1.3" and report["cipher"].startswith("TLS1-3-")


def test_credentials_are_deployed_and_rotated_with_netsec_deploy(board, clock_set, identity, deploy):
    first, second = identity("first"), identity("second")

    out = deploy(first)
    assert "matches the board's copy" in out
    assert selftest(board, (first.ca_der,))["peer"] == first.subject

    deploy(second)  # a new CA and identity: the next connection uses them, no reboot
    assert selftest(board, (second.ca_der,))["peer"] == second.subject
    with pytest.raises(RemoteError, match="TLSError: selftest: server certificate .* is not "
                                          "signed by a CA"):
        selftest(board, (first.ca_der,))
