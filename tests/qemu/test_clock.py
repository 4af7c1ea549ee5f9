"""The guest's clock: right at boot (read from the host), consistent, settable with mpremote."""
import datetime

import pytest

from netsec_cli.device import RemoteError

pytestmark = pytest.mark.qemu

SECONDS_1970_TO_2000 = 946684800


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
    # mpremote sets the host's local time.
    assert abs((datetime.datetime.now() - guest_time).total_seconds()) < 10
    assert weekday == guest_time.weekday()
