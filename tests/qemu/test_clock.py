"""The guest's clock: right at boot (read from the host), consistent, settable to UTC with
`netsec clock` (and to the host's local time with mpremote). The host runs 12 hours ahead of
UTC here (TZ), so anything that takes local time for UTC shows (issue 13, case 11)."""
import datetime
import subprocess
import sys
import time
from pathlib import Path

import pytest

from netsec_cli import qemu
from netsec_cli.device import RemoteError

pytestmark = pytest.mark.qemu

SECONDS_1970_TO_2000 = 946684800
HOST_TZ = "NZST-12"  # POSIX TZ: 12 hours ahead of UTC, no daylight saving
NETSEC = Path(sys.executable).parent / "netsec"


@pytest.fixture(scope="module")
def far_east_guest(qemu_image, tmp_path_factory):
    """The image booted and driven from a host whose local time is 12 hours ahead of UTC."""
    env = pytest.MonkeyPatch()
    env.setenv("TZ", HOST_TZ)
    time.tzset()
    try:
        guest = qemu.Guest(qemu_image, log_path=tmp_path_factory.mktemp("qemu-tz") / "qemu.log")
        yield guest
        guest.stop()
    finally:
        env.undo()
        time.tzset()


@pytest.fixture
def guest(far_east_guest):
    far_east_guest.enter_raw_repl()
    far_east_guest.soft_reset()
    return far_east_guest


@pytest.fixture
def restore_clock(guest):
    """Put the guest's clock back on the host's time after a test that moves it."""
    yield
    guest.soft_reset()
    guest.set_rtc_utc(datetime.datetime.now(datetime.timezone.utc))


def test_clock_reads_today(guest):
    rtc, localtime, gmtime, seconds = guest.eval(
        "(__import__('machine').RTC().datetime(), __import__('time').localtime(), "
        "__import__('time').gmtime(), __import__('time').time())")
    host = datetime.datetime.now(datetime.timezone.utc)
    # time.time() counts from 2000, like MicroPython on boards.
    guest_now = datetime.datetime.fromtimestamp(seconds + SECONDS_1970_TO_2000, datetime.timezone.utc)
    assert abs((host - guest_now).total_seconds()) < 5, "the guest's clock is not the host's UTC time"
    today = {host.timetuple()[:3], (host - datetime.timedelta(seconds=5)).timetuple()[:3]}  # midnight
    assert tuple(localtime[:3]) in today
    assert gmtime[:6] == localtime[:6], "the clock is UTC: gmtime and localtime agree"
    assert rtc[:3] == localtime[:3] and rtc[3] == localtime[6], "RTC: weekday sits at index 3"


def test_rtc_set_moves_every_clock(guest, restore_clock):
    out = guest.exec(
        "import machine, time\n"
        "machine.RTC().datetime((2030, 1, 2, 6, 3, 4, 5, 0))\n"  # weekday 6 is wrong on purpose
        "print(machine.RTC().datetime()[:7], time.localtime()[:7], time.time())")
    assert out.strip() == "(2030, 1, 2, 2, 3, 4, 5) (2030, 1, 2, 3, 4, 5, 2) %d" % (
        datetime.datetime(2030, 1, 2, 3, 4, 5, tzinfo=datetime.timezone.utc).timestamp() - SECONDS_1970_TO_2000)


def test_rtc_set_survives_a_soft_reset(guest, restore_clock):
    guest.exec("import machine\nmachine.RTC().datetime((2031, 5, 6, 0, 7, 8, 9, 0))")
    guest.soft_reset()
    assert guest.eval("__import__('machine').RTC().datetime()[:3]") == (2031, 5, 6)


def test_rtc_rejects_an_impossible_date(guest):
    with pytest.raises(RemoteError, match="month must be 1..12, not 13"):
        guest.exec("import machine\nmachine.RTC().datetime((2030, 13, 1, 0, 0, 0, 0, 0))")
    with pytest.raises(RemoteError, match="day must be 1..28, not 29"):
        guest.exec("import machine\nmachine.RTC().datetime((2031, 2, 29, 0, 0, 0, 0, 0))")


def test_mpremote_rtc_set_and_read(guest, mpremote, restore_clock):
    guest.exec("import machine\nmachine.RTC().datetime((2030, 1, 1, 1, 0, 0, 0, 0))")
    mpremote("rtc", "--set")
    shown = mpremote("rtc")
    year, month, day, weekday, hour, minute, second, _ = eval(shown.strip().splitlines()[-1])
    guest_time = datetime.datetime(year, month, day, hour, minute, second)
    # mpremote sets the host's local time: here 12 hours ahead of the UTC netsec reads.
    assert abs((datetime.datetime.now() - guest_time).total_seconds()) < 10
    assert weekday == guest_time.weekday()
    utc = datetime.datetime.now(datetime.timezone.utc).replace(tzinfo=None)
    assert abs((guest_time - utc).total_seconds() - 12 * 3600) < 10


def test_netsec_clock_sets_utc_whatever_the_host_time_zone(guest, restore_clock):
    guest.exec("import machine\nmachine.RTC().datetime((2030, 1, 1, 1, 0, 0, 0, 0))")
    with guest.released():
        done = subprocess.run([str(NETSEC), "clock", "--device", guest.port], capture_output=True,
                              text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    rtc = guest.eval("__import__('machine').RTC().datetime()")
    guest_utc = datetime.datetime(rtc[0], rtc[1], rtc[2], rtc[4], rtc[5], rtc[6],
                                  tzinfo=datetime.timezone.utc)
    assert abs((datetime.datetime.now(datetime.timezone.utc) - guest_utc).total_seconds()) < 3
    assert rtc[3] == guest_utc.weekday()
    assert done.stdout.startswith("netsec clock: %s clock set to %s" % (
        guest.port, guest_utc.strftime("%Y-%m-%d %H:%M:"))), done.stdout
    assert " UTC; it read 2030-01-01 00:00:0" in done.stdout
    assert done.stdout.rstrip().endswith(" ahead"), done.stdout
    # The device now agrees with a certificate made a moment ago on this host.
    assert guest.eval("__import__('netsec.clock').clock.problem()") is None
