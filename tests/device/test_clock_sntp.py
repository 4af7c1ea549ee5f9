"""netsec.clock on the unix image against an SNTP server the test runs on loopback (UDP)."""
import datetime
import re
import socket
import struct
import threading

import pytest

from mpy import run

pytestmark = pytest.mark.device

NTP_TO_UNIX = 2208988800
UTC = datetime.timezone.utc

SYNC = """
import sys
from netsec import clock
port, timeout_ms, retries = int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3])
try:
    seconds = clock.sync("127.0.0.1", port, timeout_ms=timeout_ms, retries=retries)
    print("synced", seconds, clock.time_unix(), clock.now_text(), clock.is_set())
except clock.ClockError as e:
    print("failed", e)
"""


def reply(request, unix_seconds, origin=None, stratum=2, leap=0):
    """An SNTP server reply (RFC 4330) to request, saying unix_seconds."""
    stamp = struct.pack(">II", (int(unix_seconds) + NTP_TO_UNIX) % 2**32, 0)
    first = (leap << 6) | (4 << 3) | 4  # version 4, mode 4 (server)
    return (bytes([first, stratum, 6, 0xEC]) + bytes(8) + b"RATE" + stamp
            + (origin or request[40:48]) + stamp + stamp)


class SNTPServer:
    """Answers request number n (from 0) with answer(request, n): bytes, or None to drop it."""

    def __init__(self, answer):
        self.answer = answer
        self.requests = []
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind(("127.0.0.1", 0))
        self.port = self.sock.getsockname()[1]
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self):
        while True:
            try:
                request, peer = self.sock.recvfrom(512)
            except OSError:
                return  # closed
            self.requests.append(request)
            packet = self.answer(request, len(self.requests) - 1)
            if packet:
                self.sock.sendto(packet, peer)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.sock.close()


def sync(unix_image, tmp_path, server, timeout_ms=500, retries=3):
    status, output = run(unix_image, SYNC, tmp_path / "flash", [server.port, timeout_ms, retries])
    assert status == 0, output
    return output


def synced(output):
    """(seconds returned, clock.time_unix() after, now_text, is_set) from the script's output."""
    line = [l for l in output.splitlines() if l.startswith("synced ")]
    assert line, output
    _, seconds, now, text, is_set = line[0].split()
    return int(seconds), int(now), text, is_set == "True"


def test_sync_sets_the_clock_from_an_sntp_server(unix_image, tmp_path):
    served = int(datetime.datetime.now(UTC).timestamp()) + 400 * 86400  # not the host's time
    with SNTPServer(lambda request, n: reply(request, served)) as server:
        output = sync(unix_image, tmp_path, server)
    seconds, now, text, is_set = synced(output)
    assert seconds == served and abs(now - served) <= 2
    assert text == datetime.datetime.fromtimestamp(now, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    assert is_set
    assert re.search(r"^INFO clock: set to %s:\d\d:\d\dZ from SNTP server 127\.0\.0\.1$" % text[:13],
                     output, re.M), output
    request = server.requests[0]
    assert len(request) == 48 and request[0] == 0x23, "SNTP version 4, client mode"


def test_sync_retries_after_a_lost_reply(unix_image, tmp_path):
    served = int(datetime.datetime.now(UTC).timestamp())
    with SNTPServer(lambda request, n: reply(request, served) if n else None) as server:
        output = sync(unix_image, tmp_path, server, timeout_ms=300)
    assert synced(output)[0] == served
    assert len(server.requests) == 2
    assert server.requests[0][40:48] != server.requests[1][40:48], "a fresh nonce per request"


def test_a_reply_to_another_request_is_ignored(unix_image, tmp_path):
    served = int(datetime.datetime.now(UTC).timestamp())
    forged = served + 86400 * 1000

    def answer(request, n):
        return reply(request, served) if n else reply(request, forged, origin=b"\x01" * 8)

    with SNTPServer(answer) as server:
        output = sync(unix_image, tmp_path, server)
    assert synced(output)[0] == served
    assert len(server.requests) == 2


def test_no_reply_is_a_clear_error(unix_image, tmp_path):
    with SNTPServer(lambda request, n: None) as server:
        output = sync(unix_image, tmp_path, server, timeout_ms=200, retries=2)
    assert ("failed clock: no usable SNTP reply from 127.0.0.1 port %d in 2 tries of 200 ms: "
            "no reply" % server.port) in output, output
    assert len(server.requests) == 2


@pytest.mark.parametrize("bad, why", [
    ({"stratum": 0}, "server refused (kiss code b'RATE')"),
    ({"leap": 3}, "server clock is not synchronised"),
])
def test_a_server_that_cannot_tell_the_time_is_refused(unix_image, tmp_path, bad, why):
    served = int(datetime.datetime.now(UTC).timestamp())
    with SNTPServer(lambda request, n: reply(request, served, **bad)) as server:
        output = sync(unix_image, tmp_path, server, timeout_ms=200, retries=2)
    assert "failed clock: no usable SNTP reply" in output and output.endswith(why), output


def test_a_time_before_the_firmware_was_built_is_refused(unix_image, tmp_path):
    year_2001 = 978307200
    with SNTPServer(lambda request, n: reply(request, year_2001)) as server:
        output = sync(unix_image, tmp_path, server, timeout_ms=200, retries=1)
    assert output.endswith("server time 978307200 is before this firmware was built"), output


def test_ntp_era_rollover_in_2036_is_handled(unix_image, tmp_path):
    year_2040 = int(datetime.datetime(2040, 2, 3, 4, 5, 6, tzinfo=UTC).timestamp())
    with SNTPServer(lambda request, n: reply(request, year_2040)) as server:
        output = sync(unix_image, tmp_path, server)
    assert synced(output)[:1] == (year_2040,)
    assert synced(output)[2].startswith("2040-02-03T04:0")


def test_an_unset_clock_is_reported(unix_image, tmp_path):
    script = ("from netsec import clock\n"
              "print(clock.is_set())\n"
              "clock.set_time(946684805)\n"  # 2000-01-01T00:00:05Z: where a board's RTC starts
              "print(clock.is_set())\n"
              "print(clock.problem())\n")
    status, output = run(unix_image, script, tmp_path / "flash")
    assert status == 0, output
    before, after, problem = output.splitlines()
    assert (before, after) == ("True", "False")
    assert problem.startswith("the device clock is not set (device time 2000-01-01T00:00:0")
    assert problem.endswith("sync it with netsec.clock.sync(ntp_server), or from a computer run "
                            "`netsec clock --device PORT` (it sets UTC; `mpremote rtc --set` sets "
                            "local time)")
