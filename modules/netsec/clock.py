# netsec.clock: the device's UTC time, set from SNTP, and whether it is good enough to check
# certificate dates. Boards keep UTC in machine.RTC (`netsec clock` on the host sets it); the
# unix port cannot set the host's clock, so there the correction is kept here as an offset.
import os
import struct
import sys
import time

from netsec import der, log

# The firmware cannot have been built after "now": a clock showing an earlier date was never
# set (boards start at 2000-01-01 or 2021-01-01). sys.version ends "... on YYYY-MM-DD".
# (CPython, where netsec's tests run the server too, has no build date there: 2000-01-01.)
_built = sys.version.split(" on ")
BUILD_DATE = tuple(int(x) for x in _built[-1][:10].split("-")) if len(_built) > 1 else (2000, 1, 1)

_NTP_TO_UNIX = 2208988800  # seconds from 1900-01-01 (NTP era 0) to 1970-01-01
_PORT_EPOCH = 946684800 if time.gmtime(0)[0] == 2000 else 0  # unix seconds at time.time() == 0
_offset = 0  # seconds added to time.time() where the clock itself cannot be set


class ClockError(Exception):
    pass


def time_unix():
    """Seconds since 1970-01-01 UTC, whatever epoch the port's time module uses."""
    return int(time.time()) + _offset + _PORT_EPOCH


def utc():
    """The current UTC time as (year, month, day, hour, minute, second)."""
    return time.gmtime(int(time.time()) + _offset)[:6]


def now_text():
    return der.time_text(utc())


def is_set():
    """False while the clock shows a time before this firmware was built."""
    return utc()[:3] >= BUILD_DATE


def problem():
    """None if the clock can be trusted for certificate dates, else what to do about it."""
    if is_set():
        return None
    return ("the device clock is not set (device time %s, before this firmware was built on "
            "%04d-%02d-%02d), so certificate dates cannot be checked: sync it with "
            "netsec.clock.sync(ntp_server), or from a computer run `netsec clock --device PORT` "
            "(it sets UTC; `mpremote rtc --set` sets local time)"
            % ((now_text(),) + BUILD_DATE))


def set_time(seconds_unix):
    """Set the clock to seconds since 1970-01-01 UTC: the RTC on boards, an offset elsewhere."""
    global _offset
    seconds = int(seconds_unix) - _PORT_EPOCH
    try:
        from machine import RTC
    except ImportError:  # unix port: no RTC to set
        _offset = seconds - int(time.time())
        return
    year, month, day, hour, minute, second, weekday = time.gmtime(seconds)[:7]
    RTC().datetime((year, month, day, weekday, hour, minute, second, 0))
    _offset = 0


def sync(server, port=123, timeout_ms=1000, retries=3):
    """Set the clock from an SNTP server (RFC 4330) and return the time (unix seconds).

    Tries `retries` times, waiting timeout_ms for each reply; raises ClockError when no usable
    reply arrives. A reply that does not answer our request, comes from an unsynchronised
    server or says a time before this firmware was built is ignored.
    """
    import socket  # here, not at the top: images without a network stack still check dates

    address = socket.getaddrinfo(server, port)[0]
    sock = socket.socket(address[0], socket.SOCK_DGRAM)
    sock.settimeout(timeout_ms / 1000)
    why = "no reply"
    try:
        for _ in range(retries):
            # A random transmit timestamp: the server echoes it, so a reply that does not carry
            # it answers someone else's request (or is forged).
            nonce = os.urandom(8)
            sent = time.ticks_ms()
            sock.sendto(b"\x23" + bytes(39) + nonce, address[-1])  # LI 0, version 4, client
            try:
                reply = sock.recv(64)
            except OSError as e:
                why = "no reply (%s)" % e
                continue
            try:
                seconds = _server_time(reply, nonce)
            except ClockError as e:
                why = str(e)
                continue
            seconds += time.ticks_diff(time.ticks_ms(), sent) // 2000  # half the round trip
            set_time(seconds)
            log.info("clock: set to %s from SNTP server %s" % (now_text(), server))
            return seconds
    finally:
        sock.close()
    raise ClockError("clock: no usable SNTP reply from %s port %d in %d tries of %d ms: %s"
                     % (server, port, retries, timeout_ms, why))


def _server_time(reply, nonce):
    """Unix seconds from an SNTP server reply to the request that carried nonce."""
    if len(reply) < 48 or reply[0] & 7 != 4:
        raise ClockError("not an SNTP server reply")
    if reply[24:32] != nonce:
        raise ClockError("reply does not answer our request")
    if reply[1] == 0:
        raise ClockError("server refused (kiss code %r)" % bytes(reply[12:16]))
    if reply[0] >> 6 == 3:
        raise ClockError("server clock is not synchronised")
    ntp = struct.unpack(">I", reply[40:44])[0]
    # RFC 4330 section 3: with the top bit clear the time is in NTP era 1 (from 2036).
    seconds = ntp - _NTP_TO_UNIX if ntp & 0x80000000 else ntp + 0x100000000 - _NTP_TO_UNIX
    if time.gmtime(seconds - _PORT_EPOCH)[:3] < BUILD_DATE:
        raise ClockError("server time %d is before this firmware was built" % seconds)
    return seconds
