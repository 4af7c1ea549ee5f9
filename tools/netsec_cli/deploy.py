"""netsec deploy: copy a Net_Security.py to a board; netsec.tls picks it up with no reboot."""
import contextlib
import hashlib
import io
import os

from mpremote.transport import TransportError
from mpremote.transport_serial import SerialTransport
from serial import SerialException

from . import inspect, problems, x509util
from .problems import CliError

HELP = "copy a Net_Security.py to the board's netsec-credentials/, checked first"
DESCRIPTION = """\
Check a Net_Security.py on the host (read as data, as netsec inspect reads it,
never run), then copy it over the board's USB serial REPL to
netsec-credentials/Net_Security.py. netsec.tls checks that directory on every
new connection, so the new credentials are used without a reboot; the board
refuses a broken set and keeps the previous one (and logs why).

Refused before anything is written: a module that is not FORMAT 1, and a
private key that does not belong to its certificate. The file is written under
a temporary name and renamed into place, so the board never reads half of it;
its SHA-256 is then read back from the board and compared."""
EPILOG = """\
examples:
  netsec deploy build/Net_Security.py
  netsec deploy build/Net_Security.py --device /dev/ttyACM1"""

CREDENTIALS_DIR = "netsec-credentials"  # netsec.tls.OVERRIDE_DIR, relative to the board's cwd
TARGET = CREDENTIALS_DIR + "/Net_Security.py"
# Outside CREDENTIALS_DIR, so netsec.tls never lists it while it is being written.
PARTIAL = "netsec-deploy.part"
CHUNK = 1024  # bytes per raw-REPL write: well inside the smallest boards' heap


def add_arguments(p):
    p.add_argument("module", metavar="Net_Security.py", help="a module written by netsec convert")
    p.add_argument("--device", default="/dev/ttyACM0",
                   help="the board's serial port (default: %(default)s); a pty for QEMU")


def run(args):
    report = checked(args.module)
    with open(args.module, "rb") as f:
        data = f.read()
    with connected(args.device) as board:
        copy(board, data, args.device)
    server = next((c for c in report["certificates"] if c["name"] == "SERVER_CERT"), None)
    identity = ("SERVER_CERT %s (sha256 %s)" % (server["subject"], server["sha256"]) if server
                else "no SERVER_CERT")
    print("%s: %s -> %s:%s, sha256 %s matches the board's copy; %s; netsec.tls uses it from the "
          "next connection" % (problems.prog, args.module, args.device, TARGET,
                               hashlib.sha256(data).hexdigest(), identity))
    return 0


def checked(path):
    """inspect's report of the module, refused when the board would refuse it; warnings printed."""
    report = inspect.from_module(path, x509util.utcnow())
    if report["format"] != 1:
        raise CliError(path, "FORMAT is %r; the firmware reads FORMAT 1 only" % report["format"],
                       "make the module again with netsec convert")
    for key in report["keys"]:
        if key["matches"] is None:
            cert = inspect._KEYS[key["name"]]
            raise CliError(path, "%s does not belong to %s" % (key["name"], cert),
                           "make the module again with netsec convert from the matching "
                           "certificate and key")
    for warning in report["warnings"]:
        problems.warn(path, warning)
    return report


@contextlib.contextmanager
def connected(device):
    """The board's raw REPL, without a soft reset (a running program's state stays)."""
    if not os.path.exists(device):
        raise CliError(device, "no such device",
                       "is the board connected? give its port with --device")
    try:
        board = SerialTransport(device)
    except TransportError:
        raise CliError(device, "cannot open the port",
                       "is another program (mpremote, a terminal) holding the port?")
    try:
        try:
            # mpremote prints what it read when the REPL does not answer: keep the one-line error.
            with contextlib.redirect_stdout(io.StringIO()):
                board.enter_raw_repl(soft_reset=False)
        except (TransportError, SerialException, OSError):
            raise CliError(device, "no answer from a MicroPython REPL",
                           "is it connected? is another program (mpremote, a terminal) holding "
                           "the port?")
        try:
            yield board
        finally:
            board.exit_raw_repl()
    finally:
        board.close()


def copy(board, data, device):
    """Write data to TARGET through PARTIAL and os.rename; check the board's copy by its SHA-256."""
    try:
        if not board.fs_isdir(CREDENTIALS_DIR):
            board.fs_mkdir(CREDENTIALS_DIR)
        board.fs_writefile(PARTIAL, data, chunk_size=CHUNK)
        board.exec("import os\nos.rename(%r, %r)" % (PARTIAL, TARGET))
        on_board = board.fs_hashfile(TARGET, "sha256")
    except (TransportError, SerialException, OSError) as e:
        raise CliError(device, "copying to %s failed (%s)" % (TARGET, _last_line(e)),
                       "check the board's filesystem has room (mpremote df) and run the "
                       "command again")
    if on_board != hashlib.sha256(data).digest():
        raise CliError(device, "%s on the board differs from the file sent" % TARGET,
                       "run the command again; if it persists the board's filesystem is damaged")


def _last_line(error):
    """The device's exception line from a raw-REPL traceback, or the host error itself."""
    lines = str(error).strip().splitlines()
    return lines[-1] if lines else type(error).__name__
