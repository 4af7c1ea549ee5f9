"""Rows 8-11: the demo server in the networked QEMU Cortex-M3 and Cortex-M4 images (lwIP on the
LAN9118), requested from the host, in guest instructions: a first HTTPS request (TCP SYN to the
last byte of the response, full handshake included), one keep-alive GET of the demo page, a
256 KB static file per byte; and how many TLS sessions fit at once.

Only the guest's instructions count, and only those it ran: the board's idle path adds up the
virtual time spent asleep in WFI (machine.busy_cycles() is the rest). QEMU runs with
-icount shift=0 (one instruction per virtual ns) and sleep on: an idle guest's clock then
follows the host's, and the guest wakes once per 1 ms tick meanwhile (with sleep=off the
busy counts came out negative: the idle accounting does not hold while QEMU warps the clock). Those wakeups, and lwIP's timers and retransmits,
depend on how long the host took, so counts differ a little between runs: each figure is the
mean of REPEAT samples on each of two boots, with the spread (max - min) of all of them.
The host side (curl for the first request, CPython http.client + ssl for the rest) is not
counted.
"""
import re
import ssl
import time
from pathlib import Path

import cortex_m
from tls_flights import ERRORS, FlightClient, SeededClient

from netsec_cli import qemu

ROOT = Path(__file__).resolve().parents[1]
CA = ROOT / "tests" / "certs" / "default" / "ca.pem"  # signs the images' default credentials
HOSTNAME = "localhost"
ICOUNT = "shift=0"
REPEAT = 3
BIG = 256 * 1024
SESSION_LIMIT = 24  # bounds the sessions-that-fit loop
# Host seconds to wait after a request before the closing mark: whatever the request left to
# do in the guest (ACKs, the loop back to reading) is done by then.
SETTLE_S = 0.3
# The demo page shows the uptime in seconds: start counting once it has two digits, so that
# every run renders the same number of digits (a boot's count ends well within 100 s).
UPTIME_TWO_DIGITS_S = 11
GUEST_APP = "import asyncio, guest_https\nasyncio.run(guest_https.main(%d))" % SESSION_LIMIT
READY = "netsec https server on"
# Made in the guest (faster than copying it over the console): BIG bytes for row 10.
MAKE_BIG = ("import os\ntry:\n    os.mkdir('/www')\nexcept OSError:\n    pass\n"
            "with open('/www/big.bin', 'wb') as f:\n    for i in range(%d):\n"
            "        f.write(bytes([i & 0xff]) * 1024)" % (BIG // 1024))


class Marks:
    """Reads guest_https.py's marks from its console: (busy before the mark's collection, busy
    after it, timer cycles), in instructions."""

    def __init__(self, guest, per_tick):
        self.guest, self.per_tick, self.seen = guest, per_tick, 0

    def __call__(self):
        self.guest.send(b"m")
        deadline = time.monotonic() + 30
        while True:
            found = re.findall(r"busy (\d+) (\d+) (\d+)\r?\n", self.guest.output())  # whole lines
            if len(found) > self.seen:
                self.seen = len(found)
                return [int(n) * self.per_tick for n in found[-1]]
            if time.monotonic() > deadline:
                raise RuntimeError("no busy count from the guest:\n" + self.guest.output())
            time.sleep(0.01)

    def count(self, action):
        """Guest instructions run in answer to action() (from after the first mark's collection
        to before the second's) and, apart, the timer instructions meanwhile."""
        before = self()
        action()
        time.sleep(SETTLE_S)
        after = self()
        return after[0] - before[1], after[2] - before[2]


def _context():
    return ssl.create_default_context(cafile=str(CA))


def _sessions_that_fit(port):
    """Keep-alive sessions, each served one GET, opened until one fails: (held, what failed)."""
    held, failed = [], "the limit of %d" % SESSION_LIMIT
    try:
        while len(held) < SESSION_LIMIT:
            client = SeededClient(port, HOSTNAME, len(held))
            try:
                client.get("/api/status")
            except ERRORS as e:
                failed = type(e).__name__
                client.close()
                break
            held.append(client)
        return len(held), failed
    finally:
        for client in held:
            client.close()


def measure_once(image):
    per_tick = cortex_m.instructions_per_tick()
    network = qemu.GuestNetwork(hostfwd={443: 0})
    with qemu.Guest(image, icount=ICOUNT, network=network) as guest:
        guest.exec(MAKE_BIG, timeout=120)
        guest.write("/guest_https.py", (Path(__file__).parent / "guest_https.py").read_bytes())
        guest.start(GUEST_APP, READY, timeout=120)
        ready = time.monotonic()
        port = guest.host_port(443)
        mark = Marks(guest, per_tick)
        rows = {"nothing": [], "first_request": [], "new_connection_request": [],
                "keep_alive_get": [], "static_256k": []}
        timers = []

        def sample(name, action):
            busy, timer = mark.count(action)
            rows[name].append(busy)
            timers.append(timer)

        def new_connection(name, seed):
            client = SeededClient(port, HOSTNAME, seed)
            sample(name, lambda: client.get("/"))
            client.close()
            time.sleep(SETTLE_S)

        time.sleep(max(0.0, UPTIME_TWO_DIGITS_S - (time.monotonic() - ready)))
        for _ in range(REPEAT):
            sample("nothing", lambda: None)
        new_connection("first_request", 0)
        for seed in range(1, REPEAT + 1):
            new_connection("new_connection_request", seed)
        client = FlightClient(port, _context(), HOSTNAME)
        client.get("/")
        for _ in range(REPEAT):
            sample("keep_alive_get", lambda: client.get("/"))
        sizes = []
        for _ in range(REPEAT):
            sample("static_256k", lambda: sizes.append(len(client.get("/static/big.bin"))))
        client.close()
        if sizes != [BIG] * REPEAT:
            raise RuntimeError("the static file came back as %r bytes" % sizes)
        rows["sessions_that_fit"], rows["next_session_failed_with"] = _sessions_that_fit(port)
        rows["timer_instructions"] = timers
        guest.interrupt()
    return rows


def _summary(samples, less=0):
    """Mean and spread (max - min) of samples, less the cost of the marks themselves."""
    return {"mean": sum(samples) // len(samples) - less, "spread": max(samples) - min(samples),
            "samples": samples}


def measure(image):
    """Two boots of `image`: each figure's mean and spread over both, and the raw samples;
    the figures less the mean of two marks with nothing between them ("nothing")."""
    boots = [measure_once(image), measure_once(image)]
    result = {"nothing": _summary(boots[0]["nothing"] + boots[1]["nothing"])}
    result.update({name: _summary(boots[0][name] + boots[1][name], result["nothing"]["mean"])
                   for name in ("first_request", "new_connection_request", "keep_alive_get",
                                "static_256k")})
    result["sessions_that_fit"] = [b["sessions_that_fit"] for b in boots]
    result["next_session_failed_with"] = [b["next_session_failed_with"] for b in boots]
    result["static_per_byte"] = {"mean": result["static_256k"]["mean"] / BIG,
                                 "spread": result["static_256k"]["spread"] / BIG}
    result["qemu"] = " ".join(qemu.qemu_command(image, icount=ICOUNT, network=qemu.GuestNetwork()))
    result["host_side"] = {"first_request": "curl", "others": "CPython http.client + ssl"}
    return result


if __name__ == "__main__":  # one image, one boot: python bench/cortex_m_https.py IMAGE
    import json
    import sys
    print(json.dumps(measure_once(sys.argv[1]), indent=1))
