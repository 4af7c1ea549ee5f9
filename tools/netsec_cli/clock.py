"""netsec clock: set a board's real-time clock to UTC, the time netsec reads from it."""
import datetime

from . import problems
from .device import Device, RemoteError
from .problems import CliError

HELP = "set the board's clock (machine.RTC) to the host's time in UTC"
DESCRIPTION = """\
netsec on the board reads its real-time clock as UTC: certificate dates are
checked against it. `mpremote rtc --set` writes the host's LOCAL time instead,
which is off by the host's UTC offset (in New York a certificate made a minute
ago is "not yet valid" for five hours). This writes the host's clock in UTC
over the board's USB serial REPL (no reset, a running program's state stays)
and says how far off the board was. On a network, netsec.clock.sync() does
the same over SNTP."""
EPILOG = """\
examples:
  netsec clock
  netsec clock --device /dev/ttyACM1"""

_READ = "__import__('machine').RTC().datetime()"


def add_arguments(p):
    p.add_argument("--device", default="/dev/ttyACM0",
                   help="the board's serial port (default: %(default)s); a pty for QEMU")


def run(args):
    with Device(args.device) as board:
        try:
            before = board.eval(_READ)
            now = board.set_rtc_utc()  # the host's clock, on a whole second
        except RemoteError as e:
            raise CliError(args.device, "cannot set the clock (%s)" % e.exception,
                           "is it a MicroPython board with machine.RTC?")
    print("%s: %s clock set to %s UTC; it read %s, %s" % (
        problems.prog, args.device, now.strftime("%Y-%m-%d %H:%M:%S"), _shown(before),
        _offset(before, now)))
    return 0


def _shown(rtc):
    year, month, day, _, hour, minute, second = rtc[:7]
    return "%04d-%02d-%02d %02d:%02d:%02d" % (year, month, day, hour, minute, second)


def _offset(rtc, now):
    try:
        then = datetime.datetime(rtc[0], rtc[1], rtc[2], rtc[4], rtc[5], rtc[6],
                                 tzinfo=datetime.timezone.utc)
    except ValueError:
        return "not a date"
    seconds = round((then - now).total_seconds())
    if abs(seconds) < 2:
        return "already right"
    return "%s %s" % (datetime.timedelta(seconds=abs(seconds)), "ahead" if seconds > 0 else
                      "behind")
