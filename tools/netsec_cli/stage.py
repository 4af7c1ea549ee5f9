"""Stage the Net_Security.py an image freezes in; the Makefile runs it before every image build.

    python -m netsec_cli.stage BUILD_DIR --choice FILE [--net-security FILE|default|tests]

Which module: --net-security FILE, remembered in the --choice file so that a later plain `make`
(`make run`, `make qemu`) keeps it instead of going back to the test credentials; `default`
forgets the choice and takes the public test credentials (modules/Net_Security.py), as does a
build with nothing chosen; `tests` takes them for the tests' builds (`make test`, `make bench`,
the test fixtures) and leaves the choice remembered. It prints which credentials it froze in
(subject and fingerprint) and where the choice came from.

The copy goes to BUILD_DIR/credentials/Net_Security.py, mode 0600 (it holds the decrypted
key), rewritten only when its content differs: MicroPython recompiles a frozen module only when
its source is newer, so switching back to an older file must still look new. BUILD_DIR itself
is made 0700: the frozen bytecode and the image hold the key too.
"""
import argparse
import os
import sys
from pathlib import Path

from . import inspect, keygen, x509util
from .problems import CliError

ROOT = Path(__file__).resolve().parents[2]
DEFAULT = ROOT / "modules" / "Net_Security.py"


def chosen(value, choice):
    """(module path, how it was chosen) from --net-security's value and the choice file."""
    if value == "default":
        choice.unlink(missing_ok=True)
        return DEFAULT, "NET_SECURITY=default"
    if value == "tests":  # what the tests are written for; the user's choice is not theirs to drop
        kept = ("; the next plain build takes %s again" % Path(choice.read_text().strip())
                if choice.is_file() else "")
        return DEFAULT, "for the tests%s" % kept
    if value:
        path = Path(value).expanduser().resolve()
        if not path.is_file():
            raise CliError("NET_SECURITY=%s" % value, "no such file",
                           "make one with netsec convert, or give NET_SECURITY=default")
        choice.parent.mkdir(parents=True, exist_ok=True)
        choice.write_text("%s\n" % path)
        return path, "NET_SECURITY=%s, remembered in %s" % (value, _shown(choice))
    if not choice.is_file():
        return DEFAULT, "the default"
    path = Path(choice.read_text().strip())
    if not path.is_file():
        raise CliError(_shown(choice), "names %s, which no longer exists" % path,
                       "give NET_SECURITY=FILE, or NET_SECURITY=default for the test credentials")
    return path, ("remembered in %s; NET_SECURITY=default goes back to the test credentials"
                  % _shown(choice))


def identity(path):
    """'SERVER_CERT <subject> sha256 <fingerprint>' of a module, checked as deploy checks it."""
    constants = inspect.read_module(str(path))
    report = inspect.from_module(str(path), x509util.utcnow())
    cert = next((c for c in report["certificates"] if c["name"] == "SERVER_CERT"), None)
    test = " (PUBLIC TEST credentials)" if report["test_only"] else ""
    if cert is None:
        return "no SERVER_CERT" + test
    too_big = inspect.sent_too_big(constants)
    if too_big:
        raise CliError(str(path), too_big[0], x509util.CERTIFICATE_MESSAGE_FIX)
    return "SERVER_CERT %s sha256 %s%s" % (cert["subject"], cert["sha256"], test)


def stage(build, path):
    build.mkdir(parents=True, exist_ok=True)
    os.chmod(build, 0o700)
    staged = build / "credentials" / "Net_Security.py"
    data = path.read_bytes()
    if not staged.is_file() or staged.read_bytes() != data:
        keygen.write_file(staged, data, secret=True)
    os.chmod(staged.parent, 0o700)
    os.chmod(staged, 0o600)  # an older build's copy may have another mode
    return staged


def _shown(path):
    try:
        return str(Path(path).resolve().relative_to(Path.cwd()))
    except ValueError:
        return str(path)


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m netsec_cli.stage",
                                     description=__doc__.split("\n\n")[0])
    parser.add_argument("build", type=Path, help="the image's build directory")
    parser.add_argument("--choice", type=Path, required=True,
                        help="file that remembers NET_SECURITY between builds")
    parser.add_argument("--net-security", default="", help="FILE, 'default', 'tests' or empty")
    args = parser.parse_args(argv)
    try:
        path, how = chosen(args.net_security, args.choice)
        facts = identity(path)
        stage(args.build, path)
    except CliError as e:
        print("make: error: %s" % e, file=sys.stderr)
        return 2
    print("%s freezes in %s: %s (%s)" % (_shown(args.build), _shown(path), facts, how))
    return 0


if __name__ == "__main__":
    sys.exit(main())
