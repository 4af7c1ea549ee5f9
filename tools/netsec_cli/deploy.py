"""netsec deploy: copy a Net_Security.py to a board; netsec.tls picks it up with no reboot."""
import hashlib

from . import inspect, problems, psk, x509util
from .device import Device, RemoteError
from .problems import CliError

HELP = "copy a Net_Security.py to the board's netsec-credentials/, checked first"
DESCRIPTION = """\
Check a Net_Security.py on the host (read as data, as netsec inspect reads it,
never run), then copy it over the board's USB serial REPL to
netsec-credentials/Net_Security.py. netsec.tls checks that directory on every
new connection, so the new credentials are used without a reboot; the board
refuses a broken set and keeps the previous one (and logs why).

Refused before anything is written: a module that is not FORMAT 1, a
private key that does not belong to its certificate, a certificate (with
its chain) too big for the firmware to send, and a pre-shared key the firmware
cannot take (16 to 48 bytes). The file is written under
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


def add_arguments(p):
    p.add_argument("module", metavar="Net_Security.py", help="a module written by netsec convert")
    p.add_argument("--device", default="/dev/ttyACM0",
                   help="the board's serial port (default: %(default)s); a pty for QEMU")


def run(args):
    report = checked(args.module)
    with open(args.module, "rb") as f:
        # As UTF-8 without a byte-order mark: the board's compiler reads nothing else.
        data = x509util.decode_text(args.module, f.read()).encode("utf-8")
    with Device(args.device) as board:
        copy(board, data)
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
    constants = inspect.read_module(path)
    too_big = inspect.sent_too_big(constants)
    if too_big:
        raise CliError(path, too_big[0], x509util.CERTIFICATE_MESSAGE_FIX)
    unusable = psk.problems(constants.get("PSK") or {})  # a dict of bytes: from_module checked
    if unusable:
        raise CliError(path, unusable[0], "make the key with netsec keygen --psk NAME and the "
                       "module with netsec convert")
    for warning in report["warnings"]:
        problems.warn(path, warning)
    return report


def copy(board, data):
    """Write data to TARGET through PARTIAL and a rename; the board's SHA-256 must match."""
    try:
        board.makedirs(CREDENTIALS_DIR)
        board.write_atomic(TARGET, data, partial=PARTIAL)
    except RemoteError as e:
        raise CliError(board.port, "copying to %s failed (%s)" % (TARGET, e.exception),
                       "check the board's filesystem has room (mpremote df) and run the "
                       "command again")
