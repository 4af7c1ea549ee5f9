"""netsec_cli.device against the QEMU guest: exec/eval, errors raised on the device, timeouts,
files, the RTC in UTC, and a guest that goes away."""
import datetime
import hashlib
import os
import time

import pytest

from netsec_cli import qemu
from netsec_cli.device import DeviceError, RemoteError

pytestmark = pytest.mark.qemu


def test_exec_returns_what_was_printed_and_eval_a_value(guest):
    assert guest.exec("print('a', 1)\nprint(b'\\x00')") == "a 1\r\nb'\\x00'\r\n"
    assert guest.eval("{'k': (1, 2.5, None, b'\\xff')}") == {"k": (1, 2.5, None, b"\xff")}


def test_an_exception_on_the_device_is_a_remote_error(guest):
    with pytest.raises(RemoteError) as caught:
        guest.exec("print('before')\nraise ValueError('from the guest')")
    error = caught.value
    assert error.exception == "ValueError: from the guest"
    assert error.output == "before\r\n"
    assert "Traceback" in error.traceback
    assert guest.eval("1 + 1") == 2, "the connection is still usable"


def test_silent_code_times_out_and_the_next_call_interrupts_it(guest):
    with pytest.raises(DeviceError) as caught:
        guest.exec("import time\ntime.sleep(30)", timeout=1)
    assert str(caught.value).startswith("%s: stopped answering while running code" % guest.port)
    assert guest.eval("'back'") == "back"


def test_files_round_trip_and_atomic_writes_replace(guest):
    data = bytes(range(256)) * 9 + os.urandom(700)  # several raw-REPL chunks, every byte value
    guest.makedirs("/device-test/a/b")
    guest.makedirs("/device-test/a/b")  # existing folders are fine
    guest.write("/device-test/a/b/plain.bin", data)
    assert guest.read("/device-test/a/b/plain.bin") == data

    guest.write("/device-test/target.bin", b"old")
    digest = guest.write_atomic("/device-test/target.bin", data)
    assert digest == hashlib.sha256(data).digest()
    assert guest.read("/device-test/target.bin") == data
    assert sorted(guest.eval("__import__('os').listdir('/device-test')")) == ["a", "target.bin"]


def test_reading_a_missing_file_is_a_remote_error(guest):
    with pytest.raises(RemoteError, match="ENOENT"):
        guest.read("/no-such-file")


def test_rtc_is_set_to_utc(guest, monkeypatch):
    monkeypatch.setenv("TZ", "EST+5")  # this machine's local time is not UTC
    time.tzset()
    guest.set_rtc_utc(datetime.datetime(2031, 3, 4, 5, 6, 7, tzinfo=datetime.timezone.utc))
    assert guest.eval("__import__('machine').RTC().datetime()[:7]") == (2031, 3, 4, 1, 5, 6, 7)
    # An aware time in another zone is converted, not taken as it reads.
    cet = datetime.timezone(datetime.timedelta(hours=1))
    guest.set_rtc_utc(datetime.datetime(2031, 1, 1, 0, 30, tzinfo=cet))
    assert guest.eval("__import__('time').gmtime()[:5]") == (2030, 12, 31, 23, 30)

    set_to = guest.set_rtc_utc()  # the host's clock, on a whole second
    seconds = guest.eval("__import__('time').time()")  # since 2000-01-01, as on the boards
    on_guest = datetime.datetime(2000, 1, 1, tzinfo=datetime.timezone.utc) + \
        datetime.timedelta(seconds=seconds)
    now = datetime.datetime.now(datetime.timezone.utc)
    assert set_to.microsecond == 0
    assert abs((on_guest - now).total_seconds()) < 3
    monkeypatch.undo()
    time.tzset()


def test_soft_reset_returns_the_boot_output_and_keeps_files(guest):
    guest.write("/kept-by-device-test", b"x")
    guest.exec("left_over = 1")
    assert "soft reboot" in guest.soft_reset()
    assert guest.eval("'left_over' in globals()") is False
    assert guest.read("/kept-by-device-test") == b"x"


def test_a_guest_that_exits_is_named_in_the_error(qemu_image):
    with qemu.Guest(qemu_image) as guest:
        guest.running.process.kill()
        guest.running.process.wait()
        with pytest.raises(DeviceError) as caught:
            guest.exec("print(1)", timeout=2)
    assert "QEMU exited with status -9" in str(caught.value)


def test_a_started_program_is_read_and_stopped(guest):
    said = guest.start("import time\nprint('up')\nwhile True:\n    time.sleep_ms(10)", ready="up")
    assert said == "up\r\n"
    with pytest.raises(DeviceError, match="waiting for the program to print 'never': not within 0.5 s"):
        guest.read_until("never", timeout=0.5)
    out, err = guest.interrupt()
    assert out == "up\r\n" and "KeyboardInterrupt" in err
    assert guest.eval("'after'") == "after"


def test_a_program_that_ends_before_printing_is_reported(guest):
    with pytest.raises(DeviceError) as caught:
        guest.start("print('bye')\nraise OSError(5)", ready="never", timeout=10)
    assert "the program ended while waiting for the program to print 'never'" in str(caught.value)
    assert "OSError: [Errno 5] EIO" in str(caught.value)
    assert guest.eval("'after'") == "after"


def test_a_line_typed_at_the_friendly_repl(guest):
    said = guest.start_in_repl("print('typed', 6 * 7)", ready="typed 42")
    assert "typed 42" in said
    guest.enter_raw_repl()
    assert guest.eval("'raw again'") == "raw again"
